"""usage_drop in a replay carries its daily sums from one simulated day to the next: each
day gives exactly what a fresh watch() gives that day, whatever the order of the rows, the
step, or accounts that come and go (those days are judged afresh)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch import FrozenClock, Signal, StateMap, WatchContext
from swanwatch.plugins import watcher_class
from swanwatch.sources.csv import CsvSource
from swanwatch.testing import make_account

from .test_usage_columns import END, book
from .test_usage_drop import write_files


async def _replay(path: Path, days: int, step: int, dropped: set[int]) -> None:
    types = {"date": "date", "value": "float"}
    source = CsvSource("usage", CsvSource.Options(path=str(path), types=types, date_field="date"))
    cls = watcher_class("usage_drop")
    replayer = cls("usage_drop", cls.Options()).replayer()
    assert replayer is not None
    ids = [f"a{i}" for i in range(6)]
    async with httpx.AsyncClient() as http:

        async def one(day: int, judge: object) -> tuple[list[Signal], list[object]]:
            now = datetime.combine(END, datetime.min.time(), UTC) - timedelta(days=days - day)
            listed = [make_account(i) for n, i in enumerate(ids) if (day + n) not in dropped]
            ctx = WatchContext(
                instance="usage_drop",
                clock=FrozenClock(now + timedelta(hours=12)),
                http=http,
                log=logging.getLogger("test"),
                accounts=listed,
                state=StateMap(),
                sources={"usage": source},
                replay=True,
            )
            signals = [s async for s in judge(ctx)]  # type: ignore[operator]
            return signals, list(ctx.unknowns)

        for day in range(0, days, step):
            fresh = cls("usage_drop", cls.Options())
            assert await one(day, replayer.day) == await one(day, fresh.watch), day


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    accounts=st.integers(1, 5),
    step=st.sampled_from([1, 1, 3]),
    dropped=st.sets(st.integers(0, 90), max_size=3),
    parquet=st.booleans(),
)
def test_each_day_carried_is_the_day_judged_afresh(
    seed: int, accounts: int, step: int, dropped: set[int], parquet: bool
) -> None:
    # One file a book, CSV or Parquet: both read into the same columns, and replaying
    # both in every example took 44 s of a suite that is bound by its CPU.
    rows = book(seed, 90, accounts)
    with tempfile.TemporaryDirectory() as tmp:
        csv_path, parquet_path = write_files(rows, Path(tmp))
        asyncio.run(_replay(parquet_path if parquet else csv_path, 90, step, dropped))
