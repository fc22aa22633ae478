"""usage_drop: fires on a sustained drop against the seasonal baseline, quiet on noise, clears."""

from __future__ import annotations

import csv
import random
import tempfile
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from swanwatch.sources.csv import CsvSource
from swanwatch.testing import (
    assert_watcher_contract,
    last_unknowns,
    make_account,
    rows_source,
    run_watcher,
)

END = date(2026, 11, 20)
NOW = "2026-11-20T18:00:00Z"


def history(
    account: str = "acme",
    *,
    days: int = 84,
    level: float = 100.0,
    weekend: float = 0.3,
    noise: float = 0.06,
    seed: int = 1,
    metric: str = "reports",
    change: Callable[[date, float], float | None] = lambda d, v: v,
) -> list[dict[str, object]]:
    """Daily usage with weekly seasonality and noise; ``change`` edits a day (None: no row)."""
    rng = random.Random(seed)
    rows = []
    for i in range(days):
        day = END - timedelta(days=days - 1 - i)
        value = level * (weekend if day.weekday() >= 5 else 1.0) * rng.gauss(1.0, noise)
        changed = change(day, max(0.0, value))
        if changed is not None:
            rows.append(
                {"account_id": account, "date": day, "metric": metric, "value": round(changed)}
            )
    return rows


def drop_from(
    start: date, factor: float, until: date | None = None
) -> Callable[[date, float], float | None]:
    return lambda d, v: v * factor if start <= d and (until is None or d <= until) else v


async def run(
    rows: list[dict[str, object]],
    *,
    now: str = NOW,
    accounts: list[str] | None = None,
    replay: bool = False,
    **options: object,
) -> list:  # type: ignore[type-arg]
    """The watcher over ``rows`` row by row, and (the same signals and unknowns, checked)
    as columns from a CSV file and from a Parquet file."""
    ids = accounts or sorted({str(r["account_id"]) for r in rows})

    async def watch(source: object) -> tuple[list, list]:  # type: ignore[type-arg]
        signals = await run_watcher(
            "usage_drop",
            options=options,
            accounts=[make_account(i) for i in ids],
            now=now,
            sources={"usage": source},  # type: ignore[dict-item]
            replay=replay,
        )
        return signals, last_unknowns()

    by_rows, unknowns = await watch(rows_source(rows, date_field="date"))
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_files(rows, Path(tmp)):
            types = {"date": "date", "value": "float"}
            options_ = CsvSource.Options(path=str(path), types=types, date_field="date")
            by_columns, unknown_columns = await watch(CsvSource("usage", options_))
            assert by_columns == by_rows, path.name
            assert unknown_columns == unknowns, path.name
    return by_rows


