"""renewal_lapse: idle renewals by tier, overdue invoices, failed payments; quiet when worked."""

from __future__ import annotations

from datetime import date

from swanwatch import Account, StateMap
from swanwatch.testing import assert_watcher_contract, make_account, rows_source, run_watcher

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
