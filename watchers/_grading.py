"""Grading by days left, shared by the domain and certificate watchers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

DEFAULT_THRESHOLDS_DAYS = (60, 30, 14, 7, 1)


def strength_for_days(days_left: int, thresholds_days: Sequence[int]) -> float:
    """0 beyond the widest threshold; one step more for each threshold passed; 1.0 within the
    narrowest and once past due."""
    steps = sorted({int(t) for t in thresholds_days}, reverse=True)
    if not steps or days_left < 0:
        return 1.0
    passed = sum(1 for t in steps if days_left <= t)
    return passed / len(steps)


def days_left(expires_at: datetime, now: datetime) -> int:
    """Whole calendar days from ``now`` to ``expires_at`` (UTC dates), never a clock slip."""
    return (expires_at.date() - now.date()).days


def is_past(expires_at: datetime, now: datetime, *, zone_known: bool = True) -> bool:
    """Whether ``expires_at`` has passed; without a known zone, only once a whole day has."""
    return now > expires_at + (timedelta(0) if zone_known else timedelta(days=1))
