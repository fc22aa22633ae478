"""Accounts as the accounts source last described them, and those it stopped listing."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, Text, cast, func, select, update

from swanwatch.model import Account
from swanwatch.store.base import StoreBase, chunks, upsert
from swanwatch.store.tables import ACCOUNTS


@dataclass(frozen=True)
class AccountListing:
    """The account list after a good read of the accounts source."""

    #: Every account still listed: those the read gave, and those absent from fewer good
    #: reads than retirement takes (their alerts live on; watchers report them unknown).
    accounts: list[Account] = field(default_factory=list)
    #: The listed accounts the read did not give, by id, with the first read that missed them.
    absent: dict[str, datetime] = field(default_factory=dict)
    #: Accounts retired by this read (removed from the list).
    retired: list[str] = field(default_factory=list)


#: The account's fields, stored one a column; those stored as JSON lists are compared as
#: their text (decoding 200,000 of them costs more than the rest of the comparison).
_FIELDS = tuple(Account.model_fields)
_JSON_FIELDS = frozenset({"domains", "tags"})
#: What a read is compared with: the account's columns and its absence.
_COMPARED = (
    *(cast(ACCOUNTS.c[f], Text).label(f) if f in _JSON_FIELDS else ACCOUNTS.c[f] for f in _FIELDS),
    ACCOUNTS.c.absent_reads,
    ACCOUNTS.c.absent_since,
)


class AccountsStore(StoreBase):
    """The stored account list."""

    def upsert_accounts(self, accounts: Sequence[Account], now: datetime) -> None:
        """Make the stored account list match ``accounts`` at once (insert, update, remove)."""
        self.record_account_read(accounts, now, retire_after_reads=1)

    def record_account_read(
        self,
        accounts: Sequence[Account],
        now: datetime,
        *,
        retire_after_reads: int,
        retire_after: timedelta = timedelta(0),
    ) -> AccountListing:
        """Store a good read of the accounts source: the accounts it gave are listed (and no
        longer absent); every other listed account counts one more absent read, and is
        retired (removed) once absent from ``retire_after_reads`` good reads in a row, the
        first at least ``retire_after`` ago. One transaction.

        Only what changed is written: a listed account the read gives as stored is left
        alone (``updated_at`` is when its record last changed), so a steady book of
        100,000 accounts costs a read of the table, not 100,000 updates.
        """
        given = {a.id: a for a in accounts}
        table = ACCOUNTS
        with self._tx() as conn:
            stored = {r.id: r for r in conn.execute(select(*_COMPARED))}
            rows = [
                _row(a, now)
                for a in accounts
                if (old := stored.get(a.id)) is None or _differs(old, a)
            ]
            upsert(conn, table, rows, ["id"])
            missing = sorted(stored.keys() - given.keys())
            for chunk in chunks(missing):
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(chunk))
                    .values(
                        absent_reads=table.c.absent_reads + 1,
                        absent_since=func.coalesce(table.c.absent_since, now),
                    )
                )
            absent = {i: stored[i].absent_since or now for i in missing}
            retired = [
                i
                for i in missing
                if stored[i].absent_reads + 1 >= retire_after_reads
                and now - absent[i] >= retire_after
            ]
            for chunk in chunks(retired):
                conn.execute(table.delete().where(table.c.id.in_(chunk)))
            for gone in retired:
                del absent[gone]
            kept = list(given.values())
            for chunk in chunks(list(absent)):
                query = select(table).where(table.c.id.in_(chunk))
                kept.extend(_account(r) for r in conn.execute(query))
        return AccountListing(
            accounts=sorted(kept, key=lambda a: a.id), absent=absent, retired=retired
        )

    def accounts(self, ids: Iterable[str] | None = None) -> list[Account]:
        query = select(ACCOUNTS).order_by(ACCOUNTS.c.id)
        if ids is not None:
            query = query.where(ACCOUNTS.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [_account(r) for r in conn.execute(query)]

    def absent_accounts(self) -> dict[str, datetime]:
        """The listed accounts the last good read did not give, with since when."""
        query = select(ACCOUNTS.c.id, ACCOUNTS.c.absent_since).where(
            ACCOUNTS.c.absent_since.is_not(None)
        )
        with self.engine.connect() as conn:
            return {r.id: r.absent_since for r in conn.execute(query)}


def _account(row: Row[Any]) -> Account:
    return Account.model_validate(row, from_attributes=True)


def _row(account: Account, now: datetime) -> dict[str, object]:
    """The stored row of ``account`` (its fields read one by one: ``model_dump`` costs more)."""
    row: dict[str, object] = {f: getattr(account, f) for f in _FIELDS}
    row.update(updated_at=now, absent_reads=0, absent_since=None)
    return row


def _differs(row: Row[Any], account: Account) -> bool:
    """Whether the stored ``row`` (of :data:`_COMPARED`) says other than ``account``, or is
    marked absent. JSON lists are compared as the text the store writes: a list written
    some other way reads as changed and is written again, which is harmless."""
    if row.absent_reads != 0 or row.absent_since is not None:
        return True
    for name in _FIELDS:
        value = getattr(account, name)
        if (json.dumps(value) if name in _JSON_FIELDS else value) != getattr(row, name):
            return True
    return False
