"""A replay's sources read once: every simulated day served from memory, as of that day.

A replay (``backtest``, ``review``) reads each source as of each simulated day. Read from
the files every day, a year of a big book costs a year of full reads. :func:`read_once`
wraps the sources whose cut at a day is known exactly, so the first read takes every row
(with its date) and each later read ``rows(until=day)`` or ``columns(..., until=day)`` is
the same rows, in the same order, with the same tally (rows, malformed rows and their
problems, newest date, finished), as the source itself would have given that day:

- csv rows dated by ``date_field``: a row is served when its date is at or before the day
  (:func:`swanwatch.sources.columnar.kept`, the source's own test);
- csv snapshot files (``snapshots``, no ``date_field``): the snapshot in force that day,
  each file read once;
- a csv source without history (declared ``static``): every row, every day.

No look-ahead: a row dated after the simulated now is never served. Any other source (sql,
http, a plugin's) is read as before, day by day; so is a csv source whose first full read
fails (a missing or broken file: each day's read then fails, or not, as it would have), or
whose dates cannot be placed in time exactly (a naive datetime).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any, ClassVar

from swanwatch.clock import ensure_utc
from swanwatch.errors import SourceError
from swanwatch.interfaces import CURRENT_READ, ReadTally, Row, Source
from swanwatch.sources import columnar
from swanwatch.sources.csv import CsvSource
from swanwatch.values import day_of

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

#: The key of a row whose date does not cut it (undated: always served).
_UNDATED = -(1 << 62)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Unplaceable(Exception):
    """A date the replay cannot place in time exactly (a naive datetime)."""


def _key(stamp: object) -> int:
    """A row's date as microseconds since the epoch: served as of ``until`` when at or
    before ``until``'s; a date counts from its midnight (UTC), as :func:`columnar.kept`."""
    if isinstance(stamp, datetime):
        if stamp.tzinfo is None:
            raise Unplaceable(repr(stamp))
        return (stamp - _EPOCH) // _MICRO
    if isinstance(stamp, date):
        return (datetime.combine(stamp, time(), UTC) - _EPOCH) // _MICRO
    return _UNDATED


_MICRO = datetime.resolution


def _cut(until: datetime) -> int:
    return (ensure_utc(until) - _EPOCH) // _MICRO


def _ordinal(value: object) -> int:
    """The UTC day of a value as the tally counts it, as an ordinal; -1 when none."""
    try:
        day = day_of(value)
    except ValueError:
        return -1
    return -1 if day is None else day.toordinal()


@dataclass
class _Held:
    """What one full read gave: the rows (or a table), each row's key, and the malformed."""

    malformed: int
    problems: list[str]
    keys: np.ndarray[Any, Any]
    rows: list[Row] = field(default_factory=list)
    table: pa.Table | None = None
    #: Per date field: each row's day as an ordinal (-1: none), for the tally's newest.
    days: dict[str | None, np.ndarray[Any, Any]] = field(default_factory=dict)
    #: The last cut served as columns: how many rows it kept, and the table it served (a
    #: cut that keeps as many keeps the same rows: the same table is served again).
    cut: tuple[int, pa.Table] | None = None

    def count(self, tally: ReadTally, served: np.ndarray[Any, Any], newest: date | None) -> None:
        """Tell ``tally`` what the source's own read would have told it (``served``: the
        positions of the rows read, or a mask of them)."""
        for problem in self.problems:
            tally.skipped(problem)
        tally.malformed += self.malformed - len(self.problems)
        days = self.days_of(tally.date_field)
        kept = days[served] if days.size else days
        found = int(kept.max()) if kept.size else -1
        if found >= 0:
            day = date.fromordinal(found)
            newest = day if newest is None or day > newest else newest
        rows = int(served.sum()) if served.dtype == bool else int(served.size)
        tally.count_columns(rows, newest)

    def days_of(self, name: str | None) -> np.ndarray[Any, Any]:
        import numpy as np

        found = self.days.get(name)
        if found is not None:
            return found
        if name is None:
            found = np.zeros(0, dtype=np.int64)
        elif self.table is not None:
            if name in self.table.column_names:
                codes, distinct = columnar.encode(self.table.column(name))
                lookup = np.array([_ordinal(v) for v in distinct] + [-1], dtype=np.int64)
                found = lookup[codes]
            else:
                found = np.full(self.table.num_rows, -1, dtype=np.int64)
        else:
            found = np.fromiter((_ordinal(r.get(name)) for r in self.rows), np.int64)
        self.days[name] = found
        return found

    def mask(self, until: datetime | None) -> np.ndarray[Any, Any]:
        """Which rows a read as of ``until`` gives."""
        import numpy as np

        if until is None:
            return np.ones(self.keys.size, dtype=bool)
        return self.keys <= _cut(until)

    def served(self, until: datetime | None) -> np.ndarray[Any, Any]:
        """The positions of the rows a read as of ``until`` gives, in order."""
        import numpy as np

        return np.flatnonzero(self.mask(until))


