"""Signals support tickets, escalations or P1s improbably many for an account's own rate, and
tickets left unanswered."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from swanwatch import Account, Signal, SourceUse, WatchContext, Watcher, WatcherOptions

from . import _arrays as tickets_arrays  # noqa: TID251 (a sibling helper)
from . import _ticket_columns as tickets  # noqa: TID251 (a sibling helper)
from ._counts import dispersion_index, log10_tail, predictive  # noqa: TID251 (a sibling helper)

_TRUE = frozenset({"true", "t", "yes", "y", "1", "on"})

#: The counts judged, in order: (key, noun).
_KINDS = (("volume", "support ticket"), ("escalations", "escalated ticket"), ("p1", "P1 ticket"))
_VOLUME, _ESCALATIONS, _P1 = 0, 1, 2
#: The counts a ticket adds to, by (escalated, P1).
_COUNTED = {
    (False, False): (_VOLUME,),
    (True, False): (_VOLUME, _ESCALATIONS),
    (False, True): (_VOLUME, _P1),
    (True, True): (_VOLUME, _ESCALATIONS, _P1),
}


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


def _odds(log10_p: float) -> str:
    """A chance as a CSM reads it: "a 1-in-40,000 chance"."""
    if log10_p < -9:
        return "less than a one-in-a-billion chance"
    one_in = 10 ** (-log10_p)
    digits = max(0, math.floor(math.log10(one_in)) - 1)
    return f"a 1-in-{round(one_in, -digits):,.0f} chance"


@dataclass
class _Tally:
    """One account's tickets: the history's start, and each count's recent and baseline."""

    first: datetime
    bins: int
    recent: list[int] = field(default_factory=lambda: [0, 0, 0])
    baseline: list[int] = field(default_factory=lambda: [0, 0, 0])
    #: Tickets of each count per baseline window, newest first (for the dispersion).
    per_window: list[list[int]] = field(default_factory=list)
    first_recent: list[datetime | None] = field(default_factory=lambda: [None, None, None])
    p1_before: int = 0  # P1s in the whole history before the recent window
    unanswered: list[tuple[datetime, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.per_window:
            self.per_window = [[0] * self.bins for _ in _KINDS]

    def count(self, opened: datetime, window: int, escalated: bool, p1: bool) -> None:
        """Count a ticket in the recent window (``window`` -1) or a baseline window (0 is
        the newest)."""
        for kind in _COUNTED[escalated, p1]:
            if window < 0:
                self.recent[kind] += 1
                earliest = self.first_recent[kind]
                if earliest is None or opened < earliest:
                    self.first_recent[kind] = opened
            else:
                self.baseline[kind] += 1
                if window < self.bins:
                    self.per_window[kind][window] += 1


@dataclass(frozen=True)
class _Judged:
    """One count judged: what was expected, and how improbable the recent count is."""

    kind: int
    recent: int
    baseline: int  # events in the baseline: its period, or the whole history (rare P1s)
    baseline_days: float
    expected: float  # in the window, by the predictive (Jeffreys' prior included)
    dispersion: float
    log10_p: float
    rare_p1: bool = False

    def usual(self, window_days: int) -> float:
        """The baseline's plain rate per window, for the summary."""
        return self.baseline * window_days / self.baseline_days


class SupportSpikeWatcher(Watcher):
    """Tickets, escalations or P1s improbably many for the account's own rate; tickets ageing
    unanswered.

    Reads ticket rows (account_id, ticket_id, opened_at, priority, escalated, status,
    first_response_at). Each count over the last ``window_days`` (all tickets, escalated
    ones, P1s) is judged by its chance at the account's own rate over the ``baseline_days``
    before: ``p`` = P(at least this many), under a negative binomial that carries both the
    uncertainty of a rate estimated from a few tickets (Poisson with a Gamma posterior, after
    Jeffreys' prior) and the clumping of tickets (the baseline windows' variance-to-mean
    ratio, ``dispersion``; 1 is Poisson). A count is a signal when ``p`` is below
    ``significance`` divided by the number of looks it is judged in: three counts every day
    for ``horizon_days`` (Bonferroni), and, with ``significance_scope: book``, every account
    judged in the run. So a steady account raises a false count signal in ``horizon_days``
    with a chance of at most ``significance`` (in practice far less: consecutive days share
    most of their window). The strength is -log10 p over ``full_strength_log10_p``.

    A single P1 is rarely improbable in that sense; it is a signal of its own only where P1s
    are rare for the account: when, at its P1 rate over its whole ticket history, a P1 in a
    window had a chance of at most ``rare_p1_chance``. An account whose tickets began less
    than ``window_days + baseline_days`` ago is not judged on counts: it is reported unknown
    ("not enough history"). Keys: ``volume``, ``escalations``, ``p1`` and ``unanswered``.
    docs/statistics.md has the reasoning and the figures.

    A ticket feed that stops is not a quiet book: when the newest ticket is older than
    :attr:`FRESH_WITHIN` (or the source's own ``fresh_within``), every account is unknown,
    and a finding older than ``window_days`` is not kept alive.
    """

    #: How recent the newest ticket of the whole book must be, unless the source says
    #: otherwise (a small book may go a week without a ticket).
    FRESH_WITHIN: ClassVar[timedelta] = timedelta(days=14)

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
            56,
            ge=14,
            description="The baseline period before the recent window, in days; an account "
            "needs this much history before it, besides the window, to be judged.",
        )
        significance: float = Field(
            0.05,
            gt=0,
            lt=1,
            description="The chance, at most, that a steady account raises a false count "
            "signal within horizon_days of daily runs (with significance_scope 'book': that "
            "any account of the run does).",
        )
        horizon_days: int = Field(
            180,
            ge=1,
            description="Days of daily runs the significance covers: each day's three counts "
            "are judged at significance / (3 x horizon_days).",
        )
        significance_scope: Literal["account", "book"] = Field(
            "account",
            description="'account': the significance is per account. 'book': it is shared "
            "by every account judged in the run (divided by their number), a family-wise "
            "guarantee for the whole book that makes each account less sensitive.",
        )
        dispersion: float | None = Field(
            None,
            ge=1,
            description="Variance-to-mean ratio of an account's counts per window (1: "
            "Poisson); unset, it is estimated from each account's baseline windows (at "
            "least 1).",
        )
        full_strength_log10_p: float = Field(
            8.0,
            gt=0,
            description="-log10 of the chance at which a count signal has full strength "
            "(8: one in a hundred million); strength is -log10 p over this, at least 0.3.",
        )
        rare_p1_chance: float = Field(
            0.1,
            ge=0,
            lt=1,
            description="A single P1 is a signal when the chance of a P1 in a window, at the "
            "account's P1 rate over its whole ticket history, is at most this (P1s are rare "
            "there); 0 turns this off.",
        )
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

        @model_validator(mode="after")
        def _baseline_holds_windows(self) -> SupportSpikeWatcher.Options:
            if self.baseline_days < 2 * self.window_days:
                raise ValueError("baseline_days must be at least twice window_days")
            return self

    options: Options

    def uses(self) -> tuple[SourceUse, ...]:
        return (
            SourceUse(
                self.options.tickets_source,
                "opened_at",
                self.FRESH_WITHIN,
                fields=("account_id", "opened_at"),
            ),
        )

    def lookback(self) -> timedelta:
        return timedelta(days=self.options.window_days)

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        opts = self.options
        now = ctx.clock.now()
        wanted = {a.id: a for a in ctx.accounts}
        if not wanted:
            return
        tallies, firsts = await self._read(ctx, now, wanted)
        history_from = now - timedelta(days=opts.window_days + opts.baseline_days)
        judged = []
        quiet = 0  # judged accounts without a recent ticket: nothing to find
        for account_id in sorted(firsts, key=str):
            account = wanted[str(account_id)]
            tally = tallies.get(account_id)
            unanswered = None if tally is None else self._unanswered(account, tally, now)
            if unanswered is not None:
                yield unanswered
            first = firsts[account_id]
            if first > history_from:
                ctx.report_unknown(
                    account,
                    f"not enough history: tickets since {first.date().isoformat()}; "
                    f"{opts.window_days + opts.baseline_days} days needed",
                )
            elif tally is not None:
                judged.append((account, tally))
            else:
                quiet += 1
        looks = len(_KINDS) * opts.horizon_days
        if opts.significance_scope == "book":
            looks *= max(1, len(judged) + quiet)
        threshold = math.log10(opts.significance / looks)
        for account, tally in judged:
            for found in self._judge(tally, now, threshold):
                yield self._signal(account, tally, found, threshold, now)

    async def _read(
        self, ctx: WatchContext, now: datetime, wanted: dict[str, Account]
    ) -> tuple[dict[object, _Tally], dict[object, datetime]]:
        """Each wanted account's tally (those with a ticket), and each one's first ticket;
        as columns where the source reads so (then only the accounts with a recent or an
        unanswered ticket get a tally: the others' counts find nothing)."""
        source = ctx.source(self.options.tickets_source)
        tables = source.columns(tickets.FIELDS, until=now if ctx.replay else None)
        if tables is not None:
            import pyarrow as pa

            try:
                table = await tickets_arrays.gathered(tables, tickets.FIELDS)
            except (pa.ArrowTypeError, pa.ArrowInvalid):
                pass  # files whose columns do not make one table: row by row
            else:
                params = self._params(ctx, now, wanted)
                found = await ctx.run_blocking(tickets.tally, table, params)
                del table  # the columns are read: let them go before the tallies are made
                return self._tallies(found)
        tallies = await self._read_rows(ctx, now, wanted)
        return tallies, {account_id: t.first for account_id, t in tallies.items()}

    def _params(self, ctx: WatchContext, now: datetime, wanted: dict[str, Account]) -> Any:
        opts = self.options
        recent_from = now - timedelta(days=opts.window_days)
        p1s = {p.lower() for p in opts.p1_priorities}
        closed = {s.lower() for s in opts.closed_statuses}
        return tickets.Params(
            wanted=wanted,
            now=now,
            recent_from=recent_from,
            baseline_from=recent_from - timedelta(days=opts.baseline_days),
            answer_by=now - timedelta(hours=opts.unanswered_after_h),
            window_days=opts.window_days,
            bins=opts.baseline_days // opts.window_days,
            replay=ctx.replay,
            instant=_instant,
            is_p1=lambda v: str(v or "").strip().lower() in p1s,
            is_escalated=lambda v: v is True or _flag(v),
            is_closed=lambda v: str(v or "").strip().lower() in closed,
        )

    def _tallies(self, found: Any) -> tuple[dict[object, _Tally], dict[object, datetime]]:
        """The row path's tallies of the accounts with a recent or an unanswered ticket."""
        bins = self.options.baseline_days // self.options.window_days
        instant = tickets_arrays.instant
        firsts = dict(zip(found.ids, map(instant, found.first.tolist()), strict=True))
        out: dict[object, _Tally] = {}
        busy = set((found.recent.sum(axis=1) > 0).nonzero()[0].tolist()) | set(found.unanswered)
        chosen = sorted(busy)
        # Each array's rows of the chosen accounts as lists, at once.
        recent, baseline, per_window, first_recent, p1_before = (
            a[chosen].tolist()
            for a in (
                found.recent,
                found.baseline,
                found.per_window,
                found.first_recent,
                found.p1_before,
            )
        )
        for n, i in enumerate(chosen):
            account_id = found.ids[i]
            out[account_id] = _Tally(
                first=firsts[account_id],
                bins=bins,
                recent=recent[n],
                baseline=baseline[n],
                per_window=per_window[n],
                first_recent=[instant(t) if t >= 0 else None for t in first_recent[n]],
                p1_before=p1_before[n],
                unanswered=[(instant(t), ticket) for t, ticket in found.unanswered.get(i, [])],
            )
        return out, firsts

    async def _read_rows(
        self, ctx: WatchContext, now: datetime, wanted: dict[str, Account]
    ) -> dict[object, _Tally]:
        """One pass over the ticket rows: each wanted account's tally, by account id."""
        opts = self.options
        window_days = opts.window_days
        recent_from = now - timedelta(days=window_days)
        baseline_from = recent_from - timedelta(days=opts.baseline_days)
        bins = opts.baseline_days // opts.window_days
        answer_by = now - timedelta(hours=opts.unanswered_after_h)  # opened before: late
        p1s = {p.lower() for p in opts.p1_priorities}
        closed = {s.lower() for s in opts.closed_statuses}
        is_p1: dict[object, bool] = {}  # a few distinct priorities, many rows
        tallies: dict[object, _Tally] = {}
        source = ctx.source(opts.tickets_source)
        # The hot loop (one pass over every ticket, every run): kept lean on purpose.
        async for row in source.rows(until=now if ctx.replay else None):
            account_id = row.get("account_id")
            tally = tallies.get(account_id)
            if tally is None and account_id not in wanted:
                continue
            raw = row.get("opened_at")
            opened = raw if type(raw) is datetime and raw.tzinfo is UTC else _instant(raw)
            if opened is None or opened > now:
                continue
            if tally is None:
                tally = tallies[account_id] = _Tally(opened, bins)
            elif opened < tally.first:
                tally.first = opened
            priority = row.get("priority")
            p1 = is_p1.get(priority)
            if p1 is None:
                p1 = is_p1[priority] = str(priority or "").strip().lower() in p1s
            slot = -1
            if opened <= recent_from:
                tally.p1_before += p1
                if opened <= baseline_from:
                    continue
                slot = (recent_from - opened).days // window_days
            escalated = row.get("escalated")
            escalated = escalated is True or _flag(escalated)
            if slot >= 0 and not (escalated or p1):  # the common case, cheaply
                tally.baseline[_VOLUME] += 1
                if slot < bins:
                    tally.per_window[_VOLUME][slot] += 1
            else:
                tally.count(opened, slot, escalated, p1)
            if opened > answer_by:
                continue
            raw = row.get("first_response_at")
            answered = raw if type(raw) is datetime and raw.tzinfo is UTC else _instant(raw)
            if answered is not None and answered <= now:
                continue
            # In a replay a later close is not known yet: only a responded ticket is settled.
            if ctx.replay or str(row.get("status") or "").strip().lower() not in closed:
                tally.unanswered.append((opened, str(row.get("ticket_id") or "?")))
        return tallies

    def _judge(self, tally: _Tally, now: datetime, threshold: float) -> list[_Judged]:
        """The counts improbable below ``threshold`` (log10 p), and a P1 where P1s are rare."""
        opts = self.options
        w, b = opts.window_days, opts.baseline_days
        found = []
        for kind in range(len(_KINDS)):
            recent = tally.recent[kind]
            if not recent:
                continue
            baseline = tally.baseline[kind]
            dispersion = opts.dispersion or dispersion_index(tally.per_window[kind])
            expected, ratio = predictive(baseline, b, w, dispersion)
            log10_p = log10_tail(recent, expected, ratio) if recent > expected else 0.0
            if log10_p <= threshold:
                found.append(_Judged(kind, recent, baseline, b, expected, dispersion, log10_p))
            elif kind == _P1 and opts.rare_p1_chance > 0:
                # The P1 rate over the whole history: P1s are rare events, a baseline
                # period may hold none on an account that has them every quarter.
                span = max(b, (now - timedelta(days=w) - tally.first).total_seconds() / 86400)
                mean, ratio = predictive(tally.p1_before, span, w)
                if 10 ** log10_tail(1, mean, ratio) <= opts.rare_p1_chance:
                    rare = log10_tail(recent, mean, ratio)
                    judged = _Judged(kind, recent, tally.p1_before, span, mean, 1.0, rare, True)
                    found.append(judged)
        return found

    def _signal(
        self, account: Account, tally: _Tally, found: _Judged, threshold: float, now: datetime
    ) -> Signal:
        opts = self.options
        key, noun = _KINDS[found.kind]
        w = opts.window_days
        what = f"{found.recent} {noun}{'' if found.recent == 1 else 's'} in the last {w} days"
        if found.rare_p1:
            had = f"{found.baseline} P1{'' if found.baseline == 1 else 's'}"
            had = "no P1" if not found.baseline else f"only {had}"
            days = int(found.baseline_days)
            summary = f"{what}, on an account with {had} in the {days} days before."
        else:
            summary = (
                f"{what}, against about {found.usual(w):.1f} in a usual {w} days: "
                f"{_odds(found.log10_p)} at this account's own rate."
            )
        strength = min(1.0, max(0.3, -found.log10_p / opts.full_strength_log10_p))
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=key,
            strength=round(strength, 3),
            observed_at=tally.first_recent[found.kind] or now,
            summary=summary,
            evidence={
                "recent": found.recent,
                "expected": round(found.expected, 2),
                "usual_per_window": round(found.usual(w), 2),
                "baseline_count": found.baseline,
                "window_days": w,
                "baseline_days": round(found.baseline_days, 1),
                "dispersion": round(found.dispersion, 2),
                "log10_p": round(found.log10_p, 2),
                "threshold_log10_p": round(threshold, 2),
                "rule": "rare_p1" if found.rare_p1 else "improbable",
            },
        )

    def _unanswered(self, account: Account, tally: _Tally, now: datetime) -> Signal | None:
        if not tally.unanswered:
            return None
        opts = self.options
        tally.unanswered.sort()
        oldest, oldest_id = tally.unanswered[0]
        count = len(tally.unanswered)
        age_h = (now - oldest).total_seconds() / 3600
        strength = min(1.0, 0.3 + 0.1 * (count - 1) + 0.4 * min(1.0, age_h / (24 * 7)))
        noun = "ticket has" if count == 1 else "tickets have"
        return Signal(
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
