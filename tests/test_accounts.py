"""Accounts read from a source: as columns (a CSV file through Arrow) they are exactly the
accounts of the row path, skipped and repeated records included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

from swanwatch import Account, Source
from swanwatch.accounts import ALL_FIELDS_SET, read_accounts
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


async def test_accounts_read_share_their_fields_set_and_stay_equal(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_text(BOOK)
    source = CsvSource("accounts", CsvSource.Options(path=str(tmp_path / "accounts.csv")))
    accounts = list((await read_accounts(source)).accounts.values())
    assert all(a.model_fields_set is ALL_FIELDS_SET for a in accounts)
    for account in accounts:  # the same records as validated afresh
        again = Account.model_validate(account.model_dump())
        assert again == account and again.model_fields_set == account.model_fields_set
    copied = accounts[0].model_copy(update={"name": "Other"})
    assert copied.model_fields_set is not ALL_FIELDS_SET
    assert set(Account.model_fields) == ALL_FIELDS_SET  # a copy leaves the shared set alone
    (tmp_path / "two.csv").write_text("id,owner,segment\na,ann,smb\nb,ann,smb\n")
    source = CsvSource("accounts", CsvSource.Options(path=str(tmp_path / "two.csv")))
    a, b = (await read_accounts(source)).accounts.values()
    assert a.owner is b.owner and a.segment is b.segment  # one text per distinct value
