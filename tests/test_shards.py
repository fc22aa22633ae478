"""Sharded watcher runs: partitioning, the engine over a subset, the config check, and a
leader with `swanwatch worker` processes on a real PostgreSQL (one killed mid-run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from waiting import wait_until

from swanwatch.clock import FrozenClock
from swanwatch.config import WatcherConfig, parse_config
from swanwatch.engine import Engine
from swanwatch.errors import ConfigError
from swanwatch.model import Account
from swanwatch.store import Store

if TYPE_CHECKING:
    from conftest import Databases

POSTGRES_URL = os.environ.get("SWANWATCH_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(
    POSTGRES_URL is None, reason="set SWANWATCH_TEST_POSTGRES_URL to run"
)

ACCOUNTS = 40
SHARDS = 4

PROBE = '''
"""A test watcher: one signal per account it is given, once its gate file exists (when it
has one); it counts in its state, per account, how often it judged each one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import Field

from swanwatch import Signal, WatchContext, Watcher, WatcherOptions


class ShardProbeWatcher(Watcher):
    """One signal per account; state keyed per account, as sharded watchers must."""

    name = "shardprobe"

    class Options(WatcherOptions):
        gate: str | None = Field(None, description="A file each run waits for first.")

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        # The test opens the gate: a run is "under way" for exactly as long as it needs.
        while self.options.gate and not Path(self.options.gate).exists():
            await asyncio.sleep(0.05)
        for account in ctx.accounts:
            key = f"seen:{account.id}"
            ctx.state.set(key, int(ctx.state.get(key, 0)) + 1)
            yield Signal(
                account_id=account.id,
                kind="probe",
                strength=0.5,
                observed_at=ctx.clock.now(),
                summary=f"probe on {account.id}.",
            )
