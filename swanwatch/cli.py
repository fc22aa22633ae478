"""The command line: a thin layer over the engine, the actions, the store and the config.

This module holds the group and the cycle commands (run, validate, demo, backtest, db,
plugin new, config schema); the others live in ``cli_*.py`` beside it, one group each.
Exit codes: 0 ok, 2 bad usage or config, 1 runtime failure. On a terminal lists are
tables; with ``--json`` or off a terminal the output is plain and machine-readable.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from swanwatch.cli_common import (
    DURATION,
    INSTANT,
    Failure,
    config_option,
    emit_json,
    errors,
    gc_paused,
    load,
    load_checked,
    store_for,
    tty,
)
from swanwatch.cli_lazy import LazyGroup

if TYPE_CHECKING:
    from swanwatch.clock import Clock
    from swanwatch.config import Config
    from swanwatch.delivery import DeliveryStats
    from swanwatch.engine import CorrelationOutcome, RunOutcome
    from swanwatch.store import Store


@click.group(cls=LazyGroup)
@click.version_option(package_name="swanwatch")
@click.option(
    "--log-level",
    default=lambda: os.environ.get("SWANWATCH_LOG_LEVEL"),
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Logging on standard error (default: INFO for `run`, WARNING otherwise).",
)
@click.pass_context
def main(ctx: click.Context, log_level: str | None) -> None:
    """Swanwatch: weak signals in, compound churn-risk alerts out."""
    from swanwatch.logs import configure

    configure(log_level, default_level="INFO" if ctx.invoked_subcommand == "run" else "WARNING")


# --- run, validate, demo ---------------------------------------------------------------


@main.command()
@config_option
@click.option("--once", is_flag=True, help="Run every watcher once, correlate, deliver, exit.")
@click.option("--now", type=INSTANT, default=None, help="Pretend it is this time (with --once).")
def run(config_path: Path, once: bool, now: datetime | None) -> None:
    """Run the daemon (or one cycle with --once). The config is checked as `validate`
    checks it first: a problem exits 2 before anything runs."""
    config = load_checked(config_path)[0]
    if once:
        _run_once(config, now or config.now)
        return
    if now is not None:
        raise click.UsageError("--now only goes with --once")
    from swanwatch.daemon import run_daemon

    with errors():
        run_daemon(config, config_path)


def _clock(now: datetime | None) -> Clock:
    from swanwatch.clock import FrozenClock, SystemClock

    return FrozenClock(now) if now is not None else SystemClock()


def _run_once(config: Config, now: datetime | None) -> None:
    with store_for(config) as store:
        _cycle_once(config, store, _clock(now))


def _cycle_once(config: Config, store: Store, clock: Clock) -> None:
    """One cycle, with a progress bar on a terminal, then what it did on standard error."""
    import asyncio

    outcomes, correlation, delivered = asyncio.run(_cycle(config, store, clock))
    for o in outcomes:
        said = "ok" if o.run.ok else f"FAILED: {o.run.error}"
        if o.run.held:
            said = f"held, judged nothing: {o.run.held}"
        click.echo(
            f"watcher {o.run.instance}: {said}, {o.run.signals} signals, {o.run.unknowns} unknown",
            err=True,
        )
    open_alerts = store.alerts(open_only=True)
    muted = sum(1 for a in open_alerts if a.muted_by is not None)
    unknown = sum(o.run.unknowns for o in outcomes)
    at_risk = len({a.account_id for a in open_alerts if a.muted_by is None})
    click.echo(
        f"{correlation.accounts} accounts with signals, {at_risk} at risk: "
        f"{len(open_alerts) - muted} open alerts"
        + (f" and {muted} muted (silenced or inhibited)" if muted else "")
        + f", {delivered.sent} notifications sent"
        + (f", {delivered.retried} to retry" if delivered.retried else "")
        + (f", {delivered.dead} dead-lettered" if delivered.dead else "")
        + (f"; {unknown} could not be judged (swanwatch unknowns list)" if unknown else ""),
        err=True,
    )
    failed = [o.run for o in outcomes if not o.run.ok]
    if failed:
        raise Failure(f"{len(failed)} of {len(outcomes)} watchers failed")


async def _cycle(
    config: Config, store: Store, clock: Clock
) -> tuple[list[RunOutcome], CorrelationOutcome, DeliveryStats]:
    from swanwatch.engine import Engine

    if not (tty() or os.environ.get("SWANWATCH_PROGRESS") == "1"):
        async with Engine(config, store, clock) as engine:
            return await engine.cycle()
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[found]} signals"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        specs = config.active_watchers()
        tasks = {s.instance: bar.add_task(s.instance, total=1, found=0) for s in specs}

        def progress(instance: str, phase: str, count: int) -> None:
            if instance in tasks:
                bar.update(tasks[instance], found=count, completed=phase == "done")

        async with Engine(config, store, clock, progress=progress) as engine:
            return await engine.cycle()


@main.command()
@config_option
@click.option(
    "--connect",
    is_flag=True,
    help="Also open each source (its first row) and the store, read-only.",
)
def validate(config_path: Path, connect: bool) -> None:
    """Check a config file: every problem, with file, line, field and the fix; exit 2 if
    there is one. Files, sources, channel addresses and rules are checked too, without
    side effects; --connect also reads each source's first row and opens the store."""
    with gc_paused():
        config, reached = load_checked(config_path, connect=connect)
    for line in reached:
        click.echo(f"  {line}")
    click.echo(
        f"{config_path}: ok ({len(config.sources)} sources, {len(config.watchers)} watchers, "
        f"{len(config.notify.channels)} channels)"
    )


