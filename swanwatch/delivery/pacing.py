"""Pacing: when a notification is due, in the recipient's time zone. Pure.

Low severities wait for the next digest (``08:30`` local, whatever the UTC offset that day);
during quiet hours the rest wait until they end; a critical alert bypasses both. Local
times are turned into instants through ``zoneinfo``, so a daylight-saving change moves the
UTC instant, never the local time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from swanwatch.config import QuietHours
from swanwatch.delivery.routing import Target
from swanwatch.model import GroupKind, Severity


@dataclass(frozen=True)
class Pacing:
    """When to send, which batch it joins (kind and key; ``NONE``: on its own), and why
    it waits."""

    due_at: datetime
    group_kind: GroupKind = GroupKind.NONE
    group_key: str = ""
    held: str = ""


def next_local(at: time, zone: ZoneInfo, after: datetime) -> datetime:
    """The first instant strictly after ``after`` when the local clock in ``zone`` shows
    ``at`` (a time skipped by a spring-forward change falls just after the gap)."""
    local_day = after.astimezone(zone).date()
    for add in range(3):
        candidate = datetime.combine(local_day + timedelta(days=add), at, tzinfo=zone)
        instant = candidate.astimezone(UTC)
        if instant > after:
            return instant
    raise AssertionError("unreachable: a local time recurs within three days")


def _in_window(q: QuietHours, local: datetime) -> bool:
    if q.weekends and local.weekday() >= 5:
        return True
    t = local.time().replace(tzinfo=None)
    if q.start == q.end:
        return False
    if q.start < q.end:
        return q.start <= t < q.end
    return t >= q.start or t < q.end


def quiet_until(q: QuietHours, zone: ZoneInfo, at: datetime) -> datetime | None:
    """When the quiet hours around ``at`` end, or None when ``at`` is not quiet."""
    if not _in_window(q, at.astimezone(zone)):
        return None
    instant = at
    # Step to the next window edge until out of quiet hours (a weekend spans several).
    for _ in range(8):
        local = instant.astimezone(zone)
        if not _in_window(q, local):
            return instant
        candidates = [next_local(q.end, zone, instant)]
        if q.weekends and local.weekday() >= 5:
            monday = (local + timedelta(days=7 - local.weekday())).date()
            candidates.append(datetime.combine(monday, time(0), tzinfo=zone).astimezone(UTC))
        instant = min(c for c in candidates if c > instant)
    return instant


def pace(target: Target, severity: Severity, now: datetime) -> Pacing:
    """When a notice of ``severity`` for ``target`` is due, and what it is batched with."""
    settings = target.settings
    zone = ZoneInfo(target.timezone)
    grouped = bool(settings.group_wait or settings.group_interval)
    kind = GroupKind.GROUP if grouped else GroupKind.NONE
    group = f"{settings.route}|{target.channel}" if grouped else ""
    if severity == Severity.CRITICAL:
        return Pacing(now + settings.group_wait, kind, group)
    digest = settings.digest
    if digest is not None and severity.rank <= digest.max_severity.rank:
        dzone = ZoneInfo(digest.timezone) if digest.timezone else zone
        due = next_local(digest.at, dzone, now)
        key = f"{target.channel}|{due.isoformat()}"
        return Pacing(due, GroupKind.DIGEST, key, f"digest at {due.isoformat()}")
    due = now + settings.group_wait
    quiet = settings.quiet_hours
    if quiet is not None:
        qzone = ZoneInfo(quiet.timezone) if quiet.timezone else zone
        until = quiet_until(quiet, qzone, due)
        if until is not None:
            key = f"{target.channel}|{until.isoformat()}"
            return Pacing(until, GroupKind.QUIET, key, f"quiet hours until {until.isoformat()}")
    return Pacing(due, kind, group)
