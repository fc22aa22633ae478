"""Source health: every read of a source judged ok, suspect, stale or broken; one mechanism
for the accounts source and the business sources alike.

The engine hands each reader (the account loader, each watcher run) a :class:`MeteredSource`
in place of each configured source, and each read through it gets a
:class:`~swanwatch.interfaces.ReadTally`: rows, malformed rows, the newest date, and whether
the read finished or failed. A source that counts its own reads (``counts_reads``: the
built-ins, batch by batch) is handed the tally; any other is counted row by row as its rows
pass through. :func:`judge` then weighs a finished (or failed) read against the last good
one:

- **broken**: the read raised: an unreadable file, an unclosed quote, a bad encoding, a
  failed query or request (the reason names the file and line, or the URL);
- **suspect**: more malformed rows than ``max_bad_rows``, or more than ``max_shrink_pct``
  fewer rows than the last good read;
- **stale**: its newest dated row is older than ``fresh_within`` (the source's setting, or
  the default of the watcher that reads it);
- **ok**: the read becomes the new last good read.

An unhealthy read is not the truth: the engine holds what it knew (accounts neither retired
nor judged healthy, signals kept, every account unknown), and ops get one alert per source
(:func:`swanwatch.alerts.source_candidates`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from swanwatch.errors import SourceError
from swanwatch.interfaces import CURRENT_READ, ReadTally, Row, Source, SourceUse
from swanwatch.model import SourceHealth, SourceState
from swanwatch.settings import SourceConfig
from swanwatch.sources.history import refusal

if TYPE_CHECKING:
    from pyarrow import Table


@dataclass(frozen=True)
class HealthPolicy:
    """What a healthy read of one source looks like, for one reader."""

    fresh_within: timedelta | None = None
    max_shrink_pct: float = 20.0
    max_bad_rows: int = 0
    #: The field whose newest value tells how fresh the source is.
    date_field: str | None = None
    #: The fields the reader cannot do without: a read whose rows lack one is broken.
    fields: tuple[str, ...] = ()


def policy_for(config: SourceConfig, source: Source, use: SourceUse | None) -> HealthPolicy:
    """The policy of a source as a reader uses it: the source's own settings win over the
    reader's defaults (``fresh_within: 0s`` turns freshness off)."""
    fresh = config.fresh_within
    if fresh is None and use is not None:
        fresh = use.fresh_within
    if fresh is not None and fresh <= timedelta(0):
        fresh = None
    date_field = config.date_field or (use.date_field if use is not None else None)
    if date_field is None:
        own = getattr(source.options, "date_field", None)
        date_field = own if isinstance(own, str) else None
    fields = use.fields if use is not None else ()
    return HealthPolicy(fresh, config.max_shrink_pct, config.max_bad_rows, date_field, fields)


class MeteredSource(Source):
    """A configured source as one reader sees it: every read tallied in :attr:`reads`.

    Anything else (``options``, a source's own helpers) is the source's own.
    """

    name: ClassVar[str] = "metered"

    def __init__(self, inner: Source, policy: HealthPolicy, *, static: bool = False) -> None:
        super().__init__(inner.instance, inner.options, base_dir=inner.base_dir)
        self.inner = inner
        self.policy = policy
        #: Declared unchanging in its config: a replay may read it as it is today.
        self.static = static
        #: The tally of each read, in order.
        self.reads: list[ReadTally] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def history(self) -> str | None:
        return self.inner.history()

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        # A read as of a past day (a replay) from a source that keeps no history would hand
        # over today's rows: refused, whoever reads it.
        if until is not None and not self.static and self.inner.history() is None:
            raise refusal(self.instance, until)
        tally = _FieldsTally(self.policy.date_field, what=self._what())
        self.reads.append(tally)
        if self.inner.counts_reads:
            tally.needs = self.policy.fields  # checked in its first batch of rows
            # The source takes the tally when its read starts, in this task's context.
            CURRENT_READ.set(tally)
            return self.inner.rows(until=until)
        return self._counted(tally, until)

    def columns(
        self, fields: Sequence[str], *, until: datetime | None = None
    ) -> AsyncIterator[Table] | None:
        if not self.inner.counts_reads:
            return None  # counted row by row: read rows()
        if until is not None and not self.static and self.inner.history() is None:
            return None  # rows() refuses the read, and says why
        tally = _FieldsTally(self.policy.date_field, what=self._what())
        CURRENT_READ.set(tally)
        tables = self.inner.columns(fields, until=until)
        if tables is None:
            return None
        self.reads.append(tally)
        needs = tuple(f for f in self.policy.fields if f in fields)
        return self._checked(tables, tally, needs) if needs else tables

    async def _checked(
        self, tables: AsyncIterator[Table], tally: _FieldsTally, needs: tuple[str, ...]
    ) -> AsyncIterator[Table]:
        """``tables``, the first one's columns checked for the fields the reader needs."""
        try:
            async for table in tables:
                if needs:
                    tally.check(needs, table.column_names)
                    needs = ()
                yield table
        except SourceError as exc:
            tally.error = str(exc)
            raise
        finally:
            close = getattr(tables, "aclose", None)
            if close is not None:
                await close()

    def _what(self) -> str:
        """The source as its errors name it: with its file, where it has one."""
        path = getattr(self.inner.options, "path", None)
        return f"{self.instance!r} ({path})" if isinstance(path, str) else repr(self.instance)

    async def _counted(self, tally: ReadTally, until: datetime | None) -> AsyncIterator[Row]:
        try:
            async for row in self.inner.rows(until=until):
                tally.count((row,))
                yield row
        except SourceError as exc:
            tally.error = str(exc)
            raise
        tally.finished = True

    async def aclose(self) -> None:
        """Nothing: the engine closes the source itself."""


