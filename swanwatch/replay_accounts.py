"""A replay's reads of the accounts source: a day served the rows of the day before gets
the accounts made from them then, rather than making them again.

The accounts source of a book is read every simulated day, and most days it serves what it
served the day before (a static source always does). :class:`AccountMemo` reads the source
through :mod:`swanwatch.sources.read_once`; when the read serves the same rows, in the same
order, as the last one it made accounts of (:meth:`ReadOnceSource.token`), the read is
still made (so its tally, and the source's health, are what they were) but its rows are not
made accounts again: the last read's accounts are given, the same records. The engine then
finds it the read it listed last (``Engine._list_accounts``), already stored.
"""

from __future__ import annotations

from collections.abc import Hashable
from datetime import datetime

from swanwatch.accounts import ACCOUNT_FIELDS, AccountRead, read_accounts
from swanwatch.interfaces import Source
from swanwatch.sources.read_once import ReadOnceSource


class AccountMemo:
    """The last account read of a replay, and the rows it was made of."""

    def __init__(self) -> None:
        self.read: AccountRead | None = None
        self.token: Hashable | None = None

    async def read_accounts(self, view: Source, until: datetime | None) -> AccountRead:
        """:func:`swanwatch.accounts.read_accounts` of ``view`` (a metered source), the
        last read's accounts when the rows served are the same."""
        inner = getattr(view, "inner", None)
        if not isinstance(inner, ReadOnceSource):
            return await read_accounts(view, until)
        before = _token(inner, until)
        if before is not None and before == self.token and self.read is not None:
            tables = view.columns(ACCOUNT_FIELDS, until=until)
            if tables is None:
                async for _ in view.rows(until=until):
                    pass
            else:
                async for _ in tables:
                    pass
            return self.read
        read = await read_accounts(view, until)
        self.read, self.token = read, _token(inner, until)
        return read


def _token(source: ReadOnceSource, until: datetime | None) -> Hashable | None:
    """The rows an accounts read serves (as columns, else as rows), as a token."""
    columns = source.token(ACCOUNT_FIELDS, until)
    if columns is not None:
        return ("columns", *columns)
    rows = source.token(None, until)
    return None if rows is None else ("rows", *rows)
