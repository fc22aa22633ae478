"""A source that shrinks, breaks or goes stale is not the truth: nothing is retired, no
acknowledgement is lost, ops get one alert per source, and the accounts come back as they
were. On the real store (SQLite and PostgreSQL), through the engine, with real CSV files."""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import delivery_support
import pytest

from swanwatch.actions import Acknowledge, AlertActions, Snooze
from swanwatch.alerts import OPS_ACCOUNT
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.interfaces import ReadTally
from swanwatch.model import Alert, AlertState, SourceHealth, SourceState
from swanwatch.settings import SourceConfig
from swanwatch.sources.health import HealthPolicy, judge, metered
from swanwatch.store import Store
from swanwatch.testing import make_source

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
HEADER = "id,name,domains,owner,segment,arr,renewal_date,tags\n"


def _account_rows(count: int) -> list[str]:
    return [
        f"acc-{i:03d},Account {i},acc{i}.example,ann@csm.example,smb,{1000 * (i + 1)},2027-06-01,"
        for i in range(count)
    ]


def _book(tmp_path: Path, store_url: str, *, alerted: int = 51, extra: str = "") -> Path:
    """60 accounts in a CSV file; a usage_drop signal (and so an alert) on the first
    ``alerted`` of them."""
    (tmp_path / "accounts.csv").write_text(HEADER + "\n".join(_account_rows(60)) + "\n")
    signals = "\n".join(
        f"        - {{account: acc-{i:03d}, kind: usage_drop, strength: 0.8, days_ago: 2}}"
        for i in range(alerted)
    )
    path = tmp_path / "swanwatch.yaml"
    path.write_text(
        f"""
store: {{url: "{store_url}"}}
sources:
  accounts: {{type: csv, options: {{path: accounts.csv}}}}
accounts: {{source: accounts}}
watchers:
  - type: static
    options:
      signals:
{signals}
correlation:
  rules:
    - {{name: usage, title: Usage is falling, severity: warning, any_of: [usage_drop]}}
  resolve_hold_down: 0s
notify: {{console: false, channels: {{team: {{url: "json://127.0.0.1:9/hook"}}}}}}
daemon: {{failure_alert_after: 1}}
{extra}
"""
    )
    return path


async def _cycle(path: Path, store: Store, now: datetime) -> None:
    """One cycle, delivery left out: what is queued is what would be sent."""
    config = load_config(path)
    async with Engine(config, store, FrozenClock(now)) as engine:
        await engine.load_accounts()
        await engine.run_watchers()
        await engine.correlate()


def _alert(store: Store, fingerprint: str) -> Alert:
    return next(a for a in store.alerts() if a.fingerprint == fingerprint)


def _queued(store: Store) -> list[tuple[str, str, str]]:
    return sorted((n.account_id, n.event, n.idempotency_key) for n in store.notifications())


