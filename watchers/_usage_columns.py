"""The usage watcher's columnar path: usage rows read as Arrow tables, summed per account,
metric and day into one numpy matrix, and judged all series at once, day by day.

Equal to the row path by construction: the same rows are kept (wanted accounts and
metrics, no future days), each value is converted by the same expressions (distinct value
by distinct value), daily sums are added in row order (``numpy.add.at`` is unbuffered),
and :func:`judge_all` is the row path's ``_judge`` with every step done for all series in
one array operation: the same tests in the same order, medians as ``statistics.median``
takes them, runs summed in the same order. The watcher's tests run every case both ways.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol

from swanwatch import Replayer, Signal, WatchContext

#: Scales the median absolute deviation to estimate a standard deviation (as the watcher).
MAD_SCALE = 1.4826

#: The usage fields read.
FIELDS = ("account_id", "date", "metric", "value")


@dataclass(frozen=True)
class Screen:
    """What the screen needs of the watcher's options."""

    weeks_min: int
    weeks_max: int
    mad_k: float
    lookback_days: int
    min_day_drop_pct: float
    min_baseline_per_day: float

    @classmethod
    def of(cls, options: Any) -> Screen:
        """The screen of the watcher's options."""
        return cls(
            options.baseline_weeks_min,
            options.baseline_weeks_max,
            options.mad_k,
            options.lookback_days,
            options.min_day_drop_pct,
            options.min_baseline_per_day,
        )


#: Metric codes fit under this in a series key (account code x this + metric code).
_METRICS = 1 << 20


@dataclass
class Grid:
    """Daily sums as the rows come: a row per series (account and metric, in the order
    first seen), a column per day from ``base``; grown as needed, added in row order."""

    index: dict[int, int] = field(default_factory=dict)
    sums: Any = None
    firsts: Any = None
    base: int = 0
    #: The series expected (one per wanted account): the first matrix holds as many, so
    #: a book of one metric an account never grows it (a growth copies the whole matrix).
    expected: int = 0

    def add(self, acc: Any, met: Any, days: Any, values: Any) -> None:
        import numpy as np

        keys, where = np.unique(acc * _METRICS + met, return_inverse=True)
        rows = np.array([self.index.setdefault(k, len(self.index)) for k in keys.tolist()])
        rows = rows[where.reshape(-1)]
        low, high = int(days.min()), int(days.max())
        if self.sums is None:
            height = max(len(self.index), 1024, self.expected)
            self.sums, self.base = np.zeros((height, 128)), low
            self.firsts = np.full(len(self.sums), np.iinfo(np.int64).max, dtype=np.int64)
        self._fit(len(self.index), low, high)
        np.minimum.at(self.firsts, rows, days)
        np.add.at(self.sums, (rows, days - self.base), values)

    def _fit(self, count: int, low: int, high: int) -> None:
        """Room for ``count`` series and the days ``low`` to ``high``."""
        import numpy as np

        height, width = self.sums.shape
        before = max(0, self.base - low)
        after = max(0, high - self.base - width + 1)
        more = max(0, count - height)
        if not (before or after or more):
            return
        grown = np.zeros(
            (
                height + (max(more, height) if more else 0),
                width + before + (max(after, 64) if after else 0),
            )
        )
        grown[:height, before : before + width] = self.sums
        firsts = np.full(len(grown), np.iinfo(np.int64).max, dtype=np.int64)
        firsts[:height] = self.firsts
        self.sums, self.firsts, self.base = grown, firsts, self.base - before


@dataclass
class Columns:
    """Usage rows kept: account and metric codes (into ``accounts`` and ``metrics``), the
    daily sums of each series in ``grid``; level metrics as points."""

    accounts: dict[object, int] = field(default_factory=dict)
    metrics: dict[object, int] = field(default_factory=dict)
    grid: Grid = field(default_factory=Grid)
    levels: dict[tuple[object, object], dict[int, float]] = field(default_factory=dict)
    last_day: int = 0


class Unreadable(Exception):
    """A kept row whose date or value does not read; ``row`` is that row."""

    def __init__(self, row: dict[str, object], cause: Exception) -> None:
        super().__init__(str(cause))
        self.row = row
        self.cause = cause


