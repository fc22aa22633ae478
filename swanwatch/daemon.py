"""The daemon: watchers on APScheduler 3.11, then correlation and delivery, until stopped.

One job per configured watcher instance (interval or cron, with jitter; max_instances=1,
coalesce, misfire grace), and one delivery job. A restart starts each watcher when its
next run falls due after the last successful run on record: nothing re-runs all at once
and nothing due while the daemon was down is skipped. SIGINT or SIGTERM pauses the
scheduler, lets running jobs finish (up to ``daemon.shutdown_grace``), then cancels the rest.
"""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from swanwatch.clock import Clock
from swanwatch.config import Config, WatcherConfig
from swanwatch.engine import Engine
from swanwatch.metrics import DaemonState
from swanwatch.store import Store, WatcherStatus

if TYPE_CHECKING:
    from swanwatch.shards import ShardCoordinator

log = logging.getLogger("swanwatch.daemon")


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
    """Schedules the engine's steps and stops cleanly."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.engine = Engine(config, store, clock)
        self.leadership = store.leadership()
        self.state = DaemonState()
        # With shards, the leader's watcher jobs hand each run to workers through the queue.
        self.shards: ShardCoordinator | None = None
        if config.daemon.shards > 1:
            from swanwatch.shards import ShardCoordinator

            self.shards = ShardCoordinator(config, store, clock)
        self._stop = asyncio.Event()
        self._running: set[asyncio.Task[Any]] = set()
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

    async def _tracked(self, coro: Any) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except Exception:  # a job must never take the scheduler down
            log.exception("scheduled job failed")
        finally:
            self._running.discard(task)

    async def _watch_job(self, spec: WatcherConfig) -> None:
        await self._tracked(self._watch_then_correlate(spec))

    async def _watch_then_correlate(self, spec: WatcherConfig) -> None:
        if self.shards is None:
            await self.engine.run_watcher(spec, refresh_accounts=True)
        else:
            # Waits for every shard of the cycle (max_instances=1 skips ticks meanwhile).
            await self.shards.run_cycle(spec)
            await self.engine.load_accounts()
        outcome = await self.engine.correlate()
        log.info(
            "correlation: %d accounts at risk, %d open alerts, %d notifications queued",
            outcome.accounts,
            outcome.open_alerts,
            outcome.enqueued,
        )
        await self.engine.deliver()

    async def _deliver_job(self) -> None:
        await self._tracked(self.engine.deliver())

    async def _campaign(self) -> None:
        """Become the leader when nobody is; step down when the lock is lost.

        Only the leader runs watchers and correlation; every replica delivers (the outbox
        leases each notification to one sender), so nothing is doubled and a standby takes
        over within ``daemon.leader_check`` of the leader's death.
        """
        held = await asyncio.to_thread(self.leadership.try_acquire)
        if held and not self.state.leading:
            self.state.leading = True
            log.info("leading: this replica runs the watchers")
            self._schedule_watchers()
        elif not held and self.state.leading:
            self.state.leading = False
            log.warning("lost leadership: watchers stop here until it is won back")
            for job in self.scheduler.get_jobs():
                if job.id.startswith("watcher:"):
                    job.remove()
        elif not held:
            log.debug("standby: another replica leads")

    async def _campaign_job(self) -> None:
        await self._tracked(self._campaign())

    def _schedule_watchers(self) -> None:
        statuses = self.store.watcher_statuses()
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
            )
            log.info("watcher %s: next run %s", spec.instance, start.isoformat(timespec="seconds"))

    def _schedule(self) -> None:
        self.scheduler.add_job(
            self._campaign_job,
            IntervalTrigger(seconds=self.config.daemon.leader_check.total_seconds(), timezone=UTC),
            id="leadership",
            name="leadership",
            next_run_time=self.clock.now(),
        )
        self.scheduler.add_job(
            self._deliver_job,
            IntervalTrigger(seconds=self.config.daemon.deliver_every.total_seconds(), timezone=UTC),
            id="delivery",
            name="delivery",
        )
        if self.config.notify.leaders:
            # Queued by (digest, week, channel): any replica may run it, each week goes once.
            self.scheduler.add_job(
                self._leaders_job,
                IntervalTrigger(minutes=15, timezone=UTC),
                id="leaders-digest",
                name="leaders-digest",
                next_run_time=self.clock.now(),
            )

    async def _leaders_job(self) -> None:
        from swanwatch.delivery import enqueue_leaders

        async def queue() -> None:
            queued = await asyncio.to_thread(
                enqueue_leaders, self.config, self.store, self.clock.now()
            )
            if queued:
                log.info("leaders' digest: %d queued", queued)
                await self.engine.deliver()

        await self._tracked(queue())

    async def run(self) -> None:
        """Run until :meth:`stop` or SIGINT/SIGTERM."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop)
        http = None
        if self.config.server.listen is not None:
            from swanwatch.server import HttpServer

            host, port = self.config.server.host_port
            http = HttpServer(self.config, self.store, self.clock, host, port, self.state)
            await http.start()
        async with self.engine:
            if self.shards is not None:
                await self.shards.open()
            self._schedule()
            self.scheduler.start()
            self.state.started = True
            log.info(
                "swanwatch daemon started with %d watchers", len(self.config.active_watchers())
            )
            try:
                await self._stop.wait()
            finally:
                await self._shutdown()
                if self.shards is not None:
                    await self.shards.close()
                if http is not None:
                    await http.stop()
                for sig in (signal.SIGINT, signal.SIGTERM):
                    loop.remove_signal_handler(sig)

    async def _shutdown(self) -> None:
        self.state.stopping = True
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
        await asyncio.to_thread(self.leadership.release)
        log.info("stopped")
