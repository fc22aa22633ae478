"""Value converters shared by the built-in sources: a declared type per field, checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from swanwatch.clock import parse_instant

TypeName = Literal["int", "float", "str", "date", "datetime", "bool"]

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "f", "no", "n", "0", "off"})


class BadValue(ValueError):
    """A value that does not convert to its declared type."""


def to_int(value: object) -> object:
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal) and value == int(value):
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise BadValue(f"{value!r} is not an integer") from None


def to_float(value: object) -> object:
    if isinstance(value, bool):
        raise BadValue(f"{value!r} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BadValue(f"{value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise BadValue(f"{value!r} is not a finite number")
    return number


def to_str(value: object) -> object:
    return value if isinstance(value, str) else str(value)


def to_bool(value: object) -> object:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise BadValue(f"{value!r} is not a boolean (true/false, yes/no, 1/0)")


def to_date(value: object) -> object:
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
    if isinstance(value, datetime | date):
        return parse_instant(value)
    try:
        return parse_instant(str(value))
    except ValueError:
        raise BadValue(f"{value!r} is not an ISO 8601 date or datetime") from None


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
