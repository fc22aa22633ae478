"""A source read once for a replay serves, every day, exactly what the source itself would
have read that day: the same rows in the same order, as rows or as columns, and the same
tally (rows, malformed rows and the first of them, newest date, finished). Each case reads
the real files both ways, day by day, through the metered view the engine uses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from swanwatch.errors import SourceError
from swanwatch.interfaces import ReadTally
from swanwatch.settings import SourceConfig
from swanwatch.sources.health import metered
from swanwatch.sources.read_once import ReadOnceSource, read_once
from swanwatch.testing import make_source

FIRST = date(2026, 9, 1)
#: The days read, at noon: before the first row, through the rows, after the last.
DAYS = [datetime(2026, 8, 30, 12, tzinfo=UTC) + timedelta(days=i) for i in range(16)]
FIELDS = ("account_id", "date", "metric", "value")


def _usage_lines() -> list[str]:
    """Usage rows out of date order, two malformed (a bad value, a short row), one undated."""
    lines = ["account_id,date,metric,value"]
    for i in range(12):
        day = FIRST + timedelta(days=(i * 5) % 12)
        lines.append(f"acc-{i % 3},{day.isoformat()},logins,{i}.5")
    lines[4] = "acc-1,2026-09-03,logins,many"
    lines.insert(7, "acc-2,2026-09-04,logins")
    lines.append("acc-0,,logins,3")
    return lines


def _usage(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "usage.csv").write_text("\n".join(_usage_lines()) + "\n")
    return {"path": "usage.csv", "types": {"date": "date", "value": "float"}, "date_field": "date"}


def _quoted(tmp_path: Path) -> dict[str, Any]:
    """A quote in the file: Arrow's reader leaves it to the row path."""
    lines = _usage_lines()
    lines[2] = lines[2].replace("acc-", '"acc-').replace(",2026", '",2026')
    (tmp_path / "usage.csv").write_text("\n".join(lines) + "\n")
    return _usage(tmp_path) | {"path": "usage.csv"}


def _jsonl(tmp_path: Path) -> dict[str, Any]:
    rows = [dict(zip(FIELDS, line.split(","), strict=False)) for line in _usage_lines()[1:]]
    (tmp_path / "usage.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return _usage(tmp_path) | {"path": "usage.jsonl"}


def _parquet(tmp_path: Path) -> dict[str, Any]:
    days = [FIRST + timedelta(days=(i * 7) % 10) for i in range(20)]
    table = pa.table(
        {
            "account_id": [f"acc-{i % 4}" for i in range(20)],
            "date": days,
            "metric": ["logins"] * 20,
            "value": [float(i) for i in range(20)],
        }
    )
    pq.write_table(table, tmp_path / "usage.parquet")
    return {"path": "usage.parquet", "date_field": "date"}


def _tickets(tmp_path: Path) -> dict[str, Any]:
    """Rows dated by a datetime: cut at the instant, not the day (some at noon exactly)."""
    lines = ["account_id,opened_at,priority"]
    for i in range(10):
        at = f"2026-09-{1 + i:02d}T{6 * (i % 4):02d}:{30 * (i % 3):02d}:00Z"
        lines.append(f"acc-{i % 2},{at},P{i % 3}")
    lines.append("acc-0,yesterday,P1")
    (tmp_path / "tickets.csv").write_text("\n".join(lines) + "\n")
    return {"path": "tickets.csv", "types": {"opened_at": "datetime"}, "date_field": "opened_at"}


def _snapshots(tmp_path: Path) -> dict[str, Any]:
    for n, day in enumerate([FIRST, FIRST + timedelta(days=4), FIRST + timedelta(days=9)]):
        rows = [f"acc-{i},{day.isoformat()},{n * 10 + i}" for i in range(n + 2)]
        if n == 1:
            rows.append("acc-9,not-a-date,1")
        text = "\n".join(["account_id,end_date,arr", *rows]) + "\n"
        (tmp_path / f"contracts-{day.isoformat()}.csv").write_text(text)
    return {
        "path": "contracts-*.csv",
        "snapshots": True,
        "types": {"end_date": "date", "arr": "float"},
    }


def _static(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "accounts.csv").write_text("id,name,arr\nacc-1,Acme,10\nacc-2,Beta,x\n")
    return {"path": "accounts.csv", "types": {"arr": "float"}}


CASES = {
    "usage": _usage,
    "quoted": _quoted,
    "jsonl": _jsonl,
    "parquet": _parquet,
    "tickets": _tickets,
    "snapshots": _snapshots,
    "static": _static,
}


def _tally(tally: ReadTally) -> tuple[object, ...]:
    return (tally.rows, tally.malformed, tally.problems, tally.newest, tally.finished, tally.error)


async def _read_rows(view: Any, until: datetime) -> tuple[object, ...]:
    try:
        rows = [dict(r) async for r in view.rows(until=until)]
    except SourceError as exc:
        return str(exc), _tally(view.reads[-1])
    return rows, _tally(view.reads[-1])


async def _read_columns(view: Any, until: datetime) -> tuple[object, ...]:
    tables = view.columns(FIELDS, until=until)
    if tables is None:
        return [], None
    try:
        rows = [r async for t in tables for r in t.to_pylist()]
    except SourceError as exc:
        return str(exc), _tally(view.reads[-1])
    return rows, _tally(view.reads[-1])


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("date_field", [None, "date"])
async def test_every_day_reads_as_the_source_itself_reads_it(
    tmp_path: Path, case: str, date_field: str | None
) -> None:
    options = CASES[case](tmp_path)
    source = make_source("csv", options, base_dir=str(tmp_path))
    held = read_once({"s": source})["s"]
    assert isinstance(held, ReadOnceSource)
    # The reader's own date field (a watcher's SourceUse) dates the tally, not the source's.
    config = {"s": SourceConfig(type="csv", date_field=date_field, static=case == "static")}
    for until in DAYS:
        live, once = metered({"s": source}, config)["s"], metered({"s": held}, config)["s"]
        assert await _read_rows(once, until) == await _read_rows(live, until), until
        live, once = metered({"s": source}, config)["s"], metered({"s": held}, config)["s"]
        assert await _read_columns(once, until) == await _read_columns(live, until), until


async def test_a_source_that_fails_to_read_fails_every_day_as_it_would(tmp_path: Path) -> None:
    options = _usage(tmp_path) | {"types": {}}
    (tmp_path / "usage.csv").write_text('account_id,date\nacc-1,"2026-09-01\n')
    source = make_source("csv", options, base_dir=str(tmp_path))
    held = read_once({"s": source})["s"]
    for until in DAYS[:3]:
        view = metered({"s": held}, {})["s"]
        with pytest.raises(SourceError, match="unclosed quote"):
            [r async for r in view.rows(until=until)]
        assert view.reads[-1].error is not None and "unclosed quote" in view.reads[-1].error


def test_only_csv_sources_are_read_once(tmp_path: Path) -> None:
    csv_source = make_source("csv", _static(tmp_path), base_dir=str(tmp_path))
    sql = make_source("sql", {"url": "sqlite://", "query": "select 1"})
    wrapped = read_once({"a": csv_source, "b": sql})
    assert isinstance(wrapped["a"], ReadOnceSource)
    assert wrapped["b"] is sql
