"""The routing tree and the delivery commands: `routes test`, `outbox list|retry`,
`notify test`, and the leaders' weekly digest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import delivery_support
import pytest
from click.testing import CliRunner

from swanwatch.cli import main
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.delivery import DeliveryWorker, channels_for, enqueue_leaders
from swanwatch.delivery.leaders import last_slot
from swanwatch.engine import Engine
from swanwatch.model import Account, Alert, Contribution, Severity
from swanwatch.store import Store

TREE = """
notify:
  console: false
  channels:
    cs: {url: "json://127.0.0.1:9/cs"}
    enterprise: {url: "json://127.0.0.1:9/ent"}
    pager: {url: "json://127.0.0.1:9/pager", min_severity: critical}
    leads: {url: "mailto://127.0.0.1:9?from=sw@example.com&to=leads@example.com"}
  owners:
    channels: {ann@csm.example: "json://127.0.0.1:9/ann"}
  route:
    name: root
    channels: [cs]
    routes:
      - name: criticals
        min_severity: critical
        channels: [pager]
        continue: true
      - name: enterprise
        match: {segment: enterprise}
        channels: [enterprise]
        owner: true
      - name: champions
        match: {kind: champion_*}
        channels: [leads]
  leaders:
    - {name: ent-leads, channels: [leads], segments: [enterprise], weekday: mon,
       at: "08:00", timezone: Europe/Paris}
"""


def _alert(severity: Severity, kinds: tuple[str, ...], account: str = "acme") -> Alert:
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    return Alert(
        fingerprint=f"fp-{account}",
        account_id=account,
        rule="r",
        title="T",
        severity=severity,
        score=0.8,
        started_at=now,
        updated_at=now,
        contributions=tuple(
            Contribution(
                fingerprint=k,
                kind=k,
                summary=k,
                strength=1,
                weight=1,
                decay=1,
                age_days=0,
                observed_at=now,
            )
            for k in kinds
        ),
    )


ACME = Account(id="acme", owner="ann@csm.example", segment="enterprise", arr=120000)
INITECH = Account(id="initech", owner="bob@csm.example", segment="smb", arr=9000)


def test_the_tree_matches_continues_and_resolves_the_owner(make_config) -> None:
    notify = load_config(make_config(TREE)).notify
    # critical: the pager (continue) and then the enterprise route with the owner's channel
    assert channels_for(_alert(Severity.CRITICAL, ("usage_drop",)), notify, ACME) == [
        "pager",
        "enterprise",
        "owner:ann@csm.example",
    ]
    # first match wins without continue: enterprise, not champions
    assert channels_for(_alert(Severity.HIGH, ("champion_departure",)), notify, ACME) == [
        "enterprise",
        "owner:ann@csm.example",
    ]
    assert channels_for(
        _alert(Severity.HIGH, ("champion_departure",), "initech"), notify, INITECH
    ) == ["leads"]
    # nothing matches: the root's own channel (the default route)
    assert channels_for(_alert(Severity.WARNING, ("usage_drop",), "initech"), notify, INITECH) == [
        "cs"
    ]


def test_routes_test_shows_where_and_why(make_config) -> None:
    path = make_config(TREE)
    result = CliRunner().invoke(
        main,
        [
            "routes",
            "test",
            "-c",
            str(path),
            "--account",
            "acme",
            "--rule",
            "risk_score",
            "--severity",
            "critical",
            "--kind",
            "usage_drop",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert "criticals: matches: severity >= critical" in out
    assert "enterprise: matches: segment enterprise" in out
    assert "owner ann@csm.example has a URL in notify.owners.channels" in out
    assert "pager [chat] via criticals: now" in out
    assert "owner:ann@csm.example [chat] via enterprise: now" in out
    as_json = CliRunner().invoke(
        main,
        [
            "routes",
            "test",
            "-c",
            str(path),
            "--account",
            "initech",
            "--rule",
            "risk_score",
            "--kind",
            "usage_drop",
            "--severity",
            "warning",
            "--json",
        ],
    )
    data = json.loads(as_json.stdout)
    assert [t["channel"] for t in data["targets"]] == ["cs"]
    missing = CliRunner().invoke(
        main, ["routes", "test", "-c", str(path), "--account", "nope", "--rule", "risk_score"]
    )
    assert missing.exit_code == 2 and "'nope'" in missing.stderr
    typo = CliRunner().invoke(
        main, ["routes", "test", "-c", str(path), "--account", "acme", "--rule", "risk_scor"]
    )
    assert typo.exit_code == 2 and "did you mean 'risk_score'?" in typo.stderr


async def test_outbox_list_and_retry(make_config) -> None:
    path = make_config(
        """
