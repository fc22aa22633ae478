"""The outbox: notifications stored before they are sent, claimed by one sender at a time.

A sender claims due notifications for a while (a lease); each claim counts up the
notification's ``lease_token``, so the owner and the token together name one claim (a
fencing token). The sender renews its claims while it works (:meth:`OutboxStore.renew_claims`,
which also tells it which claims it still holds). The outcome of a send (sent, failed,
handed to the fallback, released untried) is recorded only under the claim that still holds
the notification: a sender whose lease ran out and was taken over learns that it lost it
(False) and changes nothing.

A claim is free for the taking when it has run out, or when it is the claimer's own: an
owner names one sender that runs one pass at a time, so its own claim still standing when
it starts a pass was left by a pass that gave up half-way (the store failed under it), and
it takes it up again at once rather than a lease later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import cache
from itertools import groupby
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import bindparam, func, or_, select, update
from sqlalchemy.engine import Connection

from swanwatch.model import (
    AlertNotice,
    GroupKind,
    NoticePayload,
    Notification,
    NotificationStatus,
    OutboxEntry,
)
from swanwatch.store.base import StoreBase, chunks, execute_rows, insert
from swanwatch.store.core_tables import NOTIFICATIONS
from swanwatch.store.types import JSONText

_N = NOTIFICATIONS
#: Longest error text kept on a notification.
_MAX_ERROR = 2000


class OutboxStore(StoreBase):
    """Queue, claim, settle and list notifications."""

    def claim_outbox(
        self, now: datetime, owner: str, lease: timedelta, limit: int = 100
    ) -> list[Notification]:
        """Lease the due notifications to ``owner`` until ``now + lease``, and with them the
        fresh ones of the same groups; each comes back with its claim (owner and token).

        A group (kind and key) is sent together: when one of its notifications falls due,
        its siblings not yet tried come along, so a burst of alerts becomes one message.
        """
        with self._tx() as conn:
            picked = self._due(conn, now, owner, limit)
            ids = [r.id for r in picked]
            known = set(ids)
            ids.extend(i for i in self._siblings(conn, now, owner, picked) if i not in known)
            rows: list[Any] = []
            for chunk in chunks(ids):
                rows.extend(
                    conn.execute(
                        update(_N)
                        .where(_N.c.id.in_(chunk), _free(now, owner))
                        .values(
                            lease_owner=owner,
                            lease_until=now + lease,
                            lease_token=_N.c.lease_token + 1,
                        )
                        .returning(*_N.c)
                    ).all()
                )
        return sorted((_notification(r) for r in rows), key=lambda n: n.id)

    def renew_claims(
        self, held: Sequence[Notification], now: datetime, lease: timedelta
    ) -> set[int]:
        """Extend the claims of ``held`` that still stand to ``now + lease``; the ids of
        those (the others were settled, or run out and taken over: not to be sent)."""
        kept: set[int] = set()
        claims = sorted(
            ((n.lease_owner, n.lease_token, n.id) for n in held if n.lease_owner is not None),
            key=lambda c: (c[0] or "", c[1], c[2]),
        )
        with self._tx() as conn:
            for (owner, token), same in groupby(claims, key=lambda c: (c[0], c[1])):
                for chunk in chunks([c[2] for c in same]):
                    result = conn.execute(
                        update(_N)
                        .where(
                            _N.c.id.in_(chunk),
                            _N.c.status == NotificationStatus.PENDING.value,
                            _N.c.lease_owner == owner,
                            _N.c.lease_token == token,
                        )
                        .values(lease_until=now + lease)
                        .returning(_N.c.id)
                    )
                    kept.update(int(r[0]) for r in result)
        return kept

    def mark_sent(self, held: Notification, now: datetime) -> bool:
        """Record that ``held`` (as claimed) was sent; False when its claim was lost."""
        return self._settle(
            held,
            status=NotificationStatus.SENT.value,
            sent_at=now,
            attempts=_N.c.attempts + 1,
            last_error=None,
        )

    def mark_failed(self, held: Notification, error: str, retry_at: datetime | None) -> bool:
        """Record a failed try of ``held``: retry at ``retry_at``, or dead-letter when it is
        None. False when its claim was lost."""
        values: dict[str, Any] = {"attempts": _N.c.attempts + 1, "last_error": error[:_MAX_ERROR]}
        if retry_at is None:
            values["status"] = NotificationStatus.DEAD.value
        else:
            values["next_attempt_at"] = retry_at
        return self._settle(held, **values)

    def mark_withdrawn(self, held: Notification, why: str) -> bool:
        """Record that ``held`` (as claimed) will not be sent, and why; False when its claim
        was lost."""
        return self._settle(
            held, status=NotificationStatus.WITHDRAWN.value, last_error=why[:_MAX_ERROR]
        )

    def fail_over(self, held: Notification, error: str, replacement: OutboxEntry) -> bool:
        """Dead-letter ``held``, which its channel keeps refusing, and queue ``replacement``
        (for the fallback channel) in the same transaction. False when its claim was lost:
        then nothing changes."""
        with self._tx() as conn:
            settled = self._settle_on(
                conn,
                held,
                status=NotificationStatus.DEAD.value,
                attempts=_N.c.attempts + 1,
                last_error=error[:_MAX_ERROR],
            )
            if settled:
                enqueue(conn, [replacement])
        return settled

    def release(self, held: Sequence[Notification], until: datetime | None = None) -> int:
        """Give claimed notifications back untried: due again at ``until`` (group_interval),
        or, without it, when they were due anyway (a sender stopping before it sent them:
        any sender may take them at once). Those whose claim was lost stay as they are.
        Returns how many were given back."""
        values = {} if until is None else {"next_attempt_at": until}
        with self._tx() as conn:
            return sum(self._settle_on(conn, note, **values) for note in held)

    def group_last_sent(self, kind: GroupKind, key: str) -> datetime | None:
        """When a notification of this group was last sent, if ever."""
        query = select(func.max(_N.c.sent_at)).where(
            _N.c.group_kind == kind.value,
            _N.c.group_key == key,
            _N.c.status == NotificationStatus.SENT.value,
        )
        with self._read() as conn:
            value = conn.execute(query).scalar()
        return value if isinstance(value, datetime) else None

    def notifications(
        self, status: NotificationStatus | None = None, limit: int = 200
    ) -> list[Notification]:
        """The newest notifications first, all or in one status."""
        query = select(_N).order_by(_N.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(_N.c.status == status.value)
        with self._read() as conn:
            return [_notification(r) for r in conn.execute(query)]

    def retry_dead(self, now: datetime, ids: Iterable[int] | None = None) -> int:
        """Put dead-lettered notifications back in the queue; returns how many."""
        stmt = update(_N).where(_N.c.status == NotificationStatus.DEAD.value)
        if ids is not None:
            stmt = stmt.where(_N.c.id.in_(list(ids)))
        with self._tx() as conn:
            result = conn.execute(
                stmt.values(
                    status=NotificationStatus.PENDING.value, next_attempt_at=now, attempts=0
                )
            )
        return int(result.rowcount or 0)

    def outbox_counts(self) -> dict[str, int]:
        """How many notifications are pending, sent and dead-lettered."""
        counts = {s.value: 0 for s in NotificationStatus}
        query = select(_N.c.status, func.count()).group_by(_N.c.status)
        with self._read() as conn:
            for status, n in conn.execute(query):
                counts[str(status)] = int(n)
        return counts

    def notification_events(
        self, since: datetime, until: datetime
    ) -> list[tuple[str, str, datetime]]:
        """(alert fingerprint, event, created_at) of the notifications created in a window."""
        query = (
            select(_N.c.alert_fingerprint, _N.c.event, _N.c.created_at)
            .where(_N.c.created_at >= since, _N.c.created_at < until)
            .distinct()
        )
        with self._read() as conn:
            return [(str(r[0]), str(r[1]), r[2]) for r in conn.execute(query)]

    # --- claims -----------------------------------------------------------------------

    def _due(self, conn: Connection, now: datetime, owner: str, limit: int) -> list[Any]:
        """The due notifications free for ``owner``: id, group kind and key."""
        query = (
            select(_N.c.id, _N.c.group_kind, _N.c.group_key)
            .where(_free(now, owner), _N.c.next_attempt_at <= now)
            .order_by(_N.c.next_attempt_at, _N.c.id)
            .limit(limit)
        )
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return list(conn.execute(query).all())

    def _siblings(
        self, conn: Connection, now: datetime, owner: str, picked: Sequence[Any]
    ) -> list[int]:
        """The untried notifications free for ``owner`` in the groups of ``picked``."""
        groups: dict[str, set[str]] = {}
        for r in picked:
            if r.group_kind != GroupKind.NONE.value:
                groups.setdefault(r.group_kind, set()).add(r.group_key)
        out: list[int] = []
        for kind, keys in sorted(groups.items()):
            for chunk in chunks(sorted(keys)):
                query = select(_N.c.id).where(
                    _free(now, owner),
                    _N.c.group_kind == kind,
                    _N.c.group_key.in_(chunk),
                    _N.c.attempts == 0,
                )
                if self.dialect == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                out.extend(r.id for r in conn.execute(query))
        return out

    def _settle(self, held: Notification, **values: Any) -> bool:
        with self._tx() as conn:
            return self._settle_on(conn, held, **values)

    def _settle_on(self, conn: Connection, held: Notification, **values: Any) -> bool:
        """Update ``held`` and end its claim, if the claim still holds it; whether it did."""
        if held.lease_owner is None:
            return False  # never claimed: nobody may record an outcome for it
        result = conn.execute(
            update(_N)
            .where(
                _N.c.id == held.id,
                _N.c.status == NotificationStatus.PENDING.value,
                _N.c.lease_owner == held.lease_owner,
                _N.c.lease_token == held.lease_token,
            )
            .values(**values, lease_owner=None, lease_until=None)
        )
        return bool(result.rowcount)


def enqueue(conn: Connection, entries: Sequence[OutboxEntry]) -> int:
    """Queue ``entries`` on ``conn`` (in the caller's transaction), skipping those whose
    idempotency key is queued already; returns how many were new."""
    return enqueue_rows(conn, outbox_rows(entries))


def outbox_rows(
    entries: Iterable[OutboxEntry], alert_texts: Mapping[int, str] | None = None
) -> list[dict[str, Any]]:
    """The rows :func:`enqueue_rows` writes, built apart from it: a correlation pass builds
    them before its transaction, so its Python work holds no write lock.

    ``alert_texts`` holds the JSON text of alerts the caller has written already, by the
    ``id()`` of the alert (a pass's notices carry the very alerts it saves): a payload of
    one of those takes that text rather than serializing the alert again (an alert is most
    of its notice's payload, and a first pass over 100,000 accounts queues 66,000)."""
    texts = alert_texts or {}
    return [_row(e, texts) for e in entries]


def enqueue_rows(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """:func:`enqueue` of rows :func:`outbox_rows` built."""
    if not rows:
        return 0
    # One statement compiled once, executed by the driver for all rows; its count is
    # those not queued before.
    stmt = (
        insert(conn, _N)
        .values(payload=bindparam("payload", type_=JSONText()))
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
    )
    return execute_rows(conn, stmt, rows)


def _row(entry: OutboxEntry, alert_texts: Mapping[int, str]) -> dict[str, Any]:
    """An entry as a row; its payload (the alert, for the renderer) as JSON text from
    pydantic's serializer, bound as it is: dumping it to values and then those with
    ``json.dumps`` cost twice as much in a correlation pass that queues many."""
    return {
        **entry.model_dump(mode="json", exclude={"due_at", "created_at", "payload"}),
        "payload": _payload_text(entry.payload, alert_texts),
        "created_at": entry.created_at,
        "next_attempt_at": entry.due_at,
        "status": NotificationStatus.PENDING.value,
        "attempts": 0,
    }


def _payload_text(payload: NoticePayload, alert_texts: Mapping[int, str]) -> str:
    """A payload as JSON text; an alert's notice with the alert's text given, when given."""
    dump = _payload_json().dump_json
    known = alert_texts.get(id(payload.alert)) if isinstance(payload, AlertNotice) else None
    if known is None:
        return dump(payload).decode()
    rest = dump(payload, exclude={"alert"}).decode()  # '{"kind":"alert",...}'
    return '{"alert":' + known + "," + rest[1:]


@cache
def _payload_json() -> TypeAdapter[NoticePayload]:
    """The payload's serializer, as the outbox entry's field declares it."""
    return TypeAdapter(NoticePayload)


def _free(now: datetime, owner: str) -> Any:
    """Pending, and free for ``owner``: never leased, the lease ran out, or it is the
    owner's own claim, left by a pass of its that gave up (see the module's docstring)."""
    return (_N.c.status == NotificationStatus.PENDING.value) & or_(
        _N.c.lease_until.is_(None), _N.c.lease_until < now, _N.c.lease_owner == owner
    )


def _notification(row: Any) -> Notification:
    return Notification.model_validate(row, from_attributes=True)
