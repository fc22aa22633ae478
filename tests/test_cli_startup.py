"""Start-up: quick commands import only what they need (lazy subcommands, lazy package)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from swanwatch.cli import main
from swanwatch.cli_lazy import LAZY_COMMANDS, load_lazy

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.yaml"


def imported(*args: str) -> set[str]:
    """The modules ``python -X importtime swanwatch ARGS`` imported (exit code 0).

    It runs the installed console script, not ``-m``: ``-m`` puts the working directory
    first on the path, where the source tree's ``swanwatch/`` would hide the installed
    package (whose built-in watchers are mapped in from ``watchers/``)."""
    script = Path(sys.executable).with_name("swanwatch")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", str(script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "swanwatch.cli" in names  # the log is what we think it is
    return names


def tops(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("validate", "-c", str(DEMO)),
        ("watchers", "list", "--json"),
    ],
    ids=["help", "validate", "watchers-list"],
)
def test_quick_commands_import_neither_sqlalchemy_nor_jinja2(args: tuple[str, ...]) -> None:
    heavy = tops(imported(*args)) & {"sqlalchemy", "sqlmodel", "jinja2", "alembic"}
    assert not heavy, f"swanwatch {' '.join(args)} imported {sorted(heavy)}"


def test_help_imports_no_command_module_nor_pydantic() -> None:
    names = imported("--help")
    assert not {n for n in names if n.startswith("swanwatch.cli_")} - {
        "swanwatch.cli_common",
        "swanwatch.cli_lazy",
    }
    assert not tops(names) & {"pydantic", "httpx", "rich", "yaml"}


def test_alerts_list_on_a_migrated_store_imports_no_alembic(make_config) -> None:
    config = make_config("watchers:\n  - type: renewal_lapse\n    schedule: {cron: '0 6 * * *'}\n")
    first = imported("db", "upgrade", "-c", str(config))
    assert "alembic" in tops(first)  # a command that writes made the schema
    assert "apscheduler" in tops(first)  # and checked the cron expression
    again = imported("alerts", "list", "--json", "-c", str(config))
    # On a SQLite file it reads the alerts with the standard library's sqlite3: no
    # SQLAlchemy, no other aggregate's module; it parses no cron expression, so it imports
    # no scheduler.
    assert "swanwatch.store.quick" in again and "sqlite3" in again
    assert not tops(again) & {"alembic", "sqlalchemy", "sqlmodel", "apscheduler", "jinja2"}
    assert "swanwatch.store.alerts" not in again
    heavy = {
        "swanwatch.store.tables",
        "swanwatch.store.facade",
        "swanwatch.store.signals",
        "swanwatch.store.accounts",
        "swanwatch.store.book",
        "swanwatch.store.shards",
    }
    assert not heavy & again, sorted(heavy & again)


def test_every_lazy_command_lists_its_own_help() -> None:
    for name, (_, short) in LAZY_COMMANDS.items():
        command = load_lazy(name)
        assert command.name == name
        assert command.get_short_help_str(10**6) == short, name


def test_help_lists_every_command_once_and_each_runs() -> None:
    runner = CliRunner()
    listed = runner.invoke(main, ["--help"])
    assert listed.exit_code == 0
    rows = listed.output.split("Commands:")[1].splitlines()
    commands = [row.split()[0] for row in rows if row.startswith("  ") and row.split()]
    assert commands == sorted(set(commands))
    for name in LAZY_COMMANDS:
        assert name in commands
        shown = runner.invoke(main, [name, "--help"])
        assert shown.exit_code == 0, shown.output
        assert f"Usage: main {name}" in shown.output or f"Usage: swanwatch {name}" in shown.output


def test_a_read_only_load_leaves_cron_expressions_alone(make_config) -> None:
    """What `alerts list` gives up for its start-up: a malformed cron expression is found by
    every command that schedules (run, daemon, validate), not by one that only reads."""
    from swanwatch.config import load_config
    from swanwatch.errors import ConfigError

    config = make_config("watchers:\n  - type: renewal_lapse\n    schedule: {cron: '0 61 * * *'}\n")
    with pytest.raises(ConfigError, match="is not valid"):
        load_config(config)
    assert load_config(config, check_plugins=False).watchers[0].schedule.cron == "0 61 * * *"
