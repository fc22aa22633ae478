"""Accounts and sources: build the configured sources, and read accounts from their rows.

The one place that turns a source row into an :class:`Account`; the engine, the CLI and
``swanwatch.testing`` all read accounts through it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from swanwatch import plugins
from swanwatch.config import Config
from swanwatch.interfaces import Source
from swanwatch.model import Account, storable

log = logging.getLogger("swanwatch.accounts")


def split_list(value: object) -> tuple[str, ...]:
    """A list field of a row: a list, or text separated by spaces, commas or semicolons."""
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(str(value).replace(";", " ").replace(",", " ").split())


def account_from_row(row: Mapping[str, object], nul_in: list[str] | None = None) -> Account:
    """An Account from a source row (id, name, domains, owner, segment, arr, renewal_date,
    tags); list fields may be lists or text separated by spaces, commas or semicolons.
    A NUL byte in its text (a broken export) is kept as
    :data:`~swanwatch.model.NUL_STANDS_IN`, the same on every store (a record is not dropped
    for one: its account would count as absent, then retire); the fields that held one are
    added to ``nul_in``.

    Raises ValueError or TypeError (pydantic's ValidationError is a ValueError) for a row
    that does not make an account.
    """
    renewal = row.get("renewal_date")
    if isinstance(renewal, datetime):
        renewal = renewal.date()
    elif isinstance(renewal, str):
        renewal = date.fromisoformat(renewal.strip()) if renewal.strip() else None
    arr = row.get("arr")
    key = str(row.get("id") or row.get("account_id") or "").strip()
    if not key:
        raise ValueError("no account id: the record has no `id` (or `account_id`)")
    account = Account(
        id=key,
        name=str(row.get("name") or ""),
        domains=split_list(row.get("domains")),
        owner=(str(row["owner"]).strip() or None) if row.get("owner") else None,
        segment=(str(row["segment"]).strip() or None) if row.get("segment") else None,
        arr=float(arr) if arr not in (None, "") else 0.0,  # type: ignore[arg-type]
        renewal_date=renewal if isinstance(renewal, date) else None,
        tags=split_list(row.get("tags")),
    )
    a = account
    if "\x00" not in "".join((a.id, a.name, a.owner or "", a.segment or "", *a.domains, *a.tags)):
        return account
    held = [f for f in _TEXT_FIELDS if "\x00" in _text_of(getattr(account, f))]
    if nul_in is not None:
        nul_in.extend(held)
    return account.model_copy(update={f: _without_nul(getattr(account, f)) for f in held})


#: An account's text fields (a list field's items are text too).
_TEXT_FIELDS = ("id", "name", "domains", "owner", "segment", "tags")


def _text_of(value: str | tuple[str, ...] | None) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else "".join(value)


def _without_nul(value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    if value is None or isinstance(value, str):
        return None if value is None else storable(value)
    return tuple(storable(v) for v in value)


def build_sources(config: Config) -> dict[str, Source]:
    """Every configured source, by its name in the config."""
    return {name: build_source(name, config) for name in config.sources}


def build_source(name: str, config: Config) -> Source:
    """The configured source ``name``, built from its plugin and options."""
    spec = config.sources[name]
    cls = plugins.source_class(spec.type)
    return cls(name, cls.Options.model_validate(spec.options), base_dir=config.base_dir)


@dataclass
class AccountRead:
    """What reading an accounts source gave: the accounts by id, and the records skipped."""

    accounts: dict[str, Account] = field(default_factory=dict)
    #: (record number, why) for each record that did not make an account.
    skipped: list[tuple[int, str]] = field(default_factory=list)
    #: Account ids that appeared more than once (the later record wins).
    repeated: list[str] = field(default_factory=list)


#: The fields an account is made of (``account_id`` stands in for a missing ``id``).
ACCOUNT_FIELDS = (
    "id",
    "account_id",
    "name",
    "domains",
    "owner",
    "segment",
    "arr",
    "renewal_date",
    "tags",
)


#: The fields set of an account read from a row: all of them. pydantic keeps a set of the
#: fields given with each record (728 bytes for eight names: half of an account's memory,
#: about 70 MiB at 100,000 accounts); the accounts of a read share this one instead. A
#: frozen record never adds to its set, and a copy copies it.
ALL_FIELDS_SET = set(Account.model_fields)


def compact(account: Account, texts: dict[str, str]) -> Account:
    """``account`` holding less: the shared fields set, and its owner and segment as the
    one copy of each text kept in ``texts`` (a book has a few hundred of them)."""
    if account.model_fields_set == ALL_FIELDS_SET:
        object.__setattr__(account, "__pydantic_fields_set__", ALL_FIELDS_SET)
    values = account.__dict__
    for name in ("owner", "segment"):
        text = values[name]
        if text is not None:
            values[name] = texts.setdefault(text, text)
    return account


async def read_accounts(source: Source, until: datetime | None = None) -> AccountRead:
    """Read every account of ``source`` (rows up to ``until`` in a replay): as columns when
    the source reads so (a big book's CSV file through Arrow), else row by row; the same
    records either way, each made an account by :func:`account_from_row` (and kept
    :func:`compact`)."""
    out = AccountRead()
    tables = source.columns(ACCOUNT_FIELDS, until=until)
    rows = source.rows(until=until) if tables is None else _rows_of(tables)
    record = 0
    texts: dict[str, str] = {}
    nul_in: list[str] = []
    async for row in rows:
        record += 1
        try:
            account = compact(account_from_row(row, nul_in), texts)
        except (ValueError, TypeError) as exc:
            log.warning("accounts source %s, record %d skipped: %s", source.instance, record, exc)
            out.skipped.append((record, str(exc)))
            continue
        if nul_in:
            log.warning(
                "accounts source %s, record %d (account %s): a NUL byte (0x00) in %s, kept as "
                "U+FFFD; fix the export",
                source.instance,
                record,
                account.id,
                ", ".join(f"field {f!r}" for f in nul_in),
            )
            nul_in.clear()
        if account.id in out.accounts:
            log.warning(
                "accounts source %s: account %s appears twice; the later record wins",
                source.instance,
                account.id,
            )
            out.repeated.append(account.id)
        out.accounts[account.id] = account
    return out


async def _rows_of(tables: AsyncIterator[Any]) -> AsyncIterator[dict[str, object]]:
    """Arrow tables as the rows they hold (only the fields asked for)."""
    async for table in tables:
        names = table.column_names
        if not names:  # records without any account field: each one skipped, and counted
            for _ in range(table.num_rows):
                yield {}
            continue
        for values in zip(*(table.column(n).to_pylist() for n in names), strict=True):
            yield dict(zip(names, values, strict=True))
