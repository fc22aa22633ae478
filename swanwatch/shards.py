"""Sharded watcher runs: one watcher run split over workers through procrastinate.

With ``daemon.shards`` above 1 the leader does not run a watcher itself. Each run becomes a
*cycle* of that instance: the store opens it (at most one open cycle per instance, by a
unique index) with one row per shard, and the leader defers one procrastinate job per
shard (``run_shard(instance, shard, shards, cycle_id)``) on the store's PostgreSQL. Workers
(``swanwatch worker``) take the jobs, read the accounts, keep those whose id hashes to
their shard, and run the watcher over them through the engine, which clears only those
accounts' signals. The leader polls the store until every shard of the cycle is finished,
gives a dead worker's job to another one (procrastinate's heartbeats), then correlates.

Exactly once per cycle, by the store and not by timing: a shard row is claimed by the job
that carries it, a retry of that same job (a failure, or a stalled worker) may claim it
again, another job may not, and it is finished once (``done`` or ``failed``). A new leader
adopts the open cycle instead of starting another one.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import traceback
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import make_url

from swanwatch import memory
from swanwatch.clock import Clock
from swanwatch.config import Config, WatcherConfig
from swanwatch.engine import Engine
from swanwatch.errors import SwanwatchError
from swanwatch.model import Account, WatcherRun
from swanwatch.store import ShardCycle, ShardRun, Store

try:
    import procrastinate
    from procrastinate import exceptions as queue_errors
    from procrastinate.schema import SchemaManager
except ImportError as exc:  # pragma: no cover (the optional extra is missing)
    raise SwanwatchError(
        "daemon.shards above 1 needs procrastinate: pip install 'swanwatch[shards]'"
    ) from exc

log = logging.getLogger("swanwatch.shards")

#: The task's name in the queue: stable, whatever the module is called.
TASK_NAME = "swanwatch.run_shard"
_RUNNER = "swanwatch_shards"


class ShardFailedError(SwanwatchError):
    """A shard's watcher run failed (its run, with the traceback, is in the store)."""


def shard_of(account_id: str, shards: int) -> int:
    """The shard an account belongs to: a stable hash of its id (the same on every machine
    and Python; not ``hash()``, which is salted per process), modulo ``shards``."""
    digest = hashlib.blake2b(account_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_accounts(accounts: Sequence[Account], shard: int, shards: int) -> list[Account]:
    """The accounts of one shard."""
    return [a for a in accounts if shard_of(a.id, shards) == shard]


def queue_conninfo(store_url: str) -> str:
    """The libpq connection string of the store's PostgreSQL, for procrastinate."""
    url = make_url(store_url)
    if url.get_backend_name() != "postgresql":
        raise SwanwatchError(
            f"daemon.shards above 1 needs a PostgreSQL store, not {url.get_backend_name()}"
        )
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def new_cycle_id(now: datetime) -> str:
    return f"{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def build_app(config: Config) -> procrastinate.App:
    """The procrastinate app on the store's database, with the shard task registered."""
    queue = config.daemon.queue
    retries = queue.max_attempts - 1  # procrastinate counts retries after the first run
    retry: procrastinate.RetryStrategy | bool = (
        procrastinate.RetryStrategy(
            max_attempts=retries, wait=max(1, int(queue.retry_wait.total_seconds()))
        )
        if retries
        else False
    )
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=queue_conninfo(config.store_url))
    )
    app.task(name=TASK_NAME, queue=queue.name, pass_context=True, retry=retry)(_run_shard_task)
    return app


async def apply_schema(store: Store) -> None:
    """Install procrastinate's schema in the store's database unless it is there."""
    if await asyncio.to_thread(store.apply_queue_schema, SchemaManager.get_schema()):
        log.info("applied procrastinate's schema")


# --- the worker's side ---------------------------------------------------------------------


async def _run_shard_task(
    context: procrastinate.JobContext, instance: str, shard: int, shards: int, cycle_id: str
) -> None:
    runner = context.additional_context[_RUNNER]
    assert isinstance(runner, ShardRunner)
    job_id = context.job.id
    assert job_id is not None
    try:
        await runner.run(instance, shard, shards, cycle_id, job_id)
    finally:
        memory.give_back()  # a long-lived worker keeps no shard's freed pages