@dataclass(frozen=True)
class Keep:
    """Which usage rows the watcher keeps, and how it reads their dates."""

    wanted: Mapping[str, object]
    metrics: Collection[str]
    default_metric: str
    level_metrics: Collection[str]
    today: int
    ordinal: Callable[[object], int]


async def read(
    tables: AsyncIterator[Any], keep: Keep, run: Callable[..., Awaitable[Any]]
) -> Columns:
    """Every batch of usage rows, kept and converted as the row path keeps and converts;
    each batch's work handed to ``run`` (the watcher's worker pool), in order."""
    out = Columns(grid=Grid(expected=len(keep.wanted)))
    async for table in tables:
        await run(_batch, table, out, keep)
    return out


def ordinal(value: object) -> int:
    """A row's date as a day ordinal; accepts date, datetime or ISO text."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date().toordinal() if value.tzinfo else value.toordinal()
    if isinstance(value, date):
        return value.toordinal()
    if isinstance(value, str):
        return date.fromisoformat(value.strip()[:10]).toordinal()
    raise ValueError(f"{value!r} is not a date")


def _column(table: Any, name: str) -> tuple[Any, list[object]]:
    """A column's codes and distinct values; all null (-1) when the table lacks it."""
    import numpy as np
    import pyarrow as pa

    if name not in table.column_names:
        return np.full(table.num_rows, -1, dtype=np.int64), []
    column = table.column(name)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_null(column.type):
        return np.full(len(column), -1, dtype=np.int64), []
    encoded = column.dictionary_encode()
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, encoded.dictionary.to_pylist()


def _codes(table: Any, name: str, pick: Callable[[object], object], into: dict[object, int]) -> Any:
    """Per row, the code in ``into`` of the picked value of column ``name`` (-1: left out)."""
    import numpy as np

    codes, distinct = _column(table, name)
    lookup = np.full(len(distinct) + 1, -1, dtype=np.int64)  # the last entry: null
    for i, value in enumerate([*distinct, None]):
        picked = pick(value)
        if picked is not None:
            lookup[i] = into.setdefault(picked, len(into))
    return lookup[codes]


def _per_distinct(
    table: Any, name: str, read_one: Callable[[object], Any], fill: Any
) -> tuple[Any, Any]:
    """Per row, ``read_one`` of its value of column ``name``, and whether it did not read."""
    import numpy as np

    codes, distinct = _column(table, name)
    values, bad = [], []
    for value in [*distinct, None]:  # code -1, null, reads the last entry
        try:
            values.append(read_one(value))
            bad.append(False)
        except (TypeError, ValueError):
            values.append(fill)
            bad.append(True)
    return np.array(values)[codes], np.array(bad, dtype=bool)[codes]


def _value(raw: object) -> float:
    """A usage value as the row path reads it: a float, or 0.0 for nothing."""
    if type(raw) is float:
        return raw
    return float(raw) if raw is not None and raw != "" else 0.0  # type: ignore[arg-type]


def _values(table: Any) -> tuple[Any, Any]:
    """The value column as float64 (null: 0.0), and which rows' values did not read."""
    import numpy as np
    import pyarrow as pa

    if "value" in table.column_names and pa.types.is_floating(table.column("value").type):
        column = table.column("value")
        values = column.to_numpy(zero_copy_only=False).astype(np.float64)
        nulls = column.is_null().to_numpy(zero_copy_only=False)
        return np.where(nulls, 0.0, values), np.zeros(table.num_rows, dtype=bool)
    values, bad = _per_distinct(table, "value", _value, 0.0)
    return values.astype(np.float64), bad


