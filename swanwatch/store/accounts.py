"""Accounts as the accounts source last described them, and those it stopped listing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

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
        first at least ``retire_after`` ago. One transaction."""
        rows = [
            {**a.model_dump(), "updated_at": now, "absent_reads": 0, "absent_since": None}
            for a in accounts
        ]
        given = {a.id for a in accounts}
        table = ACCOUNTS
        with self._tx() as conn:
            earlier = {r.id for r in conn.execute(select(table.c.id))}
            upsert(conn, table, rows, ["id"])
            missing = sorted(earlier - given)
            for chunk in chunks(missing):
                conn.execute(
                    update(table)
                    .where(table.c.id.in_(chunk))
                    .values(
                        absent_reads=table.c.absent_reads + 1,
                        absent_since=func.coalesce(table.c.absent_since, now),
                    )
                )
            listed = list(conn.execute(select(table).order_by(table.c.id)))
            retired = [
                r.id
                for r in listed
                if r.absent_reads >= retire_after_reads
                and r.absent_since is not None
                and now - r.absent_since >= retire_after
            ]
            for chunk in chunks(retired):
                conn.execute(table.delete().where(table.c.id.in_(chunk)))
        gone = set(retired)
        kept = [r for r in listed if r.id not in gone]
        return AccountListing(
            accounts=[Account.model_validate(r, from_attributes=True) for r in kept],
            absent={r.id: r.absent_since for r in kept if r.absent_since is not None},
            retired=retired,
        )

    def accounts(self, ids: Iterable[str] | None = None) -> list[Account]:
        query = select(ACCOUNTS).order_by(ACCOUNTS.c.id)
        if ids is not None:
            query = query.where(ACCOUNTS.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [Account.model_validate(r, from_attributes=True) for r in conn.execute(query)]

    def absent_accounts(self) -> dict[str, datetime]:
        """The listed accounts the last good read did not give, with since when."""
        query = select(ACCOUNTS.c.id, ACCOUNTS.c.absent_since).where(
            ACCOUNTS.c.absent_since.is_not(None)
        )
        with self.engine.connect() as conn:
            return {r.id: r.absent_since for r in conn.execute(query)}
