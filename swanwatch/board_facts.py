"""What an account page shows from the business sources: daily usage, tickets, contacts.

The sources are the ones the watchers read (``usage_source`` of usage_drop,
``tickets_source`` of support_spike, ``contacts_source`` of champion_departure; by default
``usage``, ``tickets`` and ``contacts``). Each is read whole once and indexed by account,
then kept for :attr:`AccountFacts.ttl` (5 minutes): an account page costs a dictionary
look-up, and the first page after the index expires pays one read of the source.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from swanwatch.accounts import build_source
from swanwatch.config import Config
from swanwatch.errors import SwanwatchError
from swanwatch.interfaces import Row, Source
from swanwatch.values import day_of

log = logging.getLogger("swanwatch.board")

#: The watcher option naming each source, its watcher type and its default.
_SOURCES = {
    "usage": ("usage_drop", "usage_source"),
    "tickets": ("support_spike", "tickets_source"),
    "contacts": ("champion_departure", "contacts_source"),
}


@dataclass(frozen=True)
class Contact:
    """A contact as the account page lists it."""

    name: str
    email: str
    title: str
    role: str
    status: str
    last_login: date | None


@dataclass
class _Index:
    """One source read and indexed by account, with when and how it went."""

    by_account: dict[str, Any] = field(default_factory=dict)
    read_at: float = 0.0
    error: str | None = None


def _day(value: object) -> date | None:
    try:
        return day_of(value)
    except ValueError:
        return None


def _usage(rows: list[Row]) -> dict[str, Any]:
    """account -> metric -> day -> total."""
    out: dict[str, dict[str, dict[date, float]]] = defaultdict(lambda: defaultdict(dict))
    for row in rows:
        day = _day(row.get("date"))
        try:
            value = float(row.get("value") or 0)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if day is None:
            continue
        per = out[str(row.get("account_id", ""))][str(row.get("metric") or "usage")]
        per[day] = per.get(day, 0.0) + value
    return out


def _tickets(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, list[date]] = defaultdict(list)
    for row in rows:
        day = _day(row.get("opened_at"))
        if day is not None:
            out[str(row.get("account_id", ""))].append(day)
    return out


def _contacts(rows: list[Row]) -> dict[str, Any]:
    out: dict[str, list[Contact]] = defaultdict(list)
    for row in rows:
        out[str(row.get("account_id", ""))].append(
            Contact(
                name=str(row.get("name") or ""),
                email=str(row.get("email") or ""),
                title=str(row.get("title") or ""),
                role=str(row.get("role") or ""),
                status=str(row.get("status") or ""),
                last_login=_day(row.get("last_login")),
            )
        )
    return out


_INDEXERS: dict[str, Callable[[list[Row]], dict[str, Any]]] = {
    "usage": _usage,
    "tickets": _tickets,
    "contacts": _contacts,
}


def source_names(config: Config) -> dict[str, str | None]:
    """usage, tickets, contacts -> the configured source that holds them (None: none)."""
    names: dict[str, str | None] = {}
    for what, (watcher_type, option) in _SOURCES.items():
        chosen = what
        for spec in config.active_watchers():
            if spec.type == watcher_type and isinstance(spec.options.get(option), str):
                chosen = spec.options[option]
                break
        names[what] = chosen if chosen in config.sources else None
    return names


class AccountFacts:
    """The business sources an account page draws on, read and indexed per account."""

    def __init__(self, config: Config, ttl: timedelta = timedelta(minutes=5)) -> None:
        self.config = config
        self.ttl = ttl.total_seconds()
        self.names = source_names(config)
        self._sources: dict[str, Source] = {}
        self._index: dict[str, _Index] = {}
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def _read(self, what: str) -> _Index:
        name = self.names[what]
        if name is None:
            return _Index(error=f"no {what} source is configured")
        async with self._locks[what]:
            found = self._index.get(what)
            if found is not None and time.monotonic() - found.read_at < self.ttl:
                return found
            try:
                source = self._sources.get(name) or build_source(name, self.config)
                self._sources[name] = source
                rows = [row async for row in source.rows()]
                index = _Index(_INDEXERS[what](rows), time.monotonic())
            except (SwanwatchError, OSError) as exc:
                log.warning("board: cannot read source %s for account pages: %s", name, exc)
                index = _Index(read_at=time.monotonic(), error=f"source {name!r}: {exc}")
            self._index[what] = index
            return index

    async def usage(self, account_id: str) -> tuple[Mapping[str, Mapping[date, float]], str | None]:
        index = await self._read("usage")
        return index.by_account.get(account_id, {}), index.error

    async def tickets(self, account_id: str) -> tuple[list[date], str | None]:
        index = await self._read("tickets")
        return index.by_account.get(account_id, []), index.error

    async def contacts(self, account_id: str) -> tuple[list[Contact], str | None]:
        index = await self._read("contacts")
        return index.by_account.get(account_id, []), index.error
