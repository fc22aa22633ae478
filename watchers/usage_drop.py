"""Signals a sustained drop in an account's usage against its own seasonal baseline."""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from statistics import median
from typing import Any, ClassVar

from pydantic import Field, model_validator

from swanwatch import (
    Account,
    Signal,
    SourceError,
    SourceUse,
    WatchContext,
    Watcher,
    WatcherOptions,
)

from . import _usage_columns as columns  # noqa: TID251 (a sibling private helper)

#: Scales the median absolute deviation to estimate a standard deviation (normal data).
_MAD_SCALE = columns.MAD_SCALE

_LOW, _NORMAL, _UNJUDGED = 1, 0, -1

#: A day this far below its baseline counts toward a gradual slide into a drop.
_SLIDE_SHORTFALL = 0.10
#: Why a day is left out of baselines: an ignored date, or a low day.
_IGNORED, _LOW_DAY = 1, 2


_ordinal = columns.ordinal


def _unreadable(source: str, row: Mapping[str, object], exc: Exception) -> SourceError:
    return SourceError(
        f"source {source!r} gave a row the usage watcher cannot read ({exc}): {dict(row)!r}; "
        "declare `types: {date: date, value: float}`"
    )


@dataclass
class _Series:
    """One account's daily totals of one metric: ``values[i]`` is day ``first + i``."""

    first: int
    values: array[float]

    def add(self, day: int, value: float) -> None:
        offset = day - self.first
        if offset < 0:
            self.values = array("d", bytes(8 * -offset)) + self.values
            self.first, offset = day, 0
        elif offset >= len(self.values):
            self.values.extend(array("d", bytes(8 * (offset + 1 - len(self.values)))))
        self.values[offset] += value


@dataclass
class _Usage:
    """What one pass over the usage rows found: daily series, level metrics, the last day."""

    series: dict[tuple[object, object], _Series] = field(default_factory=dict)
    levels: dict[tuple[object, object], dict[int, float]] = field(default_factory=dict)
    last_day: int = 0
    #: The columnar path: every account with usage, and the drops it judged (the series
    #: here are only those with a drop, or too short to judge).
    cleared: set[object] = field(default_factory=set)
    drops: dict[tuple[str, str], _Drop] = field(default_factory=dict)


@dataclass(frozen=True)
class _Drop:
    start: int  # index of the run's first low day
    low_days: int
    baseline: float  # the seasonal baseline summed over the run's judged days
    current: float  # actual usage over the same days
    weeks: int  # same-weekday values the baseline rests on (weeks of history)
    flatline: bool
    slide_start: int = -1  # index of the day a gradual slide into the drop began, if any


@dataclass(frozen=True)
class _Step:
    """A level metric (seats, licences) that stepped down and stayed down."""

    start: int  # index of the first reduced day
    before: float  # the level's median over the days before the step
    after: float  # the level on the last day
    lowest: float  # the lowest level since the step