watchers:
  - type: static
    options:
      signals: [{account: acme, kind: usage_drop, strength: 0.9}]
correlation:
  rules: [{name: sag, title: Usage sagging, severity: high, any_of: [usage_drop]}]
notify:
  console: false
  max_attempts: 1
  channels:
    down: {url: "json://127.0.0.1:9/nobody-listens"}
"""
    )
    config = load_config(path)
    store = Store(config.store_url)
    async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
        await engine.cycle()
    (dead,) = store.notifications()
    assert dead.status == "dead"
    runner = CliRunner()
    listed = runner.invoke(main, ["outbox", "list", "-c", str(path), "--status", "dead", "--json"])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["id"] == dead.id and row["status"] == "dead" and row["last_error"]
    table = runner.invoke(main, ["outbox", "list", "-c", str(path)])
    assert "1 dead" in table.output or "dead" in table.output
    retried = runner.invoke(main, ["outbox", "retry", "-c", str(path), str(dead.id)])
    assert retried.exit_code == 0 and "1 notifications are back" in retried.output
    assert store.notifications()[0].status == "pending"
    assert store.outbox_counts()["dead"] == 0
    store.close()


@pytest.fixture
def hook() -> Iterator[delivery_support.Hook]:
    h = delivery_support.Hook()
    yield h
    h.close()


def test_notify_test_sends_a_sample_alert_past_the_outbox(make_config, hook) -> None:
    path = make_config(
        f"""
notify:
  console: false
  channels:
    team: {{url: "json://127.0.0.1:{hook.port}/hook"}}
"""
    )
    tested = CliRunner().invoke(main, ["notify", "test", "-c", str(path)])
    assert tested.exit_code == 0, tested.output
    assert "team: sent" in tested.output
    (got,) = hook.received
    assert got.body["title"] == "[test] [HIGH] Sample Customer Inc.: Sample alert (swanwatch_test)"
    assert got.headers["Idempotency-Key"].startswith("test:team:")
    store = Store(load_config(path).store_url)
    assert store.notifications() == []  # nothing went through the outbox
    store.close()


def test_notify_leaders_queues_and_sends_the_digest(make_config, hook) -> None:
    path = make_config(
        f"""
notify:
  console: false
  channels:
    chat: {{url: "json://127.0.0.1:{hook.port}/hook"}}
  leaders:
    - {{name: all, channels: [chat], weekday: mon, at: "08:00"}}
"""
    )
    runner = CliRunner()
    sent = runner.invoke(main, ["notify", "leaders", "-c", str(path), "--now"])
    assert sent.exit_code == 0, sent.output
    assert "1 digests queued, 1 notifications sent" in sent.output
    (got,) = hook.received
    assert got.body["title"].startswith("Swanwatch weekly: all (all accounts), week to ")
    assert "ARR at risk: **$0**" in got.body["message"]
    again = runner.invoke(main, ["notify", "leaders", "-c", str(path), "--now"])
    assert "0 digests queued, 0 notifications sent" in again.output
    missing = runner.invoke(main, ["notify", "leaders", "-c", str(path), "--name", "nope"])
    assert missing.exit_code == 2


def test_notify_test_reports_each_channel(make_config) -> None:
    path = make_config(
        """
notify:
  channels:
    down: {url: "json://127.0.0.1:9/nobody-listens"}
"""
    )
    runner = CliRunner()
    tested = runner.invoke(main, ["notify", "test", "-c", str(path), "--channel", "down"])
    assert tested.exit_code == 1 and "down: FAILED" in tested.output
    unknown = runner.invoke(main, ["notify", "test", "-c", str(path), "--channel", "nope"])
    assert unknown.exit_code == 2


async def test_leaders_digest_is_queued_once_a_week_with_a_chart(make_config) -> None:
    config = load_config(
        make_config(
            """
watchers:
  - type: static
    options:
      signals: [{account: acme, kind: usage_drop, strength: 0.9}]
