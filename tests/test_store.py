"""The store on SQLite and PostgreSQL: UTC in and out, idempotent writes, safe leases."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.errors import StoreError
from swanwatch.model import (
    Alert,
    AlertNotice,
    GroupKind,
    NoticeEvent,
    OutboxEntry,
    RenderedNotice,
    Severity,
    Signal,
    SourceHealth,
)
from swanwatch.store import Store
from swanwatch.store import signals as signals_store
from swanwatch.testing import make_account

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _signal(account: str = "acme", key: str = "", strength: float = 0.5, **kw) -> Signal:
    return Signal(
        account_id=account,
        kind="usage_drop",
        key=key,
        strength=strength,
        observed_at=kw.pop("observed_at", NOW),
        summary=kw.pop("summary", "Usage fell."),
        watcher="w",
        **kw,
    )


def _updated(store: Store) -> dict[str, datetime]:
    from sqlalchemy import select

    from swanwatch.store.tables import ACCOUNTS

    with store.engine.connect() as conn:
        return {r.id: r.updated_at for r in conn.execute(select(ACCOUNTS))}


def test_an_account_read_writes_only_what_changed(store: Store) -> None:
    acme = make_account("acme", domains=["acme.example"], tags=["a b"])
    globex, initech = make_account("globex"), make_account("initech")
    listing = store.record_account_read([acme, globex, initech], NOW, retire_after_reads=2)
    assert [a.id for a in listing.accounts] == ["acme", "globex", "initech"]
    later = NOW + timedelta(hours=1)
    moved = globex.model_copy(update={"arr": 99.5})
    listing = store.record_account_read([initech, moved, acme], later, retire_after_reads=2)
    updated = _updated(store)
    # Only the changed account is written again; the listing is the read, sorted.
    assert updated == {"acme": NOW, "globex": later, "initech": NOW}
    assert listing.accounts == [acme, moved, initech] and listing.absent == {}
    # An absent account is listed as stored, counted, then retired; one back is rewritten.
    third = later + timedelta(hours=1)
    listing = store.record_account_read([acme, moved], third, retire_after_reads=2)
    assert listing.accounts == [acme, moved, initech] and listing.absent == {"initech": third}
    assert store.accounts() == [acme, moved, initech]
    back = store.record_account_read([acme, moved, initech], third, retire_after_reads=2)
    assert back.absent == {} and store.absent_accounts() == {}
    store.record_account_read([acme], third, retire_after_reads=2)
    gone = store.record_account_read([acme], third + timedelta(hours=1), retire_after_reads=2)
    assert gone.retired == ["globex", "initech"] and gone.accounts == [acme]
    assert store.accounts() == [acme]


_TEXTS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=6)
#: An account's fields, each drawn so that two draws often agree and sometimes do not.
_ACCOUNT_FIELDS = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["Acme", "Acme ", "Ácme"]),
        "domains": st.lists(st.sampled_from(["a.example", "b.example", 'q"uote.example']),
                            max_size=2),
        "owner": st.sampled_from([None, "ann@example.com", "bo@example.com"]),
        "segment": st.sampled_from([None, "smb", "enterprise"]),
        "arr": st.sampled_from([0.0, 12.5, 12.500000000000002, 1e9]),
        "renewal_date": st.sampled_from([None, "2027-02-28", "2027-03-01"]),
        "tags": st.lists(st.one_of(st.sampled_from(["a b", "ü"]), _TEXTS.filter(str.strip)),
                         max_size=2),
    }
)  # fmt: skip
_READS = iter(range(10**9))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(before=_ACCOUNT_FIELDS, after=_ACCOUNT_FIELDS)
def test_a_read_rewrites_an_account_exactly_when_a_field_changed(
    store: Store, before: dict[str, Any], after: dict[str, Any]
) -> None:
    """Whatever field changes (text, a list, a number, a date, one to None), the read
    writes the account again; when none does, it leaves the row as it was."""
    name = f"acct-{next(_READS)}"
    old, new = make_account(name, **before), make_account(name, **after)
    later = NOW + timedelta(hours=1)
    store.record_account_read([old], NOW, retire_after_reads=2)
    store.record_account_read([new], later, retire_after_reads=2)
    assert _updated(store)[name] == (NOW if new == old else later)
    assert store.accounts([name]) == [new]


def test_an_account_read_writes_rows_as_sqlalchemy_binds_them(store: Store) -> None:
    """The read's rows go to the driver directly: each column bound as SQLAlchemy binds it."""
    from datetime import date

    from sqlalchemy import Text, cast, select

    from swanwatch.store.base import upsert
    from swanwatch.store.tables import ACCOUNTS

    odd = make_account(
        "one", domains=["é.example", 'q"uote.example'], tags=["a b", "ü"], owner=None
    )
    odd = odd.model_copy(update={"renewal_date": date(2027, 2, 28), "arr": 12.5})
    plain = make_account("three")
    store.record_account_read([odd, plain], NOW, retire_after_reads=2)
    by_sqlalchemy = [
        {f: getattr(a, f) for f in type(a).model_fields}
        | {"id": f"{a.id}-sa", "updated_at": NOW, "absent_reads": 0, "absent_since": None}
        for a in (odd, plain)
    ]
    with store.engine.begin() as conn:
        upsert(conn, ACCOUNTS, by_sqlalchemy, ["id"])
    columns = [cast(c, Text).label(c.name) if c.name != "id" else c for c in ACCOUNTS.c]
    with store.engine.connect() as conn:
        rows = {r.id: r._asdict() for r in conn.execute(select(*columns))}
    for name in ("one", "three"):
        assert {**rows[name], "id": ""} == {**rows[f"{name}-sa"], "id": ""}
    assert store.accounts(["one", "three"]) == [odd, plain]


