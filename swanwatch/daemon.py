"""The daemon: watchers on APScheduler 3.11, then correlation and delivery, until stopped.

One job per configured watcher instance (interval or cron, with jitter; max_instances=1,
coalesce, misfire grace), and one delivery loop: a pass every ``daemon.deliver_every`` and
after each run, never two at once; a stop gives back at once what it has not sent. A
restart starts each watcher when its next run falls due after the last successful run on
record: nothing re-runs all at once and nothing due while the daemon was down is skipped.
SIGINT or SIGTERM pauses the scheduler, lets running jobs finish (up to
``daemon.shutdown_grace``), then cancels the rest (a SQL source cancels its statement in
the database). Whatever still blocks a thread then (a driver, a file system), the process
kills itself :data:`FORCE_EXIT_AFTER_S` seconds after the grace, its log flushed.

Leadership (:mod:`swanwatch.store.leader`): only the leader runs watchers and correlation.
It confirms its lock before each run and does that work fenced by its epoch; a leader
that cannot confirm steps down at once and its /healthz fails until it knows again who
leads. A version line and a role line are logged at start and on every change of role.

SIGHUP (or ``swanwatch reload``, ``POST /-/reload``) re-reads the config file: a valid one
replaces the running one (watchers rescheduled, removed watchers' series dropped), a bad
one is refused with its problems and the running one stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import platform
import random
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from swanwatch import logs, memory
from swanwatch.alerts import Notice
from swanwatch.clock import Clock, SystemClock
from swanwatch.config import Config, WatcherConfig, load_config
from swanwatch.engine import CorrelationOutcome, Engine
from swanwatch.errors import ConfigError, LeadershipLost, StoreError, SwanwatchError
from swanwatch.metrics import DaemonState, Metrics, config_digest, swanwatch_version
from swanwatch.store import Store, WatcherStatus
from swanwatch.store.health import first_line, preflight
from swanwatch.store.leader import Leadership

if TYPE_CHECKING:
    from swanwatch.shards import ShardCoordinator

log = logging.getLogger("swanwatch.daemon")
T = TypeVar("T")

#: Seconds past ``daemon.shutdown_grace`` after which a stopping daemon process exits even
#: if a thread is still blocked (a driver call, a file read): a stop always ends it.
FORCE_EXIT_AFTER_S = 5.0


def trigger_for(spec: WatcherConfig) -> IntervalTrigger | CronTrigger:
    schedule = spec.schedule
    jitter = int(schedule.jitter.total_seconds()) or None
    if schedule.cron is not None:
        trigger = CronTrigger.from_crontab(schedule.cron, timezone=schedule.timezone)
        trigger.jitter = jitter
        return trigger
    assert schedule.every is not None
    return IntervalTrigger(seconds=schedule.every.total_seconds(), jitter=jitter, timezone=UTC)


def first_run_at(
    spec: WatcherConfig,
    status: WatcherStatus | None,
    now: datetime,
    rng: random.Random,
    spread_over: timedelta = timedelta(seconds=10),
) -> datetime:
    """When a watcher should first run after a (re)start, given its last successful run.

    Overdue watchers start at a random point within ``spread_over``, not all at once.
    """
    spread = timedelta(seconds=rng.uniform(0, spread_over.total_seconds()))
    last = status.last_success_at if status is not None else None
    if last is None:
        return now + spread
    if spec.schedule.cron is not None:
        trigger = trigger_for(spec)
        due: datetime | None = trigger.get_next_fire_time(None, last + timedelta(seconds=1))
    else:
        assert spec.schedule.every is not None
        due = last + spec.schedule.every
    if due is None or due <= now:
        return now + spread
    return due


class Daemon:
    """Schedules the engine's steps, holds leadership, reloads its config, stops cleanly."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        *,
        config_path: Path | None = None,
        exit_when_stuck: bool = False,
    ) -> None:
        self.config = config
        #: The process's own daemon: a stop that cannot finish ends the process.
        self.exit_when_stuck = exit_when_stuck
        self._watchdog: threading.Timer | None = None
        self.store = store
        self.clock = clock
        self.config_path = config_path
        self.metrics = Metrics()
        self.engine = _engine(config, store, clock, self.metrics)
        self.leadership = Leadership(
            store.engine, store.url, lease_s=config.daemon.leader_lease.total_seconds()
        )
        self.state = DaemonState(
            replica=self.leadership.replica,
            metrics=self.metrics,
            watchers=_instances(config),
            reload=self.reload,
        )
        self.metrics.config_loaded(config, clock.now())
        # With shards, the leader's watcher jobs hand each run to workers through the queue.
        self.shards: ShardCoordinator | None = None
        if config.daemon.shards > 1:
            from swanwatch.shards import ShardCoordinator

            self.shards = ShardCoordinator(config, store, clock)
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
        self._watching: set[asyncio.Task[Any]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._reload_lock = asyncio.Lock()
        self._delivery_wanted = asyncio.Event()
        # Leadership calls get a thread of their own: a frozen store may tie up the shared
        # pool's threads, never the one that notices it and steps down.
        self._leader_thread = ThreadPoolExecutor(1, thread_name_prefix="swanwatch-leader")
        self.scheduler = AsyncIOScheduler(
            timezone=UTC,
            job_defaults={
                "max_instances": 1,
                "coalesce": True,
                "misfire_grace_time": int(config.daemon.misfire_grace.total_seconds()),
            },
        )

    def stop(self) -> None:
        """Ask the daemon to stop (safe to call from a signal handler)."""
        self._stop.set()
        if self.exit_when_stuck and self._watchdog is None:
            limit = self.config.daemon.shutdown_grace.total_seconds() + FORCE_EXIT_AFTER_S
            self._watchdog = threading.Timer(limit, _exit_stuck, args=(limit,))
            self._watchdog.daemon = True
            self._watchdog.start()

    async def _tracked(self, coro: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except LeadershipLost as exc:
            log.warning("%s", exc)
            await self._step_down(str(exc))
        except Exception:  # a job must never take the scheduler down
            log.exception("scheduled job failed")
        finally:
            self._running.discard(task)

    async def _leader_call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._leader_thread, fn)

    # --- watchers (the leader's work) -------------------------------------------------------

    async def _watch_job(self, spec: WatcherConfig) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._watching.add(task)
        try:
            await self._tracked(self._leader_run(spec))
        finally:
            self._watching.discard(task)

    async def _leader_run(self, spec: WatcherConfig) -> None:
        """Confirm the lock first; then run fenced by the epoch, so that a write made after
        another replica took over is refused by the store."""
        if not await self._leader_call(self.leadership.confirm):
            await self._step_down(
                f"could not confirm the leader lock before running {spec.instance}"
            )
            return
        with self.leadership.fenced():
            await self._watch_then_correlate(self.engine, spec)

    async def _watch_then_correlate(self, engine: Engine, spec: WatcherConfig) -> None:
        with logs.log_context(watcher=spec.instance):
            if self.shards is None:
                await engine.run_watcher(spec, refresh_accounts=True)
            else:
                # Waits for every shard of the cycle (max_instances=1 skips ticks meanwhile).
                await self.shards.run_cycle(spec)
                await engine.load_accounts()
        try:
            outcome = await engine.correlate()
        except LeadershipLost:
            raise
        except StoreError as exc:
            # The store failed mid-pass (restarted, locked, full): not a job gone wrong. What
            # was saved stays (a batch at a time); the rest is decided again.
            log.error("%s; the pass after the next watcher run decides again", exc)
        else:
            _log_correlation(outcome)
            self._deliver_soon()
        memory.give_back()  # what the run and the pass freed, not kept resident until the next

    # --- delivery (every replica) -----------------------------------------------------------

    def _deliver_soon(self) -> None:
        """Ask the delivery loop for a pass now (after a run queued notifications)."""
        self._delivery_wanted.set()

    async def _delivery_loop(self) -> None:
        """The process's one delivery loop: a pass at start, on request, and every
        ``daemon.deliver_every``; one pass after the other, never two at once (the
        outbox claims keep replicas apart, this keeps a replica's passes apart)."""
        while not self._stop.is_set():
            self._delivery_wanted.clear()
            # A task of its own, tracked: a stop lets it finish, up to shutdown_grace.
            task = asyncio.ensure_future(self._tracked(self._deliver()))
            await asyncio.wait([task])
            waits = [
                asyncio.ensure_future(self._stop.wait()),
                asyncio.ensure_future(self._delivery_wanted.wait()),
            ]
            every = self.config.daemon.deliver_every.total_seconds()
            try:
                await asyncio.wait(waits, timeout=every, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    async def _deliver(self) -> None:
        try:
            await self.engine.deliver()
        except StoreError as exc:
            log.warning("delivery pass stopped: %s", first_line(exc))
        except SQLAlchemyError as exc:  # the store is down: the next pass tries again
            log.warning("delivery pass stopped: the store failed: %s", first_line(exc))

    # --- leadership -------------------------------------------------------------------------

    async def _campaign(self) -> None:
        """Become the leader when nobody is; step down when the lock is lost.

        Only the leader runs watchers and correlation; every replica delivers (the outbox
        leases each notification to one sender), so nothing is doubled. A standby takes
        over within ``daemon.leader_check`` of the leader's death, or of its lease running
        out (``daemon.leader_lease``) when it is frozen rather than dead.
        """
        try:
            held = await self._leader_call(self.leadership.try_acquire)
        except StoreError as exc:
            # Nobody here knows who leads: a leader that cannot confirm is unhealthy.
            if self.state.leading or self.state.leadership_problem:
                await self._step_down(str(exc))
            else:
                log.warning("%s", exc)
            return
        if held and not self.state.leading:
            self.state.leading = True
            self.state.leadership_problem = None
            self._announce()
            await self._schedule_watchers()
        elif not held and self.state.leading:
            await self._step_down("the leader lock was lost")
        elif not held and self.state.leadership_problem:
            log.info("leadership is known again: another replica leads")
            self.state.leadership_problem = None
            self._announce()

    async def _step_down(self, why: str) -> None:
        """Stop leader work at once: no new runs (one under way is fenced: its writes are
        refused). /healthz fails until a campaign knows again who leads."""
        if not self.state.leading:
            if why != self.state.leadership_problem:
                log.warning("who leads is unknown here: %s", why)
            self.state.leadership_problem = why
            return
        self.state.leadership_problem = why
        self.state.leading = False
        log.warning("lost leadership: %s; watchers stop here until it is won back", why)
        for job in self.scheduler.get_jobs():
            if job.id.startswith("watcher:"):
                job.remove()
        self._announce()

    def _announce(self) -> None:
        """The role line, logged at start and on every change of role."""
        if self.state.leading:
            log.info("role: leader (epoch %s): leading, runs the watchers", self.leadership.epoch)
        else:
            log.info("role: standby, delivers and campaigns for leadership")

    async def _campaign_loop(self) -> None:
        """Campaign every ``daemon.leader_check``, one round after the other (a round
        that waits on a frozen store delays the next, rather than piling up)."""
        while not self._stop.is_set():
            await self._tracked(self._campaign())
            every = self.config.daemon.leader_check.total_seconds()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), every)

    async def _schedule_watchers(self) -> None:
        statuses = await asyncio.to_thread(self.store.watcher_statuses)
        now = self.clock.now()
        rng = random.Random()
        for spec in self.config.active_watchers():
            start = first_run_at(
                spec, statuses.get(spec.instance), now, rng, self.config.daemon.startup_spread
            )
            self.scheduler.add_job(
                self._watch_job,
                trigger_for(spec),
                args=[spec],
                id=f"watcher:{spec.instance}",
                name=spec.instance,
                next_run_time=start,
                replace_existing=True,
            )
            log.info("watcher %s: next run %s", spec.instance, start.isoformat(timespec="seconds"))

    def _schedule(self) -> None:
        if self.config.notify.leaders:
            # Queued by (digest, week, channel): any replica may run it, each week goes once.
            self.scheduler.add_job(
                self._leaders_job,
                IntervalTrigger(minutes=15, timezone=UTC),
                id="leaders-digest",
                name="leaders-digest",
                next_run_time=self.clock.now(),
                replace_existing=True,
            )

    async def _leaders_job(self) -> None:
        from swanwatch.delivery import enqueue_leaders

        async def queue() -> None:
            queued = await asyncio.to_thread(
                enqueue_leaders, self.config, self.store, self.clock.now()
            )
            if queued:
                log.info("leaders' digest: %d queued", queued)
                self._deliver_soon()

        await self._tracked(queue())

    # --- reload ---------------------------------------------------------------------------

    async def reload(self) -> list[str]:
        """Re-read the config file; apply it when valid. Returns why it was refused."""
        async with self._reload_lock:
            new, problems = await self._read_config()
            if new is not None and not problems:
                try:
                    engine = _engine(new, self.store, self.clock, self.metrics)
                except SwanwatchError as exc:
                    problems = [first_line(exc)]
            if new is None or problems:
                self.metrics.config_refused()
                log.error(
                    "config reload refused, the running config stays: %s", "; ".join(problems)
                )
                return problems
            await engine.__aenter__()
            old, self.engine, self.config = self.engine, engine, new
            self.state.watchers = _instances(new)
            self.metrics.forget_watchers(self.state.watchers)
            self.metrics.config_loaded(new, self.clock.now())
            self.leadership.set_lease(new.daemon.leader_lease.total_seconds())
            logs.apply_config(new.logging.level, new.logging.format)
            await self._reschedule()
            self._spawn(self._retire(old))
            log.info(
                "config reloaded from %s (hash %s): %d watchers",
                self.config_path,
                config_digest(new)[:12],
                len(new.active_watchers()),
            )
            return []

    async def _read_config(self) -> tuple[Config | None, list[str]]:
        if self.config_path is None:
            return None, ["this daemon was not started from a config file"]
        try:
            new = await asyncio.to_thread(load_config, self.config_path)
        except ConfigError as exc:
            return None, [str(p) for p in exc.problems]
        except SwanwatchError as exc:
            return None, [first_line(exc)]
        old = self.config
        fixed = {
            "store.url": (old.store_url, new.store_url),
            "server.listen": (old.server.listen, new.server.listen),
            "daemon.shards": (old.daemon.shards, new.daemon.shards),
            "daemon.queue": (old.daemon.queue, new.daemon.queue),
        }
        return new, [
            f"{name} changed ({a!r} -> {b!r}): it takes a restart"
            for name, (a, b) in fixed.items()
            if a != b
        ]

    async def _reschedule(self) -> None:
        for job in self.scheduler.get_jobs():
            if job.id.startswith("watcher:"):
                job.remove()
        self._schedule()
        if self.state.leading:
            await self._schedule_watchers()

    async def _retire(self, engine: Engine) -> None:
        """Close a replaced engine once the jobs that use it have finished."""
        running = [t for t in self._running if t is not asyncio.current_task()]
        if running:
            await asyncio.wait(running)
        await engine.__aexit__(None, None, None)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _on_sighup(self) -> None:
        log.info("SIGHUP: re-reading %s", self.config_path)
        self._spawn(self.reload())

    # --- run and stop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` or SIGINT/SIGTERM; SIGHUP reloads the config."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        logs.set_process_ids(replica=self.state.replica)
        log.info(
            "swanwatch %s (Python %s), replica %s, config %s (hash %s), store %s",
            swanwatch_version(),
            platform.python_version(),
            self.state.replica,
            self.config_path,
            config_digest(self.config)[:12],
            self.store.safe_url,
        )
        http = None
        try:
            if self.config.server.listen is not None:
                from swanwatch.server import HttpServer

                host, port = self.config.server.host_port
                http = HttpServer(self.config, self.store, self.clock, host, port, self.state)
                await http.start()
            await self._serve()
        finally:
            if http is not None:
                await http.stop()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            self._leader_thread.shutdown(wait=False, cancel_futures=True)

    async def _serve(self) -> None:
        async with self.engine:
            if self.shards is not None:
                await self.shards.open()
            self._schedule()
            self.scheduler.start()
            self.state.started = True
            log.info(
                "swanwatch daemon started with %d watchers", len(self.config.active_watchers())
            )
            self._announce()
            self._spawn(self._campaign_loop())
            self._spawn(self._delivery_loop())
            try:
                await self._stop.wait()
            finally:
                await self._shutdown()
                if self.shards is not None:
                    await self.shards.close()
        for task in list(self._background):
            task.cancel()

    async def _shutdown(self) -> None:
        self.state.stopping = True
        # The sender takes nothing new and gives back what it has not started: a restart,
        # or another replica, sends it at once rather than after a lease.
        self.engine.delivery.stop()
        log.info("stopping: letting %d running jobs finish", len(self._running))
        self.scheduler.pause()
        running = list(self._running)
        if running:
            grace = self.config.daemon.shutdown_grace.total_seconds()
            _done, pending = await asyncio.wait(running, timeout=grace)
            for task in pending:
                log.warning("cancelling %s: it did not finish within %g s", task.get_name(), grace)
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        self.scheduler.shutdown(wait=False)
        await self._leader_call(self.leadership.release)
        log.info("stopped")


