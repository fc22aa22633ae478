"""Shared fixtures: the test plugins on sys.path; one store fixture, SQLite and PostgreSQL.

The suite runs in parallel (pytest-xdist) and in random order (pytest-randomly), so nothing
here is shared between tests but what is read-only: each test gets its own folder, its own
SQLite file or PostgreSQL database, its own ports. Scratch files go to a RAM disk when the
machine has one (SQLite's syncs cost nothing there), and each xdist worker migrates one
SQLite file and one PostgreSQL database that its tests' stores start from as copies.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from swanwatch import plugins
from swanwatch.store import Store

PLUGINS = Path(__file__).parent / "plugins"
POSTGRES_URL = os.environ.get("SWANWATCH_TEST_POSTGRES_URL")
#: The RAM disk for scratch files, used when it exists and SWANWATCH_TEST_TMPDIR is unset.
RAM_DISK = Path("/dev/shm")


def _scratch_on_ram_disk() -> None:
    """Point TMPDIR (tmp_path, tempfile and the subprocesses, which inherit it) at a RAM disk."""
    chosen = os.environ.get("SWANWATCH_TEST_TMPDIR")
    if chosen is None and RAM_DISK.is_dir() and os.access(RAM_DISK, os.W_OK):
        chosen = str(RAM_DISK)
    if chosen:
        os.environ["TMPDIR"] = chosen
        tempfile.tempdir = None  # recomputed from TMPDIR on next use


_scratch_on_ram_disk()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, each group still in the run's random order: the workers take
    the long ones while the short ones are left to fill the gaps, and end together."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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


class CliRun(Protocol):
    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]: ...


@pytest.fixture
def run_cli() -> CliRun:
    """The `swanwatch` CLI run in this process by click's test runner: the same commands as
    the console script, without a Python start-up each (the tests that are about the
    process itself, signals, exit on kill, the installed script, use ``swanwatch_cmd``).
    Returns what subprocess.run would: the exit code, standard output and standard error."""
    from click.testing import CliRunner

    from swanwatch.cli import main

    def run(*args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        result = CliRunner(env=dict(env or {})).invoke(main, list(args), catch_exceptions=False)
        return subprocess.CompletedProcess(
            ["swanwatch", *args], result.exit_code, result.stdout, result.stderr
        )

    return run


@pytest.fixture
def install_package(tmp_path: Path) -> Callable[[Path], dict[str, str]]:
    """Install a plugin package into a folder of its own (no network, no build isolation);
    returns the environment for a swanwatch subprocess that sees it."""

    def install(package: Path) -> dict[str, str]:
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


class Databases:
    """Databases of their own on the test server: CREATE DATABASE now, DROP DATABASE in the
    background (a drop is slow and nobody waits for it); every drop is done, and any that
    failed is raised, by :meth:`close`."""

    def __init__(self, url: str) -> None:
        self.server = make_url(url)
        self.admin = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self._dropper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dropdb")
        self._drops: list[Future[None]] = []

    def create(self, prefix: str, template: str | None = None) -> str:
        """A new database (a copy of ``template``, if given); returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        clone = f' TEMPLATE "{template}"' if template else ""
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clone}'))
        return name

    def url(self, name: str) -> str:
        return self.server.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_later(self, name: str) -> None:
        self._drops.append(self._dropper.submit(self.drop, name))

    def close(self) -> None:
        self._dropper.shutdown(wait=True)
        self.admin.dispose()
        for drop in self._drops:
            drop.result()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[Databases]:
    """Databases of their own on SWANWATCH_TEST_POSTGRES_URL's server (skips without it)."""
    if POSTGRES_URL is None:
        pytest.skip("set SWANWATCH_TEST_POSTGRES_URL to run")
    databases = Databases(POSTGRES_URL)
    try:
        yield databases
    finally:
        databases.close()


@pytest.fixture(scope="session")
def postgres_template(postgres_databases: Databases) -> Iterator[str]:
    """This worker's migrated PostgreSQL database, cloned for each ``store``: a clone costs
    a fraction of the migrations."""
    name = postgres_databases.create("swanwatch_tmpl")
    try:
        Store(postgres_databases.url(name)).close()  # the migrations, once per worker
        yield name
    finally:
        postgres_databases.drop_later(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This worker's migrated SQLite file, copied for each ``store``."""
    path = tmp_path_factory.mktemp("template") / "swanwatch.db"
    Store(f"sqlite:///{path}").close()
    return path


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
    """A fresh, empty database URL of its own: a SQLite file, or a new PostgreSQL database.

    For a test that takes the ``store`` fixture too, the database comes migrated already
    (a copy of the worker's template), as ``store`` would leave it: same result, less time.
    """
    migrated = "store" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "swanwatch.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
    elif POSTGRES_URL is None:
        pytest.skip("set SWANWATCH_TEST_POSTGRES_URL to run")
    else:
        databases: Databases = request.getfixturevalue("postgres_databases")
        template = request.getfixturevalue("postgres_template") if migrated else None
        name = databases.create("swanwatch_test", template)
        try:
            yield databases.url(name)
        finally:
            databases.drop_later(name)


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