def test_datetimes_come_back_aware_utc(store: Store) -> None:
    store.upsert_accounts([make_account("acme")], NOW)
    tokyo = datetime(2026, 11, 21, 9, 0, tzinfo=timezone(timedelta(hours=9)))
    store.record_signals("w", [_signal(observed_at=tokyo)], NOW)
    (stored,) = store.signals()
    assert stored.observed_at == tokyo and stored.observed_at.tzinfo == UTC
    assert stored.observed_at.hour == 0
    assert stored.first_seen == NOW and stored.first_seen.tzinfo == UTC


def test_signals_upsert_by_fingerprint_and_clear(store: Store) -> None:
    a, b = _signal(key="reports"), _signal(key="logins")
    assert store.record_signals("w", [a, b], NOW).counts() == (2, 0)
    changes = store.record_signals("w", [a, b.model_copy(update={"strength": 0.9})], NOW)
    assert changes.counts() == (0, 0)
    assert {s.key: s.strength for s in store.signals()} == {"reports": 0.5, "logins": 0.9}
    later = NOW + timedelta(hours=1)
    assert store.record_signals("w", [a], later).cleared == (b.fingerprint,)
    assert [s.key for s in store.signals()] == ["reports"]
    cleared = [s for s in store.signals(active_only=False) if not s.active]
    assert [(s.key, s.cleared_at) for s in cleared] == [("logins", later)]
    # It comes back: active again, with a new first_seen, still one row.
    again = later + timedelta(hours=1)
    assert store.record_signals("w", [a, b], again).raised == (b.fingerprint,)
    rows = store.signals(active_only=False)
    assert len(rows) == 2 and all(s.active for s in rows)
    assert {s.key: s.first_seen for s in rows}["logins"] == again


