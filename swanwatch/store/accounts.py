"""Accounts as the accounts source last described them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, select

from swanwatch.model import Account
from swanwatch.store.base import StoreBase, upsert
from swanwatch.store.tables import ACCOUNTS


class AccountsStore(StoreBase):
    """The stored account list."""

    def upsert_accounts(self, accounts: Sequence[Account], now: datetime) -> None:
        """Make the stored account list match ``accounts`` (insert, update, remove)."""
        rows = [{**a.model_dump(), "updated_at": now} for a in accounts]
        with self._tx() as conn:
            upsert(conn, ACCOUNTS, rows, ["id"])
            conn.execute(delete(ACCOUNTS).where(ACCOUNTS.c.updated_at < now))

    def accounts(self, ids: Iterable[str] | None = None) -> list[Account]:
        query = select(ACCOUNTS).order_by(ACCOUNTS.c.id)
        if ids is not None:
            query = query.where(ACCOUNTS.c.id.in_(list(ids)))
        with self.engine.connect() as conn:
            return [Account.model_validate(r, from_attributes=True) for r in conn.execute(query)]