class ReadOnceSource(Source):
    """A csv source as a replay reads it: read whole once, each read served as of its day."""

    name: ClassVar[str] = "read-once"
    counts_reads: ClassVar[bool] = True

    def __init__(self, inner: CsvSource) -> None:
        super().__init__(inner.instance, inner.options, base_dir=inner.base_dir)
        self.inner = inner
        self._date_field = inner.options.date_field
        self._rows: _Held | None = None
        self._snapshots: list[tuple[date, str]] | None = None
        self._snapshot_rows: dict[str, _Held] = {}
        self._tables: dict[tuple[tuple[str, ...], str | None], _Held | None] = {}
        #: Every read goes to the source itself (its full read failed, or cannot be cut).
        self.live = inner.options.snapshots and self._date_field is not None
        self._loading = asyncio.Lock()  # two readers on the first day: one full read

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def history(self) -> str | None:
        return self.inner.history()

    def fields(self) -> Sequence[str] | None:
        return self.inner.fields()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def token(self, fields: Sequence[str] | None, until: datetime | None) -> tuple[int, int] | None:
        """What a read as of ``until`` (of ``fields`` as columns; None: rows) serves, as a
        token that two reads serving the same rows in the same order share: the full read
        they are cut from and how many rows the cut keeps (a cut keeps the rows at or before
        a date, so two cuts of one full read that keep as many keep the same). None when
        not known: the read goes to the source itself, or the full read is not made yet."""
        if self.live:
            return None
        if fields is None:
            held = None if self.inner.options.snapshots else self._rows
        else:
            found = [h for k, h in self._tables.items() if k[0] == tuple(fields)]
            held = found[0] if found and found[0] is not None else None
        if held is None:
            return None
        return id(held), int(held.mask(until).sum())

    # --- rows -----------------------------------------------------------------------------

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        return self._rows_of(self.tally(), until)

    async def _rows_of(self, tally: ReadTally, until: datetime | None) -> AsyncIterator[Row]:
        held, newest = await self._held_rows(until)
        if held is None:
            CURRENT_READ.set(tally)
            async for row in self.inner.rows(until=until):
                yield row
            return
        served = held.served(None if self.inner.options.snapshots else until)
        held.count(tally, served, newest)
        rows = held.rows
        for i in served.tolist():
            yield rows[i]
        tally.finished = True

    async def _held_rows(self, until: datetime | None) -> tuple[_Held | None, date | None]:
        """The rows a read as of ``until`` is cut from, and the date the read itself gives
        (a snapshot's); None when this read goes to the source itself."""
        if self.live:
            return None, None
        if not self.inner.options.snapshots:
            async with self._loading:
                if self._rows is None and not self.live:
                    self._rows = await self._read_rows(None)
            return self._rows, None
        if self._snapshots is None:
            try:
                self._snapshots = self.inner.snapshots()
            except SourceError:
                self.live = True
                return None, None
        usable = [d for d in self._snapshots if until is None or d[0] <= until.date()]
        if not usable:
            return None, None  # the source says there is no snapshot that early
        day, path = usable[-1]
        async with self._loading:
            held = self._snapshot_rows.get(path)
            if held is None and not self.live:
                held = await self._read_rows(datetime.combine(day, time(), UTC))
                if held is not None:
                    self._snapshot_rows[path] = held
        return (None, None) if held is None else (held, day)

    async def _read_rows(self, until: datetime | None) -> _Held | None:
        """One full read of the source's rows (the snapshot in force at ``until``)."""
        import numpy as np

        tally = ReadTally()
        token = CURRENT_READ.set(tally)
        try:
            rows = [row async for row in self.inner.rows(until=until)]
            name = self._date_field
            keys = [_key(row.get(name)) if name else _UNDATED for row in rows]
        except (SourceError, Unplaceable):
            self.live = True
            return None
        finally:
            CURRENT_READ.reset(token)
        return _Held(tally.malformed, list(tally.problems), np.array(keys, np.int64), rows=rows)

    # --- columns --------------------------------------------------------------------------

    def columns(
        self, fields: Sequence[str], *, until: datetime | None = None
    ) -> AsyncIterator[pa.Table] | None:
        tally = self.tally()
        if self.live:
            return self.inner.columns(fields, until=until)
        key = (tuple(fields), tally.date_field)
        if key in self._tables and self._tables[key] is None:
            return None
        # A probe (a read not started): None when the source reads row by row only.
        if key not in self._tables and self.inner.columns(fields, until=until) is None:
            self._tables[key] = None
            return None
        return self._columns_of(tally, key, until)

    async def _columns_of(
        self, tally: ReadTally, key: tuple[tuple[str, ...], str | None], until: datetime | None
    ) -> AsyncIterator[pa.Table]:
        async with self._loading:
            held = self._tables.get(key)
            if held is None and not self.live:
                held = self._tables[key] = await self._read_table(*key)
        if held is None or held.table is None:
            CURRENT_READ.set(tally)
            tables = self.inner.columns(key[0], until=until)
            assert tables is not None  # it was not None a moment ago
            async for table in tables:
                yield table
            return
        mask = held.mask(until)
        held.count(tally, mask, None)
        served = int(mask.sum())
        if held.cut is None or held.cut[0] != served:  # else the rows of the last read
            table = held.table if served == held.table.num_rows else held.table.filter(mask)
            held.cut = served, table.select([f for f in key[0] if f in table.column_names])
        if served:
            yield held.cut[1]
        tally.finished = True

    async def _read_table(self, fields: tuple[str, ...], date_field: str | None) -> _Held | None:
        """One full read of ``fields`` as columns, with the fields that date the rows."""
        import numpy as np
        import pyarrow as pa

        wanted = list(dict.fromkeys([*fields, *(f for f in (self._date_field, date_field) if f)]))
        tally = ReadTally(date_field=date_field)
        token = CURRENT_READ.set(tally)
        try:
            tables = self.inner.columns(wanted, until=None)
            if tables is None:
                return None
            found = [t async for t in tables]
        except SourceError:
            self.live = True
            return None
        finally:
            CURRENT_READ.reset(token)
        if len({t.schema for t in found}) > 1:  # files that differ: as the source serves them
            self.live = True
            return None
        table = pa.concat_tables(found).combine_chunks() if found else pa.table({})
        if not table.column_names:  # Arrow concatenates tables without columns to no rows
            table = columnar.no_columns(sum(t.num_rows for t in found))
        keys = np.full(table.num_rows, _UNDATED, dtype=np.int64)
        if self._date_field is not None and self._date_field in table.column_names:
            codes, distinct = columnar.encode(table.column(self._date_field))
            try:
                lookup = np.array([_key(v) for v in distinct] + [_UNDATED], dtype=np.int64)
            except Unplaceable:
                self.live = True
                return None
            keys = lookup[codes]
        return _Held(tally.malformed, list(tally.problems), keys, table=table)


def read_once(sources: Mapping[str, Source]) -> dict[str, Source]:
    """The sources of a replay, those that can be read once so wrapped (see the module)."""
    return {
        name: ReadOnceSource(source) if type(source) is CsvSource else source
        for name, source in sources.items()
    }
