"""support_spike: volume, escalations, P1s against the account's own rate; unanswered tickets."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

from swanwatch.testing import assert_watcher_contract, make_account, rows_source, run_watcher

NOW = "2026-11-20T12:00:00Z"
END = datetime(2026, 11, 20, 12, tzinfo=UTC)


def ticket(
    opened: datetime,
    *,
    prio: str = "p3",
    escalated: bool = False,
    answered: bool = True,
    status: str = "closed",
    account: str = "acme",
    n: list[int] = [0],  # noqa: B006 (a running ticket number)
) -> dict[str, object]:
    n[0] += 1
    return {
        "account_id": account,
        "ticket_id": f"T-{n[0]}",
        "opened_at": opened,
        "priority": prio,
        "escalated": escalated,
        "status": status,
        "first_response_at": opened + timedelta(hours=3) if answered else None,
    }


def usual(
    account: str = "acme", per_week: float = 1.0, seed: int = 1, days: int = 70
) -> list[dict[str, object]]:
    """Ordinary traffic: about ``per_week`` tickets a week, on weekdays."""
    rng = random.Random(seed)
    rows = []
    for i in range(days):
        day = END - timedelta(days=days - i, hours=2)
        if day.weekday() < 5 and rng.random() < per_week / 5:
            rows.append(ticket(day, account=account, prio=rng.choice(["p2", "p3", "p4"])))
    return rows


def burst(start: date, count: int, **kw: object) -> list[dict[str, object]]:
    t0 = datetime(start.year, start.month, start.day, 10, tzinfo=UTC)
    return [ticket(t0 + timedelta(hours=7 * i), **kw) for i in range(count)]  # type: ignore[arg-type]


async def run(
    rows: list[dict[str, object]],
    now: str = NOW,
    *,
    replay: bool = False,
    accounts: tuple[str, ...] = ("acme",),
    **options: object,
) -> list:  # type: ignore[type-arg]
    return await run_watcher(
        "support_spike",
        options=options,
        accounts=[make_account(a) for a in accounts],
        now=now,
        sources={"tickets": rows_source(rows, date_field="opened_at")},
        replay=replay,
    )


async def test_contract() -> None:
    rows = usual() + burst(date(2026, 11, 16), 6)
    await assert_watcher_contract(
        "support_spike",
        accounts=[make_account("acme")],
        now=NOW,
        sources={"tickets": rows_source(rows)},
    )


async def test_quiet_on_ordinary_traffic() -> None:
    rows = [r for s in range(20) for r in usual(f"a{s}", per_week=0.5 + s, seed=s)]
    assert await run(rows, accounts=tuple(f"a{s}" for s in range(20))) == []


async def test_volume_spike_fires_from_its_first_ticket() -> None:
    rows = usual() + burst(date(2026, 11, 16), 6)
    [s] = await run(rows)
    assert s.key == "volume"
    assert s.observed_at == datetime(2026, 11, 16, 10, tzinfo=UTC)
    assert s.evidence["recent"] >= 6
    assert s.summary.startswith(f"{s.evidence['recent']} support tickets in the last 7 days")


async def test_busy_account_needs_more_than_its_usual() -> None:
    rows = usual(per_week=4, seed=3) + burst(date(2026, 11, 16), 5)
    assert await run(rows) == []


async def test_escalations_and_p1() -> None:
    rows = (
        usual()
        + burst(date(2026, 11, 17), 2, escalated=True)
        + burst(date(2026, 11, 18), 1, prio="p1")
    )
    keys = {s.key for s in await run(rows)}
    assert keys == {"escalations", "p1"}


async def test_clears_when_the_spike_passes() -> None:
    rows = usual() + burst(date(2026, 11, 2), 6)
    assert [s.key for s in await run(rows, "2026-11-06T12:00:00Z", replay=True)] == ["volume"]
    assert await run(rows) == []


async def test_unanswered_tickets_ageing() -> None:
    rows = [
        *usual(),
        ticket(END - timedelta(days=3), answered=False, status="open"),
        ticket(END - timedelta(hours=10), answered=False, status="open"),
        ticket(END - timedelta(days=5), answered=False, status="closed"),
    ]
    [s] = await run(rows)
    assert s.key == "unanswered" and s.evidence["count"] == 1
    assert s.observed_at == END - timedelta(days=1)
    assert "1 ticket has had no first response for over 48 hours" in s.summary
