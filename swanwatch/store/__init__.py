"""The store: the only code that speaks SQL. SQLite by default, any SQLAlchemy URL works.

SQLite runs in WAL mode and every transaction starts with BEGIN IMMEDIATE, so concurrent
writers wait for the lock (up to ``busy_timeout``) instead of failing half-way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    case,
    create_engine,
    delete,
    event,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from swanwatch.clock import ensure_utc
from swanwatch.errors import StoreError
from swanwatch.model import (
    JSON,
    Account,
    Alert,
    AlertState,
    Contribution,
    Feedback,
    Notification,
    NotificationStatus,
    Severity,
    Signal,
    Silence,
    StoredSignal,
    Unknown,
    WatcherRun,
)
from swanwatch.store.leader import Leadership
from swanwatch.store.tables import (
    AccountRow,
    AlertRow,
    FeedbackRow,
    NotificationRow,
    SignalRow,
    SilenceRow,
    UnknownRow,
    WatcherRunRow,
    WatcherStateRow,
    WatcherStatusRow,
)
from swanwatch.store.types import UTCDateTime

log = logging.getLogger("swanwatch.store")

_MIGRATIONS = Path(__file__).parent / "migrations"
_BATCH = 500
# A fixed key for PostgreSQL's advisory lock that serialises migrations across replicas.
_MIGRATION_LOCK = 0x5357_414E


@dataclass(frozen=True)
class SignalChanges:
    """What storing a run's signals changed: fingerprints raised (new or back) and cleared."""

    raised: tuple[str, ...]
    cleared: tuple[str, ...]
    #: The kind of each cleared signal, in the same order (for the metrics).
    cleared_kinds: tuple[str, ...] = ()

    def counts(self) -> tuple[int, int]:
        return len(self.raised), len(self.cleared)


class WatcherStatus:
    """How a watcher instance has been doing."""

    def __init__(self, row: WatcherStatusRow) -> None:
        self.instance = row.instance
        self.last_run_at = row.last_run_at
        self.last_success_at = row.last_success_at
        self.consecutive_failures = row.consecutive_failures
        self.last_error = row.last_error


class NewNotification:
    """A notification to put in the outbox (the store gives it an id)."""

    def __init__(
        self,
        *,
        idempotency_key: str,
        alert_fingerprint: str,
        account_id: str,
        channel: str,
        event: str,
        severity: Severity,
        title: str,
        body: str,
        due_at: datetime,
        route: str = "",
        group_key: str = "",
        fallback: str | None = None,
        payload: dict[str, JSON] | None = None,
    ) -> None:
        self.values: dict[str, Any] = {
            "route": route,
            "group_key": group_key,
            "fallback": fallback,
            "payload": payload,
            "idempotency_key": idempotency_key,
            "alert_fingerprint": alert_fingerprint,
            "account_id": account_id,
            "channel": channel,
            "event": event,
            "severity": str(severity),
            "title": title,
            "body": body,
            "status": NotificationStatus.PENDING.value,
            "attempts": 0,
            "next_attempt_at": due_at,
            "created_at": due_at,
        }


@dataclass(frozen=True)
class QueuedNotification:
    """A leased notification with what delivery needs besides the message itself."""

    notification: Notification
    route: str
    group_key: str
    fallback: str | None
    payload: dict[str, JSON] | None