def test_a_long_signal_list_is_read_in_order_across_its_fetches(store: Store) -> None:
    """`signals list` writes the signals as they are read (its peak memory is in
    BENCHMARKS.md, not asserted here): the streamed read gives every signal, in order,
    across its fetches, on both stores (a server-side cursor on PostgreSQL), and one
    stopped early holds up no write."""
    count = 2 * signals_store._YIELD_PER + 7
    raised = [_signal(f"acc-{n % 97:03d}", key=f"k{n:05d}") for n in range(count)]
    store.record_signals("w", raised, NOW)
    streamed = store.each_signal()
    first = next(streamed)
    assert first.account_id == "acc-000"
    rest = list(streamed)
    assert [first, *rest] == store.signals()
    assert len(rest) + 1 == count
    keys = [(s.account_id, s.kind, s.key) for s in [first, *rest]]
    assert keys == sorted(keys)
    assert [s.key for s in store.each_signal(account_id="acc-001")][:2] == ["k00001", "k00098"]
    stopped = store.each_signal()
    next(stopped)
    stopped.close()  # a reader that stops early (a closed pipe) lets go of its read
    assert store.record_signals("w", raised[:1], NOW).counts() == (0, len(raised) - 1)


def test_clearing_respects_the_scope(store: Store) -> None:
    store.record_signals("w", [_signal("acme"), _signal("globex")], NOW)
    store.record_signals("w", [], NOW, scope=["acme"])
    assert [s.account_id for s in store.signals()] == ["globex"]


def _note(key: str, **kw) -> OutboxEntry:
    values = {
        "idempotency_key": key,
        "alert_fingerprint": "fp",
        "account_id": "acme",
        "channel": "team",
        "event": "firing",
        "severity": Severity.HIGH,
        "title": "t",
        "payload": RenderedNotice(body="b"),
        "created_at": NOW,
        "due_at": NOW,
        **kw,
    }
    return OutboxEntry.model_validate(values)


LEASE = timedelta(minutes=5)


def test_outbox_is_idempotent_and_leases_are_exclusive(store: Store) -> None:
    assert store.save_alerts([], [_note("k1"), _note("k2")]) == 2
    assert store.save_alerts([], [_note("k1")]) == 0
    first = store.claim_outbox(NOW, "replica-a", LEASE)
    second = store.claim_outbox(NOW, "replica-b", LEASE)
    assert len(first) == 2 and second == []
    assert store.mark_sent(first[0], NOW)
    assert store.mark_failed(first[1], "503 from chat", NOW + timedelta(minutes=1))
    assert store.claim_outbox(NOW, "replica-b", LEASE) == []
    retry = store.claim_outbox(NOW + timedelta(minutes=2), "replica-b", LEASE)
    assert [n.idempotency_key for n in retry] == ["k2"] and retry[0].attempts == 1
    assert store.mark_failed(retry[0], "503 again", None)
    assert [n.status for n in store.notifications()] == ["dead", "sent"]
    assert store.retry_dead(NOW) == 1


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    store.save_alerts([], [_note("k1")])
    assert store.claim_outbox(NOW, "crashed", LEASE)
    later = NOW + timedelta(minutes=6)
    (taken,) = store.claim_outbox(later, "survivor", LEASE)
    assert taken.idempotency_key == "k1"


def test_only_the_current_claim_records_an_outcome(store: Store) -> None:
    """A sender stalled past its lease is taken over; what it then reports changes
    nothing, even under the same owner name: the token tells the claims apart."""
    store.save_alerts([], [_note("k1"), _note("k2")])
    stalled = store.claim_outbox(NOW, "replica-a", LEASE)
    later = NOW + timedelta(minutes=6)
    taken = store.claim_outbox(later, "replica-a", LEASE)
    assert [n.id for n in taken] == [n.id for n in stalled]
    assert all(t.lease_token == s.lease_token + 1 for s, t in zip(stalled, taken, strict=True))
    assert not store.mark_sent(stalled[0], later)
    assert not store.mark_failed(stalled[1], "late", None)
    assert not store.fail_over(stalled[1], "late", _note("k2>backup", channel="backup"))
    store.release(stalled, later + timedelta(hours=1))  # a no-op: no longer theirs
    assert {n.status for n in store.notifications()} == {"pending"}
    assert all(n.lease_token == 2 and n.attempts == 0 for n in store.notifications())
    assert store.mark_sent(taken[0], later) and store.mark_failed(taken[1], "503", None)
    assert not store.mark_sent(taken[0], later)  # settled: the claim is over
    assert [n.status for n in store.notifications()] == ["dead", "sent"]
    (unclaimed,) = [n for n in store.notifications() if n.status == "dead"]
    assert not store.mark_sent(unclaimed, later)  # never claimed by anyone: refused