correlation:
  rules: [{name: sag, title: Usage sagging, severity: high, any_of: [usage_drop],
           play: ["CSM: book the usage review."]}]
notify:
  console: false
  channels:
    leads: {url: "mailto://127.0.0.1:9?from=sw@example.com&to=leads@example.com"}
    chat: {url: "json://127.0.0.1:9/chat"}
  leaders:
    - {name: ent, channels: [leads, chat], segments: [enterprise], weekday: mon,
       at: "08:00", timezone: Europe/Paris}
"""
        )
    )
    store = Store(config.store_url)
    clock = FrozenClock("2026-11-18T12:00:00Z")  # Wednesday: the alert starts
    async with Engine(config, store, clock) as engine:
        await engine.cycle()
    now = datetime(2026, 11, 23, 7, 30, tzinfo=UTC)  # Monday 08:30 in Paris
    assert last_slot(config.notify.leaders[0], now) == datetime(2026, 11, 23, 7, tzinfo=UTC)
    assert enqueue_leaders(config, store, now) == 2
    assert enqueue_leaders(config, store, now) == 0  # the same week is never queued twice
    notes = {n.channel: n for n in store.notifications() if n.event == "digest"}
    assert {n.title for n in notes.values()} == {
        "Swanwatch weekly: ent (enterprise), week to 23 Nov 2026"
    }
    # Rendered when sent, for each channel's format, from the report stored with it.
    worker = DeliveryWorker(config, store, FrozenClock(now))
    (_, html), (_, chat) = (worker.render(c, [notes[c]], now) for c in ("leads", "chat"))
    # ARR at risk is ARR x score, as on the board, with the raw ARR beside it.
    (acme,) = store.alerts()
    at_risk = f"${120000 * acme.score:,.0f}"
    assert f"ARR at risk: <strong>{at_risk}</strong> across 1 accounts, of $120,000 ARR" in html
    assert 'class="chart"' in html and html.count("background:#d1495b") == 8
    assert f"Acme Corp: Usage sagging (high, {at_risk} ARR at risk of $120,000 ARR)" in html
    assert f"ARR at risk: **{at_risk}**" in chat and "New: 1" in chat
    # Not due again until next Monday.
    assert enqueue_leaders(config, store, datetime(2026, 11, 25, tzinfo=UTC)) == 0
    store.close()


#: The tree above, with a route on one account and on a rule, and the ops channels apart.
WIDER = TREE.replace(
    "    routes:\n",
    "    routes:\n"
    "      - name: watched\n"
    "        match: {account: initech, rule: [renewal_*]}\n"
    "        channels: [leads]\n",
    1,
).replace("  owners:", "  ops_channels: [pager]\n  owners:")


def test_a_router_routes_each_alert_as_the_tree_does(make_config) -> None:
    """Outbox entries route a pass's notices with a Router, which keeps each routing by
    the facts the tree looks at: alike alerts must still go exactly where route() sends
    each from the root, whatever came before through the same Router."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from swanwatch.alerts import OPS_ACCOUNT
    from swanwatch.delivery.routing import Router, route

    notify = load_config(make_config(WIDER)).notify
    kinds = st.lists(
        st.sampled_from(["usage_drop", "champion_departure", "renewal_lapse"]), max_size=3
    )
    owners = st.sampled_from(["ann@csm.example", "bob@csm.example", "", "cy@csm.example"])
    alert = st.builds(
        lambda sev, ks, acct, rule, owner, segment: (
            _alert(sev, tuple(ks), acct).model_copy(update={"rule": rule}),
            Account(id=acct, owner=owner or None, segment=segment) if owner != "" else None,
        ),
        st.sampled_from(list(Severity)),
        kinds,
        st.sampled_from(["acme", "initech", OPS_ACCOUNT]),
        st.sampled_from(["renewal_at_risk", "lapsing_domain"]),
        owners,
        st.sampled_from(["enterprise", "smb", None]),
    )

    @settings(max_examples=60, deadline=None)
    @given(st.lists(alert, min_size=1, max_size=12))
    def check(alerts: list[tuple[Alert, Account | None]]) -> None:
        router = Router(notify)
        for a, account in alerts:
            assert router.targets(a, account) == tuple(route(a, account, notify).targets)

    check()