'''


# --- partitioning, the engine over a subset, the config check (fast) ---------------------


def test_shard_of_is_stable_and_partitions() -> None:
    from swanwatch.shards import shard_accounts, shard_of

    ids = [f"acct-{i:03d}" for i in range(400)]
    # Stable across processes and versions: blake2b, not the salted hash().
    assert [shard_of(i, 4) for i in ids[:6]] == [shard_of(i, 4) for i in ids[:6]]
    assert shard_of("acme", 7) == shard_of("acme", 7)
    accounts = [Account(id=i, name=i) for i in ids]
    parts = [shard_accounts(accounts, n, 4) for n in range(4)]
    assert sorted(a.id for part in parts for a in part) == sorted(ids)
    assert all(len(part) > 60 for part in parts)  # roughly even


def test_sharding_needs_postgres() -> None:
    body = """
    store: {url: "sqlite:///sw.db"}
    sources: {accounts: {type: csv, options: {path: a.csv}}}
    accounts: {source: accounts}
    daemon:
      shards: 4
    """
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(body), "sw.yaml", check_plugins=False)
    assert "daemon.shards" in str(caught.value)
    assert "PostgreSQL" in str(caught.value)
    ok = body.replace("sqlite:///sw.db", "postgresql+psycopg://h/db")
    assert parse_config(textwrap.dedent(ok), "sw.yaml", check_plugins=False).daemon.shards == 4
    default = body.replace("      shards: 4\n", "      shards: 1\n")
    assert parse_config(textwrap.dedent(default), "sw.yaml", check_plugins=False)


async def test_run_watcher_over_a_subset_clears_only_that_subset(
    store: Store, make_config: Callable[..., Path]
) -> None:
    config_path = make_config(
        """
        watchers:
          - type: static
            options:
              signals:
                - {account: acme, kind: a}
                - {account: globex, kind: a}
                - {account: initech, kind: a}
        """
    )
    from swanwatch.config import load_config

    config = load_config(config_path)
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    quiet = WatcherConfig.model_validate({"type": "static", "options": {"signals": []}})
    async with Engine(config, store, clock) as engine:
        accounts = await engine.load_accounts()
        await engine.run_watcher(config.watchers[0])
        assert len(store.signals()) == 3
        # A shard of one account that yields nothing clears that account's signal only.
        acme = [a for a in accounts if a.id == "acme"]
        outcome = await engine.run_watcher(quiet, accounts=acme)
    assert outcome.run.ok and outcome.cleared == 1
    assert sorted(s.account_id for s in store.signals()) == ["globex", "initech"]


async def test_a_failing_shard_is_a_failed_run_retried_up_to_the_bound(
    store: Store, make_config: Callable[..., Path]
) -> None:
    from swanwatch.config import load_config
    from swanwatch.shards import ShardFailedError, ShardRunner

    config = load_config(
        make_config("watchers:\n  - type: boom\ndaemon:\n  queue: {max_attempts: 2}\n")
    )
    clock = FrozenClock(datetime(2026, 3, 1, tzinfo=UTC))
    _cycle, created = store.open_shard_cycle("boom", "c1", 2, clock.now())
    assert created
    async with Engine(config, store, clock) as engine:
        runner = ShardRunner(config, store, clock, engine)
        with pytest.raises(ShardFailedError, match="the registry is on fire"):
            await runner.run("boom", 0, 2, "c1", job_id=7)
        assert store.shard_runs("boom", "c1")[0].state == "retrying"
        await runner.run("boom", 0, 2, "c1", job_id=8)  # another job: not its shard
        with pytest.raises(ShardFailedError):
            await runner.run("boom", 0, 2, "c1", job_id=7)  # the retry: the last attempt
        await runner.run("boom", 0, 2, "c1", job_id=7)  # failed for good: left alone
    first = store.shard_runs("boom", "c1")[0]
    assert (first.state, first.attempts, first.completions) == ("failed", 2, 1)
    runs = store.runs("boom")
    assert len(runs) == 2 and not any(r.ok for r in runs)
    assert all(r.traceback and "the registry is on fire" in r.traceback for r in runs)
    assert store.watcher_statuses()["boom"].consecutive_failures == 2


# --- end to end: a leader and workers on PostgreSQL ---------------------------------------


@pytest.fixture
def pg_url(postgres_databases: Databases) -> Iterator[str]:
    """An empty database: the leader applies procrastinate's schema and the migrations."""
    name = postgres_databases.create("swanwatch_shards")
    try:
        yield postgres_databases.url(name)
    finally:
        postgres_databases.drop_later(name)


class Cluster:
    """A leader daemon and `swanwatch worker` processes on one config."""

    def __init__(self, tmp_path: Path, url: str, cmd: list[str], env: dict[str, str]) -> None:
        self.tmp_path, self.cmd, self.env = tmp_path, cmd, {**env, "SWANWATCH_LOG_LEVEL": "INFO"}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.store = Store(url)
        self.config = tmp_path / "swanwatch.yaml"
        self.gate = tmp_path / "gate"

    def write(self, url: str, *, gated: bool = False, cycle_timeout: str = "1h") -> None:
        gate = str(self.gate) if gated else None
        plugins = self.tmp_path / "plugins"
        plugins.mkdir(exist_ok=True)
        (plugins / "shardprobe.py").write_text(PROBE)
        rows = "".join(f"acct-{i:02d},Account {i},,,,1000,,\n" for i in range(ACCOUNTS))
        (self.tmp_path / "accounts.csv").write_text(
            "id,name,domains,owner,segment,arr,renewal_date,tags\n" + rows
        )
        self.config.write_text(
            textwrap.dedent(
                f"""
                plugin_dirs: [plugins]
                store: {{url: "{url}"}}
                sources: {{accounts: {{type: csv, options: {{path: accounts.csv}}}}}}
                accounts: {{source: accounts}}
                watchers:
                  - type: shardprobe
                    schedule: {{every: 1h}}
                    options: {{gate: {json.dumps(gate)}}}
                daemon:
                  shards: {SHARDS}
                  startup_spread: 0s
                  leader_check: 0.5s
                  queue:
                    max_attempts: 3
                    retry_wait: 1s
                    heartbeat: 0.5s
                    stalled_after: 2s
                    poll: 0.3s
                    cycle_timeout: {cycle_timeout}
                notify: {{console: false}}
                """
            )
        )

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.tmp_path / f"{name}.log").open("wb") as err:
            proc = subprocess.Popen(
                [*self.cmd, *args, "-c", str(self.config)],
                env=self.env,
                cwd=self.tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def cycles(self) -> list[object]:
        return list(self.store.shard_cycles("shardprobe"))

    def open_gate(self) -> None:
        """Let the gated shard runs finish."""
        self.gate.touch()

    def wait(self, predicate: Callable[[], bool], what: str) -> None:
        def logs() -> str:
            return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.procs)

        wait_until(predicate, what, describe=logs)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.store.close()

    def assert_one_clean_cycle(self) -> None:
        """Every account judged once, every shard finished once, correlation ran."""
        cycles = self.store.shard_cycles("shardprobe")
        assert len(cycles) == 1 and cycles[0].finished_at is not None
        runs = self.store.shard_runs("shardprobe", cycles[0].cycle_id)
        assert [r.shard for r in runs] == list(range(SHARDS))
        assert all(r.state == "done" and r.completions == 1 for r in runs), runs
        assert sum(r.signals for r in runs) == ACCOUNTS
        signals = self.store.signals()
        assert sorted(s.account_id for s in signals) == [f"acct-{i:02d}" for i in range(ACCOUNTS)]
        state = self.store.load_state("shardprobe")
        assert state == {f"seen:acct-{i:02d}": 1 for i in range(ACCOUNTS)}
        watcher_runs = self.store.runs("shardprobe")
        assert len(watcher_runs) == SHARDS and all(r.ok for r in watcher_runs)


@pytest.fixture
def cluster(
    pg_url: str, tmp_path: Path, swanwatch_cmd: list[str], subprocess_env: dict[str, str]
) -> Iterator[Cluster]:
    c = Cluster(tmp_path, pg_url, swanwatch_cmd, subprocess_env)
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.postgres
@pytest.mark.slow
@needs_postgres
def test_leader_and_two_workers_run_each_shard_once(cluster: Cluster, pg_url: str) -> None:
    cluster.write(pg_url)
    cluster.start("w1", "worker", "--concurrency", "2")
    cluster.start("w2", "worker", "--concurrency", "2")
    cluster.start("leader", "run")
    cluster.wait(lambda: "correlation:" in cluster.log("leader"), "the leader's correlation")
    cluster.assert_one_clean_cycle()
    assert "cycle" in cluster.log("leader"), cluster.log("leader")


@pytest.mark.postgres
@pytest.mark.slow
@needs_postgres
def test_a_worker_killed_mid_shard_is_replaced(cluster: Cluster, pg_url: str) -> None:
    cluster.write(pg_url, gated=True)
    victim = cluster.start("victim", "worker", "--concurrency", str(SHARDS))
    cluster.start("leader", "run")

    def all_running() -> bool:
        cycles = cluster.store.shard_cycles("shardprobe")
        return bool(cycles) and all(
            r.state == "running" for r in cluster.store.shard_runs("shardprobe", cycles[0].cycle_id)
        )

    cluster.wait(all_running, "every shard running on the victim")
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    cluster.open_gate()
    cluster.start("rescuer", "worker", "--concurrency", str(SHARDS))
    cluster.wait(lambda: "correlation:" in cluster.log("leader"), "the leader's correlation")
    cluster.assert_one_clean_cycle()
    cycle = cluster.store.shard_cycles("shardprobe")[0]
    # Each shard was attempted twice (the killed attempt and the rescue), finished once.
    assert [r.attempts for r in cluster.store.shard_runs("shardprobe", cycle.cycle_id)] == [2] * 4
    assert "went silent" in cluster.log("leader")


@pytest.mark.postgres
@needs_postgres
async def test_shards_no_worker_takes_fail_at_the_cycle_timeout(
    pg_url: str, tmp_path: Path
) -> None:
    from swanwatch.clock import SystemClock
    from swanwatch.config import load_config
    from swanwatch.shards import ShardCoordinator

    cluster = Cluster(tmp_path, pg_url, [], {})
    cluster.write(pg_url, cycle_timeout="0.5s")
    config = load_config(cluster.config)
    coordinator = ShardCoordinator(config, cluster.store, SystemClock())
    await coordinator.open()
    try:
        runs = await coordinator.run_cycle(config.watchers[0])
        assert [r.state for r in runs] == ["failed"] * SHARDS
        assert all("cycle_timeout" in (r.error or "") for r in runs)
        jobs = await coordinator.app.job_manager.list_jobs_async()
        assert sorted(str(j.status) for j in jobs) == ["cancelled"] * SHARDS
        failed = cluster.store.runs("shardprobe")
        assert len(failed) == SHARDS and not any(r.ok for r in failed)
        assert all(r.error and "is a worker up?" in r.error for r in failed)
        assert cluster.store.shard_cycles("shardprobe")[0].finished_at is not None
    finally:
        await coordinator.close()
        cluster.stop()


@pytest.mark.postgres
@pytest.mark.slow
@needs_postgres
def test_a_new_leader_adopts_the_open_cycle(cluster: Cluster, pg_url: str) -> None:
    cluster.write(pg_url, gated=True)
    cluster.start("worker", "worker", "--concurrency", str(SHARDS))
    old = cluster.start("old", "run")
    cluster.wait(lambda: "leading" in cluster.log("old"), "the old leader to lead")
    cluster.start("new", "run")

    def running() -> bool:
        cycles = cluster.store.shard_cycles("shardprobe")
        return bool(cycles) and any(
            r.state == "running" for r in cluster.store.shard_runs("shardprobe", cycles[0].cycle_id)
        )

    cluster.wait(running, "a shard running")
    old.send_signal(signal.SIGKILL)
    old.wait(timeout=60)
    # The new leader takes over while the shards are still under way, then they finish.
    cluster.wait(lambda: "adopting the open cycle" in cluster.log("new"), "the adoption")
    cluster.open_gate()
    cluster.wait(lambda: "correlation:" in cluster.log("new"), "the new leader's correlation")
    cluster.assert_one_clean_cycle()
    cycle = cluster.store.shard_cycles("shardprobe")[0]
    assert [r.attempts for r in cluster.store.shard_runs("shardprobe", cycle.cycle_id)] == [1] * 4