def test_only_the_holder_renews_a_claim_and_a_stop_gives_it_back(store: Store) -> None:
    """A sender renews its claims while it works: past the first lease another finds
    nothing free. A claim taken over is not renewed (the sender learns it is no longer
    its own). Given back untried, a claim is free for anyone at once, due as before."""
    store.save_alerts([], [_note("k1"), _note("k2"), _note("k3")])
    held = store.claim_outbox(NOW, "a", LEASE)
    ids = {n.id for n in held}
    renewed_at = NOW + LEASE - timedelta(seconds=1)
    assert store.renew_claims(held, renewed_at, LEASE) == ids
    assert store.claim_outbox(NOW + LEASE + timedelta(minutes=1), "b", LEASE) == []
    run_out = renewed_at + LEASE + timedelta(seconds=1)
    (taken,) = store.claim_outbox(run_out, "b", LEASE, limit=1)
    assert store.renew_claims(held, run_out, LEASE) == ids - {taken.id}
    assert store.renew_claims([taken], run_out, LEASE) == {taken.id}
    mine = [n for n in held if n.id != taken.id]
    assert store.mark_sent(mine[0], run_out)
    assert store.renew_claims(mine, run_out, LEASE) == {mine[1].id}  # settled: over
    assert store.release(mine) == 1
    (free,) = store.claim_outbox(run_out, "c", LEASE)
    assert free.id == mine[1].id and free.next_attempt_at == NOW and free.attempts == 0


def test_a_sender_takes_its_own_claims_back_at_once(store: Store) -> None:
    """A pass that gave up half-way (the store failed under it) leaves claims standing:
    the same sender's next pass takes them up again, with a new token, at once; the old
    claim can record nothing any more. Nobody else can take them before the lease ends."""
    store.save_alerts([], [_note("k1")])
    (left,) = store.claim_outbox(NOW, "a", LEASE)
    assert store.claim_outbox(NOW, "b", LEASE) == []
    (again,) = store.claim_outbox(NOW, "a", LEASE)
    assert again.id == left.id and again.lease_token == left.lease_token + 1
    assert not store.mark_sent(left, NOW)
    assert store.mark_sent(again, NOW)


def test_a_group_is_claimed_together_and_released_untried(store: Store) -> None:
    late = NOW + timedelta(hours=1)
    burst = [
        _note("a", group_kind=GroupKind.GROUP, group_key="root|team"),
        _note("b", group_kind=GroupKind.GROUP, group_key="root|team", due_at=late),
        # The same key under another kind is another group.
        _note("c", group_kind=GroupKind.DIGEST, group_key="root|team", due_at=late),
    ]
    store.save_alerts([], burst)
    claimed = store.claim_outbox(NOW, "w", LEASE)
    assert [n.idempotency_key for n in claimed] == ["a", "b"]
    store.release(claimed, late)
    assert store.claim_outbox(NOW, "w", LEASE) == []
    again = store.claim_outbox(late, "w", LEASE)
    assert [n.idempotency_key for n in again] == ["a", "b", "c"]
    assert store.mark_sent(again[0], late)
    assert store.group_last_sent(GroupKind.GROUP, "root|team") == late
    assert store.group_last_sent(GroupKind.DIGEST, "root|team") is None


