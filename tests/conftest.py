"""Shared fixtures: the test plugins on sys.path; one store fixture, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url

from swanwatch import plugins
from swanwatch.store import Store

PLUGINS = Path(__file__).parent / "plugins"
POSTGRES_URL = os.environ.get("SWANWATCH_TEST_POSTGRES_URL")

if str(PLUGINS) not in sys.path:
    sys.path.insert(0, str(PLUGINS))
plugins.refresh()


def _swanwatch_command() -> list[str]:
    # The installed console script: `python -m` would put the current folder first on
    # sys.path and import the source tree instead of the installed package.
    script = Path(sys.executable).with_name("swanwatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "swanwatch"]


SWANWATCH = _swanwatch_command()


@pytest.fixture
def swanwatch_cmd() -> list[str]:
    """The `swanwatch` command of the environment under test."""
    return list(SWANWATCH)


@pytest.fixture
def install_package(tmp_path: Path) -> Callable[[Path], dict[str, str]]:
    """Install a plugin package into a folder of its own (no network, no build isolation);
    returns the environment for a swanwatch subprocess that sees it."""

    def install(package: Path) -> dict[str, str]:
        import subprocess

        site = tmp_path / f"site-{package.name}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--target",
                str(site),
                str(package),
            ],
            check=True,
            capture_output=True,
        )
        return {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}

    return install


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment for a swanwatch subprocess that should see the test plugins."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PLUGINS), env.get("PYTHONPATH")]))
    return env


def _fresh_postgres_url() -> Iterator[str]:
    assert POSTGRES_URL is not None
    name = f"swanwatch_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(
                    POSTGRES_URL is None, reason="set SWANWATCH_TEST_POSTGRES_URL to run"
                ),
            ],
        ),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'swanwatch.db'}"
    elif POSTGRES_URL is None:
        pytest.skip("set SWANWATCH_TEST_POSTGRES_URL to run")
    else:
        yield from _fresh_postgres_url()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A migrated store; its teardown checks that no connection was left checked out."""
    s = Store(store_url)
    out = {"checkout": 0, "checkin": 0}

    def count(kind: str) -> None:
        out[kind] += 1

    event.listen(s.engine, "checkout", lambda *_: count("checkout"))
    event.listen(s.engine, "checkin", lambda *_: count("checkin"))
    try:
        yield s
        assert out["checkout"] == out["checkin"], "a connection leaked"
    finally:
        s.close()


ACCOUNTS_CSV = """\
id,name,domains,owner,segment,arr,renewal_date,tags
acme,Acme Corp,acme.example,ann@csm.example,enterprise,120000,2027-01-10,key
globex,Globex,globex.example,bob@csm.example,mid-market,40000,2027-06-01,
initech,Initech,initech.example,ann@csm.example,smb,9000,2027-03-15,
"""


class ConfigWriter:
    """Writes a config with a three-account CSV source plus the given YAML.

    ``source`` and ``accounts`` add keys (flow-style YAML, ``"max_shrink_pct: 50"``) to the
    accounts source and to the ``accounts`` section."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path

    def __call__(
        self, body: str, *, store_url: str | None = None, source: str = "", accounts: str = ""
    ) -> Path:
        import textwrap

        (self.tmp_path / "accounts.csv").write_text(ACCOUNTS_CSV)
        store = store_url or f"sqlite:///{self.tmp_path / 'sw.db'}"
        head = (
            f"store:\n  url: {store}\n"
            "sources:\n  accounts:\n    type: csv\n    options: {path: accounts.csv}\n"
            + (f"    {source}\n" if source else "")
            + "accounts:\n  source: accounts\n"
            + (f"  {accounts}\n" if accounts else "")
        )
        path = self.tmp_path / "swanwatch.yaml"
        path.write_text(head + textwrap.dedent(body))
        return path


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigWriter:
    return ConfigWriter(tmp_path)