def write_files(rows: list[dict[str, object]], folder: Path) -> list[Path]:
    """``rows`` as usage.csv and usage.parquet (text cells for what is not a number)."""
    names = list(dict.fromkeys(k for r in rows for k in r)) or ["account_id", "date", "value"]
    with (folder / "usage.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, names)
        writer.writeheader()
        writer.writerows(rows)
    table = pa.table(
        {
            n: pa.array([r.get(n) for r in rows], type=pa.float64() if n == "value" else None)
            for n in names
        }
    )
    pq.write_table(table, folder / "usage.parquet")
    return [folder / "usage.csv", folder / "usage.parquet"]


async def test_contract() -> None:
    await assert_watcher_contract(
        "usage_drop",
        accounts=[make_account("acme")],
        now=NOW,
        sources={"usage": rows_source(history(change=drop_from(date(2026, 11, 12), 0.5)))},
    )


async def test_fires_on_a_sustained_drop_from_its_first_day() -> None:
    signals = await run(history(change=drop_from(date(2026, 11, 12), 0.5)))
    assert len(signals) == 1
    s = signals[0]
    assert (s.account_id, s.kind, s.key) == ("acme", "usage_drop", "reports")
    assert s.observed_at.date() == date(2026, 11, 12)
    assert s.evidence["days_lasted"] == 9
    assert -58 < s.evidence["pct_change"] < -42
    assert s.evidence["baseline_per_day"] > s.evidence["current_per_day"]
    assert s.evidence["baseline_weeks"] == 8
    assert s.summary.startswith("Usage of reports fell ")
    assert s.summary.endswith("% below its 8-week baseline for 9 days.")
    assert 0.5 < s.strength <= 1.0


async def test_needs_the_minimum_run_of_low_days() -> None:
    assert await run(history(change=drop_from(date(2026, 11, 19), 0.6))) == []
    fired = await run(history(change=drop_from(date(2026, 11, 18), 0.6)))
    assert [s.evidence["low_days"] for s in fired] == [3]


async def test_a_deep_drop_is_signalled_after_two_days() -> None:
    assert await run(history(change=drop_from(date(2026, 11, 20), 0.3))) == []
    fired = await run(history(change=drop_from(date(2026, 11, 19), 0.45)))
    assert [s.evidence["low_days"] for s in fired] == [2]
    assert (
        await run(history(change=drop_from(date(2026, 11, 19), 0.45)), deep_drop_min_days=3) == []
    )


def days_down(cuts: dict[date, float]) -> Callable[[date, float], float | None]:
    """Usage cut by the given fraction on the given days."""
    return lambda d, v: v * (1 - cuts.get(d, 0.0))


async def test_three_moderate_days_are_a_drop_on_a_steady_account() -> None:
    # A holiday-week shape: -33%, -25%, -22%. Each day is far outside a steady account's
    # noise; together they are a material drop (22-33% is under the old 30%-a-day bar).
    week = {date(2026, 11, 18): 0.33, date(2026, 11, 19): 0.25, date(2026, 11, 20): 0.22}
    [s] = await run(history(noise=0.03, change=days_down(week)))
    assert s.observed_at.date() == date(2026, 11, 18)
    assert s.evidence["low_days"] == 3
    assert -30 < s.evidence["pct_change"] < -24
    # Two of those days are not yet a drop; three days 15% down are too mild on average;
    # three days 7% down are within what a day may vary.
    two = {d: c for d, c in week.items() if d.day > 18}
    assert await run(history(noise=0.03, change=days_down(two))) == []
    mild = dict.fromkeys(week, 0.15)
    assert await run(history(noise=0.03, change=days_down(mild))) == []
    slight = dict.fromkeys(week, 0.07)
    assert await run(history(noise=0.01, change=days_down(slight))) == []


async def test_quiet_on_weekly_seasonality_and_noise() -> None:
    rows = [
        r
        for seed in range(30)
        for r in history(f"a{seed}", seed=seed, noise=0.1, level=50 + 40 * seed)
    ]
    assert await run(rows) == []


async def test_quiet_on_a_public_holiday_and_a_one_day_dip() -> None:
    def holiday_and_dip(d: date, v: float) -> float:
        if d in (date(2026, 11, 11), date(2026, 11, 19)):  # Veterans Day, and yesterday
            return v * 0.3
        return v * 0.4 if d == date(2026, 10, 14) else v

    assert await run(history(change=holiday_and_dip)) == []


async def test_ignore_dates_skips_a_holiday_week() -> None:
    week = {date(2026, 11, 16) + timedelta(days=i) for i in range(5)}
    rows = history(change=lambda d, v: v * 0.4 if d in week else v)
    assert len(await run(rows)) == 1
    assert await run(rows, ignore_dates=sorted(week)) == []


async def test_small_account_does_not_flap() -> None:
    rows = history(level=4, noise=0.5, change=drop_from(date(2026, 11, 14), 0.0))
    assert await run(rows) == []


async def test_clears_when_usage_recovers() -> None:
    rows = history(change=drop_from(date(2026, 11, 5), 0.5, until=date(2026, 11, 15)))
    fired = await run(rows, now="2026-11-12T18:00:00Z", replay=True)
    assert [s.observed_at.date() for s in fired] == [date(2026, 11, 5)]
    assert await run(rows) == []


async def test_flatline_when_rows_stop() -> None:
    rows = history(level=800, change=lambda d, v: None if d >= date(2026, 11, 14) else v)
    rows += history("other", seed=2)  # keeps the source running to the last day
    signals = await run(rows)
    assert [(s.account_id, s.evidence["flatline"]) for s in signals] == [("acme", True)]
    assert signals[0].summary.startswith("Usage of reports has been zero for 7 days")
    assert signals[0].evidence["pct_change"] == -100.0


async def test_a_long_drop_does_not_become_the_new_normal() -> None:
    rows = history(days=110, change=drop_from(date(2026, 10, 12), 0.45))
    signals = await run(rows, lookback_days=60)
    assert [s.observed_at.date() for s in signals] == [date(2026, 10, 12)]
    assert signals[0].evidence["days_lasted"] == 40


async def test_gradual_decline_fires_once_deep_enough() -> None:
    start = date(2026, 10, 31)

    def slide(d: date, v: float) -> float:
        return v * (1 - 0.5 * min(1.0, max(0, (d - start).days) / 21))

    signals = await run(history(change=slide, noise=0.04))
    assert len(signals) == 1
    assert signals[0].observed_at.date() > start


async def test_only_listed_metrics_and_accounts() -> None:
    rows = history(change=drop_from(date(2026, 11, 12), 0.5))
    rows += history("ghost", change=drop_from(date(2026, 11, 12), 0.5))
    assert await run(rows, accounts=["acme"], metrics=["api_calls"]) == []
    assert [s.account_id for s in await run(rows, accounts=["acme"])] == ["acme"]


async def test_unknown_for_missing_or_short_history() -> None:
    rows = history(days=20)
    assert await run(rows, accounts=["acme", "nodata"]) == []
    reasons = {a: r for a, _, r in last_unknowns()}
    assert "no usage rows" in reasons["nodata"]
    assert "days of usage" in reasons["acme"]


def sixty_pct_slide(start: date) -> Callable[[date, float], float | None]:
    """Usage sliding down by 60% over 24 days from ``start``, then staying there."""
    return lambda d, v: v * (1 - 0.6 * min(1.0, max(0, (d - start).days) / 24))


async def test_gradual_decline_on_a_steady_account_is_dated_from_the_slide() -> None:
    # On a steady account (3% noise) the slide's days are low (10% down and beyond the
    # noise) from its first week, so the drop itself begins there: no separate slide.
    start = date(2026, 10, 24)
    for seed in range(4):
        signals = await run(history(change=sixty_pct_slide(start), noise=0.03, seed=seed))
        assert len(signals) == 1, seed
        assert start <= signals[0].observed_at.date() <= start + timedelta(days=7), seed
        assert "slide_began" not in signals[0].evidence


async def test_a_slide_is_held_once_signalled() -> None:
    # Replayed day by day: as a slide reaches more weekdays their MADs widen, and a day the
    # MAD test alone would call normal must not break the drop (it flapped, or never fired).
    start = date(2026, 10, 24)
    for seed in range(3):
        rows = history(change=sixty_pct_slide(start), noise=0.06, seed=seed)
        seen = []
        for d in range(21):
            day = date(2026, 10, 31) + timedelta(days=d)
            found = await run(rows, now=f"{day.isoformat()}T18:00:00Z", replay=True)
            seen.append(found[0].observed_at.date() if found else None)
        first = next(i for i, s in enumerate(seen) if s is not None)
        assert set(seen[first:]) == {seen[first]}, (seed, seen)
        began = seen[first]
        assert began is not None and start <= began <= start + timedelta(days=10), (seed, seen)


async def test_gradual_decline_reports_when_the_slide_began() -> None:
    # On a noisy account (6%) the slide's first days are within the noise: the drop is dated
    # from the first clearly unusual day, and the evidence says when the slide began.
    start = date(2026, 10, 24)
    signals = await run(history(change=sixty_pct_slide(start), noise=0.06, seed=3))
    assert len(signals) == 1
    evidence = signals[0].evidence
    began = date.fromisoformat(evidence["slide_began"])
    assert start <= began <= start + timedelta(days=7)
    assert signals[0].observed_at.date() >= began + timedelta(days=5)
    assert evidence["slide_days"] == (signals[0].observed_at.date() - began).days
    assert f"after a slide that began {began:%b} {began.day}." in signals[0].summary


async def test_no_slide_reported_for_a_sudden_drop() -> None:
    for seed in range(5):
        signals = await run(history(seed=seed, change=drop_from(date(2026, 11, 12), 0.5)))
        assert "slide_began" not in signals[0].evidence, seed


def seats(
    levels: Mapping[date, float],
    *,
    start: date = END - timedelta(days=83),
    account: str = "acme",
    metric: str = "seats",
    sparse: bool = False,
) -> list[dict[str, object]]:
    """A seat count per day from ``start`` to END: the level set on each date in ``levels``."""
    rows, level, day = [], None, start
    while day <= END:
        changed = day in levels
        level = levels.get(day, level)
        if level is not None and (changed or not sparse):
            rows.append({"account_id": account, "date": day, "metric": metric, "value": level})
        day += timedelta(days=1)
    return rows


async def test_seat_reduction_is_a_signal_with_before_and_after() -> None:
    start = END - timedelta(days=83)
    for sparse in (False, True):
        rows = seats({start: 120, date(2026, 11, 9): 96}, sparse=sparse)
        rows += history("other")  # the source runs to END
        signals = await run(rows)
        assert len(signals) == 1, sparse
        s = signals[0]
        assert (s.kind, s.key, s.observed_at.date()) == ("usage_drop", "seats", date(2026, 11, 9))
        ev = s.evidence
        assert (ev["baseline"], ev["current"], ev["pct_change"], ev["days_lasted"]) == (
            120,
            96,
            -20.0,
            12,
        )
        assert ev["level"] is True
        assert s.summary == (
            "Seats fell from 120 to 96 (-20%) on 2026-11-09, and have stayed down for 12 days."
        )


async def test_licences_quiet_on_noise_small_accounts_and_a_one_day_glitch() -> None:
    start = END - timedelta(days=83)
    wobble = {start + timedelta(days=i): 100 + (i * 7) % 5 - 2 for i in range(84)}
    assert await run(seats(wobble, metric="licenses")) == []
    assert await run(seats({start: 5, date(2026, 11, 10): 4}, metric="licenses")) == []
    glitch = {start: 100, date(2026, 11, 19): 0, date(2026, 11, 20): 100}
    assert await run(seats(glitch, metric="licenses")) == []
    down_today = {start: 100, date(2026, 11, 20): 80}
    assert await run(seats(down_today)) == []  # held one day: not yet
    assert len(await run(seats({start: 100, date(2026, 11, 19): 80}))) == 1


async def test_seat_reduction_clears_on_recovery_and_with_age() -> None:
    start = END - timedelta(days=120)
    back = seats({start: 50, date(2026, 11, 1): 40, date(2026, 11, 15): 50}, start=start)
    assert await run(back, now="2026-11-10T12:00:00Z", replay=True) != []
    assert await run(back) == []
    old = seats({start: 50, date(2026, 9, 20): 40}, start=start)
    assert await run(old, now="2026-10-20T12:00:00Z", replay=True) != []
    assert await run(old) == []  # older than lookback_days: the new normal


async def test_seats_do_not_flatline_when_rows_stop() -> None:
    rows = seats({END - timedelta(days=83): 30}, sparse=True) + history("other")
    assert await run(rows) == []
