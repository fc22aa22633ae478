"""Signals by fingerprint, raised and cleared run by run; and the accounts a watcher could
not judge (unknowns)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.engine import Connection

from swanwatch.model import Signal, StoredSignal, Unknown
from swanwatch.store.base import StoreBase, chunks, upsert
from swanwatch.store.tables import SIGNALS, UNKNOWNS

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
        by_fp = {s.fingerprint: s for s in signals}
        with self._tx() as conn:
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
            for chunk in chunks(gone):
                conn.execute(
                    update(SIGNALS).where(SIGNALS.c.fingerprint.in_(chunk)).values(cleared_at=now)
                )
        raised = tuple(fp for fp in by_fp if fp not in before or before[fp] is not None)
        return SignalChanges(
            raised=raised, cleared=tuple(gone), cleared_kinds=tuple(kinds[fp] for fp in gone)
        )

    def signals(
        self, *, account_id: str | None = None, active_only: bool = True
    ) -> list[StoredSignal]:
        query = select(SIGNALS).order_by(SIGNALS.c.account_id, SIGNALS.c.kind, SIGNALS.c.key)
        if account_id is not None:
            query = query.where(SIGNALS.c.account_id == account_id)
        if active_only:
            query = query.where(SIGNALS.c.cleared_at.is_(None))
        with self.engine.connect() as conn:
            return [
                StoredSignal.model_validate(r, from_attributes=True) for r in conn.execute(query)
            ]

    def signal_counts(self) -> dict[str, int]:
        """Active signals per kind."""
        query = (
            select(SIGNALS.c.kind, func.count())
            .where(SIGNALS.c.cleared_at.is_(None))
            .group_by(SIGNALS.c.kind)
        )
        with self.engine.connect() as conn:
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
        scoped = None if scope is None else sorted(set(scope))
        allowed = None if scoped is None else set(scoped)
        latest = {(a, k): reason for a, k, reason in unknowns if allowed is None or a in allowed}
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
        with self._tx() as conn:
            upsert(
                conn,
                UNKNOWNS,
                rows,
                ["watcher", "account_id", "key"],
                lambda excluded: {"reason": excluded.reason, "last_seen": excluded.last_seen},
            )
            stale = (UNKNOWNS.c.watcher == watcher) & (UNKNOWNS.c.last_seen < now)
            if scoped is None:
                conn.execute(delete(UNKNOWNS).where(stale))
            for chunk in chunks(scoped or []):
                conn.execute(delete(UNKNOWNS).where(stale, UNKNOWNS.c.account_id.in_(chunk)))

    def unknowns(self, account_id: str | None = None) -> list[Unknown]:
        query = select(UNKNOWNS).order_by(UNKNOWNS.c.account_id, UNKNOWNS.c.watcher)
        if account_id is not None:
            query = query.where(UNKNOWNS.c.account_id == account_id)
        with self.engine.connect() as conn:
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

    def updates(excluded: Any) -> dict[str, Any]:
        return {
            **{c: excluded[c] for c in rows[0] if c not in _KEEP},
            # A signal that comes back after clearing starts a new first_seen.
            "first_seen": func.coalesce(
                case((SIGNALS.c.cleared_at.is_not(None), excluded.first_seen), else_=None),
                SIGNALS.c.first_seen,
            ),
        }

    upsert(conn, SIGNALS, rows, ["fingerprint"], updates)


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