def test_a_notice_comes_back_as_it_was_queued(store: Store) -> None:
    alert = Alert(
        fingerprint="fp",
        account_id="acme",
        rule="r",
        title="Usage fell",
        severity=Severity.HIGH,
        score=0.7,
        started_at=NOW,
        updated_at=NOW,
    )
    notice = AlertNotice(alert=alert, event="escalated", label="Acme", who="channel:team")
    store.save_alerts([], [_note("k1", payload=notice, event="escalated")])
    (note,) = store.claim_outbox(NOW, "w", LEASE)
    assert note.payload == notice and note.event == NoticeEvent.ESCALATED
    assert note.created_at == NOW and note.next_attempt_at == NOW and note.lease_owner == "w"


def test_concurrent_writers_wait_instead_of_failing(store: Store) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                store.record_signals(f"w{n}", [_signal(key=f"{n}-{i}")], NOW + timedelta(seconds=i))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(store.signals()) == 4  # each watcher keeps its latest signal


def test_a_sqlite_writer_kept_from_the_lock_fails_plainly_and_loses_nothing(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer waits for SQLite's write lock (in short steps) up to its limit, then fails
    with SQLite's own error; the holder's transaction and what was stored stay, and the
    writer gets the lock once it is free."""
    import sqlite3

    import sqlalchemy.exc

    from swanwatch.store import base

    monkeypatch.setattr(base, "WRITE_WAIT_S", 0.3)
    path = tmp_path / "sw.db"
    store = Store(f"sqlite:///{path}")
    store.record_signals("w", [_signal(key="kept")], NOW)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlalchemy.exc.OperationalError, match="database is locked"):
        store.record_signals("w", [_signal(key="late")], NOW + timedelta(seconds=1))
    holder.execute("COMMIT")
    holder.close()
    assert [s.key for s in store.signals()] == ["kept"]
    store.record_signals("w", [_signal(key="late")], NOW + timedelta(seconds=1))
    assert [s.key for s in store.signals()] == ["late"]
    store.close()


def test_reads_go_on_while_another_process_writes_on_sqlite(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In WAL mode a read takes no write lock: the store reads (the last committed state)
    while another process holds a write transaction open, where it used to wait for it."""
    import sqlite3

    from swanwatch.store import base

    monkeypatch.setattr(base, "WRITE_WAIT_S", 0.3)  # a read that waited would fail soon
    path = tmp_path / "sw.db"
    store = Store(f"sqlite:///{path}")
    store.record_signals("w", [_signal(key="kept")], NOW)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE signals SET summary = 'not yet committed'")
    try:
        assert [(s.key, s.summary) for s in store.signals()] == [("kept", "Usage fell.")]
        assert [s.key for s in store.active_signals(["acme"])] == ["kept"]
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        store.close()


def test_watcher_state_round_trip(store: Store) -> None:
    store.save_state("w", {"a": {"x": [1, 2]}, "b": "text"}, frozenset(), NOW)
    store.save_state("w", {"a": 3}, frozenset({"b"}), NOW)
    assert store.load_state("w") == {"a": 3}
    assert store.load_state("other") == {}


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(keys=st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=12))
def test_enqueueing_any_sequence_never_duplicates(store: Store, keys: list[str]) -> None:
    before = {n.idempotency_key for n in store.notifications(limit=10_000)}
    for key in keys:
        store.save_alerts([], [_note(key)])
    after = [n.idempotency_key for n in store.notifications(limit=10_000)]
    assert len(after) == len(set(after))
    assert set(after) == before | set(keys)