async def test_an_export_with_nul_bytes_keeps_its_accounts_and_alerts_on_every_store(
    tmp_path: Path, store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """PostgreSQL stores no NUL byte in text: a CRM export with one in an account's name
    made every cycle fail there (the accounts' write raised, so every watcher's run did).
    The byte is kept as U+FFFD on both stores, the account and its alert stay, the log
    names the record and the fields, and the next cycle tells nothing again."""
    path = _book(tmp_path, store_url, alerted=3)
    rows = _account_rows(60)
    rows[0] = (
        "acc-000,Acme\x00 Corp,acme\x00.example,ann\x00@csm.example,smb,1000,2027-06-01,vip\x00"
    )
    (tmp_path / "accounts.csv").write_text(HEADER + "\n".join(rows) + "\n")
    # A watcher's text with the byte in it too, from what it read (the probe watcher's key
    # is a row's id, its summary names the row's day): a WHOIS answer, a plugin's summary.
    (tmp_path / "rows.csv").write_text("account_id,id,day\nacc-003,a\x00b,2026-11\x00-01\n")
    text = path.read_text().replace(
        "sources:\n", "sources:\n  rows: {type: csv, options: {path: rows.csv}}\n"
    )
    path.write_text(
        text.replace("watchers:\n", "watchers:\n  - {type: probe, options: {source: rows}}\n")
    )
    store = Store(store_url)
    try:
        with caplog.at_level("WARNING", logger="swanwatch.accounts"):
            await _cycle(path, store, T0)
        (acme,) = store.accounts(["acc-000"])
        assert acme.name == "Acme\ufffd Corp" and acme.domains == ("acme\ufffd.example",)
        assert acme.owner == "ann\ufffd@csm.example" and acme.tags == ("vip\ufffd",)
        assert len(store.accounts()) == 60
        alerts = {a.account_id: a for a in store.alerts(open_only=True)}
        assert set(alerts) == {"acc-000", "acc-001", "acc-002"}
        assert alerts["acc-000"].at_stake["name"] == "Acme\ufffd Corp"
        (probed,) = [s for s in store.signals() if s.kind == "probe"]
        assert (probed.key, probed.summary) == ("a\ufffdb", "row a\ufffdb dated 2026-11\ufffd-01")
        assert all(run.ok for name in ("static", "probe") for run in store.runs(name))
        (warning,) = [r.getMessage() for r in caplog.records if "NUL" in r.getMessage()]
        assert "record 1 (account acc-000)" in warning
        for field in ("name", "domains", "owner", "tags"):
            assert f"field {field!r}" in warning
        queued = _queued(store)
        assert len(queued) == 3
        await _cycle(path, store, T0 + timedelta(hours=1))
        assert _queued(store) == queued  # nothing told twice
        assert store.source_health()["accounts"].state == SourceState.OK
    finally:
        store.close()


async def test_a_truncated_accounts_file_with_a_malformed_row_changes_nothing(
    tmp_path: Path, store_url: str
) -> None:
    path = _book(tmp_path, store_url)
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        open_alerts = store.alerts(open_only=True)
        assert len(open_alerts) == 51
        before = _queued(store)
        assert len(before) == 51
        acked = open_alerts[7]
        AlertActions(store, FrozenClock(T0)).act(acked.fingerprint, Acknowledge(), by="ann")

        # The export is cut to 10 rows, and one of them is malformed.
        accounts = tmp_path / "accounts.csv"
        full = accounts.read_text()
        accounts.write_text(HEADER + "\n".join([*_account_rows(10), "acc-bad,Broken"]) + "\n")
        await _cycle(path, store, T0 + timedelta(hours=1))

        alerts = {a.fingerprint: a for a in store.alerts()}
        accounts_alerts = [a for a in alerts.values() if a.account_id != OPS_ACCOUNT]
        assert [a for a in accounts_alerts if not a.open] == []  # nothing retired
        assert alerts[acked.fingerprint].state == AlertState.ACKNOWLEDGED
        ops = [a for a in alerts.values() if a.account_id == OPS_ACCOUNT]
        assert [(a.rule, a.title) for a in ops] == [
            ("source:accounts", "Source accounts is suspect")
        ]
        why = " ".join(ops[0].why_now)
        assert "10 rows where the last good read" in why and "had 60" in why
        assert "1 malformed row (first: accounts.csv:12: expected 8 fields, found 2)" in why
        after = _queued(store)
        assert [n for n in after if n not in before] == [
            (OPS_ACCOUNT, "firing", n[2]) for n in after if n[0] == OPS_ACCOUNT
        ]
        assert len(after) == len(before) + 1  # one ops alert, nothing else
        # Every account is unknown to the watcher, not judged healthy; its signals stay.
        unknowns = store.unknowns()
        assert {u.account_id for u in unknowns} == {f"acc-{i:03d}" for i in range(60)}
        assert all("source 'accounts' is suspect" in u.reason for u in unknowns)
        assert len(store.signals(active_only=True)) == 51
        assert len(store.accounts()) == 60
        (run, *_) = store.runs("static")
        assert run.ok and run.held and "suspect" in run.held

        # The file comes back: nothing new for any account; the ops alert resolves.
        accounts.write_text(full)
        await _cycle(path, store, T0 + timedelta(hours=2))
        final = {a.fingerprint: a for a in store.alerts()}
        for alert in final.values():
            if alert.account_id != OPS_ACCOUNT:
                assert alert.open and alert.episode == 1, alert
        assert final[acked.fingerprint].state == AlertState.ACKNOWLEDGED
        assert final[ops[0].fingerprint].clear_since is not None
        assert _queued(store) == after
        assert store.source_health()["accounts"].state == SourceState.OK
        # The next pass resolves the ops alert (its hold-down is nil), and tells ops so.
        await _cycle(path, store, T0 + timedelta(hours=3))
        assert not _alert(store, ops[0].fingerprint).open
        new = [n for n in _queued(store) if n not in after]
        assert [(a, e) for a, e, _ in new] == [(OPS_ACCOUNT, "resolved")]
    finally:
        store.close()


async def test_a_truncated_export_end_to_end_tells_ops_once_and_nothing_on_restore(
    tmp_path: Path, store_url: str
) -> None:
    """The same faults through whole cycles (accounts, watchers, correlation, delivery) to
    a real local webhook: what arrives is counted per idempotency key."""
    hook = delivery_support.Hook()
    path = _book(tmp_path, store_url)
    path.write_text(path.read_text().replace("127.0.0.1:9/hook", f"127.0.0.1:{hook.port}/hook"))
    accounts = tmp_path / "accounts.csv"
    full = accounts.read_text()
    store = Store(store_url)
    clock = FrozenClock(T0)
    try:
        async with Engine(load_config(path), store, clock) as engine:
            await engine.cycle()
            assert len(hook.keys) == 51
            alerts = store.alerts(open_only=True)
            actions = AlertActions(store, clock)
            for alert in alerts[:5]:
                actions.act(alert.fingerprint, Acknowledge(), by="ann")
            for alert in alerts[5:8]:
                actions.act(alert.fingerprint, Snooze(timedelta(days=3)), by="bob")
            acted = {a.fingerprint: a.state for a in store.alerts(open_only=True)}

            # Cut to 10 rows plus a malformed one, for two cycles: one message, to ops.
            accounts.write_text(HEADER + "\n".join([*_account_rows(10), "acc-bad,Broken"]) + "\n")
            for _ in range(2):
                clock.advance(timedelta(hours=1))
                await engine.cycle()
            assert len(hook.keys) == 52
            told = hook.received[-1].body
            assert "Source accounts is suspect" in told["title"]
            assert "10 rows where the last good read" in told["message"]

            # Restored: nothing new; a cycle later ops hear that it is over.
            accounts.write_text(full)
            clock.advance(timedelta(hours=1))
            await engine.cycle()
            assert len(hook.keys) == 52
            clock.advance(timedelta(hours=1))
            await engine.cycle()
        assert len(hook.keys) == 53 and "Source accounts" in hook.received[-1].body["title"]
        assert max(Counter(hook.keys).values()) == 1  # each key arrived once
        now = {a.fingerprint: a for a in store.alerts() if a.account_id != OPS_ACCOUNT}
        assert len(now) == 51 and all(a.open and a.episode == 1 for a in now.values())
        assert {fp: now[fp].state for fp in acted} == acted  # no action lost
        assert {n.status for n in store.notifications(limit=100)} == {"sent"}
    finally:
        store.close()
        hook.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_an_unclosed_quote_breaks_the_read_with_its_line(
    tmp_path: Path, store_url: str
) -> None:
    path = _book(tmp_path, store_url, alerted=5)
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        accounts = tmp_path / "accounts.csv"
        rows = _account_rows(60)
        rows[20] = rows[20].replace("Account 20", '"Account 20')  # never closed
        accounts.write_text(HEADER + "\n".join(rows) + "\n")
        await _cycle(path, store, T0 + timedelta(hours=1))
        health = store.source_health()["accounts"]
        assert health.state == SourceState.BROKEN and health.rows is None
        assert "accounts.csv:22: unclosed quote" in health.reason
        assert len(store.accounts()) == 60
        assert len(store.alerts(open_only=True)) == 5 + 1  # the accounts', and ops' own
        (ops,) = [a for a in store.alerts() if a.account_id == OPS_ACCOUNT]
        assert ops.title == "Source accounts is broken"
        assert all("broken" in u.reason for u in store.unknowns())
    finally:
        store.close()


async def test_an_account_leaves_after_good_reads_and_comes_back_as_it_was(
    tmp_path: Path, store_url: str
) -> None:
    path = _book(tmp_path, store_url, alerted=3)
    path.write_text(
        path.read_text().replace(
            "accounts: {source: accounts}",
            "accounts: {source: accounts, retire_after_reads: 2, retire_after: 1h}",
        )
    )
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        (first, *_) = [a for a in store.alerts() if a.account_id == "acc-000"]
        AlertActions(store, FrozenClock(T0)).act(first.fingerprint, Acknowledge(), by="ann")
        told = _queued(store)
        accounts = tmp_path / "accounts.csv"
        full = accounts.read_text()
        accounts.write_text(HEADER + "\n".join(_account_rows(60)[1:]) + "\n")

        # Absent from one good read: unknown, its alert and signal live on.
        await _cycle(path, store, T0 + timedelta(minutes=30))
        alert = _alert(store, first.fingerprint)
        assert alert.state == AlertState.ACKNOWLEDGED
        unknown = [u for u in store.unknowns() if u.account_id == "acc-000"]
        assert unknown and "not listed by accounts source 'accounts'" in unknown[0].reason
        assert [s.account_id for s in store.signals() if s.account_id == "acc-000"]

        # Two good reads, the first an hour ago: retired, without a word.
        await _cycle(path, store, T0 + timedelta(hours=1, minutes=30))
        alert = _alert(store, first.fingerprint)
        assert alert.state == AlertState.RESOLVED
        assert (alert.acted_by or "").startswith("retired:")
        assert "acc-000" not in {a.id for a in store.accounts()}
        assert _queued(store) == told

        # Back within the alert's life: the same episode, still acknowledged, nothing sent.
        accounts.write_text(full)
        await _cycle(path, store, T0 + timedelta(hours=3))
        alert = _alert(store, first.fingerprint)
        assert alert.state == AlertState.ACKNOWLEDGED
        assert alert.acted_by == "ack:ann" and alert.episode == 1
        assert _queued(store) == told
    finally:
        store.close()


def _usage_csv(path: Path, last_day: date, drops: dict[str, int]) -> None:
    """90 days of daily usage to ``last_day`` for five accounts; an account in ``drops``
    falls to a third of its usage that many days before ``last_day``."""
    lines = ["account_id,date,value"]
    for i in range(5):
        account = f"acc-{i:03d}"
        for back in range(89, -1, -1):
            day = last_day - timedelta(days=back)
            value = 100.0 + (7 * back + 3 * i) % 11
            if account in drops and back < drops[account]:
                value /= 3
            lines.append(f"{account},{day.isoformat()},{value}")
    path.write_text("\n".join(lines) + "\n")


async def test_a_usage_feed_that_stopped_makes_usage_unknown(
    tmp_path: Path, store_url: str
) -> None:
    stopped = T0.date()
    _usage_csv(tmp_path / "usage.csv", stopped, {"acc-000": 30, "acc-001": 10})
    path = _book(tmp_path, store_url, alerted=0)
    text = path.read_text().replace(
        "  accounts: {type: csv, options: {path: accounts.csv}}\n",
        "  accounts: {type: csv, options: {path: accounts.csv}}\n"
        "  usage: {type: csv, options: {path: usage.csv, types: {date: date, value: float}}}\n",
    )
    text = (
        text[: text.index("watchers:")]
        + "watchers:\n  - type: usage_drop\n"
        + (text[text.index("correlation:") :])
    )
    path.write_text(text)
    (tmp_path / "accounts.csv").write_text(HEADER + "\n".join(_account_rows(5)) + "\n")
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        found = {s.account_id: s for s in store.signals() if s.kind == "usage_drop"}
        assert set(found) == {"acc-000", "acc-001"}
        assert store.source_health()["usage"].state == SourceState.OK

        now = T0 + timedelta(days=20)  # the feed stopped 20 days ago
        await _cycle(path, store, now)
        health = store.source_health()["usage"]
        assert health.state == SourceState.STALE
        ends = f"usage data ends {stopped.isoformat()}, 20 days ago"
        assert ends in health.reason
        unknowns = [u for u in store.unknowns() if u.watcher == "usage_drop"]
        assert {u.account_id for u in unknowns} == {f"acc-{i:03d}" for i in range(5)}
        assert all(ends in u.reason for u in unknowns)
        ops = [a for a in store.alerts(open_only=True) if a.account_id == OPS_ACCOUNT]
        assert [a.title for a in ops] == ["Source usage is stale"]
        lookback = now - timedelta(days=42)
        left = [s for s in store.signals() if s.kind == "usage_drop"]
        assert [s.account_id for s in left] == ["acc-001"]  # the 50-day-old drop is gone
        assert all(s.observed_at >= lookback for s in left)
    finally:
        store.close()


def _usage_book(tmp_path: Path, store_url: str, usage_extra: str, watchers: str) -> Path:
    """Five accounts and a usage CSV source (with ``usage_extra`` beside its options), read
    by ``watchers``."""
    path = _book(tmp_path, store_url, alerted=0)
    text = path.read_text().replace(
        "  accounts: {type: csv, options: {path: accounts.csv}}\n",
        "  accounts: {type: csv, options: {path: accounts.csv}}\n"
        "  usage: {type: csv, options: {path: usage.csv, types: {date: date, value: float}}"
        f"{usage_extra}}}\n",
    )
    text = text[: text.index("watchers:")] + watchers + text[text.index("correlation:") :]
    path.write_text(text)
    (tmp_path / "accounts.csv").write_text(HEADER + "\n".join(_account_rows(5)) + "\n")
    return path


async def test_freshness_is_set_per_source_and_a_stale_one_is_one_ops_alert(
    tmp_path: Path, store_url: str
) -> None:
    # Two watchers read the same stopped feed: every account unknown to both, and one ops
    # alert, for the source. Then the source says its data may be a month old: fresh again.
    _usage_csv(tmp_path / "usage.csv", T0.date(), {"acc-001": 10})
    two = "watchers:\n  - type: usage_drop\n  - {type: usage_drop, name: usage_weekly}\n"
    path = _usage_book(tmp_path, store_url, "", two)
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        now = T0 + timedelta(days=20)
        await _cycle(path, store, now)
        assert store.source_health()["usage"].state == SourceState.STALE
        everyone = {f"acc-{i:03d}" for i in range(5)}
        for watcher in ("usage_drop", "usage_weekly"):
            unknown = [u for u in store.unknowns() if u.watcher == watcher]
            assert {u.account_id for u in unknown} == everyone
            assert all("usage data ends 2026-11-20, 20 days ago" in u.reason for u in unknown)
        ops = [a for a in store.alerts(open_only=True) if a.account_id == OPS_ACCOUNT]
        assert [a.title for a in ops] == ["Source usage is stale"]

        path = _usage_book(tmp_path, store_url, ", fresh_within: 30d", two)
        await _cycle(path, store, now + timedelta(hours=1))
        assert store.source_health()["usage"].state == SourceState.OK
        assert not [u for u in store.unknowns() if "usage data ends" in u.reason]
        assert {s.account_id for s in store.signals() if s.kind == "usage_drop"} == {"acc-001"}
    finally:
        store.close()


def _tally(rows: int, **kw: object) -> ReadTally:
    tally = ReadTally(rows=rows, finished=True, date_field=kw.pop("date_field", None))  # type: ignore[arg-type]
    for name, value in kw.items():
        setattr(tally, name, value)
    return tally


def test_the_judgement_of_a_read() -> None:
    policy = HealthPolicy(max_shrink_pct=20, max_bad_rows=0)
    first = judge(_tally(100), "s", None, policy, T0)
    assert first is not None and first.ok and first.good_rows == 100
    # 20% fewer is still good; more is suspect, and the last good read stays.
    fewer = judge(_tally(80), "s", first, policy, T0 + timedelta(hours=1))
    assert fewer is not None and fewer.ok and fewer.good_rows == 80
    shrunk = judge(_tally(63), "s", fewer, policy, T0 + timedelta(hours=2))
    assert shrunk is not None and shrunk.state == SourceState.SUSPECT
    assert shrunk.good_rows == 80 and shrunk.rows == 63 and "21% fewer" in shrunk.reason
    again = judge(_tally(63), "s", shrunk, policy, T0 + timedelta(hours=3))
    assert again is not None and again.bad_reads == 2 and again.since == shrunk.since
    # Malformed rows, beyond what the source tolerates.
    bad = _tally(100, malformed=2, problems=["a.csv:3: x", "a.csv:9: y"])
    judged = judge(bad, "s", first, policy, T0)
    assert judged is not None and judged.state == SourceState.SUSPECT
    assert "2 malformed rows (first: a.csv:3: x)" in judged.reason
    tolerant = judge(bad, "s", first, HealthPolicy(max_bad_rows=2), T0)
    assert tolerant is not None and tolerant.ok
    # A failed read is broken; one that stopped early tells nothing.
    broken = judge(ReadTally(error="a.csv:4: unclosed quote"), "s", first, policy, T0)
    assert broken is not None and broken.state == SourceState.BROKEN and broken.rows is None
    assert judge(ReadTally(rows=5), "s", first, policy, T0) is None


def test_freshness_is_by_the_newest_date() -> None:
    fresh = HealthPolicy(fresh_within=timedelta(days=3), date_field="date")
    recent = _tally(10, date_field="date", newest=date(2026, 11, 17))
    judged = judge(recent, "usage", None, fresh, T0)
    assert judged is not None and judged.ok
    old = _tally(10, date_field="date", newest=date(2026, 9, 8))
    judged = judge(old, "usage", None, fresh, T0)
    assert judged is not None and judged.state == SourceState.STALE
    assert judged.reason == ("usage data ends 2026-09-08, 73 days ago (expected within 3 days)")
    undated = judge(_tally(10, date_field="date"), "usage", None, fresh, T0)
    assert undated is not None and undated.state == SourceState.STALE


def test_a_suspect_source_can_be_accepted(
    tmp_path: Path, swanwatch_cmd: list[str], subprocess_env: dict[str, str]
) -> None:
    url = f"sqlite:///{tmp_path / 'sw.db'}"
    path = _book(tmp_path, url, alerted=1)
    store = Store(url)
    try:
        store.save_source_health(
            SourceHealth(
                source="accounts",
                state=SourceState.SUSPECT,
                reason="40 rows where the last good read had 60",
                rows=40,
                good_rows=60,
                since=T0,
                checked_at=T0,
            )
        )
    finally:
        store.close()
    done = subprocess.run(
        [*swanwatch_cmd, "sources", "accept", "accounts", "-c", str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env,
    )
    assert done.returncode == 0, done.stderr
    store = Store(url)
    try:
        health = store.source_health()["accounts"]
        assert health.ok and health.good_rows == 40
    finally:
        store.close()
    refused = subprocess.run(
        [*swanwatch_cmd, "sources", "accept", "usage", "-c", str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env,
    )
    assert refused.returncode == 1 and "has not been read yet" in refused.stderr


async def test_a_snapshot_source_is_as_fresh_as_its_newest_file(tmp_path: Path) -> None:
    # Contracts have no date of their own; kept as dated snapshots, the newest file's date
    # is what `fresh_within` is held against.
    (tmp_path / "contracts-2026-10-21.csv").write_text("account_id,contract_id\na,C-1\n")
    source = make_source(
        "csv", {"path": "contracts-*.csv", "snapshots": True}, base_dir=str(tmp_path)
    )
    configs = {"contracts": SourceConfig(type="csv", fresh_within=timedelta(days=14))}
    view = metered({"contracts": source}, configs)["contracts"]
    assert [dict(r) async for r in view.rows()] == [{"account_id": "a", "contract_id": "C-1"}]
    health = judge(view.reads[-1], "contracts", None, view.policy, T0)
    assert health is not None and health.state == SourceState.STALE
    assert health.reason == "contracts data ends 2026-10-21, 30 days ago (expected within 14 days)"
    unchecked = metered({"contracts": source}, {})["contracts"]  # no fresh_within: not checked
    assert [r async for r in unchecked.rows()]
    judged = judge(unchecked.reads[-1], "contracts", None, unchecked.policy, T0)
    assert judged is not None and judged.ok
