"""The csv source on broken exports, row by row and as columns: what spoils a file fails the
read naming the file and line (or column), and a read counts every row it saw."""

from __future__ import annotations

from pathlib import Path

import pytest

from swanwatch import SourceError
from swanwatch.accounts import read_accounts
from swanwatch.interfaces import CURRENT_READ, ReadTally
from swanwatch.testing import make_source

USAGE_HEADER = "account_id,date,metric,value\n"


async def _drain(source: object, columns: bool) -> tuple[int, ReadTally]:
    """Read ``source`` whole, as columns or row by row: (rows, tally)."""
    tally = ReadTally(date_field="date")
    CURRENT_READ.set(tally)
    rows = 0
    if columns:
        tables = source.columns(["account_id", "date", "value"])  # type: ignore[attr-defined]
        assert tables is not None
        async for table in tables:
            rows += table.num_rows
    else:
        async for _ in source.rows():  # type: ignore[attr-defined]
            rows += 1
    return rows, tally


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
async def test_a_bad_byte_near_the_top_fails_the_read_at_its_line(
    tmp_path: Path, columns: bool
) -> None:
    # Within the first block the header's read decodes: the columns path met it there.
    body = "".join(f"a,2026-11-{1 + i % 28:02d},reports,{i}\n" for i in range(40))
    data = (USAGE_HEADER + body).encode() + b"b,2026-11-02,r\xe9ports,1\n"
    (tmp_path / "usage.csv").write_bytes(data)
    source = make_source("csv", {"path": "usage.csv"}, base_dir=str(tmp_path))
    with pytest.raises(SourceError, match=r"usage\.csv:42: not utf-8-sig text \(byte 0xe9 at"):
        await _drain(source, columns)
    assert CURRENT_READ.get().error is not None  # type: ignore[union-attr]


@pytest.mark.parametrize("columns", [False, True], ids=["rows", "columns"])
async def test_a_column_named_twice_in_the_header_fails_the_read(
    tmp_path: Path, columns: bool
) -> None:
    # Which of the two is meant? Taking either reads one column's values as the other's.
    (tmp_path / "usage.csv").write_text(
        "account_id,date,value,value\na,2026-11-01,10,20\nb,2026-11-02,1,2\n"
    )
    source = make_source("csv", {"path": "usage.csv"}, base_dir=str(tmp_path))
    with pytest.raises(SourceError, match=r"usage\.csv: column 'value' appears 2 times"):
        await _drain(source, columns)
    with pytest.raises(SourceError, match=r"usage\.csv: column 'value' appears 2 times"):
        source.fields()


async def test_a_semicolon_export_counts_its_rows_as_columns_as_by_rows(tmp_path: Path) -> None:
    # With the wrong delimiter no field asked for is in the file: still three rows were read.
    (tmp_path / "usage.csv").write_text(
        "account_id;date;value\na;2026-11-01;1\nb;2026-11-02;2\nc;2026-11-03;3\n"
    )
    source = make_source("csv", {"path": "usage.csv"}, base_dir=str(tmp_path))
    by_rows = await _drain(source, False)
    by_columns = await _drain(source, True)
    assert by_rows[1].rows == by_columns[1].rows == 3


async def test_an_accounts_export_without_ids_has_every_record_skipped_by_its_number(
    tmp_path: Path,
) -> None:
    # Read as columns (a book's CSV goes through Arrow): no record may vanish uncounted.
    (tmp_path / "accounts.csv").write_text(
        "id;name;arr\nacc-1;One;100\nacc-2;Two;200\n", encoding="utf-8"
    )
    source = make_source("csv", {"path": "accounts.csv"}, base_dir=str(tmp_path))
    CURRENT_READ.set(ReadTally())
    read = await read_accounts(source)
    assert read.accounts == {}
    assert [n for n, _ in read.skipped] == [1, 2]
    assert read.skipped[0][1] == "no account id: the record has no `id` (or `account_id`)"