@main.group()
def plugin() -> None:
    """Write your own plugins."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package.",
)
def plugin_new(name: str, parent: Path) -> None:
    """Create a watcher package NAME: code, entry point and tests that pass as they are."""
    from swanwatch.scaffold import new_watcher

    with errors():
        try:
            root = new_watcher(name, parent)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from exc
    click.echo(f"created {root}: cd {root} && pip install -e '.[test]' && pytest")


@main.group("config")
def config_group() -> None:
    """The config file's shape."""


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the config's JSON Schema, installed plugins' options included."""
    from swanwatch.schema import config_schema

    emit_json(config_schema())


@main.command()
@click.option(
    "--now",
    type=INSTANT,
    default=None,
    help="The demo's clock (default: the config's `now`, 2026-11-20T12:00:00Z, the day the "
    "bundled sample data ends).",
)
def demo(now: datetime | None) -> None:
    """One full cycle on the bundled sample data, in a temporary SQLite store: the same
    alerts as `swanwatch run -c config/demo.yaml --once` from a clone."""
    import tempfile
    from importlib import resources

    from swanwatch.config import StoreConfig, bundled

    with tempfile.TemporaryDirectory(prefix="swanwatch-demo-") as tmp, errors():
        with resources.as_file(bundled("demo.yaml")) as path:
            config = load(path)
        config = config.model_copy(update={"store": StoreConfig(url=f"sqlite:///{tmp}/demo.db")})
        _run_once(config, now or config.now)
    click.echo(
        "The same from a clone, its store kept in this folder: "
        "swanwatch run -c config/demo.yaml --once",
        err=True,
    )


# --- backtest ------------------------------------------------------------------------------


@main.command()
@config_option
@click.option("--start", type=INSTANT, required=True, help="First simulated day (ISO 8601).")
@click.option("--end", type=INSTANT, required=True, help="Last simulated day (ISO 8601).")
@click.option("--step", type=DURATION, default="1d", show_default=True, help="e.g. 1d, 6h.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines file (default: standard output).",
)
@click.option(
    "--reread",
    is_flag=True,
    help="Re-read every source at every step, as replays did before they read each source "
    "once (slower; the same output).",
)
def backtest(
    config_path: Path,
    start: datetime,
    end: datetime,
    step: timedelta,
    output: Path | None,
    reread: bool,
) -> None:
    """Replay history on a simulated clock; write the signals and alerts as JSON Lines."""
    import asyncio

    from swanwatch.backtest import replay

    config = load(config_path)
    with errors():
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        counts = {"signal": 0, "alert": 0}

        async def go() -> None:
            async for event in replay(config, start, end, step, incremental=not reread):
                counts[event.type] += 1
                out.write(json.dumps(event.as_json(), ensure_ascii=False) + "\n")

        try:
            asyncio.run(go())
        finally:
            if output:
                out.close()
    click.echo(f"{counts['signal']} signals, {counts['alert']} alerts", err=True)


# --- store -------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@config_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config_path: Path, revision: str) -> None:
    """Apply the schema migrations."""
    config = load(config_path)
    with errors():
        from swanwatch.store import Store

        store = Store(config.store_url, migrate=False)
        try:
            store.upgrade(revision)
            click.echo(f"{store.safe_url}: schema at revision {store.revision()}")
        finally:
            store.close()


@db.command("compact")
@config_option
def db_compact(config_path: Path) -> None:
    """Rewrite a SQLite store in 16 KiB pages, without its free pages (stop the daemon
    first). A store made before 16 KiB pages were the default reads and writes quicker
    after; one upgraded to revision 0012 gives back the old signals table's space."""
    from swanwatch.cli_common import read_store

    config = load(config_path)
    with read_store(config) as store, errors():
        if store is not None:
            before, after = store.compact()
            click.echo(f"{store.safe_url}: {before / 2**20:,.1f} MiB, now {after / 2**20:,.1f} MiB")


# The other commands live in cli_*.py, one group each, imported when run (cli_lazy.py).
