"""Cycles of a sharded watcher run and their shards (swanwatch/shards.py), and the task
queue's schema beside the store."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from swanwatch.errors import StoreError
from swanwatch.model import UTCDateTime
from swanwatch.store.base import MIGRATION_LOCK, StoreBase, insert
from swanwatch.store.tables import SHARD_CYCLES, SHARD_RUNS, WATCHER_STATUS

log = logging.getLogger("swanwatch.store")

#: With hashtext(instance): serialises opening an instance's cycle.
_SHARD_LOCK = 0x5357_5348
#: The states of a shard that may still run.
_UNFINISHED = ("queued", "running", "retrying")


class ShardCycle(BaseModel):
    """One sharded run of a watcher instance: open until every shard is finished."""

    model_config = ConfigDict(frozen=True)

    instance: str
    cycle_id: str
    shards: int
    started_at: UTCDateTime
    finished_at: UTCDateTime | None = None


class ShardRun(BaseModel):
    """One shard of a cycle: ``queued``, ``running``, ``retrying``, ``done`` or ``failed``;
    ``completions`` counts how often it was finished (1 once finished, by construction)."""

    model_config = ConfigDict(frozen=True)

    shard: int
    state: str
    attempts: int
    completions: int
    job_id: int | None
    signals: int
    error: str | None
    started_at: UTCDateTime | None
    finished_at: UTCDateTime | None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


class ShardsStore(StoreBase):
    """The shard cycles and shard runs, and the queue's schema."""

    def apply_queue_schema(self, schema: str) -> bool:
        """Install the task queue's schema (procrastinate's) unless it is there; True when
        this call installed it. PostgreSQL only; replicas racing here take turns."""
        if self.dialect != "postgresql":
            raise StoreError("the task queue needs a PostgreSQL store")
        try:
            with self.engine.begin() as conn:
                return _apply_queue_schema(conn, schema)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot install the queue's schema at {self.safe_url}: {exc}"
            ) from exc

    def open_shard_cycle(
        self, instance: str, cycle_id: str, shards: int, now: datetime
    ) -> tuple[ShardCycle, bool]:
        """The instance's open cycle, or a new one (``cycle_id``, its shards queued): the
        cycle and whether this call created it. One open cycle per instance, by a unique
        index, so a new leader adopts a cycle rather than doubling it."""
        cycles, runs = SHARD_CYCLES, SHARD_RUNS
        with self._tx() as conn:
            if self.dialect == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:k, hashtext(:i))"),
                    {"k": _SHARD_LOCK, "i": instance},
                )
            row = conn.execute(
                select(cycles).where(cycles.c.instance == instance, cycles.c.finished_at.is_(None))
            ).first()
            if row is not None:
                return ShardCycle.model_validate(row, from_attributes=True), False
            cycle = ShardCycle(instance=instance, cycle_id=cycle_id, shards=shards, started_at=now)
            conn.execute(cycles.insert().values(**cycle.model_dump()))
            # record_run creates the status row on a first run: create it here, once, so
            # that the first shards, finishing together on several machines, only update it.
            conn.execute(
                insert(conn, WATCHER_STATUS)
                .values(instance=instance, consecutive_failures=0)
                .on_conflict_do_nothing(index_elements=["instance"])
            )
            conn.execute(
                runs.insert(),
                [
                    {"instance": instance, "cycle_id": cycle_id, "shard": n, "state": "queued"}
                    for n in range(shards)
                ],
            )
        return cycle, True

    def set_shard_job(self, instance: str, cycle_id: str, shard: int, job_id: int) -> None:
        """Remember the queue's job that carries a shard."""
        with self._tx() as conn:
            conn.execute(
                update(SHARD_RUNS)
                .where(*_shard(instance, cycle_id, shard), SHARD_RUNS.c.job_id.is_(None))
                .values(job_id=job_id)
            )

    def shard_runs(self, instance: str, cycle_id: str) -> list[ShardRun]:
        """The shards of one cycle, by shard number."""
        runs = SHARD_RUNS
        query = (
            select(runs)
            .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
            .order_by(runs.c.shard)
        )
        with self._read() as conn:
            return [ShardRun.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def shard_cycles(self, instance: str | None = None, limit: int = 50) -> list[ShardCycle]:
        """Recent cycles, newest first."""
        cycles = SHARD_CYCLES
        query = select(cycles).order_by(cycles.c.started_at.desc()).limit(limit)
        if instance is not None:
            query = query.where(cycles.c.instance == instance)
        with self._read() as conn:
            return [ShardCycle.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def claim_shard(
        self, instance: str, cycle_id: str, shard: int, job_id: int, now: datetime
    ) -> int | None:
        """Start an attempt at a shard for the queue's job ``job_id``: the attempt number,
        or None when the shard must not run (finished already, its cycle closed, or it
        belongs to another job). A retry of the same job, after a failure or a dead
        worker, may claim it again."""
        runs = SHARD_RUNS
        with self._tx() as conn:
            row = conn.execute(
                update(runs)
                .where(*_shard(instance, cycle_id, shard), runs.c.state.in_(_UNFINISHED))
                .where(or_(runs.c.job_id.is_(None), runs.c.job_id == job_id))
                .values(
                    state="running", attempts=runs.c.attempts + 1, started_at=now, job_id=job_id
                )
                .returning(runs.c.attempts)
            ).first()
        return int(row[0]) if row is not None else None

    def finish_shard(
        self,
        instance: str,
        cycle_id: str,
        shard: int,
        now: datetime,
        *,
        state: str,
        signals: int = 0,
        error: str | None = None,
    ) -> bool:
        """Record an attempt's end: ``done``, ``failed`` (no more attempts) or ``retrying``.
        False when the shard was already finished (a late duplicate): nothing changes."""
        if state not in ("done", "failed", "retrying"):
            raise ValueError(f"unknown shard state {state!r}")
        runs = SHARD_RUNS
        values: dict[str, Any] = {"state": state, "signals": signals, "error": error}
        if state != "retrying":
            values["finished_at"] = now
            values["completions"] = runs.c.completions + 1
        with self._tx() as conn:
            result = conn.execute(
                update(runs)
                .where(*_shard(instance, cycle_id, shard), runs.c.state.in_(_UNFINISHED))
                .values(**values)
            )
        return bool(result.rowcount)

    def close_shard_cycle(
        self, instance: str, cycle_id: str, now: datetime, *, unfinished_error: str
    ) -> list[int]:
        """Close a cycle; shards still unfinished become failed with ``unfinished_error``.
        Returns those shards' numbers."""
        cycles, runs = SHARD_CYCLES, SHARD_RUNS
        with self._tx() as conn:
            failed = [
                int(r[0])
                for r in conn.execute(
                    update(runs)
                    .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
                    .where(runs.c.state.in_(_UNFINISHED))
                    .values(state="failed", error=unfinished_error, finished_at=now)
                    .returning(runs.c.shard)
                )
            ]
            conn.execute(
                update(cycles)
                .where(cycles.c.instance == instance, cycles.c.cycle_id == cycle_id)
                .where(cycles.c.finished_at.is_(None))
                .values(finished_at=now)
            )
        return sorted(failed)


def _shard(instance: str, cycle_id: str, shard: int) -> tuple[Any, ...]:
    """The conditions that select one shard's row."""
    runs = SHARD_RUNS
    return (runs.c.instance == instance, runs.c.cycle_id == cycle_id, runs.c.shard == shard)


def _apply_queue_schema(conn: Connection, schema: str) -> bool:
    """Run the queue's schema script on ``conn`` unless its jobs table exists (under the
    migration lock, so concurrent replicas apply it once). True when applied."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    if conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
        return False
    # Straight to the driver, without parameters: the script's `%` are not placeholders.
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(schema)
    finally:
        cursor.close()
    log.info("installed the task queue's schema (procrastinate)")
    return True
