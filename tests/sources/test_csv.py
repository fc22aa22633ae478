"""The csv source: typed rows, column mapping, globs, JSON Lines, no look-ahead, bad rows."""

from __future__ import annotations

import logging
import re
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


# --- what spoils the rest of a file fails the read, with the file and the line ------------


async def test_an_unclosed_quote_fails_the_read_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "usage.csv").write_text(
        "account_id,date,metric,value\n"
        "a,2026-11-01,reports,10\n"
        'b,2026-11-02,"reports,7\n'  # the quote opened here is never closed
        "c,2026-11-03,reports,5\n"
        "d,2026-11-04,reports,6\n"
    )
    with pytest.raises(SourceError, match=r"usage\.csv:3: unclosed quote.*end of the file"):
        await read(usage_source(tmp_path))


async def test_a_stray_quote_is_a_malformed_row_and_the_rest_is_read(tmp_path: Path) -> None:
    (tmp_path / "usage.csv").write_text(
        'account_id,date,metric,value\na,2026-11-01,"rep"orts,10\nb,2026-11-02,reports,7\n'
    )
    source = usage_source(tmp_path)
    rows = await read(source)
    assert [r["account_id"] for r in rows] == ["b"]
    assert source.problems[0].startswith("usage.csv:2: unreadable CSV")  # type: ignore[attr-defined]


async def test_an_over_long_field_fails_the_read_at_its_line(tmp_path: Path) -> None:
    big = "x" * 200_000
    (tmp_path / "usage.csv").write_text(
        f'account_id,date,metric,value\na,2026-11-01,reports,1\nb,2026-11-02,"{big}",2\n'
    )
    with pytest.raises(SourceError, match=r"usage\.csv:3: a field longer than 131,072"):
        await read(usage_source(tmp_path))


async def test_bad_encoding_fails_the_read_at_its_line(tmp_path: Path) -> None:
    lines = ["account_id,date,metric,value"] + [f"a,2026-11-01,reports,{i}" for i in range(3000)]
    data = "\n".join(lines).encode() + b"\nb,2026-11-02,r\xe9ports,1\n"
    (tmp_path / "usage.csv").write_bytes(data)
    with pytest.raises(SourceError, match=r"usage\.csv:3002: not utf-8-sig text \(byte 0xe9 at"):
        await read(usage_source(tmp_path))


async def test_an_over_long_json_line_fails_the_read(tmp_path: Path) -> None:
    (tmp_path / "u.jsonl").write_text('{"a": 1}\n{"a": "' + "x" * (1 << 20) + '"}\n')
    source = make_source("csv", {"path": "u.jsonl"}, base_dir=str(tmp_path))
    with pytest.raises(SourceError, match=r"u\.jsonl:2: a line longer than 1,048,576"):
        await read(source)


async def test_a_read_is_counted_for_its_health(tmp_path: Path) -> None:
    from swanwatch.interfaces import CURRENT_READ, ReadTally

    (tmp_path / "usage.csv").write_text(USAGE)
    tally = ReadTally(date_field="date")
    CURRENT_READ.set(tally)
    rows = await read(usage_source(tmp_path))
    assert tally.finished and tally.rows == len(rows) == 3
    assert tally.malformed == 3 and tally.problems[0] == "usage.csv:3: value: 'abc' is not a number"
    assert tally.newest == date(2026, 11, 4)


# --- snapshots: a table with no dates of its own, kept as one file per day ---------------


def _snapshot(tmp_path: Path, name: str, stage: str) -> None:
    (tmp_path / name).write_text(f"account_id,contract_id,stage\na,C-1,{stage}\n")


async def test_snapshots_are_read_as_of_the_day(tmp_path: Path) -> None:
    _snapshot(tmp_path, "contracts-2026-09-01.csv", "none")
    _snapshot(tmp_path, "contracts-20261001.csv", "quote")  # both spellings of a date
    _snapshot(tmp_path, "contracts-2026-11-20.csv", "signed")
    source = make_source(
        "csv", {"path": "contracts-*.csv", "snapshots": True}, base_dir=str(tmp_path)
    )
    assert source.history() == "snapshot files dated by their names"

    async def stage(until: datetime | None) -> list[object]:
        return [r["stage"] for r in await read(source, until)]

    assert await stage(None) == ["signed"]  # the daemon: the newest file, never all three
    assert await stage(datetime(2026, 9, 30, 23, tzinfo=UTC)) == ["none"]
    assert await stage(datetime(2026, 10, 1, tzinfo=UTC)) == ["quote"]  # from its own day
    assert await stage(datetime(2026, 12, 1, tzinfo=UTC)) == ["signed"]
    with pytest.raises(SourceError) as info:
        await read(source, datetime(2026, 8, 31, tzinfo=UTC))
    assert str(info.value) == (
        "source 'csv': no snapshot dated on or before 2026-08-31: the first is "
        "'contracts-2026-09-01.csv' (2026-09-01); nothing is known of the table before then"
    )


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (
            ["contracts-2026-09-01.csv", "contracts-latest.csv"],
            "snapshot file 'contracts-latest.csv' has no date in its name",
        ),
        (
            ["contracts-2026-09-01.csv", "contracts-2026-09-01-2026-09-02.csv"],
            "snapshot file 'contracts-2026-09-01-2026-09-02.csv' has 2 dates in its name",
        ),
        (
            ["contracts-2026-09-01.csv", "contracts-20260901.csv"],
            "snapshot files 'contracts-2026-09-01.csv' and 'contracts-20260901.csv' are both "
            "dated 2026-09-01; keep one",
        ),
    ],
)
async def test_a_snapshot_that_cannot_be_placed_in_time_fails_the_read_naming_it(
    tmp_path: Path, names: list[str], message: str
) -> None:
    for name in names:
        _snapshot(tmp_path, name, "none")
    source = make_source(
        "csv", {"path": "contracts-*.csv", "snapshots": True}, base_dir=str(tmp_path)
    )
    with pytest.raises(SourceError, match=re.escape(message)):
        await read(source)