class Store:
    """Signals, alerts, watcher runs and the outbox, in one SQL database."""

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = url
        self.engine = _make_engine(url)
        if migrate:
            self.upgrade()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def leadership(self) -> Leadership:
        """A handle to campaign for leadership among the replicas sharing this store."""
        return Leadership(self.engine, self.url)

    # --- schema -----------------------------------------------------------------------

    def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision``."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(_MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the store at {self.safe_url}: {exc}") from exc

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            except SQLAlchemyError:
                return None
        return str(row[0]) if row else None

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _insert(self, table: Any) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        if self.dialect == "sqlite":
            return sqlite.insert(table)
        raise StoreError(f"upserts are not supported on {self.dialect}; use SQLite or PostgreSQL")

    def _upsert(
        self,
        conn: Connection,
        table: Any,
        rows: Sequence[dict[str, Any]],
        keys: list[str],
        updates: Callable[[Any], dict[str, Any]] | None = None,
    ) -> None:
        """Insert ``rows``, updating those whose ``keys`` exist: one statement, compiled
        once and executed for all rows (executemany), not one statement per row or chunk.

        ``updates(excluded)`` gives the SET clause; by default every non-key column.
        """
        if not rows:
            return
        stmt = self._insert(table)
        set_ = (
            updates(stmt.excluded)
            if updates is not None
            else {c: stmt.excluded[c] for c in rows[0] if c not in keys}
        )
        conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=set_), list(rows))

    # --- accounts ---------------------------------------------------------------------

    def upsert_accounts(self, accounts: Sequence[Account], now: datetime) -> None:
        """Make the stored account list match ``accounts`` (insert, update, remove)."""
        table = AccountRow.__table__  # type: ignore[attr-defined]
        rows = [
            {
                "id": a.id,
                "name": a.name,
                "domains": list(a.domains),
                "owner": a.owner,
                "segment": a.segment,
                "arr": a.arr,
                "renewal_date": a.renewal_date,
                "tags": list(a.tags),
                "updated_at": now,
            }
            for a in accounts
        ]
        with self._tx() as conn:
            self._upsert(conn, table, rows, ["id"])
            conn.execute(delete(table).where(table.c.updated_at < now))

    def accounts(self, ids: Iterable[str] | None = None) -> list[Account]:
        table = AccountRow.__table__  # type: ignore[attr-defined]
        query = select(table).order_by(table.c.id)
        if ids is not None:
            query = query.where(table.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [
                Account(
                    id=r.id,
                    name=r.name,
                    domains=tuple(r.domains or ()),
                    owner=r.owner,
                    segment=r.segment,
                    arr=r.arr,
                    renewal_date=r.renewal_date,
                    tags=tuple(r.tags or ()),
                )
                for r in conn.execute(query)
            ]

    # --- signals ----------------------------------------------------------------------

    def record_signals(
        self,
        watcher: str,
        signals: Sequence[Signal],
        now: datetime,
        *,
        scope: Iterable[str] | None = None,
    ) -> SignalChanges:
        """Store a run's signals by fingerprint and clear the watcher's signals it did not
        yield again (within ``scope``, the account ids the run looked at; all by default).

        Returns the fingerprints raised (new, or back after clearing) and cleared. Rerunning
        with the same signals changes nothing but ``last_seen``: the fingerprint is unique,
        so a row is never duplicated.
        """
        table = SignalRow.__table__  # type: ignore[attr-defined]
        by_fp = {s.fingerprint: s for s in signals}
        with self._tx() as conn:
            earlier = conn.execute(
                select(table.c.fingerprint, table.c.cleared_at, table.c.kind).where(
                    table.c.watcher == watcher
                )
            ).all()
            before = {r.fingerprint: r.cleared_at for r in earlier}
            kinds = {r.fingerprint: r.kind for r in earlier}
            rows = [
                {
                    "fingerprint": fp,
                    "watcher": watcher,
                    "account_id": s.account_id,
                    "kind": s.kind,
                    "key": s.key,
                    "strength": s.strength,
                    "observed_at": s.observed_at,
                    "first_seen": now,
                    "last_seen": now,
                    "cleared_at": None,
                    "summary": s.summary,
                    "evidence": s.evidence,
                    "half_life_days": s.half_life_days,
                }
                for fp, s in by_fp.items()
            ]
            keep = {"fingerprint", "first_seen", "watcher", "account_id", "kind", "key"}
            self._upsert(
                conn,
                table,
                rows,
                ["fingerprint"],
                lambda excluded: {
                    **{c: excluded[c] for c in rows[0] if c not in keep},
                    # A signal that comes back after clearing starts a new first_seen.
                    "first_seen": func.coalesce(
                        _case_cleared(table, excluded.first_seen), table.c.first_seen
                    ),
                },
            )
            gone = [fp for fp, cleared in before.items() if cleared is None and fp not in by_fp]
            if scope is not None and gone:
                scoped = set(scope)
                owners: dict[str, str] = {
                    r.fingerprint: r.account_id
                    for r in conn.execute(
                        select(table.c.fingerprint, table.c.account_id).where(
                            table.c.fingerprint.in_(gone)
                        )
                    )
                }
                gone = [fp for fp in gone if owners.get(fp) in scoped]
            for chunk_fp in _chunks(gone, _BATCH):
                conn.execute(
                    update(table).where(table.c.fingerprint.in_(chunk_fp)).values(cleared_at=now)
                )
        raised = tuple(fp for fp in by_fp if fp not in before or before[fp] is not None)
        return SignalChanges(
            raised=raised, cleared=tuple(gone), cleared_kinds=tuple(kinds[fp] for fp in gone)
        )

    def signals(
        self, *, account_id: str | None = None, active_only: bool = True
    ) -> list[StoredSignal]:
        table = SignalRow.__table__  # type: ignore[attr-defined]
        query = select(table).order_by(table.c.account_id, table.c.kind, table.c.key)
        if account_id is not None:
            query = query.where(table.c.account_id == account_id)
        if active_only:
            query = query.where(table.c.cleared_at.is_(None))
        with self.engine.connect() as conn:
            return [_stored_signal(r) for r in conn.execute(query)]

    # --- unknowns ---------------------------------------------------------------------

    def record_unknowns(
        self,
        watcher: str,
        unknowns: Sequence[tuple[str, str, str]],
        now: datetime,
        *,
        scope: Iterable[str] | None = None,
    ) -> None:
        """Replace the watcher's unknowns with this run's, keeping when each was first seen.

        With ``scope`` (a run over some accounts only, such as one shard), the watcher's
        unknowns of other accounts stay as they are.
        """
        table = UnknownRow.__table__  # type: ignore[attr-defined]
        scoped = None if scope is None else sorted(set(scope))
        allowed = None if scoped is None else set(scoped)
        latest = {(a, k): reason for a, k, reason in unknowns if allowed is None or a in allowed}
        with self._tx() as conn:
            rows = [
                {
                    "watcher": watcher,
                    "account_id": a,
                    "key": k,
                    "reason": reason,
                    "first_seen": now,
                    "last_seen": now,
                }
                for (a, k), reason in latest.items()
            ]
            self._upsert(
                conn,
                table,
                rows,
                ["watcher", "account_id", "key"],
                lambda excluded: {"reason": excluded.reason, "last_seen": excluded.last_seen},
            )
            stale = (table.c.watcher == watcher) & (table.c.last_seen < now)
            if scoped is None:
                conn.execute(delete(table).where(stale))
            for chunk_ids in _chunks(scoped or [], _BATCH):
                conn.execute(delete(table).where(stale, table.c.account_id.in_(chunk_ids)))

    def unknowns(self, account_id: str | None = None) -> list[Unknown]:
        table = UnknownRow.__table__  # type: ignore[attr-defined]
        query = select(table).order_by(table.c.account_id, table.c.watcher)
        if account_id is not None:
            query = query.where(table.c.account_id == account_id)
        with self.engine.connect() as conn:
            return [
                Unknown(
                    watcher=r.watcher,
                    account_id=r.account_id,
                    key=r.key,
                    reason=r.reason,
                    first_seen=r.first_seen,
                    last_seen=r.last_seen,
                )
                for r in conn.execute(query)
            ]

    # --- watcher runs, status and state --------------------------------------------------

    def record_run(self, run: WatcherRun) -> WatcherStatus:
        """Store a run's outcome and update the instance's status; return the new status."""
        runs = WatcherRunRow.__table__  # type: ignore[attr-defined]
        status = WatcherStatusRow.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {
            "instance": run.instance,
            "last_run_at": run.finished_at,
            "consecutive_failures": 0 if run.ok else 1,
            "last_error": None if run.ok else run.error,
            "last_success_at": run.finished_at if run.ok else None,
        }
        with self._tx() as conn:
            conn.execute(runs.insert().values(**run.model_dump()))
            # One statement, so that runs finishing together (shards, replicas) never race
            # on the status row's first insert: the database counts the failures.
            stmt = self._insert(status).values(**values)
            conn.execute(
                stmt.on_conflict_do_update(
                    index_elements=["instance"],
                    set_={
                        "last_run_at": stmt.excluded.last_run_at,
                        "last_error": stmt.excluded.last_error,
                        "consecutive_failures": (
                            0 if run.ok else status.c.consecutive_failures + 1
                        ),
                        "last_success_at": (
                            stmt.excluded.last_success_at if run.ok else status.c.last_success_at
                        ),
                    },
                )
            )
            row = conn.execute(select(status).where(status.c.instance == run.instance)).one()
        return WatcherStatus(WatcherStatusRow.model_validate(row._asdict()))

    def watcher_statuses(self) -> dict[str, WatcherStatus]:
        status = WatcherStatusRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return {
                r.instance: WatcherStatus(WatcherStatusRow.model_validate(r._asdict()))
                for r in conn.execute(select(status))
            }

    def runs(self, instance: str | None = None, limit: int = 50) -> list[WatcherRun]:
        runs = WatcherRunRow.__table__  # type: ignore[attr-defined]
        query = select(runs).order_by(runs.c.id.desc()).limit(limit)
        if instance is not None:
            query = query.where(runs.c.instance == instance)
        with self.engine.connect() as conn:
            return [
                WatcherRun.model_validate({k: v for k, v in r._asdict().items() if k != "id"})
                for r in conn.execute(query)
            ]

    def load_state(self, instance: str) -> dict[str, JSON]:
        table = WatcherStateRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return {
                r.key: r.value
                for r in conn.execute(
                    select(table.c.key, table.c.value).where(table.c.instance == instance)
                )
            }

    def save_state(
        self, instance: str, changed: dict[str, JSON], deleted: frozenset[str], now: datetime
    ) -> None:
        table = WatcherStateRow.__table__  # type: ignore[attr-defined]
        rows = [
            {"instance": instance, "key": k, "value": v, "updated_at": now}
            for k, v in changed.items()
        ]
        with self._tx() as conn:
            self._upsert(conn, table, rows, ["instance", "key"])
            for chunk_keys in _chunks(sorted(deleted), _BATCH):
                conn.execute(
                    delete(table).where(table.c.instance == instance, table.c.key.in_(chunk_keys))
                )

    # --- alerts and the outbox --------------------------------------------------------

    def alerts(
        self,
        *,
        open_only: bool = False,
        account_id: str | None = None,
        fingerprints: Iterable[str] | None = None,
    ) -> list[Alert]:
        table = AlertRow.__table__  # type: ignore[attr-defined]
        query = select(table).order_by(table.c.score.desc(), table.c.account_id, table.c.rule)
        if open_only:
            query = query.where(table.c.state != AlertState.RESOLVED.value)
        if account_id is not None:
            query = query.where(table.c.account_id == account_id)
        if fingerprints is not None:
            query = query.where(table.c.fingerprint.in_(list(fingerprints)))
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query)]

    def alert(self, ref: str) -> Alert | None:
        """An alert by id or by (a prefix of at least 6 characters of) its fingerprint."""
        table = AlertRow.__table__  # type: ignore[attr-defined]
        cond = table.c.fingerprint.startswith(ref) if len(ref) >= 6 else None
        if ref.isdigit():
            cond = table.c.id == int(ref) if cond is None else or_(cond, table.c.id == int(ref))
        if cond is None:
            return None
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).where(cond).limit(2)).all()
        return _alert(rows[0]) if len(rows) == 1 else None

    def alerts_by_ref(self, ref: str, *, prefix: bool = True, limit: int = 3) -> list[Alert]:
        """The alerts ``ref`` may name: the one whose id is ``ref`` (when it is digits) and,
        with ``prefix``, those whose fingerprint starts with ``ref``; at most ``limit``, the
        one whose fingerprint is ``ref`` first."""
        table = AlertRow.__table__  # type: ignore[attr-defined]
        conds = []
        if prefix and ref:
            conds.append(table.c.fingerprint.startswith(ref, autoescape=True))
        if ref.isdigit():
            conds.append(table.c.id == int(ref))
        if not conds:
            return []
        exact = case((table.c.fingerprint == ref, 0), else_=1)
        query = select(table).where(or_(*conds)).order_by(exact, table.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_alert(r) for r in conn.execute(query)]

    def save_alerts(self, alerts: Sequence[Alert], outbox: Sequence[NewNotification]) -> int:
        """Write alert changes and their notifications in one transaction.

        A notification whose idempotency key is already in the outbox is skipped, so two
        replicas (or a restart) deciding the same thing enqueue it once. Returns how many
        notifications were new.
        """
        table = AlertRow.__table__  # type: ignore[attr-defined]
        notes = NotificationRow.__table__  # type: ignore[attr-defined]
        rows = [_alert_row(a) for a in alerts]
        with self._tx() as conn:
            self._upsert(conn, table, rows, ["fingerprint"])
            added = 0
            for chunk_n in _chunks([n.values for n in outbox], _BATCH):
                stmt = (
                    self._insert(notes)
                    .values(chunk_n)
                    .on_conflict_do_nothing(index_elements=["idempotency_key"])
                    .returning(notes.c.id)
                )
                added += len(conn.execute(stmt).all())
        return added

    # --- silences and feedback ----------------------------------------------------------

    def add_silence(self, silence: Silence) -> Silence:
        table = SilenceRow.__table__  # type: ignore[attr-defined]
        values = silence.model_dump(exclude={"id"})
        with self._tx() as conn:
            new_id = conn.execute(table.insert().values(**values).returning(table.c.id)).scalar()
        return silence.model_copy(update={"id": new_id})

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """All silences, or those active at ``active_at``."""
        table = SilenceRow.__table__  # type: ignore[attr-defined]
        query = select(table).order_by(table.c.id)
        if active_at is not None:
            query = query.where(table.c.starts_at <= active_at, table.c.ends_at > active_at)
        with self.engine.connect() as conn:
            return [Silence.model_validate(r._asdict()) for r in conn.execute(query)]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False when there is no such active silence."""
        table = SilenceRow.__table__  # type: ignore[attr-defined]
        with self._tx() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.id == silence_id, table.c.ends_at > now)
                .values(ends_at=now)
            )
        return bool(result.rowcount)

    def add_feedback(self, feedback: Feedback) -> bool:
        """Record a verdict; False when the same person gave it on this episode already."""
        table = FeedbackRow.__table__  # type: ignore[attr-defined]
        with self._tx() as conn:
            stmt = (
                self._insert(table)
                .values(**feedback.model_dump())
                .on_conflict_do_nothing(
                    index_elements=["alert_fingerprint", "episode", "author", "verdict"]
                )
                .returning(table.c.id)
            )
            return conn.execute(stmt).first() is not None

    def feedback(self) -> list[Feedback]:
        table = FeedbackRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            return [
                Feedback.model_validate({k: v for k, v in r._asdict().items() if k != "id"})
                for r in conn.execute(select(table).order_by(table.c.id))
            ]

    def claim_notifications(
        self, now: datetime, owner: str, lease: timedelta, limit: int = 100
    ) -> list[Notification]:
        """Lease the due pending notifications to ``owner``: nobody else sends them meanwhile."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        due = (
            (table.c.status == NotificationStatus.PENDING.value)
            & (table.c.next_attempt_at <= now)
            & (or_(table.c.lease_until.is_(None), table.c.lease_until < now))
        )
        with self._tx() as conn:
            query = select(table.c.id).where(due).order_by(table.c.next_attempt_at).limit(limit)
            if self.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            ids = [r.id for r in conn.execute(query)]
            if not ids:
                return []
            conn.execute(
                update(table)
                .where(table.c.id.in_(ids), due)
                .values(lease_owner=owner, lease_until=now + lease)
            )
            rows = conn.execute(
                select(table).where(table.c.id.in_(ids), table.c.lease_owner == owner)
            ).all()
        return [_notification(r) for r in rows]

    def mark_sent(self, notification_id: int, now: datetime) -> None:
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        with self._tx() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == notification_id)
                .values(
                    status=NotificationStatus.SENT.value,
                    sent_at=now,
                    attempts=table.c.attempts + 1,
                    lease_owner=None,
                    lease_until=None,
                    last_error=None,
                )
            )

    def mark_failed(self, notification_id: int, error: str, retry_at: datetime | None) -> None:
        """Record a failed try: retry at ``retry_at``, or dead-letter when it is None."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        values: dict[str, Any] = {
            "attempts": table.c.attempts + 1,
            "last_error": error[:2000],
            "lease_owner": None,
            "lease_until": None,
        }
        if retry_at is None:
            values["status"] = NotificationStatus.DEAD.value
        else:
            values["next_attempt_at"] = retry_at
        with self._tx() as conn:
            conn.execute(update(table).where(table.c.id == notification_id).values(**values))

    def notifications(
        self, status: NotificationStatus | None = None, limit: int = 200
    ) -> list[Notification]:
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        query = select(table).order_by(table.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(table.c.status == status.value)
        with self.engine.connect() as conn:
            return [_notification(r) for r in conn.execute(query)]

    def retry_dead(self, now: datetime, ids: Iterable[int] | None = None) -> int:
        """Put dead-lettered notifications back in the queue; returns how many."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        stmt = update(table).where(table.c.status == NotificationStatus.DEAD.value)
        if ids is not None:
            stmt = stmt.where(table.c.id.in_(list(ids)))
        with self._tx() as conn:
            result = conn.execute(
                stmt.values(
                    status=NotificationStatus.PENDING.value, next_attempt_at=now, attempts=0
                )
            )
        return int(result.rowcount or 0)

    def claim_outbox(
        self, now: datetime, owner: str, lease: timedelta, limit: int = 100
    ) -> list[QueuedNotification]:
        """Lease the due notifications, and with them the fresh ones of the same groups.

        A group (``group_key``) is sent together: when one of its notifications falls due,
        its siblings not yet tried come along, so a burst of alerts becomes one message.
        """
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        free = (table.c.status == NotificationStatus.PENDING.value) & (
            or_(table.c.lease_until.is_(None), table.c.lease_until < now)
        )
        due = free & (table.c.next_attempt_at <= now)
        with self._tx() as conn:
            query = (
                select(table.c.id, table.c.group_key)
                .where(due)
                .order_by(table.c.next_attempt_at, table.c.id)
                .limit(limit)
            )
            if self.dialect == "postgresql":
                query = query.with_for_update(skip_locked=True)
            picked = conn.execute(query).all()
            ids = [r.id for r in picked]
            groups = sorted({r.group_key for r in picked if r.group_key})
            for chunk in _chunks(groups, _BATCH):
                siblings = select(table.c.id).where(
                    free, table.c.group_key.in_(chunk), table.c.attempts == 0
                )
                if self.dialect == "postgresql":
                    siblings = siblings.with_for_update(skip_locked=True)
                known = set(ids)
                ids.extend(r.id for r in conn.execute(siblings) if r.id not in known)
            if not ids:
                return []
            for chunk_ids in _chunks(ids, _BATCH):
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(chunk_ids), free)
                    .values(lease_owner=owner, lease_until=now + lease)
                )
            rows: list[Any] = []
            for chunk_ids in _chunks(ids, _BATCH):
                rows.extend(
                    conn.execute(
                        select(table)
                        .where(table.c.id.in_(chunk_ids), table.c.lease_owner == owner)
                        .order_by(table.c.id)
                    ).all()
                )
        return [
            QueuedNotification(
                notification=_notification(r),
                route=r.route,
                group_key=r.group_key,
                fallback=r.fallback,
                payload=r.payload,
            )
            for r in sorted(rows, key=lambda r: r.id)
        ]

    def defer_notifications(self, ids: Sequence[int], until: datetime) -> None:
        """Release leased notifications untried, due again at ``until`` (group_interval)."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        with self._tx() as conn:
            for chunk in _chunks(list(ids), _BATCH):
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(chunk))
                    .values(next_attempt_at=until, lease_owner=None, lease_until=None)
                )

    def group_last_sent(self, group_key: str) -> datetime | None:
        """When a notification of this group was last sent, if ever."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.max(table.c.sent_at)).where(
                    table.c.group_key == group_key,
                    table.c.status == NotificationStatus.SENT.value,
                )
            ).scalar()
        return ensure_utc(value) if isinstance(value, datetime) else None

    def fail_over(self, notification_id: int, error: str, replacement: NewNotification) -> bool:
        """Dead-letter a notification its channel keeps refusing and queue ``replacement``
        (for the fallback channel) in the same transaction; False if it was queued before."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        with self._tx() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == notification_id)
                .values(
                    status=NotificationStatus.DEAD.value,
                    attempts=table.c.attempts + 1,
                    last_error=error[:2000],
                    lease_owner=None,
                    lease_until=None,
                )
            )
            stmt = (
                self._insert(table)
                .values(replacement.values)
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(table.c.id)
            )
            return conn.execute(stmt).first() is not None

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    def signal_counts(self) -> dict[str, int]:
        """Active signals per kind."""
        table = SignalRow.__table__  # type: ignore[attr-defined]
        query = (
            select(table.c.kind, func.count())
            .where(table.c.cleared_at.is_(None))
            .group_by(table.c.kind)
        )
        with self.engine.connect() as conn:
            return {str(kind): int(n) for kind, n in conn.execute(query)}

    def alert_counts(self) -> dict[tuple[str, str, bool], int]:
        """Alerts per (state, severity, muted)."""
        table = AlertRow.__table__  # type: ignore[attr-defined]
        muted = table.c.muted_by.is_not(None)
        query = select(table.c.state, table.c.severity, muted, func.count()).group_by(
            table.c.state, table.c.severity, muted
        )
        with self.engine.connect() as conn:
            return {(str(st), str(sev), bool(m)): int(n) for st, sev, m, n in conn.execute(query)}

    def outbox_counts(self) -> dict[str, int]:
        """How many notifications are pending, sent and dead-lettered."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        counts = {s.value: 0 for s in NotificationStatus}
        with self.engine.connect() as conn:
            for status, n in conn.execute(
                select(table.c.status, func.count()).group_by(table.c.status)
            ):
                counts[str(status)] = int(n)
        return counts

    def notification_events(
        self, since: datetime, until: datetime
    ) -> list[tuple[str, str, datetime]]:
        """(alert fingerprint, event, created_at) of the notifications created in a window."""
        table = NotificationRow.__table__  # type: ignore[attr-defined]
        query = (
            select(table.c.alert_fingerprint, table.c.event, table.c.created_at)
            .where(table.c.created_at >= since, table.c.created_at < until)
            .distinct()
        )
        with self.engine.connect() as conn:
            return [(r[0], r[1], ensure_utc(r[2])) for r in conn.execute(query)]

    # --- shards: cycles of a sharded watcher run (swanwatch/shards.py) ------------------

    def apply_queue_schema(self, schema: str) -> bool:
        """Install the task queue's schema (procrastinate's) unless it is there; True when
        this call installed it. PostgreSQL only; replicas racing here take turns."""
        if self.dialect != "postgresql":
            raise StoreError("the task queue needs a PostgreSQL store")
        try:
            with self.engine.begin() as conn:
                return apply_queue_schema(conn, schema)
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
        cycles, runs = _SHARD_CYCLES, _SHARD_RUNS
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
                return _shard_cycle(row), False
            conn.execute(
                cycles.insert().values(
                    instance=instance, cycle_id=cycle_id, shards=shards, started_at=now
                )
            )
            # record_run creates the status row on a first run: create it here, once, so
            # that the first shards, finishing together on several machines, only update it.
            status = WatcherStatusRow.__table__  # type: ignore[attr-defined]
            conn.execute(
                self._insert(status)
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
        return ShardCycle(instance, cycle_id, shards, ensure_utc(now), None), True

    def set_shard_job(self, instance: str, cycle_id: str, shard: int, job_id: int) -> None:
        """Remember the queue's job that carries a shard."""
        runs = _SHARD_RUNS
        with self._tx() as conn:
            conn.execute(
                update(runs)
                .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
                .where(runs.c.shard == shard, runs.c.job_id.is_(None))
                .values(job_id=job_id)
            )

    def shard_runs(self, instance: str, cycle_id: str) -> list[ShardRun]:
        """The shards of one cycle, by shard number."""
        runs = _SHARD_RUNS
        query = (
            select(runs)
            .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
            .order_by(runs.c.shard)
        )
        with self.engine.connect() as conn:
            return [_shard_run(r) for r in conn.execute(query)]

    def shard_cycles(self, instance: str | None = None, limit: int = 50) -> list[ShardCycle]:
        """Recent cycles, newest first."""
        cycles = _SHARD_CYCLES
        query = select(cycles).order_by(cycles.c.started_at.desc()).limit(limit)
        if instance is not None:
            query = query.where(cycles.c.instance == instance)
        with self.engine.connect() as conn:
            return [_shard_cycle(r) for r in conn.execute(query)]

    def claim_shard(
        self, instance: str, cycle_id: str, shard: int, job_id: int, now: datetime
    ) -> int | None:
        """Start an attempt at a shard for the queue's job ``job_id``: the attempt number,
        or None when the shard must not run (finished already, its cycle closed, or it
        belongs to another job). A retry of the same job, after a failure or a dead
        worker, may claim it again."""
        runs = _SHARD_RUNS
        with self._tx() as conn:
            row = conn.execute(
                update(runs)
                .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
                .where(runs.c.shard == shard, runs.c.state.in_(("queued", "running", "retrying")))
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
        runs = _SHARD_RUNS
        finished = state != "retrying"
        values: dict[str, Any] = {"state": state, "signals": signals, "error": error}
        if finished:
            values["finished_at"] = now
            values["completions"] = runs.c.completions + 1
        with self._tx() as conn:
            result = conn.execute(
                update(runs)
                .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
                .where(runs.c.shard == shard, runs.c.state.in_(("queued", "running", "retrying")))
                .values(**values)
            )
        return bool(result.rowcount)

    def close_shard_cycle(
        self, instance: str, cycle_id: str, now: datetime, *, unfinished_error: str
    ) -> list[int]:
        """Close a cycle; shards still unfinished become failed with ``unfinished_error``.
        Returns those shards' numbers."""
        cycles, runs = _SHARD_CYCLES, _SHARD_RUNS
        with self._tx() as conn:
            failed = [
                int(r[0])
                for r in conn.execute(
                    update(runs)
                    .where(runs.c.instance == instance, runs.c.cycle_id == cycle_id)
                    .where(runs.c.state.in_(("queued", "running", "retrying")))
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

    # --- the risk board (swanwatch/board.py) --------------------------------------------

    def feedback_for(self, fingerprints: Iterable[str]) -> list[Feedback]:
        """The verdicts given on the alerts with these fingerprints, oldest first."""
        wanted = list(dict.fromkeys(fingerprints))
        table = FeedbackRow.__table__  # type: ignore[attr-defined]
        out: list[Feedback] = []
        with self.engine.connect() as conn:
            for chunk in _chunks(wanted, _BATCH):
                query = (
                    select(table)
                    .where(table.c.alert_fingerprint.in_(list(chunk)))
                    .order_by(table.c.id)
                )
                out.extend(
                    Feedback.model_validate({k: v for k, v in r._asdict().items() if k != "id"})
                    for r in conn.execute(query)
                )
        return out


# --- helpers ----------------------------------------------------------------------------


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, poolclass=NullPool, connect_args={"timeout": 30, "check_same_thread": False}
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return create_engine(url, pool_pre_ping=True)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _case_cleared(table: Any, value: Any) -> Any:
    from sqlalchemy import case

    return case((table.c.cleared_at.is_not(None), value), else_=None)


def _stored_signal(r: Any) -> StoredSignal:
    return StoredSignal(
        account_id=r.account_id,
        kind=r.kind,
        key=r.key,
        strength=r.strength,
        observed_at=r.observed_at,
        summary=r.summary,
        evidence=r.evidence or {},
        half_life_days=r.half_life_days,
        watcher=r.watcher,
        first_seen=r.first_seen,
        last_seen=r.last_seen,
        cleared_at=r.cleared_at,
    )


def _alert(r: Any) -> Alert:
    return Alert(
        fingerprint=r.fingerprint,
        account_id=r.account_id,
        rule=r.rule,
        title=r.title,
        severity=Severity(r.severity),
        score=r.score,
        state=AlertState(r.state),
        contributions=tuple(Contribution.model_validate(c) for c in r.contributions or ()),
        why_now=tuple(r.why_now or ()),
        play=tuple(r.play or ()),
        at_stake=r.at_stake or {},
        episode=r.episode,
        started_at=r.started_at,
        updated_at=r.updated_at,
        resolved_at=r.resolved_at,
        clear_since=r.clear_since,
        snoozed_until=r.snoozed_until,
        last_notified_at=r.last_notified_at,
        last_notified_severity=Severity(r.last_notified_severity)
        if r.last_notified_severity
        else None,
        notify_count=r.notify_count,
        notified_signals=tuple(r.notified_signals or ()),
        muted_by=r.muted_by,
        acted_by=r.acted_by,
        flaps=r.flaps,
        id=r.id,
    )


def _alert_row(a: Alert) -> dict[str, Any]:
    row = a.model_dump(mode="json", exclude={"id"})
    for name in (
        "started_at",
        "updated_at",
        "resolved_at",
        "clear_since",
        "snoozed_until",
        "last_notified_at",
    ):
        row[name] = getattr(a, name)
    row["contributions"] = [c.model_dump(mode="json") for c in a.contributions]
    return row


def _notification(r: Any) -> Notification:
    return Notification(
        id=r.id,
        idempotency_key=r.idempotency_key,
        alert_fingerprint=r.alert_fingerprint,
        account_id=r.account_id,
        channel=r.channel,
        event=r.event,
        severity=Severity(r.severity),
        title=r.title,
        body=r.body,
        status=NotificationStatus(r.status),
        attempts=r.attempts,
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        created_at=r.created_at,
        sent_at=r.sent_at,
    )


__all__ = ["NewNotification", "QueuedNotification", "SignalChanges", "Store", "WatcherStatus"]


# --- shards: tables and helpers ----------------------------------------------------------

_SHARD_LOCK = 0x5357_5348  # with hashtext(instance): serialises opening an instance's cycle
_SHARD_METADATA = MetaData()
_SHARD_CYCLES = Table(
    "shard_cycles",
    _SHARD_METADATA,
    Column("instance", String(200), primary_key=True),
    Column("cycle_id", String(64), primary_key=True),
    Column("shards", Integer, nullable=False),
    Column("started_at", UTCDateTime(timezone=True), nullable=False),
    Column("finished_at", UTCDateTime(timezone=True), nullable=True),
)
_SHARD_RUNS = Table(
    "shard_runs",
    _SHARD_METADATA,
    Column("instance", String(200), primary_key=True),
    Column("cycle_id", String(64), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("completions", Integer, nullable=False, server_default="0"),
    Column("job_id", BigInteger, nullable=True),
    Column("signals", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Column("started_at", UTCDateTime(timezone=True), nullable=True),
    Column("finished_at", UTCDateTime(timezone=True), nullable=True),
)


@dataclass(frozen=True)
class ShardCycle:
    """One sharded run of a watcher instance: open until every shard is finished."""

    instance: str
    cycle_id: str
    shards: int
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True)
class ShardRun:
    """One shard of a cycle: ``queued``, ``running``, ``retrying``, ``done`` or ``failed``;
    ``completions`` counts how often it was finished (1 once finished, by construction)."""

    shard: int
    state: str
    attempts: int
    completions: int
    job_id: int | None
    signals: int
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def _shard_cycle(r: Any) -> ShardCycle:
    return ShardCycle(
        instance=r.instance,
        cycle_id=r.cycle_id,
        shards=int(r.shards),
        started_at=ensure_utc(r.started_at),
        finished_at=ensure_utc(r.finished_at) if r.finished_at is not None else None,
    )


def _shard_run(r: Any) -> ShardRun:
    return ShardRun(
        shard=int(r.shard),
        state=str(r.state),
        attempts=int(r.attempts),
        completions=int(r.completions),
        job_id=int(r.job_id) if r.job_id is not None else None,
        signals=int(r.signals),
        error=r.error,
        started_at=ensure_utc(r.started_at) if r.started_at is not None else None,
        finished_at=ensure_utc(r.finished_at) if r.finished_at is not None else None,
    )


def apply_queue_schema(conn: Connection, schema: str) -> bool:
    """Run the queue's schema script on ``conn`` unless its jobs table exists (PostgreSQL;
    under the migration lock, so concurrent replicas apply it once). True when applied."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
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
