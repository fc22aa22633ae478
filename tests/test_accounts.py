"""Accounts read from a source: as columns (a CSV file through Arrow) they are exactly the
accounts of the row path, skipped and repeated records included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from swanwatch import Source
from swanwatch.accounts import read_accounts
from swanwatch.interfaces import Row
from swanwatch.sources.csv import CsvSource

BOOK = """id,name,domains,owner,segment,arr,renewal_date,tags,extra
acme,Acme,"acme.example, www.acme.example",ann@x.example,smb,1200.5,2027-01-31,"a;b  c",x
globex,,globex.example,,,,,,
,Nameless,,,,5,,,
initech,Initech,,bob,enterprise,-3,,,
umbrella,Umbrella,u.example;v.example, carl ,mid,7,2026-13-01,,
acme,Acme again,acme.example,,,8,,,
hooli,Hooli,,,, 12 ,2027-02-01T00:00:00Z,t,
"""


class RowsOf(Source):
    """The rows of a real source, never its columns: the row path."""

    name = "rows_of"

    def __init__(self, inner: Source) -> None:
        super().__init__(inner.instance, inner.options)
        self.inner = inner

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        return self.inner.rows(until=until)


async def test_accounts_as_columns_are_the_accounts_of_the_rows(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text(BOOK)
    for types in ({}, {"arr": "float", "renewal_date": "date"}):
        options = CsvSource.Options(path=str(tmp_path / "accounts.csv"), types=types)
        source = CsvSource("accounts", options)
        assert source.columns(["id"]) is not None  # the columnar path is the one taken
        by_columns = await read_accounts(source)
        by_rows = await read_accounts(RowsOf(CsvSource("accounts", options)))
        assert by_columns == by_rows
        assert set(by_rows.accounts) >= {"acme", "globex"}
        assert by_rows.repeated == ["acme"] and by_rows.accounts["acme"].arr == 8
        assert by_rows.accounts["globex"].domains == ("globex.example",)
        assert len(by_rows.skipped) >= 2  # no id; a negative ARR
