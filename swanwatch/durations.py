"""Durations as people write them: ``30s``, ``5m``, ``4h``, ``3d``, ``1w``; and shown back."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: object, *, bare_unit: str | None = None) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"1w"`` or a number of seconds (of
    ``bare_unit`` when given: the command line reads ``3`` as three days)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=float(value) * _UNITS[bare_unit])
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            unit = match.group(2) or bare_unit
            return timedelta(seconds=float(match.group(1)) * _UNITS[unit])
    raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 5m, 1h or 1d")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def describe(delta: timedelta) -> str:
    """A duration in words, in its largest whole unit: ``3 days``, ``4 hours``, ``90 seconds``."""
    seconds = delta.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    rounded = round(seconds, 3)
    return f"{rounded:g} second{'s' if rounded != 1 else ''}"