def _batch(table: Any, out: Columns, keep: Keep) -> None:
    """One batch: the rows kept, their days and values; level metrics as points."""
    import numpy as np

    def metric_of(value: object) -> object:
        metric = value or keep.default_metric
        return None if keep.metrics and metric not in keep.metrics else metric

    acc = _codes(table, "account_id", lambda v: v if v in keep.wanted else None, out.accounts)
    met = _codes(table, "metric", metric_of, out.metrics)
    kept = (acc >= 0) & (met >= 0)
    days, bad_day = _per_distinct(table, "date", keep.ordinal, 0)
    values, bad_value = _values(table)
    bad = kept & (bad_day | bad_value)
    if bad.any():
        row = table.slice(int(np.argmax(bad)), 1).to_pylist()[0]
        try:
            keep.ordinal(row.get("date"))
            _value(row.get("value"))
        except (TypeError, ValueError) as exc:
            raise Unreadable(row, exc) from exc
    days = days.astype(np.int64)
    kept &= days <= keep.today
    if not kept.any():
        return
    out.last_day = max(out.last_day, int(days[kept].max()))
    names = list(out.metrics)
    levels = [code for code, m in enumerate(names) if m in keep.level_metrics]
    is_level = kept & np.isin(met, levels) if levels else np.zeros(len(kept), dtype=bool)
    if is_level.any():
        accounts = list(out.accounts)
        for i in np.flatnonzero(is_level):
            points = out.levels.setdefault((accounts[acc[i]], names[met[i]]), {})
            day = int(days[i])
            points[day] = points.get(day, 0.0) + float(values[i])
    daily = kept & ~is_level
    if daily.any():
        out.grid.add(acc[daily], met[daily], days[daily], values[daily])


def named(key: tuple[object, object]) -> tuple[str, str]:
    """An (account, metric) key as the watcher names it."""
    return str(key[0]), str(key[1])


@dataclass
class Matrix:
    """Daily sums: row ``s`` is series ``keys[s]``, its day ``d`` in column ``d - base``
    (zero before its first day ``firsts[s]`` and on days without a row)."""

    keys: list[tuple[object, object]]
    firsts: Any
    sums: Any
    base: int
    last_day: int

    def days(self, rows: Any, first: int) -> Any:
        """The sums of ``rows`` from day ``first`` to the last day."""
        return self.sums[rows, first - self.base : self.last_day - self.base + 1]