_ANY_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=_ANY_TEXT, evidence=st.dictionaries(_ANY_TEXT, _ANY_TEXT, max_size=3))
def test_any_text_a_watcher_gives_is_stored_on_every_store(
    store: Store, text: str, evidence: dict[str, str]
) -> None:
    """A WHOIS answer or a plugin's summary may hold any character, a NUL byte too (which
    PostgreSQL stores nowhere in text or JSON): the run's findings are stored all the same,
    the NUL as U+FFFD, alike on both stores; nothing else changes. A source's health
    reason (a malformed row's value quoted) likewise."""
    from swanwatch.model import storable, storable_json
    from swanwatch.store.signals import Findings

    signal = _signal("a", key=text, summary=text, evidence=evidence)
    store.record_findings(
        Findings(watcher="w", now=NOW, signals=[signal], unknowns=[("a", text, text)])
    )
    store.save_source_health(SourceHealth(source="s", reason=text, since=NOW, checked_at=NOW))
    assert store.source_health(["s"])["s"].reason == storable(text)
    # The examples share one store: this one's signal and unknown, by their key.
    (stored,) = [s for s in store.signals() if s.key == storable(text)]
    assert (stored.key, stored.summary) == (storable(text), storable(text))
    assert stored.evidence == storable_json(evidence)
    assert "\x00" not in stored.key + stored.summary
    if "\x00" not in text + "".join(evidence) + "".join(evidence.values()):
        assert (stored.key, stored.evidence) == (text, evidence)  # nothing else changes
    (unknown,) = [u for u in store.unknowns() if u.key == storable(text)]
    assert (unknown.key, unknown.reason) == (storable(text), storable(text))
    # A correlation pass reads it (the driver's rows, not SQLAlchemy's) as it was stored.
    (read,) = [a for a in store.active_signals(["a"]) if a.key == stored.key]
    assert (read.fingerprint, read.summary, read.strength) == (
        stored.fingerprint, stored.summary, stored.strength,
    )  # fmt: skip
    assert read.observed_at == NOW and read.observed_at.utcoffset() == timedelta(0)
    assert read.evidence == stored.evidence


