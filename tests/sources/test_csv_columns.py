"""The csv source as columns (Arrow) and from Parquet: the same rows, values, malformed rows
and tally as the row path, file by file, whatever the file holds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swanwatch import SourceError
from swanwatch.interfaces import CURRENT_READ, ReadTally
from swanwatch.sources import columnar
from swanwatch.testing import make_source
from swanwatch.values import to_datetime

GOOD = "account_id,date,metric,value\na,2026-11-01,reports,10\nb,2026-11-02,,7.5\n"
FILES = {
    "plain": GOOD + "c,2026-11-03,reports,\n",
    "bad values": GOOD + "a,2026-11-02,reports,abc\nb,2026-11-31,reports,1\nd,2026-11-04,r,2\n",
    "wrong widths": GOOD + "c,2026-11-03,reports\n\n  \nd,2026-11-04,r,1,2\ne,2026-11-05,r,3\n",
    "quoted": GOOD + 'c,2026-11-03,"rep,orts",4\n',
    "header spaces": " account_id , date ,metric,value\na,2026-11-01,x,1\n",
    "bom": "\ufeff" + GOOD,
    "crlf": GOOD.replace("\n", "\r\n"),
    "only header": "account_id,date,metric,value\n",
    "empty": "",
    "nan and inf": GOOD + "a,2026-11-05,r,nan\na,2026-11-06,r,inf\na,2026-11-07,r,1e3\n",
}


Read = tuple[list[dict[str, object]], list[str], ReadTally]


async def both(
    source: object, fields: list[str], until: datetime | None = None
) -> tuple[Read, Read]:
    """(rows, problems, tally) of the row path, then of the columns."""
    out = []
    for columns in (False, True):
        tally = ReadTally(date_field="date")
        CURRENT_READ.set(tally)
        rows: list[dict[str, object]] = []
        if columns:
            tables = source.columns(fields, until=until)  # type: ignore[attr-defined]
            assert tables is not None
            async for table in tables:
                rows.extend(table.to_pylist())
        else:
            async for row in source.rows(until=until):  # type: ignore[attr-defined]
                rows.append({f: row[f] for f in fields if f in row})
        out.append((rows, list(source.problems), tally))  # type: ignore[attr-defined]
    return out[0], out[1]


@pytest.mark.parametrize("name", sorted(FILES))
async def test_columns_read_what_rows_read(tmp_path: Path, name: str) -> None:
    (tmp_path / "usage.csv").write_text(FILES[name], encoding="utf-8", newline="")
    options = {"path": "usage.csv", "types": {"value": "float"}, "date_field": "date"}
    source = make_source("csv", options, base_dir=str(tmp_path))
    fields = ["account_id", "date", "metric", "value"]
    rows, columns = await both(source, fields)
    assert columns == rows
    cut = datetime(2026, 11, 2, 12, tzinfo=UTC)
    rows, columns = await both(source, ["account_id", "value"], cut)  # no date asked for
    assert columns == rows
    assert all(str(r["account_id"]) in "ab" for r in rows[0])  # later days left out


async def test_wrong_widths_are_named_by_line_on_both_paths(tmp_path: Path) -> None:
    (tmp_path / "usage.csv").write_text(FILES["wrong widths"])
    source = make_source("csv", {"path": "usage.csv"}, base_dir=str(tmp_path))
    _, (rows, problems, tally) = await both(source, ["account_id"])
    assert [r["account_id"] for r in rows] == ["a", "b", "e"]
    assert problems == [
        "usage.csv:4: expected 4 fields, found 3",
        "usage.csv:6: expected 4 fields, found 1",
        "usage.csv:7: expected 4 fields, found 5",
    ]
    assert tally.malformed == 3 and tally.rows == 3 and tally.finished


async def test_parquet_rows_keep_their_types_and_bad_rows_are_numbered(tmp_path: Path) -> None:
    table = pa.table(
        {
            "account_id": ["a", "b", "c", "d"],
            "date": [date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3), None],
            "value": ["10", "x", "", "2.5"],
            "n": [1.0, float("nan"), 2.0, 3.0],
        }
    )
    pq.write_table(table, tmp_path / "usage.parquet")
    options = {"path": "usage.parquet", "types": {"value": "float"}, "date_field": "date"}
    source = make_source("csv", options, base_dir=str(tmp_path))
    (rows, problems, tally), columns = await both(source, ["account_id", "date", "value", "n"])
    assert [r["account_id"] for r in rows] == ["a", "c", "d"]
    assert rows[1] == {"account_id": "c", "date": date(2026, 11, 3), "value": None, "n": 2.0}
    assert problems == ["usage.parquet:2: value: 'x' is not a number"]
    assert tally.newest == date(2026, 11, 3) and tally.rows == 3
    assert columns == (rows, problems, tally)
    typed = make_source(
        "csv", {**options, "types": {"n": "float"}}, base_dir=str(tmp_path)
    )  # a float column with NaN: the row is malformed on both paths
    (rows, problems, _), columns = await both(typed, ["account_id", "n"])
    assert [r["account_id"] for r in rows] == ["a", "c", "d"]
    assert problems == ["usage.parquet:2: n: nan is not a finite number"]
    assert columns[0] == rows and columns[1] == problems


async def test_a_file_that_is_not_parquet_breaks_the_read(tmp_path: Path) -> None:
    (tmp_path / "usage.parquet").write_text(GOOD)
    source = make_source("csv", {"path": "usage.parquet"}, base_dir=str(tmp_path))
    tally = ReadTally()
    CURRENT_READ.set(tally)
    with pytest.raises(SourceError, match=r"usage\.parquet: not a readable Parquet file"):
        tables = source.columns(["account_id"])
        assert tables is not None
        async for _ in tables:
            pass
    assert tally.error is not None and "Parquet" in tally.error


async def test_json_lines_are_read_row_by_row(tmp_path: Path) -> None:
    (tmp_path / "usage.jsonl").write_text('{"account_id": "a", "value": 1}\n')
    source = make_source("csv", {"path": "usage.jsonl"}, base_dir=str(tmp_path))
    assert source.columns(["account_id"]) is None


async def test_a_parquet_files_fields_come_from_its_schema(tmp_path: Path) -> None:
    pq.write_table(pa.table({"account_id": ["a"], "day": [date(2026, 11, 1)]}), tmp_path / "u.pq")
    source = make_source(
        "csv", {"path": "u.pq", "columns": {"date": "day"}}, base_dir=str(tmp_path)
    )
    assert source.fields() == ["date", "account_id"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
                lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ")
            ),
            st.from_regex(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[Zz]\Z"),
            st.sampled_from(["", " 2026-01-01T00:00:00Z", "2026-01-01T00:00:00+00:00"]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_utc_stamps_read_by_arrow_are_those_python_reads(values: list[str]) -> None:
    column = pa.array(values, pa.string())
    try:
        slow = columnar.convert(column, to_datetime).to_pylist()
    except columnar.NotColumnar:
        slow = None
    try:
        fast = columnar.native(column, to_datetime).to_pylist()
    except columnar.NotColumnar:
        fast = None
    assert fast == slow
