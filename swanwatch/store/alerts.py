"""Alerts (written with their notices in one transaction), silences and feedback.

Every write of an alert counts its ``version`` up, and the writes that matter are made only
over the version their writer read (compare-and-set): a correlation pass over the alert as
it was before a person acted is refused for that alert (:meth:`AlertsStore.save_pass`), and
so is a person's action over an alert a pass changed meanwhile (:meth:`AlertsStore.replace_alert`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import Enum
from functools import cache, lru_cache
from json.encoder import encode_basestring_ascii
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    JSON,
    Float,
    Integer,
    String,
    Text,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection

from swanwatch.facts import AlertHead, alert_digest
from swanwatch.model import Alert, AlertState, Feedback, OutboxEntry, Severity, Silence
from swanwatch.store.base import StoreBase, among, chunks, execute_rows, insert, upsert
from swanwatch.store.core_tables import ALERTS, FEEDBACK, SILENCES
from swanwatch.store.outbox import enqueue, enqueue_rows, outbox_rows
from swanwatch.store.quick import alert_json, json_as_is, sqlite_instant
from swanwatch.store.types import JSONText, UTCDateTime, sqlite_instants

#: The alert columns that hold instants (the others take the alert's JSON form).
_ALERT_TIMES = frozenset(c.name for c in ALERTS.columns if isinstance(c.type, UTCDateTime))
#: The alert columns stored as JSON.
_ALERT_JSON = frozenset(c.name for c in ALERTS.columns if isinstance(c.type, JSON))
#: The column of the digest of an alert's facts (not a field of the alert: derived from it).
_DIGEST = "facts_digest"
#: The alert's own columns (those of its fields).
_ALERT_COLUMNS = tuple(c for c in ALERTS.columns if c.name != _DIGEST)
#: The alert fields a write takes from the alert (the id and the version are the store's).
_ALERT_WRITTEN = tuple(c.name for c in _ALERT_COLUMNS if c.name not in ("id", "version"))
#: The alert columns a write sets (the key, the id and the version are the store's).
_ALERT_VALUES = tuple(
    c.name for c in ALERTS.columns if c.name not in ("id", "fingerprint", "version")
)
#: The largest id an alert can have (PostgreSQL's integer): digits beyond it name no id,
#: and are not bound as one (the database would refuse them as out of range).
_MAX_ID = 2**31 - 1


@dataclass(frozen=True)
class SavedPass:
    """What :meth:`AlertsStore.save_pass` wrote, and what it left to the next pass."""

    #: Alerts written (inserted or updated).
    written: int
    #: Fingerprints of the alerts changed since the pass read them (a person acted, say):
    #: neither they nor their notifications were written.
    refused: tuple[str, ...]
    #: Notifications new to the outbox.
    enqueued: int


class AlertsStore(StoreBase):
    """Alerts, silences and the verdicts given on alerts."""

    def alerts(
        self,
        *,
        open_only: bool = False,
        account_id: str | None = None,
        fingerprints: Iterable[str] | None = None,
    ) -> list[Alert]:
        table = ALERTS
        query = select(table).order_by(table.c.score.desc(), table.c.account_id, table.c.rule)
        if open_only:
            query = query.where(table.c.state != AlertState.RESOLVED.value)
        if account_id is not None:
            query = query.where(table.c.account_id == account_id)
        if fingerprints is not None:
            query = query.where(table.c.fingerprint.in_(list(fingerprints)))
        with self._read() as conn:
            return [Alert.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def account_alerts(self, account_ids: Sequence[str]) -> list[Alert]:
        """Every alert (open or not) of these accounts (a few thousand at most), in the
        order :meth:`alerts` gives them: what a correlation pass reconciles one account
        batch against.

        Each row is read as the JSON text of its alert (the JSON columns as they are
        stored, the rest encoded here) and validated from it in one call: parsing the
        JSON columns in Python first, then validating the parsed values, cost about three
        times as much (BENCHMARKS.md, Correlation)."""
        return self._alerts_where(among(ALERTS.c.account_id, account_ids, self.dialect))

    def alerts_of(self, fingerprints: Sequence[str]) -> list[Alert]:
        """The alerts with these fingerprints, as :meth:`account_alerts` reads them (in
        that order within each 20,000): the ones a steady pass could not settle from their
        heads (:meth:`alert_heads`). One saved without the digest of its facts (before
        migration 0011) gets it now, over the version read (no new version: the alert is
        as it was), so the next pass can settle it."""
        out: list[Alert] = []
        for chunk in chunks(fingerprints, 20_000):
            unknown: list[Alert] = []
            out.extend(
                self._alerts_where(among(ALERTS.c.fingerprint, chunk, self.dialect), unknown)
            )
            self._fill_digests(unknown)
        return out

    def _alerts_where(self, cond: Any, unknown: list[Alert] | None = None) -> list[Alert]:
        """The alerts where ``cond`` holds; those without a digest added to ``unknown``."""
        table = ALERTS
        sqlite = self.dialect == "sqlite"
        columns = [_as_text(c, sqlite) for c in _ALERT_COLUMNS]
        query = (
            select(*columns, table.c[_DIGEST])
            .where(cond)
            .order_by(table.c.score.desc(), table.c.account_id, table.c.rule)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        encode = _ALERT_TEXT if sqlite else _ALERT_VALUES_JSON
        validate = Alert.model_validate_json
        out = [validate(alert_json(row[:-1], encode)) for row in rows]
        if unknown is not None:
            unknown.extend(a for a, row in zip(out, rows, strict=True) if row[-1] is None)
        return out

    def _fill_digests(self, alerts: Sequence[Alert]) -> None:
        """Save the digest of each alert's facts that has none, if still at the version
        read (else a write since saved its own)."""
        rows = [
            {"b_fingerprint": a.fingerprint, "b_version": a.version, "b_digest": digest}
            for a in alerts
            if (digest := alert_digest(a)) is not None
        ]
        if not rows:
            return
        stmt = (
            update(ALERTS)
            .where(
                ALERTS.c.fingerprint == bindparam("b_fingerprint"),
                ALERTS.c.version == bindparam("b_version"),
                ALERTS.c[_DIGEST].is_(None),
            )
            .values({_DIGEST: bindparam("b_digest")})
        )
        with self._tx() as conn:
            conn.execute(stmt, rows)

    def alert_heads(self, account_ids: Sequence[str]) -> list[AlertHead]:
        """The heads of every alert (open or not) of these accounts, in the order of
        :meth:`account_alerts`: their lifecycle columns and the digest of their facts,
        what a steady pass settles most of them from (:func:`swanwatch.steady.decide_heads`)
        without reading the rest."""
        table = ALERTS
        sqlite = self.dialect == "sqlite"
        times = ("clear_since", "snoozed_until", "last_notified_at")
        query = (
            select(
                *(table.c[n] for n in _HEAD_FIRST),
                *(type_coerce(table.c[n], String) if sqlite else table.c[n] for n in times),
                *(table.c[n] for n in _HEAD_LAST),
            )
            .where(among(table.c.account_id, account_ids, self.dialect))
            .order_by(table.c.score.desc(), table.c.account_id, table.c.rule)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        instant = sqlite_instants() if sqlite else None
        severity = {s.value: s for s in Severity}
        state = {s.value: s for s in AlertState}
        out = []
        for fp, account, st, sev, score, clear, snoozed, told, told_sev, count, muted, v, d in rows:
            if instant is not None:
                clear = instant(clear) if clear is not None else None
                snoozed = instant(snoozed) if snoozed is not None else None
                told = instant(told) if told is not None else None
            last = severity[told_sev] if told_sev is not None else None
            out.append(
                AlertHead(
                    fp,
                    account,
                    state[st],
                    severity[sev],
                    score,
                    clear,
                    snoozed,
                    told,
                    last,
                    count,
                    muted,
                    v,
                    d,
                )
            )
        return out

    def alerting_accounts(self, *, but: str) -> list[str]:
        """The ids of the accounts with an open alert, sorted, but account ``but``."""
        table = ALERTS
        query = (
            select(table.c.account_id)
            .where(table.c.state != AlertState.RESOLVED.value, table.c.account_id != but)
            .distinct()
            .order_by(table.c.account_id)
        )
        with self._read() as conn:
            return [str(a) for a in conn.execute(query).scalars()]

    def alert(self, ref: str) -> Alert | None:
        """An alert by id or by (a prefix of at least 6 characters of) its fingerprint."""
        table = ALERTS
        cond = table.c.fingerprint.startswith(ref) if len(ref) >= 6 else None
        if _is_id(ref):
            cond = table.c.id == int(ref) if cond is None else or_(cond, table.c.id == int(ref))
        if cond is None:
            return None
        with self._read() as conn:
            rows = conn.execute(select(table).where(cond).limit(2)).all()
        return Alert.model_validate(rows[0], from_attributes=True) if len(rows) == 1 else None

    def alerts_by_ref(self, ref: str, *, prefix: bool = True, limit: int = 3) -> list[Alert]:
        """The alerts ``ref`` may name: the one whose id is ``ref`` (when it is digits) and,
        with ``prefix``, those whose fingerprint starts with ``ref``; at most ``limit``, the
        one whose fingerprint is ``ref`` first."""
        table = ALERTS
        conds = []
        if prefix and ref:
            conds.append(table.c.fingerprint.startswith(ref, autoescape=True))
        if _is_id(ref):
            conds.append(table.c.id == int(ref))
        if not conds:
            return []
        exact = case((table.c.fingerprint == ref, 0), else_=1)
        query = select(table).where(or_(*conds)).order_by(exact, table.c.id).limit(limit)
        with self._read() as conn:
            return [Alert.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def save_alerts(self, alerts: Sequence[Alert], outbox: Sequence[OutboxEntry]) -> int:
        """Write alerts as they are, whatever is on record (a seed, an import), and
        notifications, in one transaction. A correlation pass saves with :meth:`save_pass`,
        a person's action with :meth:`replace_alert`: over the version they read.

        A notification whose idempotency key is already in the outbox is skipped, so two
        replicas (or a restart) deciding the same thing enqueue it once. Returns how many
        notifications were new.
        """
        rows = [_alert_row(a) | {"version": 0} for a in alerts]
        with self._tx() as conn:
            upsert(conn, ALERTS, rows, ["fingerprint"], _overwrite)
            return enqueue(conn, outbox)

    def save_pass(
        self,
        alerts: Sequence[Alert],
        outbox: Sequence[OutboxEntry],
        read: Mapping[str, int],
        scores: tuple[date, Mapping[str, float]] | None = None,
    ) -> SavedPass:
        """Write a correlation pass's changed alerts and their notifications, in one
        transaction, each alert only over the version the pass read; with ``scores``, the
        day's scores of the accounts whose score moved, in the same transaction (one
        write a batch, not two, each waiting for SQLite's lock).

        ``read`` holds the version of every alert the pass read (fingerprint -> version);
        an alert not in it is new to the pass, and is written only if it is still absent.
        An alert written since (by a person's action, or another pass) is refused, and so
        are its notifications: the next pass decides again from what is on record now.
        The rows are locked (PostgreSQL ``FOR UPDATE``; SQLite's write transaction) from
        the comparison to the commit, so no action lands in between.
        """
        # The rows are built first: the Python work of a pass holds no write lock, so a
        # helper's pass (another process) writes meanwhile.
        built = [(a, _written_row(a)) for a in alerts]
        rows = {a.fingerprint: row for a, row in built}
        texts = {id(a): _alert_text(a, row) for a, row in built}
        queued = outbox_rows(outbox, texts)
        with self._tx() as conn:
            current = _versions(conn, sorted(rows))
            ok = [fp for fp in rows if current.get(fp) == read.get(fp)]
            refused = rows.keys() - ok
            _update_rows(conn, [(rows[fp], current[fp]) for fp in ok if fp in current])
            new = [rows[fp] | {"version": 0} for fp in ok if fp not in current]
            refused |= _insert_new(conn, new)
            enqueued = enqueue_rows(
                conn, [r for r in queued if r["alert_fingerprint"] not in refused]
            )
            if scores is not None:
                # Here, not at the top: its module imports the SQLModel tables, which the
                # quick commands reading alerts do without (tests/test_cli_startup.py).
                from swanwatch.store.history import write_scores

                write_scores(conn, *scores)
        written = len(rows) - len(refused)
        return SavedPass(written=written, refused=tuple(sorted(refused)), enqueued=enqueued)

    def replace_alert(self, alert: Alert, expected: int) -> Alert | None:
        """Write a person's change to an alert over version ``expected`` (the one they
        acted on); the alert as written, or None when it was written since (act again on
        the alert as it is now)."""
        with self._tx() as conn:
            written = _update_alerts(conn, [(alert, expected)])
        return alert.model_copy(update={"version": expected + 1}) if written else None

    def alert_counts(self) -> dict[tuple[str, str, bool], int]:
        """Alerts per (state, severity, muted)."""
        table = ALERTS
        muted = table.c.muted_by.is_not(None)
        query = select(table.c.state, table.c.severity, muted, func.count()).group_by(
            table.c.state, table.c.severity, muted
        )
        with self._read() as conn:
            return {(str(st), str(sev), bool(m)): int(n) for st, sev, m, n in conn.execute(query)}

    # --- silences -------------------------------------------------------------------

    def add_silence(self, silence: Silence) -> Silence:
        values = silence.model_dump(exclude={"id"})
        with self._tx() as conn:
            new_id = conn.execute(
                SILENCES.insert().values(**values).returning(SILENCES.c.id)
            ).scalar()
        return silence.model_copy(update={"id": new_id})

    def silences(self, *, active_at: datetime | None = None) -> list[Silence]:
        """All silences, or those active at ``active_at``."""
        table = SILENCES
        query = select(table).order_by(table.c.id)
        if active_at is not None:
            query = query.where(table.c.starts_at <= active_at, table.c.ends_at > active_at)
        with self._read() as conn:
            return [Silence.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False when there is no such active silence."""
        table = SILENCES
        with self._tx() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.id == silence_id, table.c.ends_at > now)
                .values(ends_at=now)
            )
        return bool(result.rowcount)

    # --- feedback -------------------------------------------------------------------

    def add_feedback(self, feedback: Feedback) -> bool:
        """Record a verdict; False when the same person gave it on this episode already."""
        with self._tx() as conn:
            stmt = (
                insert(conn, FEEDBACK)
                .values(**feedback.model_dump())
                .on_conflict_do_nothing(
                    index_elements=["alert_fingerprint", "episode", "author", "verdict"]
                )
                .returning(FEEDBACK.c.id)
            )
            return conn.execute(stmt).first() is not None

    def feedback(self) -> list[Feedback]:
        query = select(FEEDBACK).order_by(FEEDBACK.c.id)
        with self._read() as conn:
            return [Feedback.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def feedback_for(self, fingerprints: Iterable[str]) -> list[Feedback]:
        """The verdicts given on the alerts with these fingerprints, oldest first."""
        wanted = list(dict.fromkeys(fingerprints))
        out: list[Feedback] = []
        with self._read() as conn:
            for chunk in chunks(wanted):
                query = (
                    select(FEEDBACK)
                    .where(FEEDBACK.c.alert_fingerprint.in_(chunk))
                    .order_by(FEEDBACK.c.id)
                )
                out.extend(
                    Feedback.model_validate(r, from_attributes=True) for r in conn.execute(query)
                )
        return out


#: The columns of an alert's head (:meth:`AlertsStore.alert_heads`) before its instants,
#: and after.
_HEAD_FIRST = ("fingerprint", "account_id", "state", "severity", "score")
_HEAD_LAST = ("last_notified_severity", "notify_count", "muted_by", "version", _DIGEST)


def _is_id(ref: str) -> bool:
    """Whether ``ref`` may be an alert's id: ASCII digits, no more than :data:`_MAX_ID`
    (``isdigit`` alone takes ``²``, which ``int`` refuses)."""
    return ref.isascii() and ref.isdigit() and len(ref) <= len(str(_MAX_ID)) and int(ref) <= _MAX_ID


def _alert_row(a: Alert) -> dict[str, Any]:
    """An alert as a row: datetimes as datetimes, the rest in its JSON form, and the
    digest of its facts."""
    return {
        **a.model_dump(mode="json", exclude={"id", "version"}),
        **a.model_dump(include=set(_ALERT_TIMES)),
        _DIGEST: alert_digest(a),
    }


def _written_row(a: Alert) -> dict[str, Any]:
    """An alert as a pass or an action writes it: its JSON columns as JSON text from
    pydantic's serializer (bound as it is: :func:`_json_texts`), instants as datetimes,
    states and severities as their values. The same values as :func:`_alert_row`, at a
    fraction of the cost (no second dump, no ``json.dumps`` of the dumped values)."""
    row: dict[str, Any] = {}
    adapters = _json_adapters()
    for name in _ALERT_WRITTEN:
        value = getattr(a, name)
        adapter = adapters.get(name)
        if adapter is not None:
            value = adapter.dump_json(value).decode()
        elif isinstance(value, Enum):
            value = value.value
        row[name] = value
    row[_DIGEST] = alert_digest(a)
    return row


@cache
def _json_adapters() -> dict[str, TypeAdapter[Any]]:
    """The serializer of each JSON field of an alert, as its field declares it (built
    when first written, as the records' own schemas are)."""
    fields = Alert.model_fields
    return {name: TypeAdapter[Any](fields[name].annotation or Any) for name in _ALERT_JSON}


def _json_texts() -> dict[str, Any]:
    """The JSON columns of a write, bound as the JSON text :func:`_written_row` gives."""
    return {name: bindparam(name, type_=JSONText()) for name in sorted(_ALERT_JSON)}


def _overwrite(excluded: Any, _columns: tuple[str, ...]) -> dict[str, Any]:
    """The SET of an unconditional upsert: every value, and one more version."""
    return {name: excluded[name] for name in _ALERT_VALUES} | {"version": ALERTS.c.version + 1}


def _insert_new(conn: Connection, rows: Sequence[dict[str, Any]]) -> set[str]:
    """Insert the alerts new to a pass; the fingerprints of those another pass inserted
    first (their version stands). On SQLite the transaction holds the database from the
    read of the versions on, so none can have been: one plain INSERT for every row, which
    fails loudly if one was. On PostgreSQL a row is not locked before it exists, so each
    is inserted only if still absent, and the ones inserted are read back."""
    if not rows:
        return set()
    if conn.dialect.name == "sqlite":
        execute_rows(conn, ALERTS.insert().values(_json_texts()), rows)
        return set()
    stmt = (
        insert(conn, ALERTS)
        .values(_json_texts())
        .on_conflict_do_nothing(index_elements=["fingerprint"])
        .returning(ALERTS.c.fingerprint)
    )
    added = set(conn.execute(stmt, rows).scalars())
    return {r["fingerprint"] for r in rows} - added


def _versions(conn: Connection, fingerprints: Sequence[str]) -> dict[str, int]:
    """The version on record of each of these alerts, its row locked to the transaction's
    end (SQLite's BEGIN IMMEDIATE already holds the whole database). Given in sorted order,
    two writers lock in the same order and cannot deadlock."""
    out: dict[str, int] = {}
    for chunk in chunks(fingerprints):
        query = (
            select(ALERTS.c.fingerprint, ALERTS.c.version)
            .where(ALERTS.c.fingerprint.in_(chunk))
            .with_for_update()
        )
        out.update((str(fp), int(v)) for fp, v in conn.execute(query))
    return out


def _update_alerts(conn: Connection, alerts: Sequence[tuple[Alert, int]]) -> int:
    """Update each alert that is still at the version given with it; how many were."""
    return _update_rows(conn, [(_written_row(a), v) for a, v in alerts])


def _update_rows(conn: Connection, rows: Sequence[tuple[dict[str, Any], int]]) -> int:
    """:func:`_update_alerts` of rows :func:`_written_row` built."""
    if not rows:
        return 0
    stmt = (
        update(ALERTS)
        .where(
            ALERTS.c.fingerprint == bindparam("b_fingerprint"),
            ALERTS.c.version == bindparam("b_version"),
        )
        .values({name: bindparam(name) for name in _ALERT_VALUES if name not in _ALERT_JSON})
        .values(_json_texts())
        .values(version=ALERTS.c.version + 1)
    )
    params = []
    for row, version in rows:
        param = {**row, "b_fingerprint": row["fingerprint"], "b_version": version}
        del param["fingerprint"]
        params.append(param)
    return execute_rows(conn, stmt, params)


def _as_text(column: Any, sqlite: bool) -> Any:
    """A column as :meth:`AlertsStore.account_alerts` reads it: JSON as its stored text,
    SQLite's instants as their text (UTC, without offset), the rest as it is."""
    if column.name in _ALERT_JSON:
        return cast(column, Text).label(column.name)
    if sqlite and column.name in _ALERT_TIMES:
        return type_coerce(column, String).label(column.name)
    return column


#: A string as JSON text (the C encoder json.dumps calls, without its checks).
_json_string: Callable[[str], str] = encode_basestring_ascii


def _json_instant(value: datetime) -> str:
    return _instant_text(value, value.utcoffset())


@lru_cache(maxsize=64)
def _instant_text(value: datetime, offset: timedelta | None) -> str:
    """An instant as JSON text, remembered: a pass writes the same few (its now) in every
    alert. By instant and offset: equal instants in two offsets are two texts."""
    return f'"{value.isoformat()}"'


def _encoders(sqlite: bool) -> tuple[tuple[str, Callable[[Any], str]], ...]:
    """Per alert column: its JSON key and how its value (not None) is written as JSON."""
    out: list[tuple[str, Callable[[Any], str]]] = []
    for c in _ALERT_COLUMNS:
        encode: Callable[[Any], str] = json.dumps
        kind = getattr(c.type, "impl_instance", c.type)  # under a TypeDecorator
        if c.name in _ALERT_JSON:
            encode = json_as_is
        elif c.name in _ALERT_TIMES:
            encode = sqlite_instant if sqlite else _json_instant
        elif isinstance(kind, String):
            encode = _json_string
        elif isinstance(kind, Integer):
            encode = json_as_is
        elif isinstance(kind, Float):
            encode = repr
        out.append((f'"{c.name}":', encode))
    return tuple(out)


_ALERT_TEXT = _encoders(sqlite=True)
_ALERT_VALUES_JSON = _encoders(sqlite=False)


def _alert_text(alert: Alert, row: Mapping[str, Any]) -> str:
    """The JSON text of an alert, from the row :func:`_written_row` built of it (no second
    serialization: the JSON columns are text already)."""
    own = {"id": alert.id, "version": alert.version}
    values = [own[c.name] if c.name in own else row[c.name] for c in _ALERT_COLUMNS]
    return alert_json(values, _ALERT_VALUES_JSON)