def _exit_stuck(after_s: float) -> None:
    """The stop did not finish: something blocks a thread. End the process anyway."""
    log.error(
        "forced exit: still not stopped %g s after the stop was asked (a source or store "
        "call is blocked)",
        after_s,
    )
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    # Not SystemExit: the interpreter's exit would wait for the blocked thread in turn.
    os.kill(os.getpid(), signal.SIGKILL)


def _instances(config: Config) -> tuple[str, ...]:
    return tuple(w.instance for w in config.active_watchers())


def _engine(config: Config, store: Store, clock: Clock, metrics: Metrics) -> Engine:
    """The daemon's engine: a pass's notices are logged batch by batch as they are saved,
    not kept, so a pass over a big book holds one batch's notices at a time."""
    engine = Engine(config, store, clock, metrics=metrics)
    engine.keep_told = False
    engine.on_told = _log_notices
    return engine


def _log_correlation(outcome: CorrelationOutcome) -> None:
    log.info(
        "correlation: %d accounts with signals, %d open alerts, %d alerts written, "
        "%d notifications queued",
        outcome.accounts,
        outcome.open_alerts,
        outcome.written,
        outcome.enqueued,
    )


def _log_notices(notices: Sequence[Notice]) -> None:
    for notice in notices:
        alert = notice.alert
        log.info(
            "alert %s: %s on %s (%s)",
            notice.event,
            alert.title,
            alert.account_id,
            alert.severity,
            extra={"alert": alert.fingerprint, "account": alert.account_id},
        )


def run_daemon(config: Config, config_path: Path | None) -> None:
    """``swanwatch run``: the config's logging, a store check, the store, the daemon.

    Fails with a :class:`SwanwatchError` of one line (the CLI turns it into exit 1): the
    port is in use, the store cannot be written, the database is not UTF8, ...
    """
    logs.apply_config(config.logging.level, config.logging.format)
    memory.limit_arenas()  # before the threads: each would take an arena of its own
    preflight(config.store_url)
    try:
        store = Store(config.store_url)
    except StoreError as exc:
        raise StoreError(first_line(exc)) from exc
    try:
        daemon = Daemon(config, store, SystemClock(), config_path=config_path, exit_when_stuck=True)
        asyncio.run(daemon.run())
    finally:
        store.close()
