"""The examples in docs/plugins.md run, so the docs cannot drift from the API."""

from __future__ import annotations

import re
from pathlib import Path

from swanwatch import plugins
from swanwatch.testing import make_account, run_watcher

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
HEADER = """
from __future__ import annotations
from collections.abc import AsyncIterator
from pydantic import Field
from swanwatch import Signal, WatchContext, Watcher, WatcherOptions
from swanwatch.testing import assert_watcher_contract, make_account, rows_source, run_watcher
"""


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)


async def test_the_plugin_guide_examples_run(tmp_path: Path) -> None:
    watcher_code, test_code = _blocks()
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "nps_drop.py").write_text(HEADER + watcher_code)
    plugins.load_dropins([folder])
    namespace: dict[str, object] = {}
    exec(compile(HEADER + test_code, str(DOC), "exec"), namespace)
    tests = [v for k, v in namespace.items() if k.startswith("test_") and callable(v)]
    assert len(tests) == 2
    await namespace["test_detractors_are_signalled"](make_account, run_watcher)  # type: ignore[operator]
    await namespace["test_contract"](make_account)  # type: ignore[operator]
