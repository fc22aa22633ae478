"""Signals support tickets, escalations or P1s above an account's own baseline, and tickets
left unanswered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

from pydantic import Field

from swanwatch import Account, Signal, WatchContext, Watcher, WatcherOptions

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})


def _instant(value: object) -> datetime | None:
    """A row's time field as an aware UTC datetime; a bare date is taken as midnight UTC."""
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        return _instant(datetime.fromisoformat(text))
    return None


def _flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() in _TRUE


@dataclass
class _Count:
    """Tickets of one kind on one account: in the recent window and in the baseline before it."""

    recent: int = 0
    baseline: int = 0
    first_recent: datetime | None = None

    def add(self, opened: datetime, recent: bool) -> None:
        if recent:
            self.recent += 1
            if self.first_recent is None or opened < self.first_recent:
                self.first_recent = opened
        else:
            self.baseline += 1


@dataclass
class _Tally:
    volume: _Count = field(default_factory=_Count)
    escalations: _Count = field(default_factory=_Count)
    p1: _Count = field(default_factory=_Count)
    unanswered: list[tuple[datetime, str]] = field(default_factory=list)


class SupportSpikeWatcher(Watcher):
    """More tickets, escalations or P1s than the account's own baseline; tickets ageing unanswered.

    Reads ticket rows (account_id, ticket_id, opened_at, priority, escalated, status,
    first_response_at). Over the last ``window_days``, each count is compared with the same
    account's rate over the ``baseline_days`` before: a spike needs at least its minimum count
    and ``min_ratio`` times the baseline rate (the rate is at least one ticket per baseline
    period, so a quiet account needs the minimum count, not a miracle). Keys: ``volume``,
    ``escalations``, ``p1`` and ``unanswered``.
    """

    name: ClassVar[str] = "support_spike"
    historical: ClassVar[bool] = True

    class Options(WatcherOptions):
        tickets_source: str = Field(
            "tickets",
            description="Source of ticket rows: account_id, ticket_id, opened_at, priority, "
            "escalated, status, first_response_at.",
        )
        window_days: int = Field(7, ge=1, description="The recent window, in days.")
        baseline_days: int = Field(
            56, ge=7, description="The baseline period before the recent window, in days."
        )
        min_ratio: float = Field(
            3.0, ge=1.0, description="How many times the baseline rate a spike must reach."
        )
        min_tickets: int = Field(
            5, ge=1, description="Tickets in the window before volume can spike."
        )
        min_escalations: int = Field(
            2, ge=1, description="Escalated tickets in the window before escalations can spike."
        )
        min_p1: int = Field(1, ge=1, description="P1 tickets in the window before P1s can spike.")
        p1_priorities: list[str] = Field(
            default_factory=lambda: ["p1", "urgent", "critical"],
            description="Priority values that count as P1.",
        )
        closed_statuses: list[str] = Field(
            default_factory=lambda: ["closed", "resolved", "solved"],
            description="Statuses of tickets that need no answer any more.",
        )
        unanswered_after_h: float = Field(
            48.0, gt=0, description="Hours without a first response before a ticket is ageing."
        )

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        opts = self.options
        now = ctx.clock.now()
        wanted = {a.id: a for a in ctx.accounts}
        if not wanted:
            return
        recent_from = now - timedelta(days=opts.window_days)
        baseline_from = recent_from - timedelta(days=opts.baseline_days)
        late = timedelta(hours=opts.unanswered_after_h)
        p1s = {p.lower() for p in opts.p1_priorities}
        closed = {s.lower() for s in opts.closed_statuses}
        tallies: dict[str, _Tally] = {}
        source = ctx.source(opts.tickets_source)
        async for row in source.rows(until=now if ctx.replay else None):
            account_id = row.get("account_id")
            if account_id not in wanted:
                continue
            opened = _instant(row.get("opened_at"))
            if opened is None or opened > now or opened <= baseline_from:
                continue
            tally = tallies.get(str(account_id))
            if tally is None:
                tally = tallies[str(account_id)] = _Tally()
            recent = opened > recent_from
            tally.volume.add(opened, recent)
            if _flag(row.get("escalated")):
                tally.escalations.add(opened, recent)
            if str(row.get("priority") or "").strip().lower() in p1s:
                tally.p1.add(opened, recent)
            responded = _instant(row.get("first_response_at"))
            status = str(row.get("status") or "").strip().lower()
            answered = responded is not None and responded <= now
            # In a replay a later close is not known yet: only a responded ticket is settled.
            if not answered and opened + late <= now and (status not in closed or ctx.replay):
                tally.unanswered.append((opened, str(row.get("ticket_id") or "?")))
        for account_id, tally in sorted(tallies.items()):
            for signal in self._judge(wanted[account_id], tally, now):
                yield signal

    def _spike(
        self, account: Account, key: str, count: _Count, minimum: int, what: str, now: datetime
    ) -> Signal | None:
        opts = self.options
        per_window = max(count.baseline, 1) * opts.window_days / opts.baseline_days
        if count.recent < minimum or count.recent < opts.min_ratio * per_window:
            return None
        ratio = count.recent / per_window
        strength = min(1.0, 0.3 + 0.7 * (ratio - opts.min_ratio) / (2 * opts.min_ratio))
        started = count.first_recent or now
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=key,
            strength=round(strength, 3),
            observed_at=started,
            summary=f"{count.recent} {what}{'' if count.recent == 1 else 's'} in the last "
            f"{opts.window_days} days, against "
            f"about {per_window:.1f} in a usual {opts.window_days} days.",
            evidence={
                "recent": count.recent,
                "baseline_per_window": round(per_window, 2),
                "baseline_count": count.baseline,
                "ratio": round(ratio, 2),
                "window_days": opts.window_days,
                "baseline_days": opts.baseline_days,
            },
        )

    def _judge(self, account: Account, tally: _Tally, now: datetime) -> list[Signal]:
        opts = self.options
        found = [
            self._spike(account, "volume", tally.volume, opts.min_tickets, "support ticket", now),
            self._spike(
                account,
                "escalations",
                tally.escalations,
                opts.min_escalations,
                "escalated ticket",
                now,
            ),
            self._spike(account, "p1", tally.p1, opts.min_p1, "P1 ticket", now),
        ]
        signals = [s for s in found if s is not None]
        if tally.unanswered:
            tally.unanswered.sort()
            oldest, oldest_id = tally.unanswered[0]
            count = len(tally.unanswered)
            age_h = (now - oldest).total_seconds() / 3600
            strength = min(1.0, 0.3 + 0.1 * (count - 1) + 0.4 * min(1.0, age_h / (24 * 7)))
            noun = "ticket has" if count == 1 else "tickets have"
            signals.append(
                Signal(
                    account_id=account.id,
                    kind=self.name,
                    key="unanswered",
                    strength=round(strength, 3),
                    observed_at=oldest + timedelta(hours=opts.unanswered_after_h),
                    summary=f"{count} {noun} had no first response for over "
                    f"{opts.unanswered_after_h:.0f} hours; the oldest, {oldest_id}, is "
                    f"{age_h / 24:.1f} days old.",
                    evidence={
                        "count": count,
                        "oldest_ticket": oldest_id,
                        "oldest_opened_at": oldest.isoformat(),
                        "oldest_age_h": round(age_h, 1),
                        "tickets": [t for _, t in tally.unanswered[:20]],
                    },
                )
            )
        return signals
