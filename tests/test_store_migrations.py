"""The migrations: self-contained scripts that build exactly the schema the tables declare,
and that carry existing rows over (0005: the typed outbox)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config as AlembicConfig
from alembic.migration import MigrationContext

from swanwatch.model import AlertNotice, GroupKind, LeadersNotice, OutboxEntry, RenderedNotice
from swanwatch.store import Store
from swanwatch.store.base import MIGRATIONS
from swanwatch.store.tables import METADATA

VERSIONS = MIGRATIONS / "versions"
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _differences(store: Store) -> list[Any]:
    def ours(name: str | None, type_: str, _parent: object) -> bool:
        # The task queue's own tables live beside ours on PostgreSQL (migration 0004).
        return not (type_ == "table" and (name or "").startswith("procrastinate"))

    with store.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={"compare_type": True, "compare_server_default": True, "include_name": ours},
        )
        return list(compare_metadata(context, METADATA))


def test_a_fresh_database_at_head_has_exactly_the_declared_schema(store: Store) -> None:
    assert _differences(store) == []


def test_the_comparison_sees_a_difference(store: Store) -> None:
    """The check above can fail: a column the tables do not declare is reported."""
    with store.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE notifications ADD COLUMN stray INTEGER"))
    assert any("stray" in str(d) for d in _differences(store))


def test_migrations_import_no_live_code() -> None:
    for path in sorted(VERSIONS.glob("0*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not [n for n in names if n.split(".")[0] == "swanwatch"], path.name


_OLD_ALERT = {
    "fingerprint": "fp-acme",
    "account_id": "acme",
    "rule": "sag",
    "title": "Usage sagging",
    "severity": "warning",
    "score": 0.6,
    "started_at": NOW.isoformat(),
    "updated_at": NOW.isoformat(),
}


def _old_row(
    key: str, group_key: str, payload: object, body: str = "old body"
) -> dict[str, object]:
    return {
        "idempotency_key": key,
        "alert_fingerprint": "fp-acme",
        "account_id": "acme",
        "channel": "team",
        "event": "firing",
        "severity": "warning",
        "title": f"title {key}",
        "body": body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": NOW,
        "created_at": NOW,
        "route": "root",
        "group_key": group_key,
        "payload": payload,
    }


def test_0005_carries_the_old_outbox_over(store_url: str) -> None:
    store = Store(store_url, migrate=False)
    try:
        store.upgrade("0004")
        alert = {
            "kind": "alert",
            "alert": _OLD_ALERT,
            "event": "firing",
            "label": "Acme Corp",
            "new_signals": ["s1"],
            "account": {"id": "acme", "name": "Acme Corp"},
            "format": "chat",
            "who": "ann@csm.example",
        }
        rows = [
            _old_row("grouped", "group|root|team", alert),
            _old_row("digest", "digest|team|2026-11-21T07:30:00+00:00", alert),
            _old_row("quiet", "quiet|team|2026-11-21T07:00:00+00:00", alert),
            _old_row("alone", "", {**alert, "who": None}),
            _old_row("before-0003", "", None, body="rendered long ago"),
            _old_row("leaders", "", {"kind": "leaders", "format": "email"}, body="<html>"),
        ]
        notes = sa.table(
            "notifications", *(sa.column(c, sa.JSON() if c == "payload" else None) for c in rows[0])
        )
        with store.engine.begin() as conn:
            conn.execute(sa.insert(notes), rows)
        store.upgrade()
        assert _differences(store) == []
        got = {n.idempotency_key: n for n in store.notifications()}
    finally:
        store.close()
    kinds = {k: (n.group_kind, n.group_key) for k, n in got.items()}
    assert kinds == {
        "grouped": (GroupKind.GROUP, "root|team"),
        "digest": (GroupKind.DIGEST, "team|2026-11-21T07:30:00+00:00"),
        "quiet": (GroupKind.QUIET, "team|2026-11-21T07:00:00+00:00"),
        "alone": (GroupKind.NONE, ""),
        "before-0003": (GroupKind.NONE, ""),
        "leaders": (GroupKind.NONE, ""),
    }
    notice = got["grouped"].payload
    assert isinstance(notice, AlertNotice) and notice.alert.title == "Usage sagging"
    assert (notice.label, notice.new_signals, notice.who) == (
        "Acme Corp",
        ("s1",),
        "ann@csm.example",
    )
    alone = got["alone"].payload
    assert isinstance(alone, AlertNotice) and alone.who == "team"  # the channel, as the worker did
    assert got["before-0003"].payload == RenderedNotice(body="rendered long ago")
    assert got["leaders"].payload == RenderedNotice(body="<html>")
    assert not any(isinstance(n.payload, LeadersNotice) for n in got.values())


def _downgrade(store: Store, revision: str) -> None:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_0005_goes_back_down_and_up_again(store: Store) -> None:
    notice = AlertNotice.model_validate(
        {"alert": _OLD_ALERT, "event": "firing", "label": "Acme Corp", "who": "channel:team"}
    )
    entries = [
        OutboxEntry(
            idempotency_key=key,
            alert_fingerprint="fp-acme",
            channel="team",
            event="firing",
            severity="warning",
            title=f"title {key}",
            group_kind=kind,
            group_key=group,
            payload=payload,
            created_at=NOW,
            due_at=NOW,
        )
        for key, kind, group, payload in [
            ("grouped", GroupKind.GROUP, "root|team", notice),
            ("text", GroupKind.NONE, "", RenderedNotice(body="as it was")),
        ]
    ]
    store.save_alerts([], entries)
    before = store.notifications()
    _downgrade(store, "0004")
    with store.engine.connect() as conn:
        old = {r.idempotency_key: r for r in conn.execute(sa.text("SELECT * FROM notifications"))}
    assert old["grouped"].group_key == "group|root|team" and old["grouped"].body == "title grouped"
    assert old["text"].group_key == "" and old["text"].body == "as it was"
    store.upgrade()
    assert store.notifications() == before


def _alert_row(
    fp: str, account: str, rule: str, severity: str, **extra: object
) -> dict[str, object]:
    at = NOW
    return {
        "fingerprint": fp,
        "account_id": account,
        "rule": rule,
        "title": f"{rule} title",
        "severity": severity,
        "score": 0.5,
        "state": "firing",
        "contributions": [],
        "why_now": [f"{rule} line", "Renewal on 2027-01-10 is 51 days away."],
        "play": [f"{rule} play"],
        "at_stake": {"arr": 1000},
        "episode": 1,
        "started_at": at,
        "updated_at": at,
        "notify_count": 1,
        "notified_signals": [],
        "flaps": 0,
        **extra,
    }


def test_0010_merges_the_open_alerts_of_an_account_into_one(store_url: str) -> None:
    from swanwatch.model import AlertState, Severity, account_alert_fingerprint

    store = Store(store_url, migrate=False)
    try:
        store.upgrade("0009")
        rows = [
            _alert_row("a-sag", "acme", "sag", "warning", state="acknowledged", acted_by="ack:x"),
            _alert_row("a-pair", "acme", "pair", "high"),
            _alert_row("a-old", "acme", "old", "critical", state="resolved", resolved_at=NOW),
            _alert_row("g-sag", "globex", "sag", "warning"),
            _alert_row("ops-1", "@swanwatch", "watcher_failing:csv", "high"),
            _alert_row("ops-2", "@swanwatch", "source:usage", "warning"),
        ]
        table = sa.table(
            "alerts", *(sa.column(c, sa.JSON() if c in _JSON else None) for c in rows[0])
        )
        with store.engine.begin() as conn:
            for row in rows:
                conn.execute(sa.insert(table), [row])
        store.upgrade()
        assert _differences(store) == []
        open_ = {(a.account_id, a.fingerprint): a for a in store.alerts(open_only=True)}
        everything = {a.fingerprint: a for a in store.alerts()}
    finally:
        store.close()
    acme = open_["acme", account_alert_fingerprint("acme")]
    # The most severe names it; the other open rule is a further reason; lines once.
    assert (acme.rule, acme.severity) == ("pair", Severity.HIGH)
    assert [r.rule for r in acme.reasons] == ["pair", "sag"]
    assert acme.why_now == ("pair line", "Renewal on 2027-01-10 is 51 days away.", "sag line")
    assert acme.play == ("pair play", "sag play")
    merged = everything["a-sag"]
    assert merged.state == AlertState.RESOLVED
    assert merged.acted_by == f"merged into {account_alert_fingerprint('acme')}"
    assert everything["a-old"].acted_by is None  # history stays as it was
    assert ("globex", account_alert_fingerprint("globex")) in open_
    assert {fp for (acct, fp) in open_ if acct == "@swanwatch"} == {"ops-1", "ops-2"}
    assert len([a for a in open_ if a[0] == "acme"]) == 1


_JSON = {"contributions", "why_now", "play", "at_stake", "notified_signals"}


def test_0012_keeps_every_signal_by_account_down_and_up_again(store: Store) -> None:
    """The signals are kept by account (on SQLite in a table without rowid, the rows in
    the order of that key); every signal, active or cleared, comes through the change
    both ways, and a pass reads the same."""
    from datetime import timedelta

    from swanwatch.model import Signal

    def signal(account: str, key: str, watcher: str = "w") -> Signal:
        return Signal(
            account_id=account, kind="usage_drop", key=key, strength=0.5, observed_at=NOW,
            summary=f"{account} {key}", watcher=watcher, evidence={"n": 1},
        )  # fmt: skip

    store.record_signals("w", [signal("globex", "a"), signal("acme", "b")], NOW)
    store.record_signals("w", [signal("globex", "a"), signal("acme", "c")], NOW)  # b clears
    store.record_signals("v", [signal("acme", "d", "v")], NOW + timedelta(hours=1))

    def read() -> list[tuple[object, ...]]:
        got = store.active_signals(["acme", "globex"])
        return sorted(tuple(getattr(s, n) for n in s.__slots__) for s in got)

    everything = store.signals(active_only=False)
    active = read()
    assert len(everything) == 4 and len(active) == 3
    if store.dialect == "sqlite":
        with store.engine.connect() as conn:
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name='signals'"))
            assert "WITHOUT ROWID" in sql.scalar_one()
    _downgrade(store, "0011")
    with store.engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM signals")).scalars().all()
    assert len(set(ids)) == 4
    store.upgrade()
    assert _differences(store) == []
    assert store.signals(active_only=False) == everything
    assert read() == active