@dataclass
class _FieldsTally(ReadTally):
    """A read's tally that also checks its first batch of rows for the fields the reader
    needs: an export that lost or renamed a column is broken, not a source with nothing to
    say. A field is missing when no row of the batch has it (a JSON record may leave out a
    key that others have)."""

    what: str = ""
    needs: tuple[str, ...] = ()

    def count(self, rows: Sequence[Row]) -> None:
        if self.needs and rows:
            needs, self.needs = self.needs, ()
            names = list(rows[0])
            if any(f not in names for f in needs):
                names = list(dict.fromkeys(k for row in rows for k in row))
            self.check(needs, names)
        super().count(rows)

    def check(self, needs: Sequence[str], names: Sequence[str]) -> None:
        """SourceError when ``names`` (a row's fields) lack any of ``needs``."""
        missing = [f for f in needs if f not in names]
        if missing:
            raise SourceError(
                f"source {self.what}: its rows have no field "
                f"{', '.join(map(repr, missing))}, which its reader needs; they have: "
                f"{', '.join(names)}; was a column renamed or dropped? map one with "
                f"`columns: {{{missing[0]}: YOUR_COLUMN}}`"
            )


def metered(
    sources: Mapping[str, Source],
    configs: Mapping[str, SourceConfig],
    uses: Iterable[SourceUse] = (),
) -> dict[str, MeteredSource]:
    """A metered view of every source for one reader, with the reader's declared uses."""
    by_name = {u.source: u for u in uses}
    return {
        name: MeteredSource(
            source,
            policy_for(configs.get(name) or _DEFAULT, source, by_name.get(name)),
            static=(configs.get(name) or _DEFAULT).static,
        )
        for name, source in sources.items()
    }


_DEFAULT = SourceConfig(type="-")


def judge(
    tally: ReadTally,
    source: str,
    previous: SourceHealth | None,
    policy: HealthPolicy,
    now: datetime,
) -> SourceHealth | None:
    """The source's health after this read; None when the read neither finished nor failed
    (a reader that stopped early tells nothing)."""
    if tally.error is None and not tally.finished:
        return None
    good_rows = previous.good_rows if previous is not None else None
    good_at = previous.good_at if previous is not None else None
    if tally.error is not None:
        state, reason = SourceState.BROKEN, tally.error
    else:
        problems = _suspicions(tally, good_rows, good_at, policy)
        stale = _staleness(tally, source, policy, now)
        if problems and stale:  # a short read whose newest row is old: say both
            problems.append(stale)
        if problems:
            state, reason = SourceState.SUSPECT, "; ".join(problems)
        elif stale:
            state, reason = SourceState.STALE, stale
        else:
            state, reason = SourceState.OK, ""
            good_rows, good_at = tally.rows, now
    same = previous is not None and previous.state == state
    return SourceHealth(
        source=source,
        state=state,
        reason=reason,
        rows=None if tally.error is not None else tally.rows,
        malformed=tally.malformed,
        newest=tally.newest,
        good_rows=good_rows,
        good_at=good_at,
        bad_reads=0 if state == SourceState.OK else (previous.bad_reads if previous else 0) + 1,
        since=previous.since if same and previous is not None else now,
        checked_at=now,
    )


def _suspicions(
    tally: ReadTally, good_rows: int | None, good_at: datetime | None, policy: HealthPolicy
) -> list[str]:
    out = []
    if tally.malformed > policy.max_bad_rows:
        rows = "row" if tally.malformed == 1 else "rows"
        first = f" (first: {tally.problems[0]})" if tally.problems else ""
        out.append(f"{tally.malformed} malformed {rows}{first}")
    if good_rows and tally.rows < good_rows * (1 - policy.max_shrink_pct / 100):
        when = f" ({good_at:%Y-%m-%d %H:%M} UTC)" if good_at is not None else ""
        fewer = 100 * (good_rows - tally.rows) / good_rows
        out.append(
            f"{tally.rows} rows where the last good read{when} had {good_rows}: "
            f"{fewer:.0f}% fewer (more than {policy.max_shrink_pct:g}%)"
        )
    return out


def _staleness(tally: ReadTally, source: str, policy: HealthPolicy, now: datetime) -> str:
    fresh = policy.fresh_within
    # A source is dated by a field of its rows, or (snapshot files) by the read itself.
    if fresh is None or (policy.date_field is None and tally.newest is None):
        return ""
    if tally.newest is None:
        return f"{source} has no dated rows (field {policy.date_field!r})"
    days = (now.date() - tally.newest).days
    if now - datetime.combine(tally.newest, datetime.min.time(), now.tzinfo) <= fresh + _A_DAY:
        return ""
    return (
        f"{source} data ends {tally.newest.isoformat()}, {days} days ago "
        f"(expected within {_span(fresh)})"
    )


#: A date covers its whole day: data dated yesterday is at most a day and a bit old.
_A_DAY = timedelta(days=1)


def _span(delta: timedelta) -> str:
    if delta % timedelta(days=1) == timedelta(0):
        days = delta.days
        return f"{days} day{'s' if days != 1 else ''}"
    hours = delta / timedelta(hours=1)
    return f"{hours:g} h"


def held_reason(health: SourceHealth) -> str:
    """Why a reader of this source is held, as its unknowns say it."""
    return f"source {health.source!r} is {health.state}: {health.reason}"


def accept(health: SourceHealth, now: datetime) -> SourceHealth:
    """The source's last read taken as its last good read (a smaller source that is right)."""
    return health.model_copy(
        update={
            "state": SourceState.OK,
            "reason": "",
            "good_rows": health.rows,
            "good_at": now,
            "bad_reads": 0,
            "since": now,
            "checked_at": now,
        }
    )
