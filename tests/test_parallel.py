"""Watchers in worker processes (big books, both cores): a cycle is the same as one run
in-process, signal for signal, unknown for unknown, with the same source health."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from swanwatch import parallel
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.store import Store
from swanwatch.testing import make_account

CONFIG = Path(__file__).resolve().parents[1] / "config"
NOW = "2026-11-20T12:00:00Z"


async def cycle(folder: Path, processes: int) -> tuple[object, ...]:
    """One demo cycle with ``processes`` worker processes: what it stored and tells."""
    config = load_config(folder / "demo.yaml")
    daemon = config.daemon.model_copy(update={"watcher_processes": processes})
    config = config.model_copy(update={"daemon": daemon})
    # The demo's store is in the working directory: a test's own, fresh, is beside its copy.
    (folder / "swanwatch-demo.db").unlink(missing_ok=True)
    store = Store(f"sqlite:///{folder / 'swanwatch-demo.db'}")
    try:
        async with Engine(config, store, FrozenClock(NOW)) as engine:
            outcomes, correlation, _ = await engine.cycle()
            moved = engine.workers
        signals = sorted(
            (s.watcher, s.fingerprint, s.strength, s.summary, s.evidence) for s in store.signals()
        )
        unknowns = sorted((u.watcher, u.account_id, u.key, u.reason) for u in store.unknowns())
        health = {n: (h.state, h.rows, h.reason) for n, h in store.source_health().items()}
        alerts = sorted((a.fingerprint, a.severity, a.score) for a in store.alerts())
        runs = sorted((o.run.instance, o.run.ok, o.run.signals, o.run.unknowns) for o in outcomes)
        return moved, signals, unknowns, health, alerts, runs, correlation.open_alerts
    finally:
        store.close()


async def test_the_demo_in_worker_processes_is_the_demo_in_process(tmp_path: Path) -> None:
    shutil.copytree(CONFIG, tmp_path / "config", ignore=shutil.ignore_patterns("*.db*"))
    folder = tmp_path / "config"
    in_process = await cycle(folder, 0)
    in_workers = await cycle(folder, 2)
    assert in_process[0] == 0
    moved = in_workers[0]
    # The daemon ran one business watcher itself, the two workers the other three.
    assert moved == 3
    assert in_workers[1:] == in_process[1:]
    assert in_process[1]  # the demo finds something, so the comparison says something


def test_how_many_processes() -> None:
    assert parallel.processes(None, 1_000, 4) == 0  # a small book: in-process
    assert parallel.processes(None, parallel.AUTO_MIN_ACCOUNTS, 1) == 0  # nothing to share
    cores = os.cpu_count() or 1  # one a core but the daemon's, which runs a watcher too
    wanted = max(0, min(cores - 1, 3)) if cores >= parallel.AUTO_MIN_CORES else 0
    assert parallel.processes(None, parallel.AUTO_MIN_ACCOUNTS, 4) == wanted
    assert parallel.processes(3, 10, 4) == 3 and parallel.processes(0, 10**6, 4) == 0


def test_a_book_is_written_once_per_cycle_and_read_back_as_it_was() -> None:
    accounts = [make_account(f"a{i}", domains=[f"a{i}.example"], arr=i) for i in range(5)]
    books = parallel.Books()
    book = books.of(accounts)
    assert books.of(list(accounts)) is book  # the same accounts: the same file
    assert book.accounts() == accounts
    other = books.of(accounts[:3])
    assert other.key != book.key and not Path(book.path).exists()
    assert other.accounts() == accounts[:3]
    books.close()
    assert not Path(other.path).exists()


def test_the_daemon_keeps_the_costliest_watcher() -> None:
    costs: dict[str, float | None] = {"usage": 4.0, "support": 2.0, "contacts": None}
    assert parallel.home(costs, 1) == "usage"
    assert parallel.home({**costs, "contacts": 9.5}, 2) == "contacts"
    assert parallel.home(dict.fromkeys(costs), 1) == "usage"  # none has run: the first
    assert parallel.home(costs, 3) is None  # a worker for each
