"""Accounts as the accounts source last described them, and those it stopped listing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Dialect, Row, Text, cast, func, select, update

from swanwatch.model import Account
from swanwatch.store.base import StoreBase, chunks, insert
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
            unchanged = _Unchanged()
            _write(
                conn,
                [a for a in accounts if (old := stored.get(a.id)) is None or not unchanged(old, a)],
                now,
            )
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
        with self._read() as conn:
            return [_account(r) for r in conn.execute(query)]

    def absent_accounts(self) -> dict[str, datetime]:
        """The listed accounts the last good read did not give, with since when."""
        query = select(ACCOUNTS.c.id, ACCOUNTS.c.absent_since).where(
            ACCOUNTS.c.absent_since.is_not(None)
        )
        with self._read() as conn:
            return {r.id: r.absent_since for r in conn.execute(query)}


def _account(row: Row[Any]) -> Account:
    return Account.model_validate(row, from_attributes=True)


#: The columns an account read writes: its fields, when, and that it is listed.
_WRITTEN = (*_FIELDS, "updated_at", "absent_reads", "absent_since")


def _write(conn: Connection, accounts: Sequence[Account], now: datetime) -> None:
    """Insert ``accounts``, or update those stored, each value bound as SQLAlchemy binds it
    (the column type's own bind processor) but without SQLAlchemy's per-row parameter
    handling (2 of the 2.5 s a fresh store's 100,000 accounts took): on PostgreSQL through
    COPY (:func:`_copy`), elsewhere one statement the driver executes for every row."""
    if not accounts:
        return
    dialect = conn.dialect
    binds = [_binder(dialect, f) for f in _WRITTEN]
    listed = [_bound(binds[-3], now), _bound(binds[-2], 0), _bound(binds[-1], None)]
    fields = list(zip(_FIELDS, binds, strict=False))
    rows = [
        [getattr(a, f) if bind is None else bind(getattr(a, f)) for f, bind in fields] + listed
        for a in accounts
    ]
    if dialect.name == "postgresql" and dialect.driver == "psycopg":
        _copy(conn, rows)
        return
    stmt = insert(conn, ACCOUNTS)
    stmt = stmt.on_conflict_do_update(
        index_elements=["id"], set_={c: stmt.excluded[c] for c in _WRITTEN if c != "id"}
    )
    compiled = stmt.compile(dialect=dialect, column_keys=list(_WRITTEN))
    if compiled.positional:
        at = [_WRITTEN.index(name) for name in compiled.positiontup or ()]
        conn.exec_driver_sql(compiled.string, [tuple(row[i] for i in at) for row in rows])
    else:
        conn.exec_driver_sql(
            compiled.string, [dict(zip(_WRITTEN, row, strict=True)) for row in rows]
        )


def _copy(conn: Connection, rows: list[list[Any]]) -> None:
    """PostgreSQL: the rows COPYed into a temporary table (dropped at commit), then
    upserted from it in one statement (psycopg's executemany sends a row at a time)."""
    from sqlalchemy import column, table
    from sqlalchemy.dialects import postgresql

    names = ", ".join(f'"{c}"' for c in _WRITTEN)
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE swanwatch_account_read "
        "(LIKE accounts INCLUDING DEFAULTS) ON COMMIT DROP"
    )
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY swanwatch_account_read ({names}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()
    read = table("swanwatch_account_read", *(column(c) for c in _WRITTEN))
    stmt = postgresql.insert(ACCOUNTS).from_select(list(_WRITTEN), read.select())
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"], set_={c: stmt.excluded[c] for c in _WRITTEN if c != "id"}
        )
    )
    conn.exec_driver_sql("DROP TABLE swanwatch_account_read")


def _binder(dialect: Dialect, column: str) -> Callable[[Any], Any] | None:
    """The bind processor of ``column``'s type; for a JSON list, remembering the text of
    each list it wrote (most books share a few lists of tags)."""
    bind = ACCOUNTS.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    if bind is None or column not in _JSON_FIELDS:
        return bind
    texts: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        text = texts.get(value)
        if text is None:
            text = texts[value] = bind(value)
        return text

    return remembered


def _bound(bind: Callable[[Any], Any] | None, value: object) -> object:
    return value if bind is None else bind(value)


class _Unchanged:
    """Whether a stored row (of :data:`_COMPARED`) says what ``account`` says and is not
    marked absent: the account as a tuple of the row's values, compared in one go (field
    by field, it was most of a steady read's 1.4 s at 100,000 accounts). JSON lists are
    compared as the text the store writes (each list's text made once a read): a list
    written some other way reads as changed and is written again, which is harmless."""

    def __init__(self) -> None:
        self._texts: dict[tuple[str, ...], str] = {}

    def __call__(self, row: Row[Any], account: Account) -> bool:
        values = account.__dict__
        texts = self._texts
        as_stored: list[object] = []
        for name in _FIELDS:
            value = values[name]
            if name in _JSON_FIELDS:
                text = texts.get(value)
                if text is None:
                    text = texts[value] = json.dumps(value)
                value = text
            as_stored.append(value)
        return tuple(row) == (*as_stored, *_LISTED)


#: What :data:`_COMPARED` reads last of a listed account: absent from no read, since never.
_LISTED = (0, None)
