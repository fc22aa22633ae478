"""The whole path on a real store: watchers -> signals -> alerts -> outbox, and its failures."""

from __future__ import annotations

import pytest

from swanwatch.alerts import OPS_ACCOUNT
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import CorrelationOutcome, Engine
from swanwatch.model import NotificationStatus
from swanwatch.store import Store

COMPOUND_TEMPLATE = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: champion_departure, strength: 0.9, days_ago: 3}
        - {account: acme, kind: usage_drop, strength: 0.8, days_ago: 10}
        - {account: globex, kind: usage_drop, strength: 0.3}
EXTRA
correlation:
  rules:
    - name: champion_and_usage
      title: Champion left and usage is falling
      severity: high
      all_of: [champion_departure, usage_drop]
      play: ["CSM: call the economic buyer this week."]
  resolve_hold_down: 0s
notify:
  console: true
"""
COMPOUND = COMPOUND_TEMPLATE.replace("EXTRA", "")


async def _cycle(store_url: str, config_path, now: str = "2026-11-20T12:00:00Z"):
    config = load_config(config_path)
    store = Store(store_url)
    try:
        async with Engine(config, store, FrozenClock(now)) as engine:
            outcomes, correlation, delivered = await engine.cycle()
        return outcomes, correlation, delivered, store.alerts(), store.notifications()
    finally:
        store.close()


async def test_signals_become_one_explained_compound_alert(store_url, make_config, capsys) -> None:
    path = make_config(COMPOUND, store_url=store_url)
    _, correlation, delivered, alerts, notes = await _cycle(store_url, path)
    assert correlation.open_alerts == 1
    assert [(a.account_id, a.rule, a.severity) for a in alerts] == [
        ("acme", "champion_and_usage", "high")
    ]
    (alert,) = alerts
    assert {c.kind for c in alert.contributions} == {"champion_departure", "usage_drop"}
    assert alert.play == ("CSM: call the economic buyer this week.",)
    assert alert.at_stake["arr"] == 120000
    assert any("Renewal on 2027-01-10 is 51 days away" in w for w in alert.why_now)
    assert delivered.sent == 1 and [n.status for n in notes] == [NotificationStatus.SENT]
    printed = capsys.readouterr().out
    assert "[HIGH] Acme Corp: Champion left and usage is falling" in printed
    assert "call the economic buyer" in printed


async def test_rerun_and_restart_never_duplicate_signals_alerts_or_messages(
    store_url, make_config, capsys
) -> None:
    path = make_config(COMPOUND, store_url=store_url)
    await _cycle(store_url, path)
    # A second process (a restart) on the same store, an hour later.
    _, _, delivered, alerts, notes = await _cycle(store_url, path, "2026-11-20T13:00:00Z")
    assert len(alerts) == 1 and len(notes) == 1 and delivered.sent == 0
    store = Store(store_url)
    try:
        assert len(store.signals(active_only=False)) == 3
    finally:
        store.close()
    assert capsys.readouterr().out.count("[HIGH] Acme Corp") == 1


async def test_failing_and_hanging_watchers_are_isolated_and_reported(
    store_url, make_config
) -> None:
    path = make_config(
        COMPOUND_TEMPLATE.replace("EXTRA", "  - type: boom\n  - type: hang\n    timeout: 0.3s")
        + "daemon:\n  failure_alert_after: 2\n",
        store_url=store_url,
    )
    outcomes, _, _, alerts, _ = await _cycle(store_url, path)
    by_name = {o.run.instance: o.run for o in outcomes}
    assert by_name["static"].ok and by_name["static"].signals == 3
    assert not by_name["boom"].ok and "the registry is on fire" in (by_name["boom"].error or "")
    assert "RuntimeError" in (by_name["boom"].traceback or "")
    assert not by_name["hang"].ok and "timed out after 0.3 s" in (by_name["hang"].error or "")
    assert [a.account_id for a in alerts] == ["acme"]  # one failure is not yet an ops alert

    _, _, _, alerts, notes = await _cycle(store_url, path, "2026-11-20T13:00:00Z")
    ops = sorted(a.rule for a in alerts if a.account_id == OPS_ACCOUNT)
    assert ops == ["watcher_failing:boom", "watcher_failing:hang"]
    assert sum(1 for n in notes if n.account_id == OPS_ACCOUNT) == 2
    store = Store(store_url)
    try:
        statuses = store.watcher_statuses()
        assert statuses["boom"].consecutive_failures == 2
        assert statuses["static"].consecutive_failures == 0
    finally:
        store.close()


async def test_signals_clear_and_the_alert_resolves_with_a_follow_up(
    store_url, make_config, capsys
) -> None:
    path = make_config(COMPOUND, store_url=store_url)
    await _cycle(store_url, path)
    quiet = make_config(
        COMPOUND.replace("- {account: acme, kind: champion_departure", "#"),
        store_url=store_url,
    )
    # First pass starts the hold-down, the next one resolves.
    await _cycle(store_url, quiet, "2026-11-21T12:00:00Z")
    _, _, _, alerts, notes = await _cycle(store_url, quiet, "2026-11-21T13:00:00Z")
    (alert,) = alerts
    assert alert.state == "resolved"
    assert sorted(n.event for n in notes) == ["firing", "resolved"]
    assert "resolved: Acme Corp" in capsys.readouterr().out


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_once_runs_each_watcher_exactly_once(store_url, make_config) -> None:
    path = make_config(
        """
