"""The csv source: typed rows, column mapping, globs, JSON Lines, no look-ahead, bad rows."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from swanwatch import SourceError
from swanwatch.testing import make_source

USAGE = """account_id,date,metric,value
a,2026-11-01,reports,10
a,2026-11-02,reports,abc
b,2026-11-02,,7.5
b,2026-11-31,reports,1
c,2026-11-03,reports
d,2026-11-04,reports,
"""


async def read(source: object, until: datetime | None = None) -> list[dict[str, object]]:
    return [dict(r) async for r in source.rows(until=until)]  # type: ignore[attr-defined]


def usage_source(tmp_path: Path, **extra: object) -> object:
    options = {"path": "usage.csv", "types": {"value": "float"}, "date_field": "date", **extra}
    return make_source("csv", options, base_dir=str(tmp_path))


async def test_rows_are_typed_and_bad_rows_reported_with_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "usage.csv").write_text(USAGE)
    source = usage_source(tmp_path)
    with caplog.at_level(logging.WARNING, logger="swanwatch.sources.csv"):
        rows = await read(source)
    assert rows == [
        {"account_id": "a", "date": date(2026, 11, 1), "metric": "reports", "value": 10.0},
        {"account_id": "b", "date": date(2026, 11, 2), "metric": "", "value": 7.5},
        {"account_id": "d", "date": date(2026, 11, 4), "metric": "reports", "value": None},
    ]
    assert source.problems == [  # type: ignore[attr-defined]
        "usage.csv:3: value: 'abc' is not a number",
        "usage.csv:5: date: '2026-11-31' is not a date (YYYY-MM-DD)",
        "usage.csv:6: expected 4 fields, found 3",
    ]
    assert "usage.csv:3: value: 'abc' is not a number" in caplog.text


async def test_until_leaves_out_later_rows(tmp_path: Path) -> None:
    (tmp_path / "usage.csv").write_text(USAGE)
    rows = await read(usage_source(tmp_path), until=datetime(2026, 11, 1, 23, tzinfo=UTC))
    assert [r["account_id"] for r in rows] == ["a"]


async def test_columns_are_mapped_and_types_checked(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text(
        "Account;When;Escalated;Count;Opened\nx;2026-01-02;yes;3;2026-01-02T10:00:00Z\n"
    )
    source = make_source(
        "csv",
        {
            "path": "t.csv",
            "delimiter": ";",
            "columns": {"account_id": "Account", "day": "When"},
            "types": {"day": "date", "Escalated": "bool", "Count": "int", "Opened": "datetime"},
        },
        base_dir=str(tmp_path),
    )
    assert await read(source) == [
        {
            "account_id": "x",
            "day": date(2026, 1, 2),
            "Escalated": True,
            "Count": 3,
            "Opened": datetime(2026, 1, 2, 10, tzinfo=UTC),
        }
    ]


async def test_glob_reads_every_file_in_order(tmp_path: Path) -> None:
    (tmp_path / "u-2.csv").write_text("account_id,value\nb,2\n")
    (tmp_path / "u-1.csv").write_text("account_id,value\na,1\n")
    source = make_source(
        "csv", {"path": "u-*.csv", "types": {"value": "int"}}, base_dir=str(tmp_path)
    )
    assert [r["value"] for r in await read(source)] == [1, 2]


async def test_jsonl_with_bad_lines(tmp_path: Path) -> None:
    (tmp_path / "u.jsonl").write_text(
        '{"account_id": "a", "date": "2026-11-01", "value": 3}\n'
        "not json\n"
        "\n"
        '{"account_id": "b", "date": "2026-11-02", "value": "x"}\n'
        '{"account_id": "c", "date": "2026-11-03"}\n'
    )
    source = make_source(
        "csv",
        {"path": "u.jsonl", "types": {"value": "float"}, "date_field": "date"},
        base_dir=str(tmp_path),
    )
    rows = await read(source)
    assert [(r["account_id"], r["value"]) for r in rows] == [("a", 3.0), ("c", None)]
    problems = source.problems  # type: ignore[attr-defined]
    assert problems[0].startswith("u.jsonl:2: not a JSON object")
    assert problems[1] == "u.jsonl:4: value: 'x' is not a number"


async def test_missing_file_names_the_path(tmp_path: Path) -> None:
    source = make_source("csv", {"path": "nowhere.csv"}, base_dir=str(tmp_path))
    with pytest.raises(SourceError, match=r"nowhere\.csv"):
        await read(source)
    source = make_source("csv", {"path": "none-*.csv"}, base_dir=str(tmp_path))
    with pytest.raises(SourceError, match=r"none-\*\.csv"):
        await read(source)


async def test_unknown_mapped_column_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "u.csv").write_text("a,b\n1,2\n")
    source = make_source(
        "csv", {"path": "u.csv", "columns": {"account_id": "acct"}}, base_dir=str(tmp_path)
    )
    with pytest.raises(SourceError, match="'acct'"):
        await read(source)


async def test_streams_a_large_file_in_batches(tmp_path: Path) -> None:
    lines = ["account_id,date,value"] + [f"a{i % 7},2026-11-01,{i}" for i in range(30_000)]
    (tmp_path / "big.csv").write_text("\n".join(lines) + "\n")
    source = make_source(
        "csv", {"path": "big.csv", "types": {"value": "int"}}, base_dir=str(tmp_path)
    )
    total = 0
    async for row in source.rows():
        total += row["value"]  # type: ignore[operator]
    assert total == sum(range(30_000))


async def test_bundled_sample_reads_cleanly() -> None:
    base = Path(__file__).parents[2] / "config" / "sample"
    source = make_source(
        "csv",
        {"path": "usage.csv", "types": {"value": "float"}, "date_field": "date"},
        base_dir=str(base),
    )
    rows = await read(source)
    assert len(rows) == 6000
    assert source.problems == []  # type: ignore[attr-defined]
