"""Signals by fingerprint, raised and cleared run by run; and the accounts a watcher could
not judge (unknowns)."""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, case, cast, delete, func, select, type_coerce, update
from sqlalchemy.engine import Connection

from swanwatch.clock import ensure_utc
from swanwatch.model import JSON, ActiveSignal, Signal, StoredSignal, Unknown, storable
from swanwatch.store.base import StoreBase, among, chunks, driver_rows, upsert
from swanwatch.store.runs import write_state
from swanwatch.store.tables import SIGNALS, UNKNOWNS
from swanwatch.store.types import sqlite_instants

#: Columns a later sighting of a signal leaves as they are.
_KEEP = frozenset({"fingerprint", "first_seen", "watcher", "account_id", "kind", "key"})


@dataclass(frozen=True)
class SignalChanges:
    """What storing a run's signals changed: fingerprints raised (new or back) and cleared."""

    raised: tuple[str, ...]
    cleared: tuple[str, ...]
    #: The kind of each cleared signal, in the same order (for the metrics).
    cleared_kinds: tuple[str, ...] = ()

    def counts(self) -> tuple[int, int]:
        return len(self.raised), len(self.cleared)


@dataclass(frozen=True)
class Findings:
    """What one watcher run found, stored together (:meth:`SignalsStore.record_findings`)."""

    watcher: str
    now: datetime
    #: The run's signals; None when the run was held (a source it needs is unhealthy):
    #: its signals are then kept as they are, not cleared, save the expired ones.
    signals: Sequence[Signal] | None
    #: (account id, key, reason) of each account the run could not judge.
    unknowns: Sequence[tuple[str, str, str]] = ()
    #: The watcher state's changed values and deleted keys.
    state: tuple[dict[str, JSON], frozenset[str]] = ({}, frozenset())
    #: The account ids whose signals the run speaks for (None: all the watcher's).
    scope: Sequence[str] | None = None
    #: Account ids whose signals are kept though the run did not yield them again
    #: (accounts the accounts source stopped listing, not yet retired).
    keep: Sequence[str] = ()
    #: The account ids whose unknowns the run replaces (None: all the watcher's).
    unknown_scope: Sequence[str] | None = None
    #: Kept signals observed before this are cleared: a finding older than the watcher's
    #: look-back is not kept alive (those of ``scope`` for a held run, of ``keep`` else).
    expire_before: datetime | None = None


#: Rows fetched at a time by the reads that stream (:meth:`SignalsStore.each_signal`).
_YIELD_PER = 2_000


