"""`swanwatch plugin new`: a new watcher package that installs, registers and tests itself."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from swanwatch.errors import SwanwatchError

_NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "swanwatch-{dash}"
version = "0.1.0"
description = "A Swanwatch watcher: {name}."
requires-python = ">=3.11"
dependencies = ["swanwatch"]

[project.optional-dependencies]
test = ["pytest>=8", "pytest-asyncio>=0.23"]

[project.entry-points."swanwatch.watchers"]
{name} = "{package}:{cls}"

[tool.setuptools]
packages = ["{package}"]

[tool.pytest.ini_options]
asyncio_mode = "auto"
asyncio_default_fixture_loop_scope = "function"
"""

_MODULE = '''\
"""{cls}: one weak signal about an account. Say here what it watches and why it matters."""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import Field

from swanwatch import Signal, WatchContext, Watcher, WatcherOptions


class {cls}(Watcher):
    """An account tagged `tag` is a signal; replace this with what you watch."""

    name = "{name}"

    class Options(WatcherOptions):
        tag: str = Field("at-risk", description="The account tag that raises the signal.")
        strength: float = Field(0.5, ge=0, le=1, description="The signal's strength, 0..1.")

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        now = ctx.clock.now()  # time comes from the context, never from datetime.now()
        for account in ctx.accounts:
            if self.options.tag in account.tags:
                yield Signal(
                    account_id=account.id,
                    kind=self.name,
                    key=self.options.tag,
                    strength=self.options.strength,
                    observed_at=now,
                    summary=f"{{account.label}} is tagged {{self.options.tag!r}}.",
                    evidence={{"tag": self.options.tag}},
                )
'''

_TEST = '''\
"""{cls}'s tests, with the pytest plugin that ships with Swanwatch."""

from __future__ import annotations

from swanwatch.testing import assert_watcher_contract


async def test_{name}_signals_tagged_accounts(make_account, run_watcher) -> None:
    accounts = [make_account("acme", tags=["at-risk"]), make_account("globex")]
    signals = await run_watcher("{name}", accounts=accounts, now="2026-01-15")
    assert [(s.account_id, s.kind) for s in signals] == [("acme", "{name}")]


async def test_{name}_keeps_the_watcher_contract(make_account) -> None:
    await assert_watcher_contract("{name}", accounts=[make_account(tags=["at-risk"])])
'''

_README = """\
# swanwatch-{dash}

A Swanwatch watcher, `{name}`. Install it beside Swanwatch and it appears in
`swanwatch watchers list`; use it in a config as `- type: {name}`.

    pip install -e '.[test]' && pytest
"""


def new_watcher(name: str, parent: Path) -> Path:
    """Write a watcher package for ``name`` under ``parent``; returns its folder.

    A bad name is a ValueError; an existing folder a SwanwatchError.
    """
    if not _NAME.match(name) or keyword.iskeyword(name):
        raise ValueError(
            f"{name!r} is not a watcher name: use lower case letters, digits and _ (e.g. nps_drop)"
        )
    from swanwatch import plugins

    if name in plugins.available(plugins.WATCHERS):
        owner = plugins.distribution_of(plugins.WATCHERS, name)
        raise ValueError(
            f"a watcher named {name!r} is already installed ({owner}): its entry point "
            "would clash; choose another name (e.g. {name}_custom)".replace("{name}", name)
        )
    dash = name.replace("_", "-")
    package = f"swanwatch_{name}"
    cls = "".join(part.title() for part in name.split("_")) + "Watcher"
    root = parent / f"swanwatch-{dash}"
    if root.exists():
        raise SwanwatchError(f"{root} already exists; choose another name or folder")
    values = {"name": name, "dash": dash, "package": package, "cls": cls}
    files = {
        root / "pyproject.toml": _PYPROJECT,
        root / "README.md": _README,
        root / package / "__init__.py": _MODULE,
        root / "tests" / f"test_{name}.py": _TEST,
    }
    for path, template in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
    return root