def matrix(columns: Columns) -> Matrix:
    """The daily sums of every (account, metric), as read."""
    import numpy as np

    grid = columns.grid
    count = len(grid.index)
    if not count:
        return Matrix([], np.zeros(0, dtype=np.int64), np.zeros((0, 0)), 0, columns.last_day)
    accounts, metrics = list(columns.accounts), list(columns.metrics)
    keys = [(accounts[k // _METRICS], metrics[k % _METRICS]) for k in grid.index]
    return Matrix(keys, grid.firsts[:count], grid.sums, grid.base, columns.last_day)


@dataclass(frozen=True)
class Run:
    """The run of low days going on on the last day of one series, as the row path's
    ``_judge`` finds it; ``keep`` marks each day left out of baselines (1 ignored, 2 low)."""

    start: int
    low_days: int
    baseline: float
    current: float
    weeks: int
    flatline: bool
    shortfall: float
    keep: Any


def _median(rows: Any, counts: Any) -> Any:
    """Per row, the median of its first ``counts`` values once sorted (NaN sorts last), as
    ``statistics.median`` computes it."""
    import numpy as np

    ordered = np.sort(rows, axis=1)
    half = counts // 2
    at = np.arange(len(rows))
    upper = ordered[at, np.minimum(half, rows.shape[1] - 1)]
    lower = ordered[at, np.maximum(half - 1, 0)]
    return np.where(counts % 2 == 1, upper, (lower + upper) / 2)


def _history(x: Any, keep: Any, i: int, opts: Screen) -> tuple[Any, Any]:
    """Per series, the baseline of day ``i`` (the row path's ``_baseline``): the last
    ``weeks_max`` same weekdays before it not left out, as rows padded with NaN, and how
    many there are."""
    import numpy as np

    span = 7 * opts.weeks_max
    lo = max(i - 2 * span, i % 7)
    values, out = x[:, lo:i:7], keep[:, lo:i:7] != 0
    rank = np.cumsum(~out[:, ::-1], axis=1)[:, ::-1]  # from the newest: 1, 2, ...
    chosen = ~out & (rank <= opts.weeks_max)
    return np.where(chosen, values, np.nan), chosen.sum(axis=1)


def _day(x: Any, keep: Any, i: int, opts: Screen, held: Any) -> tuple[Any, Any, Any, Any]:
    """Day ``i`` of every series: normal, low (else unjudged or left out), its baseline
    median and how many values that baseline has (the row path's ``_day``)."""
    import numpy as np

    n = len(x)
    span = 7 * opts.weeks_max
    ratio = 1 - opts.min_day_drop_pct / 100
    floor = opts.min_baseline_per_day
    lo = i - span if i >= span else i % 7
    window, value = x[:, lo:i:7], x[:, i]
    kept = keep[:, lo:i:7].any(axis=1)
    normal = (value > ratio * window.max(axis=1)) & (window.min(axis=1) >= floor)
    unjudged = np.zeros(n, dtype=bool)
    if window.shape[1] >= opts.weeks_min:
        med = _median(window, np.full(n, window.shape[1]))
        settled = ~normal & ~kept
        unjudged |= settled & (med < floor)
        normal |= settled & (med >= floor) & (value > ratio * med)
    open_ = ~normal & ~unjudged & (keep[:, i] == 0)
    # The rest (few days) look further back: only those series are computed.
    at = np.flatnonzero(open_)
    history, count = _history(x[at], keep[at], i, opts)
    med = np.zeros(n)
    med[at] = _median(history, count)
    counts = np.zeros(n, dtype=np.int64)
    counts[at] = count
    unjudged |= open_ & ((counts < opts.weeks_min) | (med < floor))
    open_ &= ~unjudged
    normal |= open_ & (value > ratio * med)
    open_ &= ~normal
    mad = np.zeros(n)
    mad[at] = MAD_SCALE * _median(np.abs(history - med[at][:, None]), count)
    is_low = open_ & (held | (value < med - opts.mad_k * mad))
    normal |= open_ & ~is_low
    normal &= keep[:, i] == 0  # a day left out (ignored) neither breaks nor extends
    return normal, is_low, med, counts


def judge_all(x: Any, opts: Screen, ignored: Collection[int]) -> dict[int, Run]:
    """Every series of ``x`` (rows of daily sums from one first day to the last day)
    judged at once, day by day, exactly as the row path judges each one alone: the run
    of low days going on on the last day, by row of ``x``, for the rows that have one."""
    import numpy as np

    days = x.shape[1]
    end = days - 1
    begin = max(7 * opts.weeks_min, end - opts.lookback_days + 1)
    if begin > end:
        return {}
    # A series whose last day is plainly normal (above every same weekday's share of the
    # window, none of them under the floor) has no run going on then, whatever came before:
    # only the others are judged (each series is judged on its own).
    unsettled = np.flatnonzero(~_plainly_normal(x, end, opts, ignored))
    runs = _judge_rows(x[unsettled], opts, ignored, begin)
    return {int(unsettled[s]): run for s, run in runs.items()}


def _plainly_normal(x: Any, i: int, opts: Screen, ignored: Collection[int]) -> Any:
    """Per series: day ``i`` is normal by the first test of :func:`_day` (which nothing
    later in that day's judgement undoes), and not a day left out."""
    import numpy as np

    if i in ignored:
        return np.zeros(len(x), dtype=bool)
    span = 7 * opts.weeks_max
    lo = i - span if i >= span else i % 7
    window = x[:, lo:i:7]
    ratio = 1 - opts.min_day_drop_pct / 100
    return (x[:, i] > ratio * window.max(axis=1)) & (
        window.min(axis=1) >= opts.min_baseline_per_day
    )


def _judge_rows(x: Any, opts: Screen, ignored: Collection[int], begin: int) -> dict[int, Run]:
    """:func:`judge_all` of the series ``x``, from day ``begin`` on."""
    import numpy as np

    n, days = x.shape
    end = days - 1
    keep = np.zeros((n, days), dtype=np.int8)
    for day in ignored:
        if 0 <= day <= end:
            keep[:, day] = 1
    start = np.full(n, -1)
    low, weeks = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    base, cur, short = np.zeros(n), np.zeros(n), np.zeros(n)
    zero = np.ones(n, dtype=bool)
    for i in range(begin, end + 1):
        value = x[:, i]
        normal, is_low, med, counts = _day(x, keep, i, opts, start >= 0)
        start[normal], low[normal], base[normal], cur[normal] = -1, 0, 0.0, 0.0
        short[normal], zero[normal] = 0.0, True
        keep[is_low, i] = 2
        begins = is_low & (start < 0)
        start[begins], weeks[begins] = i, counts[begins]
        low[is_low] += 1
        base[is_low] += med[is_low]
        cur[is_low] += value[is_low]
        short[is_low] += (med[is_low] - value[is_low]) / med[is_low]
        zero[is_low] &= value[is_low] == 0
    return {
        s: Run(
            int(start[s]),
            int(low[s]),
            float(base[s]),
            float(cur[s]),
            int(weeks[s]),
            bool(zero[s]),
            float(short[s]),
            keep[s],
        )
        for s in np.flatnonzero(start >= 0).tolist()
    }


class Usage(Protocol):
    """What :class:`Replay` needs of the usage watcher (the watcher itself)."""

    carry: Carry | None
    options: Any

    def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]: ...


class Replay(Replayer):
    """The usage watcher in a replay: each day adds only the rows dated since the last one
    to the daily sums it keeps (:class:`Carry`), then judges as ``watch()`` does.

    Exact when the usage source cuts its rows by the same ``date`` the watcher reads (a
    ``date_field: date`` option, no snapshots): the rows of the days already added are
    then the same, in the same order, and so are their sums. Otherwise every day is read
    afresh."""

    def __init__(self, watcher: Usage) -> None:
        self.watcher = watcher
        self.carry = Carry()

    def day(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        source = ctx.sources.get(self.watcher.options.usage_source)
        options = getattr(source, "options", None)
        dated = getattr(options, "date_field", None) == "date"
        carried = dated and not getattr(options, "snapshots", False)
        self.watcher.carry = self.carry if carried else None
        return self.watcher.watch(ctx)


@dataclass
class Carry:
    """The daily sums a replay has read so far: the rows dated up to ``through`` (of
    ``count`` rows served that far), for the accounts ``wanted``."""

    columns: Columns | None = None
    through: int = 0
    count: int = 0
    wanted: frozenset[object] = frozenset()

    async def read(
        self, tables: AsyncIterator[Any], keep: Keep, run: Callable[..., Awaitable[Any]]
    ) -> Columns:
        """:func:`read` of today's tables: the rows dated since the last day added to what
        is kept, or, where that would not be exact, every row read afresh."""
        found = [table async for table in tables]
        try:
            out: Columns = await run(self._read, found, keep)
        except BaseException:
            self.columns = None  # half added: the next day starts afresh
            raise
        return out

    def _read(self, found: list[Any], keep: Keep) -> Columns:
        import numpy as np

        days = _dates(found)
        wanted = frozenset(keep.wanted)
        if (
            self.columns is None
            or days is None
            or wanted != self.wanted
            or keep.today < self.through
            or int(np.count_nonzero(days <= self.through)) != self.count
        ):
            out = Columns()
            for table in found:
                _batch(table, out, keep)
        else:
            out, new = self.columns, (days > self.through) & (days <= keep.today)
            if new.any():
                import pyarrow as pa

                _batch(pa.concat_tables(found).filter(new), out, keep)
        if days is not None:
            self.columns, self.through, self.wanted = out, keep.today, wanted
            self.count = int(np.count_nonzero(days <= keep.today))
        return out


#: ``date.toordinal()`` of 1970-01-01, the epoch of Arrow's date32.
_EPOCH_ORDINAL = 719_163


def _dates(tables: list[Any]) -> Any:
    """Each row's ``date`` as an ordinal (null: before any day), or None when the tables
    are not all of one schema with a date32 ``date`` column."""
    import numpy as np
    import pyarrow as pa

    if not tables or len({t.schema for t in tables}) > 1:
        return None
    if "date" not in tables[0].column_names:
        return None
    kind = tables[0].schema.field("date").type
    if not pa.types.is_date32(kind):
        return None
    column = pa.chunked_array([c for t in tables for c in t.column("date").chunks], kind)
    days = column.cast(pa.int32()).fill_null(-_EPOCH_ORDINAL).to_numpy()
    return days.astype(np.int64) + _EPOCH_ORDINAL