def test_driver_rows_are_the_rows_sqlalchemy_reads_and_fail_as_they_fail(store: Store) -> None:
    """The bulk read without SQLAlchemy's rows gives the same values; a driver error, even
    one met while stepping through the rows, is SQLAlchemy's error as before."""
    from sqlalchemy import case, func, select
    from sqlalchemy.exc import DBAPIError

    from swanwatch.store.base import among, driver_rows
    from swanwatch.store.signals import Findings
    from swanwatch.store.tables import SIGNALS

    signals = [
        _signal(f"acct-{n}", key=f"k{n}", strength=n / 10, summary=f"'\\ {n} ü") for n in range(7)
    ]
    store.record_findings(Findings(watcher="w", now=NOW, signals=signals))
    t = SIGNALS
    query = (
        select(t.c.account_id, t.c.key, t.c.strength, t.c.summary, t.c.half_life_days)
        .where(among(t.c.account_id, [f"acct-{n}" for n in (1, 3, 6, 9)], store.dialect))
        .order_by(t.c.account_id)
    )
    with store.engine.connect() as conn:
        rows = driver_rows(conn, query)
        assert rows == [tuple(r) for r in conn.execute(query)]
        assert [r[1] for r in rows] == ["k1", "k3", "k6"]
        # Parameters bound by their types: an IN list expanded, an instant made UTC.
        bound = select(t.c.key).where(t.c.key.in_(["k2", "k5"]), t.c.observed_at <= NOW)
        assert sorted(driver_rows(conn, bound)) == [("k2",), ("k5",)]
    with store.engine.connect() as conn, pytest.raises(DBAPIError):
        driver_rows(conn, select(t.c.key).where(t.c.key == func.no_such_function()))
    if store.dialect == "sqlite":  # SQLite meets this one at the second row, while reading
        second_is_bad = case((t.c.key == "k0", "{}"), else_="not JSON")
        with store.engine.connect() as conn, pytest.raises(DBAPIError, match="malformed JSON"):
            driver_rows(
                conn, select(func.json_extract(second_is_bad, "$")).order_by(t.c.account_id)
            )


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_the_store_survives_its_connections_being_dropped(store: Store, store_url: str) -> None:
    """What a client sees when PostgreSQL restarts: every open connection is killed."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    store.record_signals("w", [_signal(key="before")], NOW)
    assert store.engine.pool.checkedin() >= 1  # type: ignore[attr-defined]  # a pooled connection that is about to die
    admin = create_engine(
        make_url(store_url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": make_url(store_url).database},
        ).scalar()
    admin.dispose()
    assert killed and killed >= 1
    store.record_signals("w", [_signal(key="before"), _signal(key="after")], NOW)
    assert {s.key for s in store.signals()} == {"before", "after"}


def test_runs_finishing_together_count_every_failure(store: Store) -> None:
    from swanwatch.model import WatcherRun

    errors: list[BaseException] = []

    def fail() -> None:
        try:
            store.record_run(
                WatcherRun(instance="w", started_at=NOW, finished_at=NOW, ok=False, error="x")
            )
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.watcher_statuses()["w"].consecutive_failures == 6
    ok = store.record_run(WatcherRun(instance="w", started_at=NOW, finished_at=NOW, ok=True))
    assert ok.consecutive_failures == 0 and ok.last_success_at == NOW and ok.last_error is None


def _page_size(path: Path) -> int:
    with closing(sqlite3.connect(path)) as raw:
        return int(raw.execute("PRAGMA page_size").fetchone()[0])


def test_a_new_sqlite_store_is_made_in_16_kib_pages(tmp_path: Path) -> None:
    Store(f"sqlite:///{tmp_path / 'new.db'}").close()
    assert _page_size(tmp_path / "new.db") == 16384


def test_db_compact_rewrites_an_older_store_in_larger_pages_and_keeps_every_row(
    make_config, tmp_path: Path
) -> None:
    """A store made in SQLite's 4 KiB pages (before 16 KiB was the default) is rewritten
    by `db compact`: the same signals and notifications after, in 16 KiB pages, still in
    WAL mode. While anything else has the file open, it is refused and left as it was."""
    from click.testing import CliRunner

    from swanwatch.cli import main

    db = tmp_path / "sw.db"
    with closing(sqlite3.connect(db)) as raw:  # as older releases made it
        raw.execute("PRAGMA page_size=4096")
        raw.execute("PRAGMA journal_mode=WAL")
    config = make_config("watchers: []\n")
    store = Store(f"sqlite:///{db}")
    store.record_signals("w", [_signal(f"acc-{i}", key=f"k{i}") for i in range(300)], NOW)
    store.save_alerts([], [_note(f"n{i}") for i in range(50)])
    signals, queued = store.signals(), store.notifications()
    assert _page_size(db) == 4096

    with closing(sqlite3.connect(db)) as other:
        other.execute("SELECT count(*) FROM signals").fetchone()
        refused = CliRunner().invoke(main, ["db", "compact", "-c", str(config)])
        assert refused.exit_code != 0
        assert "is in use: stop the daemon" in refused.output
        assert _page_size(db) == 4096 and store.signals() == signals

    done = CliRunner().invoke(main, ["db", "compact", "-c", str(config)])
    assert done.exit_code == 0, done.output
    assert "MiB, now" in done.output
    assert _page_size(db) == 16384
    with closing(sqlite3.connect(db)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store.signals() == signals and store.notifications() == queued


def test_compact_rewrites_a_sqlite_file_and_leaves_postgresql_to_autovacuum(store: Store) -> None:
    store.record_signals("w", [_signal(f"acc-{i}", key=f"k{i}") for i in range(50)], NOW)
    signals = store.signals()
    if store.dialect == "postgresql":
        with pytest.raises(StoreError, match="only a SQLite file is compacted"):
            store.compact()
    else:
        before, after = store.compact()
        assert before > 0 and after > 0
    assert store.signals() == signals


def test_db_compact_creates_no_store(make_config, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from swanwatch.cli import main

    config = make_config("watchers: []\n")
    result = CliRunner().invoke(main, ["db", "compact", "-c", str(config)])
    assert result.exit_code == 0 and "no store yet" in result.output
    assert not (tmp_path / "sw.db").exists()