class SignalsStore(StoreBase):
    """Signals and unknowns."""

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
        with self._tx() as conn:
            return write_signals(conn, watcher, signals, now, scope)

    def record_findings(self, found: Findings) -> SignalChanges:
        """Store a run's signals, unknowns and state in one transaction: all or nothing."""
        with self._tx() as conn:
            if found.signals is not None:
                changes = write_signals(
                    conn, found.watcher, found.signals, found.now, found.scope, found.keep
                )
                kept: Sequence[str] | None = found.keep
            else:
                changes, kept = SignalChanges(raised=(), cleared=()), found.scope
            if found.expire_before is not None and (kept is None or kept):
                expired = expire_signals(conn, found.watcher, found.expire_before, kept)
                changes = SignalChanges(
                    raised=changes.raised,
                    cleared=changes.cleared + expired.cleared,
                    cleared_kinds=changes.cleared_kinds + expired.cleared_kinds,
                )
            write_unknowns(conn, found.watcher, found.unknowns, found.now, found.unknown_scope)
            changed, deleted = found.state
            if changed or deleted:
                write_state(conn, found.watcher, changed, deleted, found.now)
        return changes

    def signals(
        self, *, account_id: str | None = None, active_only: bool = True
    ) -> list[StoredSignal]:
        return list(self.each_signal(account_id=account_id, active_only=active_only))

    def each_signal(
        self, *, account_id: str | None = None, active_only: bool = True
    ) -> Generator[StoredSignal, None, None]:
        """The signals :meth:`signals` lists, read and made a few thousand at a time: a
        list command writes each as it comes, and a book's million signals are never all
        held (`signals list` over 1,000,000: 73 MiB at its peak, 1.9 GB before)."""
        query = select(SIGNALS).order_by(SIGNALS.c.account_id, SIGNALS.c.kind, SIGNALS.c.key)
        if account_id is not None:
            query = query.where(SIGNALS.c.account_id == account_id)
        if active_only:
            query = query.where(SIGNALS.c.cleared_at.is_(None))
        validate = StoredSignal.model_validate
        # The result closed before its connection, however the reader stops: PostgreSQL's
        # server-side cursor with it.
        with (
            self._read() as conn,
            conn.execution_options(yield_per=_YIELD_PER).execute(query) as rows,
        ):
            for row in rows:
                yield validate(row, from_attributes=True)

    def active_signals(self, account_ids: Sequence[str]) -> list[ActiveSignal]:
        """The active signals of these accounts, as light records, account by account: a
        correlation pass reads the book this way, one account batch at a time."""
        table = SIGNALS
        sqlite = self.dialect == "sqlite"
        # Raw text where the driver would parse: the instant (SQLite's text, parsed here
        # in C) and the evidence (parsed only if a rule looks at it).
        observed = type_coerce(table.c.observed_at, String) if sqlite else table.c.observed_at
        query = (
            select(
                table.c.fingerprint,
                table.c.watcher,
                table.c.account_id,
                table.c.kind,
                table.c.key,
                table.c.strength,
                observed,
                table.c.summary,
                cast(table.c.evidence, Text),
                table.c.half_life_days,
            )
            .where(
                table.c.cleared_at.is_(None), among(table.c.account_id, account_ids, self.dialect)
            )
            # By account, as the account index gives them: an account's signals are put in
            # order by assessment (heaviest first), so a sort here would be work twice.
            .order_by(table.c.account_id)
        )
        with self._read() as conn:
            rows = driver_rows(conn, query)
        if sqlite:
            parse = sqlite_instants()
            return [
                ActiveSignal(fp, w, a, k, key, st, parse(at), su, ev, hl)
                for fp, w, a, k, key, st, at, su, ev, hl in rows
            ]
        return [
            ActiveSignal(fp, w, a, k, key, st, ensure_utc(at), su, ev, hl)
            for fp, w, a, k, key, st, at, su, ev, hl in rows
        ]

    def active_signal_count(self) -> int:
        """How many signals are active: what a correlation pass has to weigh."""
        query = select(func.count()).select_from(SIGNALS).where(SIGNALS.c.cleared_at.is_(None))
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def signal_counts(self) -> dict[str, int]:
        """Active signals per kind."""
        query = (
            select(SIGNALS.c.kind, func.count())
            .where(SIGNALS.c.cleared_at.is_(None))
            .group_by(SIGNALS.c.kind)
        )
        with self._read() as conn:
            return {str(kind): int(n) for kind, n in conn.execute(query)}

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
        with self._tx() as conn:
            write_unknowns(conn, watcher, unknowns, now, scope)

    def unknowns(self, account_id: str | None = None) -> list[Unknown]:
        query = select(UNKNOWNS).order_by(UNKNOWNS.c.account_id, UNKNOWNS.c.watcher)
        if account_id is not None:
            query = query.where(UNKNOWNS.c.account_id == account_id)
        with self._read() as conn:
            return [Unknown.model_validate(r, from_attributes=True) for r in conn.execute(query)]


def _upsert_signals(
    conn: Connection, watcher: str, by_fp: dict[str, Signal], now: datetime
) -> None:
    rows = [
        {
            **s.model_dump(exclude={"watcher"}),
            "fingerprint": fp,
            "watcher": watcher,
            "first_seen": now,
            "last_seen": now,
            "cleared_at": None,
        }
        for fp, s in by_fp.items()
    ]

    upsert(conn, SIGNALS, rows, ["fingerprint"], _signal_updates)


def _signal_updates(excluded: Any, columns: tuple[str, ...]) -> dict[str, Any]:
    """A signal seen again: its facts as written now, its identity and first_seen kept."""
    return {
        **{c: excluded[c] for c in columns if c not in _KEEP},
        # A signal that comes back after clearing starts a new first_seen.
        "first_seen": func.coalesce(
            case((SIGNALS.c.cleared_at.is_not(None), excluded.first_seen), else_=None),
            SIGNALS.c.first_seen,
        ),
    }


