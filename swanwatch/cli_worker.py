"""`swanwatch worker`: run watcher shards from the queue (``daemon.shards`` above 1)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import click

from swanwatch.cli_common import config_option, errors, load, store_for


@click.command()
@config_option
@click.option(
    "--concurrency",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Shards this worker runs at a time.",
)
@click.option("--name", default=None, help="This worker's name in the queue's logs.")
def worker(config_path: Path, concurrency: int, name: str | None) -> None:
    """Run watcher shards from the queue until SIGINT or SIGTERM (start any number, on
    any machine that reaches the store's PostgreSQL; the daemon's leader defers them)."""
    parent = click.get_current_context().parent
    if parent is not None and parent.params.get("log_level") is None:
        # Like `run`, a long-running process: INFO unless --log-level says otherwise.
        logging.getLogger().setLevel(logging.INFO)
    config = load(config_path)
    if config.daemon.shards <= 1:
        raise click.UsageError(
            "daemon.shards is 1: the daemon runs watchers itself; set daemon.shards above 1 "
            "to use workers"
        )
    with errors():
        from swanwatch.clock import SystemClock
        from swanwatch.shards import run_worker

        with store_for(config) as store:
            asyncio.run(
                run_worker(config, store, SystemClock(), concurrency=concurrency, name=name)
            )