class ShardRunner:
    """Runs shards on a worker, through the same engine as the daemon."""

    def __init__(self, config: Config, store: Store, clock: Clock, engine: Engine) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.engine = engine

    async def run(self, instance: str, shard: int, shards: int, cycle_id: str, job_id: int) -> None:
        """Run one shard once; raise ShardFailedError (for procrastinate to retry) when the
        run failed. A shard already finished, or held by another job, is left alone."""
        label = f"{instance} shard {shard + 1}/{shards} of cycle {cycle_id}"
        attempt = await asyncio.to_thread(
            self.store.claim_shard, instance, cycle_id, shard, job_id, self.clock.now()
        )
        if attempt is None:
            log.info("%s: finished already or held by another job, skipped", label)
            return
        specs = {w.instance: w for w in self.config.active_watchers()}
        spec = specs.get(instance)
        if spec is None:
            error = f"watcher {instance!r} is not configured (and enabled) on this worker"
            await self._failed(instance, cycle_id, shard, attempt, error, None)
            raise ShardFailedError(f"{label}: {error}")
        log.info("%s: attempt %d", label, attempt)
        try:
            accounts = await self.engine.load_accounts()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the accounts source failing is this run's failure
            error = f"{type(exc).__name__}: {exc}"
            await self._failed(instance, cycle_id, shard, attempt, error, traceback.format_exc())
            raise ShardFailedError(f"{label}: {error}") from exc
        try:
            outcome = await self.engine.run_watcher(
                spec, accounts=shard_accounts(accounts, shard, shards)
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # storing the run failed (the store is down?): retry it
            await self._finish_failed(
                instance, cycle_id, shard, attempt, f"{type(exc).__name__}: {exc}"
            )
            raise
        if outcome.run.ok:
            finished = await asyncio.to_thread(
                self.store.finish_shard,
                instance,
                cycle_id,
                shard,
                self.clock.now(),
                state="done",
                signals=outcome.run.signals,
            )
            if not finished:
                log.warning("%s: finished meanwhile by another attempt", label)
            return
        await self._finish_failed(instance, cycle_id, shard, attempt, outcome.run.error)
        raise ShardFailedError(f"{label}: {outcome.run.error}")

    async def _failed(
        self,
        instance: str,
        cycle_id: str,
        shard: int,
        attempt: int,
        error: str,
        trace: str | None,
    ) -> None:
        """A failure before the watcher ran: stored as a failed run of the instance."""
        now = self.clock.now()
        run = WatcherRun(
            instance=instance,
            started_at=now,
            finished_at=now,
            ok=False,
            signals=0,
            unknowns=0,
            error=error,
            traceback=trace,
        )
        await asyncio.to_thread(self.store.record_run, run)
        await self._finish_failed(instance, cycle_id, shard, attempt, error)

    async def _finish_failed(
        self, instance: str, cycle_id: str, shard: int, attempt: int, error: str | None
    ) -> None:
        final = attempt >= self.config.daemon.queue.max_attempts
        await asyncio.to_thread(
            self.store.finish_shard,
            instance,
            cycle_id,
            shard,
            self.clock.now(),
            state="failed" if final else "retrying",
            error=error,
        )


async def run_worker(
    config: Config, store: Store, clock: Clock, *, concurrency: int = 1, name: str | None = None
) -> None:
    """Take shards from the queue and run them until SIGINT or SIGTERM."""
    queue = config.daemon.queue
    memory.limit_arenas()
    await apply_schema(store)
    app = build_app(config)
    async with Engine(config, store, clock) as engine, app.open_async():
        runner = ShardRunner(config, store, clock, engine)
        log.info("worker on queue %r, %d at a time", queue.name, concurrency)
        options: dict[str, Any] = {}
        if name is not None:
            options["name"] = name
        await app.run_worker_async(
            queues=[queue.name],
            concurrency=concurrency,
            additional_context={_RUNNER: runner},
            update_heartbeat_interval=queue.heartbeat.total_seconds(),
            stalled_worker_timeout=queue.stalled_after.total_seconds(),
            delete_jobs="successful",
            install_signal_handlers=True,
            **options,
        )


# --- the leader's side ---------------------------------------------------------------------


class ShardCoordinator:
    """Opens a cycle per watcher run, defers its shards, and waits for them."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.app = build_app(config)
        self._opened = False

    async def open(self) -> None:
        await apply_schema(self.store)
        await self.app.open_async()
        self._opened = True

    async def close(self) -> None:
        if self._opened:
            self._opened = False
            await self.app.close_async()

    async def run_cycle(self, spec: WatcherConfig) -> list[ShardRun]:
        """One sharded run of ``spec``: open (or adopt) its cycle, defer the shards not yet
        deferred, wait until all are finished (or the cycle times out), close it."""
        now = self.clock.now()
        shards = self.config.daemon.shards
        cycle, created = await asyncio.to_thread(
            self.store.open_shard_cycle, spec.instance, new_cycle_id(now), shards, now
        )
        if created:
            log.info("watcher %s: cycle %s, %d shards", spec.instance, cycle.cycle_id, shards)
        else:
            log.info(
                "watcher %s: adopting the open cycle %s (%d shards)",
                spec.instance,
                cycle.cycle_id,
                cycle.shards,
            )
        await self._defer(cycle)
        return await self._wait(cycle)

    async def _defer(self, cycle: ShardCycle) -> None:
        task = self.app.tasks[TASK_NAME]
        runs = await asyncio.to_thread(self.store.shard_runs, cycle.instance, cycle.cycle_id)
        for run in runs:
            if run.job_id is not None or run.finished:
                continue
            deferrer = task.configure(
                queueing_lock=f"{cycle.instance}:{cycle.cycle_id}:{run.shard}"
            )
            try:
                job_id = await deferrer.defer_async(
                    instance=cycle.instance,
                    shard=run.shard,
                    shards=cycle.shards,
                    cycle_id=cycle.cycle_id,
                )
            except queue_errors.AlreadyEnqueued:
                continue  # deferred by a leader that died before noting it: still waiting
            await asyncio.to_thread(
                self.store.set_shard_job, cycle.instance, cycle.cycle_id, run.shard, job_id
            )

    async def _wait(self, cycle: ShardCycle) -> list[ShardRun]:
        queue = self.config.daemon.queue
        while True:
            runs = await asyncio.to_thread(self.store.shard_runs, cycle.instance, cycle.cycle_id)
            if all(r.finished for r in runs):
                await asyncio.to_thread(
                    self.store.close_shard_cycle,
                    cycle.instance,
                    cycle.cycle_id,
                    self.clock.now(),
                    unfinished_error="",
                )
                self._log_cycle(cycle, runs)
                return runs
            if self.clock.now() - cycle.started_at > queue.cycle_timeout:
                return await self._time_out(cycle)
            await self._retry_stalled()
            await asyncio.sleep(queue.poll.total_seconds())

    async def _retry_stalled(self) -> None:
        """Give the jobs of workers that stopped sending heartbeats to other workers."""
        queue = self.config.daemon.queue
        stalled = await self.app.job_manager.get_stalled_jobs(
            queue=queue.name,
            task_name=TASK_NAME,
            seconds_since_heartbeat=queue.stalled_after.total_seconds(),
        )
        for job in stalled:
            log.warning("shard job %s: its worker went silent; retrying it elsewhere", job.id)
            await self.app.job_manager.retry_job(job)

    async def _time_out(self, cycle: ShardCycle) -> list[ShardRun]:
        timeout = self.config.daemon.queue.cycle_timeout.total_seconds()
        error = f"not finished within daemon.queue.cycle_timeout ({timeout:g} s); is a worker up?"
        now = self.clock.now()
        failed = await asyncio.to_thread(
            self.store.close_shard_cycle,
            cycle.instance,
            cycle.cycle_id,
            now,
            unfinished_error=error,
        )
        for shard in failed:
            await asyncio.to_thread(
                self.store.record_run,
                WatcherRun(
                    instance=cycle.instance,
                    started_at=cycle.started_at,
                    finished_at=max(now, cycle.started_at),
                    ok=False,
                    signals=0,
                    unknowns=0,
                    error=f"shard {shard + 1}/{cycle.shards}: {error}",
                ),
            )
        runs = await asyncio.to_thread(self.store.shard_runs, cycle.instance, cycle.cycle_id)
        for run in runs:
            if run.shard in failed and run.job_id is not None:
                # A late worker must not start it now: its claim would fail anyway.
                await self.app.job_manager.cancel_job_by_id_async(run.job_id, abort=True)
        self._log_cycle(cycle, runs)
        return runs

    def _log_cycle(self, cycle: ShardCycle, runs: Sequence[ShardRun]) -> None:
        done = sum(1 for r in runs if r.state == "done")
        log.info(
            "watcher %s: cycle %s finished, %d/%d shards done, %d signals",
            cycle.instance,
            cycle.cycle_id,
            done,
            len(runs),
            sum(r.signals for r in runs if r.state == "done"),
        )
