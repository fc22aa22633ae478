"""Column types: aware-UTC datetimes on every backend, SQLite included."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from swanwatch.clock import ensure_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and always returns them aware, in UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; use aware UTC")
        utc = ensure_utc(value)
        # SQLite keeps text: store it without offset, in UTC, so that it sorts and compares.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value)


def sqlite_instants() -> Callable[[str], datetime]:
    """A parser of the instants SQLite keeps as text (UTC, without offset), as
    :class:`UTCDateTime` reads them, that parses each distinct text once: rows read in
    bulk share their instants (days, hours), and the regex SQLAlchemy parses with costs
    more than the C parser."""
    seen: dict[str, datetime] = {}

    def parse(text: str) -> datetime:
        found = seen.get(text)
        if found is None:
            found = seen[text] = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return found

    return parse


class JSONText(TypeDecorator[str]):
    """A JSON column's value given as its JSON text (written by pydantic's serializer),
    bound as it is: the column's own type would parse nothing but encode it again with
    ``json.dumps``. PostgreSQL still casts the bound text to JSON."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> None:
        return None
