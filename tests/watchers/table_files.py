"""Rows written as the files a csv source reads as columns: CSV (typed, and all text) and
Parquet, for the watchers' tests that run each case row by row and as columns."""

from __future__ import annotations

import csv
import tempfile
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from swanwatch import Signal, Source
from swanwatch.sources.csv import CsvSource
from swanwatch.testing import last_unknowns, make_account, rows_source, run_watcher


def table_sources(
    name: str, rows: list[dict[str, object]], folder: Path, types: dict[str, str]
) -> list[CsvSource]:
    """``rows`` as NAME.csv, read with ``types`` and as text, and as NAME.parquet; each
    source reads as columns."""
    names = list(dict.fromkeys(k for r in rows for k in r)) or list(types)

    def cell(value: object) -> object:
        return value.isoformat() if isinstance(value, date) else value

    with (folder / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, names)
        writer.writeheader()
        writer.writerows({k: cell(v) for k, v in r.items()} for r in rows)
    pq.write_table(
        pa.table({n: pa.array([r.get(n) for r in rows]) for n in names}),
        folder / f"{name}.parquet",
    )
    path = str(folder / f"{name}.csv")
    sources = [
        CsvSource(name, CsvSource.Options(path=path, types=types)),
        CsvSource(name, CsvSource.Options(path=path)),  # all text
        CsvSource(name, CsvSource.Options(path=str(folder / f"{name}.parquet"))),
    ]
    for source in sources:
        assert source.columns(["account_id"]) is not None
    return sources


async def by_rows_and_columns(
    watcher: str,
    source: str,
    rows: list[dict[str, object]],
    *,
    types: dict[str, str],
    date_field: str,
    accounts: tuple[str, ...],
    now: str,
    replay: bool,
    options: Mapping[str, object],
) -> list[Signal]:
    """The watcher's signals over ``rows`` row by row, checked equal (unknowns too) to those
    from the same rows as columns (:func:`table_sources`)."""

    async def watch(given: Source) -> tuple[list[Signal], list[tuple[str, str, str]]]:
        signals = await run_watcher(
            watcher,
            options=options,
            accounts=[make_account(a) for a in accounts],
            now=now,
            sources={source: given},
            replay=replay,
        )
        return signals, last_unknowns()

    expected = await watch(rows_source(rows, date_field=date_field))
    with tempfile.TemporaryDirectory() as tmp:
        for columns in table_sources(source, rows, Path(tmp), types):
            assert await watch(columns) == expected, columns.options
    return expected[0]
