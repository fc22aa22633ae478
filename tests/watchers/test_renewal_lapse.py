"""renewal_lapse: idle renewals by tier, overdue invoices, failed payments; quiet when worked."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch import Account, StateMap
from swanwatch.testing import assert_watcher_contract, make_account, rows_source, run_watcher

from .replaying import compare

NOW = "2026-11-20T12:00:00Z"


def contract(
    end: str = "2027-01-04",
    *,
    stage: str = "none",
    auto: bool = False,
    overdue: int = 0,
    failed: object = False,
    account: str = "acme",
) -> dict[str, object]:
    return {
        "account_id": account,
        "contract_id": "C-1",
        "end_date": date.fromisoformat(end),
        "auto_renew": auto,
        "renewal_stage": stage,
        "invoice_overdue_days": overdue,
        "payment_failed": failed,
    }


async def run(
    rows: list[dict[str, object]],
    now: str = NOW,
    *,
    state: StateMap | None = None,
    accounts: list[Account] | None = None,
    **options: object,
) -> list:  # type: ignore[type-arg]
    return await run_watcher(
        "renewal_lapse",
        options=options,
        accounts=accounts or [make_account("acme")],
        now=now,
        sources={"contracts": rows_source(rows)},
        state=state,
    )


async def test_contract() -> None:
    await assert_watcher_contract(
        "renewal_lapse",
        accounts=[make_account("acme")],
        now=NOW,
        sources={"contracts": rows_source([contract(overdue=30)])},
    )


async def test_strength_grows_as_the_date_nears() -> None:
    by_days = {}
    for end in ("2027-03-01", "2027-02-08", "2027-01-04", "2026-12-10", "2026-11-10"):
        signals = await run([contract(end)])
        by_days[end] = signals[0].strength if signals else None
    assert by_days == {
        "2027-03-01": None,
        "2027-02-08": 0.333,
        "2027-01-04": 0.667,
        "2026-12-10": 1.0,
        "2026-11-10": 1.0,
    }


async def test_summary_and_when_it_began() -> None:
    [s] = await run([contract("2027-01-04")])
    assert s.key == "C-1"
    assert s.summary == "Contract C-1 ends in 45 days (2027-01-04) with no renewal in motion."
    assert s.observed_at.date() == date(2026, 11, 5)  # when it came within 60 days
    assert s.evidence["days_left"] == 45


async def test_quiet_when_the_renewal_is_in_motion_or_automatic() -> None:
    assert await run([contract(stage="quote")]) == []
    assert await run([contract(stage="signed")]) == []
    assert await run([contract(auto=True)]) == []


async def test_clears_once_an_opportunity_opens_or_long_after_the_end() -> None:
    assert len(await run([contract()])) == 1
    assert await run([contract(stage="opportunity")]) == []
    assert await run([contract("2026-09-01")]) == []  # ended beyond the grace period


async def test_overdue_invoice_and_failed_payment() -> None:
    state = StateMap()
    rows = [contract("2027-09-01", overdue=40, failed=True)]
    signals = {s.key: s for s in await run(rows, state=state)}
    assert set(signals) == {"C-1:overdue", "C-1:payment_failed"}
    assert signals["C-1:overdue"].observed_at.date() == date(2026, 10, 11)
    assert signals["C-1:overdue"].summary == "An invoice on contract C-1 is 40 days overdue."
    later = {s.key: s for s in await run(rows, "2026-11-25T12:00:00Z", state=state)}
    assert later["C-1:payment_failed"].observed_at.date() == date(2026, 11, 20)  # first seen
    assert await run([contract("2027-09-01", overdue=5)], state=state) == []
    assert state.keys() == []


async def test_failed_payment_with_a_date() -> None:
    [s] = await run([contract("2027-09-01", failed="2026-11-03")])
    assert s.observed_at.date() == date(2026, 11, 3)


async def test_account_without_contract_falls_back_to_its_renewal_date() -> None:
    accounts = [make_account("acme", renewal_date="2026-12-01"), make_account("other")]
    [s] = await run([], accounts=accounts)
    assert (s.account_id, s.key) == ("acme", "renewal")
    assert await run([], accounts=accounts, signal_no_contract=False) == []


async def test_an_account_whose_contracts_are_all_quiet_has_a_contract() -> None:
    """Quiet rows (worked, automatic, paid) are left out as they are read, yet the account
    still has its contracts: no fallback to its renewal date, nor a signal from a contract
    judged beside the quiet one."""
    accounts = [make_account("acme", renewal_date="2026-12-01")]
    rows = [contract(auto=True), contract(stage="signed")]
    assert await run(rows, accounts=accounts) == []
    busy = {**contract("2027-09-01", overdue=40), "contract_id": "C-2"}
    signals = await run([*rows, busy], accounts=accounts)
    assert [(s.account_id, s.key) for s in signals] == [("acme", "C-2:overdue")]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]),
            st.integers(-60, 150),
            st.sampled_from(["none", "", "quote", "signed"]),
            st.booleans(),
            st.sampled_from([0, 0, 20, 120]),
            st.sampled_from([False, False, True, "2026-10-01"]),
        ),
        max_size=6,
    ),
    steps=st.lists(st.tuples(st.integers(1, 40), st.booleans(), st.booleans()), max_size=12),
    renewal=st.integers(-40, 120),
)
def test_the_replay_judges_each_day_as_watch_does(
    rows: list[tuple[str, int, str, bool, int, object]],
    steps: list[tuple[int, bool, bool]],
    renewal: int,
) -> None:
    """Each day of a replay (contracts that change now and then, accounts that come and
    go) gives what watch() gives that day afresh."""
    start = datetime(2026, 9, 1, 12, tzinfo=UTC)

    def snapshot(shift: int) -> list[dict[str, object]]:
        return [
            {
                **contract(
                    (start.date() + timedelta(days=end + shift)).isoformat(),
                    stage=stage,
                    auto=auto,
                    overdue=overdue,
                    failed=failed,
                    account=account,
                ),
                "contract_id": f"C-{i}",
            }
            for i, (account, end, stage, auto, overdue, failed) in enumerate(rows)
        ]

    everyone = [
        make_account(i, renewal_date=start.date() + timedelta(days=renewal + n))
        for n, i in enumerate(["a", "b", "c", "d"])
    ]
    source = rows_source(snapshot(0))
    days, now = [], start
    for n, (ahead, new_snapshot, drop) in enumerate([(0, False, False), *steps]):
        now += timedelta(days=ahead)
        if new_snapshot:
            source = rows_source(snapshot(n))
        accounts = [a for a in everyone if not (drop and a.id == "b")]
        days.append((now, accounts, {"contracts": source}))
    asyncio.run(compare("renewal_lapse", {}, days))
