"""Watcher runs, each instance's status (the failures in a row), and watcher state."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import bindparam, delete, select
from sqlalchemy.engine import Connection

from swanwatch.model import JSON, UTCDateTime, WatcherRun
from swanwatch.store.base import StoreBase, chunks, insert_on, upsert
from swanwatch.store.tables import WATCHER_RUNS, WATCHER_STATE, WATCHER_STATUS


class WatcherStatus(BaseModel):
    """How a watcher instance has been doing."""

    model_config = ConfigDict(frozen=True)

    instance: str
    last_run_at: UTCDateTime | None = None
    last_success_at: UTCDateTime | None = None
    consecutive_failures: int = 0
    last_error: str | None = None


class RunsStore(StoreBase):
    """Runs, statuses and state of the watcher instances."""

    def record_run(self, run: WatcherRun) -> WatcherStatus:
        """Store a run's outcome and update the instance's status; return the new status."""
        values: dict[str, Any] = {
            "instance": run.instance,
            "last_run_at": run.finished_at,
            "consecutive_failures": 0 if run.ok else 1,
            "last_error": None if run.ok else run.error,
            "last_success_at": run.finished_at if run.ok else None,
        }
        with self._tx() as conn:
            conn.execute(_INSERT_RUN, run.model_dump())
            conn.execute(_status_upsert(conn.dialect.name, run.ok), values)
            row = conn.execute(_STATUS_OF, {"instance": run.instance}).one()
        return WatcherStatus.model_validate(row, from_attributes=True)

    def watcher_statuses(self) -> dict[str, WatcherStatus]:
        with self._read() as conn:
            return {
                r.instance: WatcherStatus.model_validate(r, from_attributes=True)
                for r in conn.execute(select(WATCHER_STATUS))
            }

    def runs(self, instance: str | None = None, limit: int = 50) -> list[WatcherRun]:
        query = select(WATCHER_RUNS).order_by(WATCHER_RUNS.c.id.desc()).limit(limit)
        if instance is not None:
            query = query.where(WATCHER_RUNS.c.instance == instance)
        with self._read() as conn:
            return [WatcherRun.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def load_state(self, instance: str) -> dict[str, JSON]:
        with self._read() as conn:
            return {r.key: r.value for r in conn.execute(_STATE_OF, {"instance": instance})}

    def save_state(
        self, instance: str, changed: dict[str, JSON], deleted: frozenset[str], now: datetime
    ) -> None:
        with self._tx() as conn:
            write_state(conn, instance, changed, deleted, now)


# A watcher's run writes these every time it runs (a replay: every watcher, every day):
# built once, they cost a third of what building them each time did (BENCHMARKS.md).
_INSERT_RUN = WATCHER_RUNS.insert()
_STATUS_OF = select(WATCHER_STATUS).where(WATCHER_STATUS.c.instance == bindparam("instance"))
_STATE_OF = select(WATCHER_STATE.c.key, WATCHER_STATE.c.value).where(
    WATCHER_STATE.c.instance == bindparam("instance")
)


@cache
def _status_upsert(dialect: str, ok: bool) -> Any:
    """The instance's status after a run, in one statement, so that runs finishing
    together (shards, replicas) never race on the status row's first insert: the database
    counts the failures."""
    status = WATCHER_STATUS
    stmt = insert_on(dialect, status)
    return stmt.on_conflict_do_update(
        index_elements=["instance"],
        set_={
            "last_run_at": stmt.excluded.last_run_at,
            "last_error": stmt.excluded.last_error,
            "consecutive_failures": 0 if ok else status.c.consecutive_failures + 1,
            "last_success_at": stmt.excluded.last_success_at if ok else status.c.last_success_at,
        },
    )


def write_state(
    conn: Connection,
    instance: str,
    changed: dict[str, JSON],
    deleted: frozenset[str],
    now: datetime,
) -> None:
    """:meth:`RunsStore.save_state` inside the caller's transaction."""
    table = WATCHER_STATE
    rows = [
        {"instance": instance, "key": k, "value": v, "updated_at": now} for k, v in changed.items()
    ]
    upsert(conn, table, rows, ["instance", "key"])
    for chunk in chunks(sorted(deleted)):
        conn.execute(delete(table).where(table.c.instance == instance, table.c.key.in_(chunk)))