watchers:
  - type: counting
    name: a
    options: {sleep_s: 0.05}
  - type: counting
    name: b
""",
        store_url=store_url,
    )
    await _cycle(store_url, path)
    await _cycle(store_url, path)
    store = Store(store_url)
    try:
        assert store.load_state("a") == {"runs": 2}
        assert store.load_state("b") == {"runs": 2}
        assert len(store.runs("a")) == 2
    finally:
        store.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_a_broken_accounts_source_is_a_failed_run_not_a_crash(
    store_url, make_config, tmp_path
) -> None:
    path = make_config(COMPOUND + "daemon:\n  failure_alert_after: 1\n", store_url=store_url)
    config = load_config(path)
    (tmp_path / "accounts.csv").unlink()
    store = Store(store_url)
    try:
        async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
            outcome = await engine.run_watcher(config.watchers[0], refresh_accounts=True)
            assert not outcome.run.ok
            assert "accounts.csv" in (outcome.run.error or "")
        assert store.watcher_statuses()["static"].consecutive_failures == 1
    finally:
        store.close()


def test_run_once_reports_a_missing_accounts_file(make_config, run_cli, tmp_path):
    path = make_config("watchers: []\n")
    (tmp_path / "accounts.csv").unlink()
    done = run_cli("run", "-c", str(path), "--once")
    assert done.returncode == 2  # a config problem, caught before anything runs
    assert "accounts.csv" in done.stderr and "check `path`" in done.stderr


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_removed_watchers_and_accounts_take_their_alerts_with_them(
    store_url, make_config, tmp_path
) -> None:
    # One good read without it retires an account (a third fewer rows is not suspect here).
    path = make_config(
        COMPOUND,
        store_url=store_url,
        source="max_shrink_pct: 50",
        accounts="{retire_after_reads: 1, retire_after: 0s}".strip("{}").replace(", ", "\n  "),
    )
    await _cycle(store_url, path)
    # The account leaves the account list: its alert is retired without a message.
    accounts = tmp_path / "accounts.csv"
    accounts.write_text(
        "\n".join(
            line for line in accounts.read_text().splitlines() if not line.startswith("acme,")
        )
        + "\n"
    )
    _, _, _, alerts, notes = await _cycle(store_url, path, "2026-11-21T12:00:00Z")
    (alert,) = alerts
    assert alert.state == "resolved" and (alert.acted_by or "").startswith("retired:")
    assert [n.event for n in notes] == ["firing"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_signals_of_an_unconfigured_watcher_stop_counting(store_url, make_config) -> None:
    path = make_config(COMPOUND, store_url=store_url)
    await _cycle(store_url, path)
    unplugged = make_config(
        COMPOUND.replace("type: static", "type: static\n    enabled: false"),
        store_url=store_url,
    )
    await _cycle(store_url, unplugged, "2026-11-21T12:00:00Z")
    _, _, _, alerts, notes = await _cycle(store_url, unplugged, "2026-11-21T13:00:00Z")
    assert [a.state for a in alerts] == ["resolved"]
    assert sorted(n.event for n in notes) == ["firing", "resolved"]


async def test_a_pass_that_keeps_nothing_tells_each_batch_as_it_is_saved(
    make_config, tmp_path
) -> None:
    """The daemon's way (memory bounded by a batch): the notices reach ``on_told`` batch by
    batch, the same ones a pass that keeps them returns, and the outcome holds none."""
    both = COMPOUND.replace(
        "        - {account: globex, kind: usage_drop, strength: 0.3}",
        "        - {account: globex, kind: usage_drop, strength: 0.8}\n"
        "        - {account: globex, kind: champion_departure, strength: 0.9}",
    )
    config = load_config(make_config(both))

    async def correlate(keep: bool) -> tuple[CorrelationOutcome, list[list[str]]]:
        store = Store(f"sqlite:///{tmp_path}/keep-{keep}.db")
        batches: list[list[str]] = []
        try:
            async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
                engine.batch_accounts = 1
                engine.keep_told = keep
                engine.on_told = lambda told: batches.append(
                    [f"{n.event} {n.alert.account_id}" for n in told]
                )
                await engine.run_watchers()
                return await engine.correlate(), batches
        finally:
            store.close()

    kept, kept_batches = await correlate(True)
    bounded, bounded_batches = await correlate(False)
    assert [f"{n.event} {n.alert.account_id}" for n in kept.notices] == [
        "firing acme",
        "firing globex",
    ]
    assert bounded.notices == () and bounded.changed == ()
    assert bounded_batches == kept_batches == [["firing acme"], ["firing globex"], []]
    assert bounded.enqueued == kept.enqueued == 2
