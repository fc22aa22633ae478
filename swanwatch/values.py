"""Row values made plain: flags, dates, days, instants, numbers and text, for sources and
watchers alike (a public module: plugins may import it).

Two families. The strict converters (``to_int``, ``to_bool``, ``to_date``... and
``CONVERTERS`` by type name) turn a field into its declared type or raise :class:`BadValue`:
sources use them on ``types:``. The lenient readers (``is_true``, ``day_of``,
``instant_of``, ``int_or_zero``, ``float_or_zero``, ``text_of``) read a field a watcher
was given, whatever the source made of it: a ``date``, a ``datetime``, ISO text, a number
or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from swanwatch.clock import parse_instant

#: The type names a source's ``types:`` option accepts.
TypeName = Literal["int", "float", "str", "date", "datetime", "bool"]

#: Words read as true, and as false (compared lower-cased, stripped).
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off"})


class BadValue(ValueError):
    """A value that does not convert to its declared type."""


# --- strict: a declared type, checked ---------------------------------------------------


def to_int(value: object) -> object:
    """An integer; a whole float or Decimal is accepted, a bool is not."""
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    try:
        return int(_plain(str(value)).strip())
    except ValueError:
        raise BadValue(f"{value!r} is not an integer") from None


def to_float(value: object) -> object:
    """A finite float; a bool is not a number."""
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not a number")
    try:
        number = float(_plain(value) if isinstance(value, str) else value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadValue(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BadValue(f"{value!r} is not a finite number")
    return number


def _plain(text: str) -> str:
    """``text`` as int() and float() should read it: without Python's digit separators
    (``1_000`` is Python's literal, not an export's number)."""
    if "_" in text:
        raise ValueError(text)
    return text


def to_str(value: object) -> object:
    """The value as text."""
    return value if isinstance(value, str) else str(value)


def to_bool(value: object) -> object:
    """True or False from a bool or one of TRUE_WORDS / FALSE_WORDS."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise BadValue(f"{value!r} is not a boolean (true/false, yes/no, 1/0)")


def to_date(value: object) -> object:
    """A date from a date, a datetime (its own calendar day) or ISO text."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return parse_instant(text).date()
    except ValueError:
        raise BadValue(f"{value!r} is not a date (YYYY-MM-DD)") from None


def to_datetime(value: object) -> object:
    """An aware UTC datetime from a datetime (naive taken as UTC), a date or ISO text."""
    if isinstance(value, datetime | date):
        return parse_instant(value)
    try:
        return parse_instant(str(value))
    except ValueError:
        raise BadValue(f"{value!r} is not an ISO 8601 date or datetime") from None


#: The strict converter of each type name.
CONVERTERS: dict[str, Callable[[object], object]] = {
    "int": to_int,
    "float": to_float,
    "str": to_str,
    "bool": to_bool,
    "date": to_date,
    "datetime": to_datetime,
}


def is_after(stamp: object, until: datetime) -> bool:
    """Whether a row's date value lies after the cut ``until`` (aware UTC).

    A date is compared by day; a naive datetime is taken to be UTC; anything else (None,
    text) is not dated, so never after the cut.
    """
    if isinstance(stamp, datetime):
        if stamp.tzinfo is None:
            return stamp > until.replace(tzinfo=None)
        return stamp > until
    if isinstance(stamp, date):
        return stamp > until.date()
    return False


# --- lenient: a field as a watcher reads it --------------------------------------------


def is_true(value: object) -> bool:
    """A flag: a bool as it is, text among TRUE_WORDS; None and anything else is false."""
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in TRUE_WORDS


def day_of(value: object) -> date | None:
    """The UTC calendar day of a date, a datetime (naive taken as UTC) or ISO text (its first
    ten characters); None when empty or not a date. Raises ValueError on malformed text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        return date.fromisoformat(value.strip()[:10])
    return None


def instant_of(value: object) -> datetime | None:
    """An aware UTC datetime from a datetime (naive taken as UTC), a date (its midnight) or
    ISO 8601 text (``Z`` allowed); None when empty or not a time. Raises ValueError on
    malformed text."""
    if isinstance(value, datetime | date) or (isinstance(value, str) and value.strip()):
        return parse_instant(value)
    return None


def midnight(day: date) -> datetime:
    """The start of ``day``, 00:00 UTC."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def int_or_zero(value: object) -> int:
    """A count: None and empty text are 0, ``"3.0"`` is 3. Raises ValueError or TypeError
    on anything else that is not a number."""
    if value is None or value == "":
        return 0
    return int(float(value))  # type: ignore[arg-type]


def float_or_zero(value: object) -> float:
    """A number: None and empty text are 0.0. Raises ValueError or TypeError on anything
    else that is not a number."""
    if type(value) is float:
        return value
    if value is None or value == "":
        return 0.0
    return float(value)  # type: ignore[arg-type]


def text_of(value: object) -> str:
    """The value as stripped text; None is empty."""
    return "" if value is None else str(value).strip()
