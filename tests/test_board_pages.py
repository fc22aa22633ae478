"""The board's smaller pages and actions: snooze until a date (in the viewer's zone), the
silences page (list, add with matchers and an expiry, expire), each action on the
account's timeline with who; and the daily score the engine keeps for the chart."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from test_board import CONFIG, TOKEN, _csrf, board  # noqa: F401 (the fixture)

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.model import AlertState
from swanwatch.store import Store


async def test_snooze_until_a_date_in_the_viewers_zone(board) -> None:  # noqa: F811
    client, store, clock = board
    (alert,) = store.alerts(account_id="globex")
    client.cookies.set("swanwatch_tz", "Asia/Tokyo", domain="board.test")
    csrf = _csrf((await client.get("/board")).text)
    form = {"csrf": csrf, "episode": str(alert.episode), "action": "snooze_until"}
    done = await client.post(
        f"/board/alerts/{alert.fingerprint}", data={**form, "until": "2026-12-01"}
    )
    assert done.status_code == 303
    snoozed = store.alert(alert.fingerprint)
    assert snoozed is not None and snoozed.state == AlertState.SNOOZED
    # Midnight in Tokyo is 15:00 UTC the day before.
    assert snoozed.snoozed_until is not None
    assert snoozed.snoozed_until.isoformat() == "2026-11-30T15:00:00+00:00"
    page = (await client.get("/board")).text
    assert "snoozed until 2026-12-01 00:00 JST" in page
    for bad, why in (("2026-11-20", "has begun"), ("2028-01-01", "a year"), ("soon", "YYYY")):
        refused = await client.post(
            f"/board/alerts/{alert.fingerprint}", data={**form, "until": bad}
        )
        assert refused.status_code == 400 and why in refused.text
    account = (await client.get("/board/accounts/globex")).text
    assert "snoozed until 2026-11-30 15:00 UTC by board" in account
    assert clock.now().date() == date(2026, 11, 20)


async def test_silences_listed_added_and_expired(board) -> None:  # noqa: F811
    client, store, _clock = board
    page = await client.get("/board/silences")
    assert page.status_code == 200 and "No active silences." in page.text
    csrf = _csrf(page.text)
    form = {"csrf": csrf, "account": "ini*", "rule": "tickets", "reason": "onboarding", "days": "7"}
    added = await client.post("/board/silences", data=form)
    assert added.status_code == 303 and added.headers["location"] == "/board/silences?done=added"
    (silence,) = store.silences()
    assert silence.matchers == {"account": "ini*", "rule": "tickets"}
    assert silence.author == "board" and silence.ends_at - silence.starts_at == timedelta(days=7)
    listed = (await client.get(added.headers["location"])).text
    assert "Silence added." in listed and "<code>account=ini*</code>" in listed
    assert "2026-11-27 12:00 UTC" in listed
    until = await client.post(
        "/board/silences",
        data={**form, "account": "acme", "days": "", "until": "2026-12-24", "reason": "holidays"},
    )
    assert until.status_code == 303
    assert store.silences()[-1].ends_at.isoformat() == "2026-12-24T00:00:00+00:00"
    nothing = await client.post("/board/silences", data={**form, "reason": " "})
    assert nothing.status_code == 400 and "give a reason" in nothing.text
    unknown = await client.post("/board/silences", data={"csrf": csrf, "reason": "x", "days": "1"})
    assert unknown.status_code == 400 and "matches on one or more of" in unknown.text
    expired = await client.post(f"/board/silences/{silence.id}/expire", data={"csrf": csrf})
    assert expired.status_code == 303
    assert len(store.silences(active_at=_clock.now())) == 1
    again = await client.post(f"/board/silences/{silence.id}/expire", data={"csrf": csrf})
    assert again.status_code == 404
    forged = await client.post("/board/silences", data={**form, "csrf": "x"})
    assert forged.status_code == 403


@pytest.mark.parametrize("keep_days", [3])
async def test_the_engine_keeps_a_daily_score_for_the_chart(make_config, keep_days) -> None:
    server = f"  board_token: {TOKEN}\n  board:\n    history_days: {keep_days}"
    config = load_config(make_config(CONFIG.format(board=server)))
    clock = FrozenClock("2026-11-20T12:00:00Z")
    store = Store(config.store_url)
    for _ in range(5):
        async with Engine(config, store, clock) as engine:
            await engine.cycle()
            await engine.correlate()  # a second pass the same day replaces, not adds
        clock.advance(timedelta(days=1))
    history = store.score_history("acme", date(2026, 1, 1))
    assert [d for d, _ in history] == [
        date(2026, 11, 21),
        date(2026, 11, 22),
        date(2026, 11, 23),
        date(2026, 11, 24),
    ]
    assert all(0 < s <= 1 for _, s in history)
    assert store.score_history("nobody", date(2026, 1, 1)) == []
    store.close()


def test_the_timeline_puts_everything_newest_first() -> None:
    from datetime import UTC, datetime

    from swanwatch.board_account import timeline
    from swanwatch.model import Alert, Severity, StoredSignal
    from swanwatch.store import LoggedAction, SentNotice

    def at(day: int) -> datetime:
        return datetime(2026, 11, day, 9, 0, tzinfo=UTC)

    signal = StoredSignal(
        account_id="acme",
        kind="usage_drop",
        strength=0.8,
        observed_at=at(1),
        summary="Usage fell 40%.",
        watcher="usage",
        first_seen=at(2),
        last_seen=at(9),
        cleared_at=at(9),
    )
    alert = Alert(
        fingerprint="f" * 32,
        account_id="acme",
        rule="pair",
        title="Champion left",
        severity=Severity.HIGH,
        score=0.8,
        started_at=at(3),
        updated_at=at(3),
    )
    sent = SentNotice("f" * 32, "slack", "firing", "Champion left", at(4))
    acked = LoggedAction("f" * 32, "acme", 1, "acknowledged", "ann@csm.example", at(5))
    lines = [(m.at.day, m.kind, m.text) for m in timeline([signal], [alert], [sent], [acked])]
    assert lines == [
        (9, "signal", "Signal cleared: usage_drop"),
        (5, "action", "acknowledged by ann@csm.example: Champion left"),
        (4, "notice", "Sent to slack: Champion left (firing)"),
        (3, "alert", "Alert fired: Champion left, high"),
        (2, "signal", "Signal: Usage fell 40%."),
    ]


async def test_the_days_score_is_kept_in_whole_percent_and_rewritten_only_when_it_moves(
    make_config,
) -> None:
    """The chart's resolution: a pass later the same day, its signals a little older,
    leaves the day's scores as they are unless a percent moved (at 100,000 accounts every
    pass used to rewrite every row)."""
    config = load_config(make_config(CONFIG.format(board=f"  board_token: {TOKEN}")))
    clock = FrozenClock("2026-11-20T12:00:00Z")
    store = Store(config.store_url)
    async with Engine(config, store, clock) as engine:
        await engine.cycle()
        first = dict(_scores(store))
        assert first and all(s == round(s, 2) for s in first.values())
        with store.engine.begin() as conn:  # a real trigger counts the rows written
            conn.exec_driver_sql("CREATE TABLE written (n INTEGER)")
            for event in ("INSERT", "UPDATE"):
                conn.exec_driver_sql(
                    f"CREATE TRIGGER count_{event} AFTER {event} ON score_history "
                    "BEGIN INSERT INTO written VALUES (1); END"
                )
        clock.advance(timedelta(minutes=1))
        await engine.correlate()
        assert _written(store) == 0 and dict(_scores(store)) == first
        with store.engine.begin() as conn:  # as if acme's percent had moved since
            conn.exec_driver_sql("UPDATE score_history SET score = 0.01 WHERE account_id = 'acme'")
        await engine.correlate()
        assert _written(store) == 2 and dict(_scores(store)) == first
    store.close()


def _scores(store: Store) -> list[tuple[str, float]]:
    with store.engine.connect() as conn:
        return [
            (a, s) for a, s in conn.exec_driver_sql("SELECT account_id, score FROM score_history")
        ]


def _written(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM written").scalar_one())
