"""usage_drop reads usage as columns (CSV, Parquet) and judges every series at once: the
signals and unknowns are exactly those of the row path, whatever the history."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import date, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.sources.csv import CsvSource
from swanwatch.testing import last_unknowns, make_account, rows_source, run_watcher

from .test_usage_drop import write_files

END = date(2026, 11, 20)


def book(seed: int, days: int, accounts: int) -> list[dict[str, object]]:
    """Usage of a few accounts: seasonal noise, drops, slides, gaps, flat lines, duplicate
    and out-of-order rows, several metrics (a level metric among them)."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for a in range(accounts):
        for metric in rng.sample(["reports", "api", "", "seats"], rng.randint(1, 3)):
            level = rng.choice([5, 40, 300, 2000])
            begins = rng.randint(0, days // 3)
            drop_at = rng.randint(days // 2, days + 5)
            factor = rng.choice([0.0, 0.4, 0.7, 0.85, 1.0])
            slide = rng.random() < 0.3
            for i in range(begins, days):
                day = END - timedelta(days=days - 1 - i)
                weekly = 0.3 if day.weekday() >= 5 else 1.0
                value = level * weekly * rng.gauss(1.0, rng.choice([0.02, 0.08, 0.2]))
                if i >= drop_at:
                    value *= factor
                elif slide and i >= drop_at - 10:
                    value *= 1 - 0.03 * (i - drop_at + 10)
                if rng.random() < 0.03:
                    continue  # a missing day
                if metric == "seats":
                    value = float(level // 10 - (3 if i >= drop_at else 0))
                rows.append(
                    {"account_id": f"a{a}", "date": day, "metric": metric, "value": round(value)}
                )
                if rng.random() < 0.02:
                    rows.append(dict(rows[-1], value=rng.randint(0, 20)))  # a second row
    if rng.random() < 0.3:
        rng.shuffle(rows)
    return rows


async def both(rows: list[dict[str, object]], options: dict[str, object]) -> None:
    ids = [f"a{i}" for i in range(6)]  # one or more without usage

    async def watch(source: object) -> tuple[list, list]:  # type: ignore[type-arg]
        signals = await run_watcher(
            "usage_drop",
            options=options,
            accounts=[make_account(i) for i in ids],
            now="2026-11-20T18:00:00Z",
            sources={"usage": source},  # type: ignore[dict-item]
        )
        return signals, last_unknowns()

    expected = await watch(rows_source(rows, date_field="date"))
    with tempfile.TemporaryDirectory() as tmp:
        for path in write_files(rows, Path(tmp)):
            types = {"date": "date", "value": "float"}
            source = CsvSource(
                "usage", CsvSource.Options(path=str(path), types=types, date_field="date")
            )
            assert await watch(source) == expected, path.name


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10**6),
    days=st.integers(20, 120),
    accounts=st.integers(1, 5),
    options=st.fixed_dictionaries(
        {},
        optional={
            "mad_k": st.sampled_from([0.0, 1.5, 3.0]),
            "min_low_days": st.integers(1, 4),
            "deep_drop_min_days": st.integers(1, 3),
            "baseline_weeks_min": st.integers(2, 5),
            "min_day_drop_pct": st.sampled_from([5.0, 10.0, 30.0]),
            "lookback_days": st.integers(7, 60),
            "ignore_dates": st.lists(st.dates(END - timedelta(days=60), END), max_size=3),
        },
    ),
)
def test_columns_judge_exactly_as_rows(
    seed: int, days: int, accounts: int, options: dict[str, object]
) -> None:
    asyncio.run(both(book(seed, days, accounts), options))


def test_a_long_history_in_any_order() -> None:
    """Rows over 300 days, newest first: the sums grow backwards and forwards as read."""
    rows = book(7, 300, 4)
    rows.sort(key=lambda r: r["date"], reverse=True)  # type: ignore[arg-type, return-value]
    asyncio.run(both(rows, {"lookback_days": 200}))