class UsageDropWatcher(Watcher):
    """A sustained fall in usage per account and metric, against the same weekday's baseline.

    Each day is compared with the median of the same weekday over the past
    ``baseline_weeks_min``..``baseline_weeks_max`` weeks, a robust baseline: one odd week
    (a holiday, an outage) moves a median of four to eight values little. A day is *low* when
    it is both ``mad_k`` scaled MADs below that median (statistically unusual for this
    account: 1.4826 x MAD estimates the standard deviation) and at least ``min_day_drop_pct``
    below it (materially down: on a very steady series three MADs can be a few percent).
    Days whose baseline is under ``min_baseline_per_day`` (small accounts, quiet weekends) and
    ``ignore_dates`` (public holidays) are not judged. Low days are kept out of later
    baselines, so a long drop does not become the new normal. A missing day counts as zero
    usage, so an account that stops sending rows flatlines.

    One low day is never a signal (a holiday, a glitch). A run of consecutive low days is a
    drop once it has lasted ``min_low_days`` days and its days are on average at least
    ``min_drop_pct`` below their baselines, or, sooner, once ``deep_drop_min_days`` days are
    on average ``deep_drop_pct`` below (two days at 45%: an outage is not reported a day
    late). The signal holds while the run goes on: once begun, a run continues through days
    still ``min_day_drop_pct`` down, unusual or not (hysteresis: a slide widens the MADs of
    the weekdays it reaches, which must not end the drop). When a drop was preceded by a
    gradual slide, the evidence says when the slide began. docs/statistics.md has the
    reasoning and the NAB figures.

    ``level_metrics`` (seats, licences) are levels, not daily activity: a day with no row
    keeps the previous level, and a reduction of at least ``level_drop_pct`` (and
    ``level_min_reduction`` units) against the level's median over the previous
    ``level_baseline_days`` is a signal of its own once it has held ``level_min_days`` days.

    Usage data must be fresh: when the newest row of the usage source is older than
    :attr:`FRESH_WITHIN` (or the source's own ``fresh_within``), nothing is judged: every
    account is unknown ("usage data ends ..."), and a drop older than ``lookback_days`` is
    not kept alive.
    """

    #: How recent the newest usage row must be, unless the source says otherwise: a daily
    #: export lands a day late, and a weekend may hold it up.
    FRESH_WITHIN: ClassVar[timedelta] = timedelta(days=3)

    name: ClassVar[str] = "usage_drop"
    historical: ClassVar[bool] = True

    class Options(WatcherOptions):
        usage_source: str = Field(
            "usage",
            description="Source of usage rows: account_id, date, metric (optional), value.",
        )
        metrics: list[str] = Field(
            default_factory=list, description="Metrics to watch; empty watches all of them."
        )
        default_metric: str = Field(
            "usage", min_length=1, description="Metric name for rows with no metric."
        )
        baseline_weeks_min: int = Field(
            4, ge=2, description="Same-weekday values needed before a day is judged."
        )
        baseline_weeks_max: int = Field(
            8, ge=2, description="Same-weekday values (weeks back) the baseline uses at most."
        )
        mad_k: float = Field(
            3.0, ge=0, description="How many scaled MADs below the baseline median a low day is."
        )
        min_day_drop_pct: float = Field(
            10.0,
            gt=0,
            le=100,
            description="How far below its baseline median a day must be to count as low, %.",
        )
        min_drop_pct: float = Field(
            20.0,
            gt=0,
            le=100,
            description="How far below their baselines a run of min_low_days low days must be "
            "on average before it is signalled, %.",
        )
        min_low_days: int = Field(
            3, ge=1, description="Consecutive judged low days before the drop is signalled."
        )
        min_baseline_per_day: float = Field(
            10.0,
            ge=0,
            description="A day whose baseline median is below this volume is not judged.",
        )
        lookback_days: int = Field(
            42,
            ge=7,
            description="How far back a drop may have begun; older days feed baselines only.",
        )
        full_strength_drop_pct: float = Field(
            60.0, gt=0, le=100, description="Drop, in %, at which depth gives full strength."
        )
        full_strength_days: int = Field(
            14, ge=1, description="Days lasted at which duration gives full strength."
        )
        ignore_dates: list[date] = Field(
            default_factory=list,
            description="Days not judged and left out of baselines (public holidays).",
        )
        deep_drop_min_days: int = Field(
            2,
            ge=1,
            description="Fewer low days than min_low_days, down to this many, are signalled when "
            "they are on average deep_drop_pct below their baselines.",
        )
        deep_drop_pct: float = Field(
            45.0,
            gt=0,
            le=100,
            description="How far below their baselines deep_drop_min_days low days must be on "
            "average to be signalled before min_low_days, %.",
        )
        level_metrics: list[str] = Field(
            default_factory=lambda: ["seats", "licenses", "licences"],
            description="Metrics that are levels (seat or licence counts): carried forward "
            "over days without a row, judged on reductions rather than daily volume.",
        )
        level_drop_pct: float = Field(
            10.0,
            gt=0,
            le=100,
            description="A level this much below its recent median, %, is a reduction.",
        )
        level_min_reduction: float = Field(
            2.0, ge=0, description="Units (seats) a reduction must remove at least."
        )
        level_baseline_days: int = Field(
            28, ge=7, description="Days before a reduction whose median level is the baseline."
        )
        level_min_days: int = Field(
            2, ge=1, description="Days a reduced level must hold before it is signalled."
        )

        @model_validator(mode="after")
        def _weeks_in_order(self) -> UsageDropWatcher.Options:
            if self.baseline_weeks_min > self.baseline_weeks_max:
                raise ValueError("baseline_weeks_min must not exceed baseline_weeks_max")
            return self

    options: Options

    def uses(self) -> tuple[SourceUse, ...]:
        return (
            SourceUse(
                self.options.usage_source,
                "date",
                self.FRESH_WITHIN,
                fields=("account_id", "date", "value"),
            ),
        )

    #: In a replay: the daily sums carried from the days before (see ``replayer``).
    carry: columns.Carry | None = None

    def replayer(self) -> columns.Replay:
        """Each simulated day adds the rows dated since the last to the sums kept."""
        return columns.Replay(self)

    def lookback(self) -> timedelta:
        return timedelta(days=self.options.lookback_days)

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        opts = self.options
        wanted = {a.id: a for a in ctx.accounts}
        if not wanted:
            return
        ignored = {d.toordinal() for d in opts.ignore_dates}
        usage = await self._read(ctx, wanted, ignored)
        series, levels, last_day = usage.series, usage.levels, usage.last_day
        seen = {account_id for account_id, _ in series} | {account_id for account_id, _ in levels}
        seen |= usage.cleared
        for account in wanted.values():
            if account.id not in seen:
                ctx.report_unknown(account, f"no usage rows in source {opts.usage_source!r}")
        judged: list[tuple[str, str, _Series | dict[int, float]]] = [
            (str(a), str(m), one) for (a, m), one in series.items()
        ] + [(str(a), str(m), points) for (a, m), points in levels.items()]
        for account_id, metric, one in sorted(judged, key=lambda item: (item[0], item[1])):
            if isinstance(one, dict):
                step = self._judge_level(one, last_day)
                if step is not None:
                    yield self._level_signal(wanted[account_id], metric, min(one), step, last_day)
                continue
            found = usage.drops.get((account_id, metric))
            drop = found if found is not None else self._judge(one, last_day, ignored)
            if drop is None:
                continue
            if drop.low_days < 0:
                ctx.report_unknown(
                    wanted[account_id],
                    f"{metric}: only {len(one.values)} days of usage; "
                    f"{7 * opts.baseline_weeks_min + 1} needed to judge",
                    key=metric,
                )
                continue
            yield self._signal(wanted[account_id], metric, one, drop, last_day)

    async def _read(
        self, ctx: WatchContext, wanted: dict[str, Account], ignored: set[int]
    ) -> _Usage:
        """One pass over the usage rows: daily totals per account and metric (as columns
        when the source reads so, the accounts clear of any low day screened out)."""
        opts = self.options
        now = ctx.clock.now()
        source = ctx.source(opts.usage_source)
        tables = source.columns(columns.FIELDS, until=now if ctx.replay else None)
        if tables is not None:
            return await self._read_columns(ctx, tables, wanted, ignored)
        return await self._read_rows(ctx, wanted)

    async def _read_columns(
        self,
        ctx: WatchContext,
        tables: AsyncIterator[Any],
        wanted: dict[str, Account],
        ignored: set[int],
    ) -> _Usage:
        """The columnar path; its array work runs in the worker pool (numpy and Arrow let
        go of the GIL there, so other watchers go on meanwhile)."""
        today = ctx.clock.now().date().toordinal()
        opts = self.options
        keep = columns.Keep(
            wanted,
            set(opts.metrics),
            opts.default_metric,
            frozenset(opts.level_metrics),
            today,
            _ordinal,
        )
        reader = self.carry.read if self.carry is not None else columns.read
        try:
            read = await reader(tables, keep, ctx.run_blocking)
        except columns.Unreadable as exc:
            raise _unreadable(opts.usage_source, exc.row, exc.cause) from exc.cause
        sums = await ctx.run_blocking(columns.matrix, read)
        usage = _Usage(levels=read.levels, last_day=sums.last_day)
        usage.cleared = {account for account, _ in sums.keys}
        for first in sorted(set(sums.firsts.tolist())):
            rows = [s for s, f in enumerate(sums.firsts.tolist()) if f == first]
            await ctx.run_blocking(self._judge_rows, usage, sums, rows, first, ignored)
        return usage

    def _judge_rows(
        self, usage: _Usage, sums: Any, rows: list[int], first: int, ignored: set[int]
    ) -> None:
        """The series ``rows`` of ``sums`` (all from day ``first``), judged at once; those
        with a drop (or too short to judge) go into ``usage.series`` and ``usage.drops``."""
        opts = self.options
        end = usage.last_day - first

        def series(s: int) -> _Series:
            values = array("d")
            values.frombytes(sums.days(s, first).tobytes())
            return _Series(first, values)

        if end < 7 * opts.baseline_weeks_min:
            for s in rows:
                usage.series[sums.keys[s]] = series(s)
                usage.drops[columns.named(sums.keys[s])] = _Drop(0, -1, 0.0, 0.0, 0, False)
            return
        screen = columns.Screen.of(opts)
        judged = sums.days(rows, first)
        runs = columns.judge_all(judged, screen, {day - first for day in ignored})
        floor = max(7 * opts.baseline_weeks_min, end - 2 * 7 * opts.baseline_weeks_max)
        for row, run in runs.items():
            if not self._is_drop(run.low_days, run.shortfall):
                continue
            s = rows[row]
            one = series(s)
            keep = array("b")
            keep.frombytes(run.keep.tobytes())
            slide = self._slide_start(one.values, keep, run.start, floor)
            usage.series[sums.keys[s]] = one
            usage.drops[columns.named(sums.keys[s])] = _Drop(
                run.start, run.low_days, run.baseline, run.current, run.weeks, run.flatline, slide
            )

    async def _read_rows(self, ctx: WatchContext, wanted: dict[str, Account]) -> _Usage:
        """The row path: one pass over the usage rows, a dict each."""
        opts = self.options
        now = ctx.clock.now()
        today = now.date().toordinal()
        metrics = set(opts.metrics)
        usage = _Usage()
        series, levels = usage.series, usage.levels
        days: dict[object, int] = {}  # date value -> ordinal; few distinct dates, many rows
        last_day = 0
        default_metric = opts.default_metric
        level_metrics = frozenset(opts.level_metrics)
        source = ctx.source(opts.usage_source)
        # The hot loop (one pass over every usage row): kept lean on purpose.
        async for row in source.rows(until=now if ctx.replay else None):
            account_id = row.get("account_id")
            if account_id not in wanted:
                continue
            metric = row.get("metric") or default_metric
            if metrics and metric not in metrics:
                continue
            stamp = row.get("date")
            raw = row.get("value")
            try:
                day = days.get(stamp)
                if day is None:
                    day = days[stamp] = _ordinal(stamp)
                value = (
                    raw
                    if type(raw) is float
                    else (float(raw) if raw is not None and raw != "" else 0.0)  # type: ignore[arg-type]
                )
            except (TypeError, ValueError) as exc:
                raise _unreadable(opts.usage_source, row, exc) from exc
            if day > today:
                continue  # the future is not usage yet
            if day > last_day:
                last_day = day
            key = (account_id, metric)
            if metric in level_metrics:
                points = levels.get(key)
                if points is None:
                    points = levels[key] = {}
                points[day] = points.get(day, 0.0) + value
                continue
            found = series.get(key)
            if found is None:
                series[key] = found = _Series(day, array("d", [0.0]))
            offset = day - found.first
            held = found.values
            if 0 <= offset < len(held):
                held[offset] += value
            elif offset == len(held):
                held.append(value)  # the next day: the usual order of a daily export
            else:
                found.add(day, value)
        usage.last_day = last_day
        return usage

    def _baseline(self, values: array[float], keep: array[int], i: int) -> list[float]:
        """The same-weekday values before day ``i`` that feed its baseline (newest last)."""
        opts = self.options
        span = 7 * opts.baseline_weeks_max
        lo = max(i - 2 * span, i % 7)
        history = [v for j, v in zip(range(lo, i, 7), values[lo:i:7], strict=True) if not keep[j]]
        return history[-opts.baseline_weeks_max :]

    def _judge(self, one: _Series, last_day: int, ignored: set[int]) -> _Drop | None:
        """The drop running on ``last_day``, or None; ``low_days=-1`` when too short to judge."""
        opts = self.options
        values = one.values
        end = last_day - one.first  # the series runs to the last day of the whole source
        if end >= len(values):
            values.extend(array("d", bytes(8 * (end + 1 - len(values)))))
        first_judged = 7 * opts.baseline_weeks_min
        if end < first_judged:
            return _Drop(0, -1, 0.0, 0.0, 0, False)
        begin = max(first_judged, end - opts.lookback_days + 1)
        keep = array("b", bytes(len(values)))  # non-zero: left out of baselines
        for day in ignored:
            if 0 <= day - one.first <= end:
                keep[day - one.first] = _IGNORED
        ratio = 1 - opts.min_day_drop_pct / 100
        floor = opts.min_baseline_per_day
        span = 7 * opts.baseline_weeks_max
        run_start, run_low, run_base, run_cur, run_weeks, run_zero = -1, 0, 0.0, 0.0, 0, True
        run_short = 0.0  # summed shortfall of the run's low days, in baseline days
        for i in range(begin, end + 1):
            if keep[i]:
                continue
            value = values[i]
            lo = i - span
            if lo < 0:
                lo = i % 7
            window = values[lo:i:7]
            # The common case, cheaply: judged (every recent same weekday is big enough) and
            # not low (not even against the highest of them, so not against their median).
            if value > ratio * max(window) and min(window) >= floor:
                state, med = _NORMAL, 0.0
            else:
                held = run_start >= 0
                state, med = self._day(values, keep, i, window, any(keep[lo:i:7]), held)
            if state == _UNJUDGED:
                continue  # neither extends nor breaks a run
            if state == _NORMAL:
                run_start, run_low, run_base, run_cur, run_zero = -1, 0, 0.0, 0.0, True
                run_short = 0.0
                continue
            keep[i] = _LOW_DAY
            if run_start < 0:
                run_start, run_weeks = i, len(self._baseline(values, keep, i))
            run_low += 1
            run_base += med
            run_cur += value
            run_short += (med - value) / med
            run_zero = run_zero and value == 0
        if run_start < 0 or not self._is_drop(run_low, run_short):
            return None
        slide = self._slide_start(values, keep, run_start, max(first_judged, end - 2 * span))
        return _Drop(run_start, run_low, run_base, run_cur, run_weeks, run_zero, slide)

    def _day(
        self,
        values: array[float],
        keep: array[int],
        i: int,
        window: array[float],
        kept: bool,
        held: bool,
    ) -> tuple[int, float]:
        """Whether day ``i`` is low, normal or unjudged, and its baseline median.

        ``window`` holds the recent same weekdays; ``kept`` says whether any of them is left
        out of baselines (a low day, a holiday). ``held``: a run of low days is going on,
        and a day that is still ``min_day_drop_pct`` down continues it (hysteresis: a slide
        into a drop widens the MADs of the weekdays it has reached, not the drop's end)."""
        opts = self.options
        ratio = 1 - opts.min_day_drop_pct / 100
        value = values[i]
        if not kept and len(window) >= opts.baseline_weeks_min:
            # The window is the baseline, and its median alone settles most days: a low day
            # is also min_day_drop_pct below it.
            ordered = sorted(window)
            half = len(ordered) // 2
            med = ordered[half] if len(ordered) % 2 else (ordered[half - 1] + ordered[half]) / 2
            if med < opts.min_baseline_per_day:
                return _UNJUDGED, med
            if value > ratio * med:
                return _NORMAL, med
        # Low days are kept out of baselines, so look further back for enough normal ones.
        history = self._baseline(values, keep, i)
        if len(history) < opts.baseline_weeks_min:
            return _UNJUDGED, 0.0
        med = median(history)
        if med < opts.min_baseline_per_day:
            return _UNJUDGED, med
        if value > ratio * med:
            return _NORMAL, med
        if held:
            return _LOW, med
        mad = _MAD_SCALE * median([abs(v - med) for v in history])
        return (_LOW if value < med - opts.mad_k * mad else _NORMAL), med

    def _is_drop(self, low_days: int, shortfall: float) -> bool:
        """Whether a run of ``low_days`` low days, ``shortfall`` baseline days short in all,
        is a drop: long enough at ``min_drop_pct`` on average, or deep enough sooner."""
        opts = self.options
        average = shortfall / low_days if low_days else 0.0
        if low_days >= opts.min_low_days and average >= opts.min_drop_pct / 100 - 1e-9:
            return True
        return low_days >= opts.deep_drop_min_days and average >= opts.deep_drop_pct / 100 - 1e-9

    def _slide_start(self, values: array[float], keep: array[int], start: int, floor: int) -> int:
        """Where a gradual slide into the drop at ``start`` began, or -1 if it did not slide.

        Walks back from the drop over judged days below their own baseline; two days in a row
        back at the baseline end the walk. Only evidence: it never raises or holds a signal.
        """
        opts = self.options
        began, normal, ratios = -1, 0, []
        for j in range(start - 1, floor - 1, -1):
            if keep[j] == _IGNORED:
                continue
            history = self._baseline(values, keep, j)
            if len(history) < opts.baseline_weeks_min:
                break
            med = median(history)
            if med < opts.min_baseline_per_day:
                break
            ratio = values[j] / med
            if keep[j] == _LOW_DAY or ratio < 1 - _SLIDE_SHORTFALL:  # a low day: an earlier run
                began, normal = j, 0
                ratios.append(ratio)
            elif ratio < 1:
                normal = 0  # under the baseline, if only just: the slide may go on
            else:
                normal += 1
                if normal >= 2:
                    break
        # A slide is several days of clear shortfall, not one stray weak day.
        if began < 0 or len(ratios) < 3 or start - began < 5:
            return -1
        return began

    def _judge_level(self, points: dict[int, float], last_day: int) -> _Step | None:
        """The reduction holding on ``last_day`` of a level metric (seats), or None."""
        opts = self.options
        first = min(points)
        end = last_day - first
        if end < 7:
            return None
        level = array("d", bytes(8 * (end + 1)))
        current = 0.0
        for i in range(end + 1):
            current = points.get(first + i, current)  # no row: the level holds
            level[i] = current
        begin = max(7, end - opts.lookback_days + 1)
        low = array("b", bytes(end + 1))
        ratio = 1 - opts.level_drop_pct / 100
        window = opts.level_baseline_days
        run_start, run_before, run_lowest = -1, 0.0, 0.0
        for i in range(begin, end + 1):
            lo = max(0, i - 2 * window)
            history = [level[j] for j in range(lo, i) if not low[j]][-window:]
            if len(history) < 7:
                continue
            before = median(history)
            value = level[i]
            cut = before - value
            if before > 0 and value <= ratio * before and cut >= opts.level_min_reduction:
                low[i] = 1
                if run_start < 0:
                    run_start, run_before, run_lowest = i, before, value
                run_lowest = min(run_lowest, value)
            else:
                run_start = -1
        if run_start < 0 or end - run_start + 1 < opts.level_min_days:
            return None
        return _Step(run_start, run_before, level[end], run_lowest)

    def _level_signal(
        self, account: Account, metric: str, first: int, step: _Step, last_day: int
    ) -> Signal:
        opts = self.options
        started = date.fromordinal(first + step.start)
        lasted = last_day - (first + step.start) + 1
        pct = 100.0 * (step.after - step.before) / step.before
        depth = min(1.0, -pct / (3 * opts.level_drop_pct))  # full strength at a 30% cut
        strength = 0.4 + 0.6 * depth
        what = metric.replace("_", " ")
        summary = (
            f"{what.capitalize()} fell from {step.before:,.0f} to {step.after:,.0f} "
            f"({pct:.0f}%) on {started.isoformat()}, and have stayed down for {lasted} "
            f"day{'s' if lasted != 1 else ''}."
        )
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=metric,
            strength=round(max(0.0, min(1.0, strength)), 3),
            observed_at=datetime(started.year, started.month, started.day, tzinfo=UTC),
            summary=summary,
            evidence={
                "metric": metric,
                "level": True,
                "baseline": round(step.before, 2),
                "current": round(step.after, 2),
                "lowest": round(step.lowest, 2),
                "reduction": round(step.before - step.after, 2),
                "pct_change": round(pct, 1),
                "days_lasted": lasted,
                "started": started.isoformat(),
                "last_day": date.fromordinal(last_day).isoformat(),
            },
        )

    def _signal(
        self, account: Account, metric: str, one: _Series, drop: _Drop, last_day: int
    ) -> Signal:
        opts = self.options
        started = date.fromordinal(one.first + drop.start)
        lasted = last_day - (one.first + drop.start) + 1
        days = drop.low_days
        baseline = drop.baseline / days
        current = drop.current / days
        pct = 100.0 * (drop.current - drop.baseline) / drop.baseline
        depth = min(1.0, -pct / opts.full_strength_drop_pct)
        strength = depth * (0.5 + 0.5 * min(1.0, lasted / opts.full_strength_days))
        what = "Usage" if metric == opts.default_metric else f"Usage of {metric}"
        day_word = "day" if lasted == 1 else "days"
        if drop.flatline:
            summary = (
                f"{what} has been zero for {lasted} {day_word}, against its "
                f"{drop.weeks}-week baseline of about {baseline:,.0f} a day."
            )
        else:
            summary = (
                f"{what} fell {-pct:.0f}% below its {drop.weeks}-week baseline "
                f"for {lasted} {day_word}."
            )
        evidence: dict[str, object] = {
            "metric": metric,
            "baseline_per_day": round(baseline, 2),
            "current_per_day": round(current, 2),
            "pct_change": round(pct, 1),
            "days_lasted": lasted,
            "low_days": days,
            "started": started.isoformat(),
            "last_day": date.fromordinal(last_day).isoformat(),
            "baseline_weeks": drop.weeks,
            "flatline": drop.flatline,
        }
        if drop.slide_start >= 0:
            slid = date.fromordinal(one.first + drop.slide_start)
            evidence["slide_began"] = slid.isoformat()
            evidence["slide_days"] = drop.start - drop.slide_start
            summary = summary[:-1] + f", after a slide that began {slid:%b} {slid.day}."
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=metric,
            strength=round(max(0.0, min(1.0, strength)), 3),
            observed_at=datetime(started.year, started.month, started.day, tzinfo=UTC),
            summary=summary,
            evidence=evidence,
        )