def _within(conn: Connection, fingerprints: list[str], scope: set[str]) -> list[str]:
    """The fingerprints whose account is in ``scope``."""
    owners: dict[str, str] = {}
    for chunk in chunks(fingerprints):
        owners.update(
            (r.fingerprint, r.account_id)
            for r in conn.execute(
                select(SIGNALS.c.fingerprint, SIGNALS.c.account_id).where(
                    SIGNALS.c.fingerprint.in_(chunk)
                )
            )
        )
    return [fp for fp in fingerprints if owners.get(fp) in scope]


def write_signals(
    conn: Connection,
    watcher: str,
    signals: Sequence[Signal],
    now: datetime,
    scope: Iterable[str] | None,
    keep: Iterable[str] = (),
) -> SignalChanges:
    """:meth:`SignalsStore.record_signals` inside the caller's transaction; the signals of
    the accounts in ``keep`` are not cleared."""
    by_fp = {s.fingerprint: s for s in signals}
    earlier = conn.execute(
        select(SIGNALS.c.fingerprint, SIGNALS.c.cleared_at, SIGNALS.c.kind).where(
            SIGNALS.c.watcher == watcher
        )
    ).all()
    before = {r.fingerprint: r.cleared_at for r in earlier}
    kinds = {r.fingerprint: r.kind for r in earlier}
    _upsert_signals(conn, watcher, by_fp, now)
    gone = [fp for fp, cleared in before.items() if cleared is None and fp not in by_fp]
    if scope is not None and gone:
        gone = _within(conn, gone, set(scope))
    kept = set(keep)
    if kept and gone:
        spared = set(_within(conn, gone, kept))
        gone = [fp for fp in gone if fp not in spared]
    for chunk in chunks(gone):
        conn.execute(update(SIGNALS).where(SIGNALS.c.fingerprint.in_(chunk)).values(cleared_at=now))
    raised = tuple(fp for fp in by_fp if fp not in before or before[fp] is not None)
    return SignalChanges(
        raised=raised, cleared=tuple(gone), cleared_kinds=tuple(kinds[fp] for fp in gone)
    )


def expire_signals(
    conn: Connection, watcher: str, before: datetime, scope: Iterable[str] | None
) -> SignalChanges:
    """Clear the watcher's active signals observed before ``before`` (within ``scope``)."""
    query = select(SIGNALS.c.fingerprint, SIGNALS.c.kind, SIGNALS.c.account_id).where(
        SIGNALS.c.watcher == watcher,
        SIGNALS.c.cleared_at.is_(None),
        SIGNALS.c.observed_at < before,
    )
    allowed = None if scope is None else set(scope)
    old = [r for r in conn.execute(query) if allowed is None or r.account_id in allowed]
    for chunk in chunks([r.fingerprint for r in old]):
        conn.execute(
            update(SIGNALS).where(SIGNALS.c.fingerprint.in_(chunk)).values(cleared_at=before)
        )
    return SignalChanges(
        raised=(),
        cleared=tuple(r.fingerprint for r in old),
        cleared_kinds=tuple(r.kind for r in old),
    )


def write_unknowns(
    conn: Connection,
    watcher: str,
    unknowns: Sequence[tuple[str, str, str]],
    now: datetime,
    scope: Iterable[str] | None,
) -> None:
    """:meth:`SignalsStore.record_unknowns` inside the caller's transaction."""
    scoped = None if scope is None else sorted(set(scope))
    allowed = None if scoped is None else set(scoped)
    # Their text as a store keeps it (a NUL byte, which PostgreSQL refuses, as U+FFFD).
    latest = {
        (storable(a), storable(k)): storable(reason)
        for a, k, reason in unknowns
        if allowed is None or a in allowed
    }
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
    upsert(conn, UNKNOWNS, rows, ["watcher", "account_id", "key"], _unknown_updates)
    stale = (UNKNOWNS.c.watcher == watcher) & (UNKNOWNS.c.last_seen < now)
    if scoped is None:
        conn.execute(delete(UNKNOWNS).where(stale))
    for chunk in chunks(scoped or []):
        conn.execute(delete(UNKNOWNS).where(stale, UNKNOWNS.c.account_id.in_(chunk)))


def _unknown_updates(excluded: Any, _columns: tuple[str, ...]) -> dict[str, Any]:
    """An unknown seen again: its reason now, and when last seen (first_seen stays)."""
    return {"reason": excluded.reason, "last_seen": excluded.last_seen}
