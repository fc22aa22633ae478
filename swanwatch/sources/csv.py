"""The csv source: CSV, JSON Lines or Parquet files (a path or a glob), typed and streamed,
row by row or (``columns()``, for millions of rows) as Arrow tables."""

from __future__ import annotations

import asyncio
import codecs
import csv
import glob
import itertools
import json
import logging
import mmap
import os
import re
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TextIO

from pydantic import Field

from swanwatch.clock import ensure_utc
from swanwatch.errors import SourceError
from swanwatch.interfaces import ReadTally, Row, Source, SourceOptions
from swanwatch.memory import use_arrow_pool
from swanwatch.sources import columnar
from swanwatch.values import CONVERTERS, BadValue, TypeName, to_str

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger("swanwatch.sources.csv")

#: Rows handed from the reading thread to the event loop at a time.
_BATCH_ROWS = 5_000
#: The bytes of a CSV file Arrow parses at a time. Arrow's streaming reader reads up to
#: 32 blocks ahead of the one handed on, so this bounds a read's memory (32 x 2 MiB):
#: 8 MiB blocks held about 250 MiB of a 300 MiB usage file while the watcher summed.
BLOCK_BYTES = 2 << 20
#: The longest JSON Lines record read; a longer line is a broken file, not a record.
MAX_JSON_LINE_CHARS = 1 << 20

_BadValue = BadValue
_to_str = to_str
_CONVERTERS = CONVERTERS


@dataclass(frozen=True)
class _Plan:
    """How to turn a record into an output row, worked out once per file."""

    fields: list[str]  # output names, in order
    columns: list[str]  # the column each output field reads
    typed: list[tuple[str, Callable[[object], object]]]  # the fields to convert


class CsvSource(Source):
    """Rows from CSV, JSON Lines or Parquet files, with renamed columns and checked types.

    A row whose value does not convert, or that has the wrong number of fields, is logged
    and listed in ``problems`` as ``file:line: field: reason`` and skipped; the other rows
    are used (and the read is suspect: see ``swanwatch.sources.health``). What spoils the
    rest of a file fails the read with the file and line: an unclosed quote (it would
    swallow the rest of the file into one field), a field over the csv module's limit
    (131,072 characters), a JSON line over 1 MiB, text that is not in ``encoding``. An
    empty cell of a non-``str`` field reads as ``None``. Files are streamed in a worker
    thread, never loaded whole.
    """

    name: ClassVar[str] = "csv"
    counts_reads: ClassVar[bool] = True

    class Options(SourceOptions):
        path: str = Field(
            min_length=1,
            description="File or glob (e.g. data/usage-*.csv), relative to the config file.",
        )
        format: Literal["csv", "jsonl", "parquet"] | None = Field(
            None,
            description="csv, jsonl or parquet; by default taken from each file's extension "
            "(.jsonl/.ndjson, .parquet/.pq, anything else csv).",
        )
        columns: dict[str, str] = Field(
            default_factory=dict,
            description="Output field -> column name in the file; other columns keep their names.",
        )
        types: dict[str, TypeName] = Field(
            default_factory=dict,
            description="Output field -> int, float, str, date, datetime or bool; "
            "other fields stay strings.",
        )
        date_field: str | None = Field(
            None,
            description="The field that dates a row; rows(until=...) leaves out later rows. "
            "Read as a date unless typed otherwise.",
        )
        snapshots: bool = Field(
            False,
            description="Each file `path` matches is the whole table as of the date in its name "
            "(contracts-2026-09-01.csv or contracts-20260901.csv): a read takes the newest file "
            "dated at or before the cut (without one, the newest file). How a table with no "
            "dates of its own keeps its history.",
        )
        delimiter: str = Field(",", min_length=1, max_length=1, description="CSV delimiter.")
        encoding: str = Field("utf-8-sig", description="Text encoding of the files.")
        max_problems: int = Field(
            1000,
            ge=0,
            description="Malformed rows listed in `problems` and logged; the rest only counted.",
        )

    options: Options

    def __init__(self, instance: str, options: SourceOptions, *, base_dir: str = ".") -> None:
        super().__init__(instance, options, base_dir=base_dir)
        #: The malformed rows of the last read, as ``file:line: field: reason``.
        self.problems: list[str] = []
        #: How many malformed rows the last read skipped (``problems`` may be capped).
        self.problem_count = 0

    def files(self) -> list[str]:
        """The files the path names, sorted; SourceError if there are none."""
        pattern = os.path.expanduser(self.options.path)
        if not os.path.isabs(pattern):
            pattern = os.path.join(self.base_dir, pattern)
        if glob.has_magic(pattern):
            found = sorted(p for p in glob.glob(pattern) if os.path.isfile(p))
            if not found:
                raise SourceError(
                    f"source {self.instance!r}: no file matches {pattern!r}; "
                    "check `path` (relative to the config file)"
                )
            return found
        if not os.path.isfile(pattern):
            what = f"{pattern!r} is a directory, not a file" if os.path.isdir(pattern) else None
            raise SourceError(
                f"source {self.instance!r}: {what or f'file not found: {pattern!r}'}; "
                "check `path` (relative to the config file)"
            )
        return [pattern]

    def fields(self) -> list[str] | None:
        """The fields of the files' header lines (a Parquet file's schema), as ``columns``
        maps them (None for JSON Lines, whose records each name their own); SourceError for
        a missing or unreadable file, or a header without the columns ``columns``,
        ``types`` or ``date_field`` name."""
        found: list[str] | None = None
        for path in self.files()[:100]:
            fmt = self.format_of(path)
            if fmt == "jsonl":
                continue
            where = self._display(path)
            if fmt == "parquet":
                plan = self._plan(where, list(self._parquet_file(path).schema_arrow.names))
                found = plan.fields if found is None else [f for f in found if f in plan.fields]
                continue
            try:
                with open(path, encoding=self.options.encoding, newline="") as handle:
                    first = handle.readline(1 << 20)
            except UnicodeDecodeError as exc:
                raise self._undecodable(path, where, exc) from exc
            except (OSError, LookupError) as exc:
                raise SourceError(f"source {self.instance!r}: cannot read {path!r}: {exc}") from exc
            try:
                header = next(csv.reader([first], delimiter=self.options.delimiter), [])
            except csv.Error as exc:
                raise SourceError(f"source {self.instance!r}: {where}:1: {exc}") from exc
            if not header:
                raise SourceError(f"source {self.instance!r}: {where} is empty: no header line")
            plan = self._plan(where, [h.strip() for h in header])
            found = plan.fields if found is None else [f for f in found if f in plan.fields]
        return found

    def history(self) -> str | None:
        """Snapshot files dated by their names, or rows dated by ``date_field``."""
        if self.options.snapshots:
            return "snapshot files dated by their names"
        if self.options.date_field:
            return f"rows dated by {self.options.date_field!r}"
        return None

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        """Yield each file's rows in order, typed; rows dated after ``until`` left out (with
        ``snapshots``, the rows of the newest file dated at or before ``until``)."""
        tally = self.tally()
        self.problems = []
        self.problem_count = 0
        return tally.rows_of(self._read(ensure_utc(until) if until is not None else None, tally))

    def snapshots(self) -> list[tuple[date, str]]:
        """The snapshot files, by the date in each one's name, oldest first; SourceError for
        a file with no date (or two) in its name, or two files of the same date."""
        dated: dict[date, str] = {}
        for path in self.files():
            name = os.path.basename(path)
            days = [d for d in map(_day_in_name, _DATE_IN_NAME.findall(name)) if d is not None]
            if len(days) != 1:
                what = "no date" if not days else f"{len(days)} dates"
                raise SourceError(
                    f"source {self.instance!r}: snapshot file {self._display(path)!r} has "
                    f"{what} in its name; with `snapshots: true` each file is the table as "
                    "of the one date in its name (YYYY-MM-DD or YYYYMMDD)"
                )
            if days[0] in dated:
                raise SourceError(
                    f"source {self.instance!r}: snapshot files {self._display(dated[days[0]])!r} "
                    f"and {self._display(path)!r} are both dated {days[0].isoformat()}; keep one"
                )
            dated[days[0]] = path
        return sorted(dated.items())

    def snapshot(self, until: datetime | None) -> tuple[date, str]:
        """The snapshot a read as of ``until`` takes: the newest dated at or before it."""
        dated = self.snapshots()
        usable = dated if until is None else [d for d in dated if d[0] <= until.date()]
        if not usable:
            first, path = dated[0]
            raise SourceError(
                f"source {self.instance!r}: no snapshot dated on or before "
                f"{until:%Y-%m-%d}: the first is {self._display(path)!r} ({first.isoformat()}); "
                "nothing is known of the table before then"
            )
        return usable[-1]

    async def _read(self, until: datetime | None, tally: ReadTally) -> AsyncIterator[list[Row]]:
        """The files' rows in batches, read in a worker thread."""
        files = self.files()
        if self.options.snapshots:
            day, path = self.snapshot(until)
            files, tally.newest = [path], day
        batches = self._batches(files, until, tally)
        try:
            while (batch := await asyncio.to_thread(next, batches, None)) is not None:
                yield batch
        finally:
            batches.close()
        if self.problem_count > len(self.problems):
            log.warning(
                "source %r: %d malformed rows skipped in all (first %d listed)",
                self.instance,
                self.problem_count,
                len(self.problems),
            )

    def _batches(
        self, files: list[str], until: datetime | None, tally: ReadTally
    ) -> Generator[list[Row], None, None]:
        rows = itertools.chain.from_iterable(self._read_file(f, until, tally) for f in files)
        while batch := list(itertools.islice(rows, _BATCH_ROWS)):
            yield batch

    # --- columns: the same records as Arrow tables ------------------------------------

    def columns(
        self, fields: Sequence[str], *, until: datetime | None = None
    ) -> AsyncIterator[pa.Table] | None:
        """The records as Arrow tables (see :meth:`Source.columns`): CSV through Arrow's
        reader, Parquet as it is, converted as the row path converts; None when a file is
        JSON Lines (its records need not agree on their keys or types) or with `snapshots`."""
        if self.options.snapshots:
            return None  # a table as it stood on a day: small, read row by row
        try:
            files = self.files()
        except SourceError:
            files = []  # the read fails, and says why, when it starts
        if any(self.format_of(f) == "jsonl" for f in files):
            return None
        use_arrow_pool()
        tally = self.tally()
        self.problems = []
        self.problem_count = 0
        cut = ensure_utc(until) if until is not None else None
        return self._columns(list(fields), cut, tally)

    async def _columns(
        self, fields: list[str], until: datetime | None, tally: ReadTally
    ) -> AsyncIterator[pa.Table]:
        date_field = tally.date_field  # the field the source's health dates rows by
        read = [*fields, date_field] if date_field and date_field not in fields else fields
        try:
            tables = self._tables(self.files(), read, until, tally)
            try:
                while (table := await asyncio.to_thread(next, tables, None)) is not None:
                    newest = None
                    if date_field is not None and date_field in table.column_names:
                        newest = columnar.newest_day(table.column(date_field))
                    tally.count_columns(table.num_rows, newest)
                    yield table.select([f for f in fields if f in table.column_names])
            finally:
                tables.close()
        except SourceError as exc:
            tally.error = str(exc)
            raise
        tally.finished = True

    def _tables(
        self, files: list[str], fields: list[str], until: datetime | None, tally: ReadTally
    ) -> Generator[pa.Table, None, None]:
        for path in files:
            where = self._display(path)
            if self.format_of(path) == "parquet":
                yield from self._parquet_tables(path, where, fields, until, tally)
            elif _arrow_can_read(path, self.options.encoding):
                yield from self._csv_tables(path, where, fields, until, tally)
            else:
                yield from self._row_tables(path, fields, until, tally, 0)

    def _row_tables(
        self, path: str, fields: list[str], until: datetime | None, tally: ReadTally, skip: int
    ) -> Iterator[pa.Table]:
        """A file through the row path, as tables, its first ``skip`` rows left out."""
        rows = itertools.islice(self._read_file(path, until, tally), skip, None)
        while batch := list(itertools.islice(rows, columnar.ROW_BATCH)):
            present = [f for f in fields if f in batch[0]]
            try:
                yield columnar.table_of(batch, present)
            except columnar.NotColumnar as exc:
                raise SourceError(
                    f"source {self.instance!r}: {self._display(path)}: a field's values "
                    f"are of several kinds ({exc}); declare its type in `types`"
                ) from exc

    def _wanted(self, plan: _Plan, fields: list[str]) -> list[tuple[str, str]]:
        """(output field, column) of the fields asked for, and of the date field."""
        keep = {*fields, self.options.date_field}
        return [(f, c) for f, c in zip(plan.fields, plan.columns, strict=True) if f in keep]

    def _typed(
        self, plan: _Plan, wanted: list[tuple[str, str]], batch: Any, until: datetime | None
    ) -> pa.Table:
        """One batch of a file as a typed table, rows dated after ``until`` left out."""
        import pyarrow as pa

        converters = dict(plan.typed)
        out = {}
        for field, column in wanted:
            values = batch.column(column)
            convert = converters.get(field)
            out[field] = values if convert is None else columnar.native(values, convert)
        table = pa.table(out) if out else columnar.no_columns(batch.num_rows)
        date_field = self.options.date_field
        if until is not None and date_field is not None and date_field in out:
            table = table.filter(columnar.keep_mask(out[date_field], until))
        return table

    def _csv_tables(
        self, path: str, where: str, fields: list[str], until: datetime | None, tally: ReadTally
    ) -> Iterator[pa.Table]:
        """A CSV file through Arrow's reader; back to the row path, where this one stopped,
        for what only the row path can tell: a row of the wrong width, a value that does not
        convert, text that is not UTF-8 (it names the line)."""
        import pyarrow as pa
        import pyarrow.csv as pacsv

        try:
            with open(path, encoding=self.options.encoding, newline="") as handle:
                reader = csv.reader(handle, delimiter=self.options.delimiter, strict=True)
                header = self._next_record(reader, where, tally)
                header_lines = reader.line_num
        except UnicodeDecodeError as exc:  # the decoder reads ahead of the header line
            raise self._undecodable(path, where, exc) from exc
        if header is None:
            return
        header = [h.strip() for h in header]
        plan = self._plan(where, header)
        if len(set(header)) != len(header):
            yield from self._row_tables(path, fields, until, tally, 0)
            return
        wanted = self._wanted(plan, fields)
        done = 0
        try:
            batches = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(
                    column_names=header,
                    skip_rows=header_lines,
                    use_threads=False,
                    block_size=BLOCK_BYTES,
                ),
                parse_options=pacsv.ParseOptions(delimiter=self.options.delimiter),
                convert_options=pacsv.ConvertOptions(
                    column_types={c: pa.string() for c in header},
                    include_columns=sorted({c for _, c in wanted}),
                    strings_can_be_null=False,
                ),
            )
            for batch in batches:
                table = self._typed(plan, wanted, batch, until)
                if table.num_rows:
                    yield table
                    done += table.num_rows
        except (pa.ArrowInvalid, columnar.NotColumnar):
            yield from self._row_tables(path, fields, until, tally, done)

    def _parquet_tables(
        self, path: str, where: str, fields: list[str], until: datetime | None, tally: ReadTally
    ) -> Iterator[pa.Table]:
        """A Parquet file in its own batches; back to the row path for a value that does
        not convert (it says which row)."""
        file = self._parquet_file(path)
        plan = self._plan(where, list(file.schema_arrow.names))
        wanted = self._wanted(plan, fields)
        done = 0
        try:
            for batch in file.iter_batches(columns=sorted({c for _, c in wanted})):
                table = self._typed(plan, wanted, batch, until)
                if table.num_rows:
                    yield table
                    done += table.num_rows
        except columnar.NotColumnar:
            yield from self._row_tables(path, fields, until, tally, done)

    def _parquet_file(self, path: str) -> Any:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise SourceError(
                f"source {self.instance!r}: {self._display(path)}: not a readable Parquet "
                f"file ({exc}); check `path` and `format`"
            ) from exc

    def _read_parquet(
        self, path: str, where: str, until: datetime | None, tally: ReadTally
    ) -> Iterator[Row]:
        file = self._parquet_file(path)
        plan = self._plan(where, list(file.schema_arrow.names))
        line = 0
        for batch in file.iter_batches(columns=sorted(set(plan.columns))):
            names = batch.schema.names
            for record in batch.to_pylist():
                line += 1  # the row's number in the file, 1-based: Parquet has no lines
                values = [record[c] for c in plan.columns] if names else []
                row = self._convert(plan, values, where, line, tally)
                if row is not None and self._keep(row, until):
                    yield row

    def _display(self, path: str) -> str:
        rel = os.path.relpath(path, self.base_dir)
        return path if rel.startswith("..") else rel

    def _problem(self, tally: ReadTally, where: str, line: int, message: str) -> None:
        self.problem_count += 1
        text = f"{where}:{line}: {message}"
        tally.skipped(text)
        if len(self.problems) < self.options.max_problems:
            self.problems.append(text)
            log.warning("source %r: skipped malformed row: %s", self.instance, text)

    def _plan(self, where: str, header: list[str]) -> _Plan:
        """How to turn a record with ``header`` into an output row; SourceError if impossible."""
        opts = self.options
        renamed = set(opts.columns.values())
        missing = [col for col in opts.columns.values() if col not in header]
        if missing:
            raise SourceError(
                f"source {self.instance!r}: {where}: column(s) {', '.join(map(repr, missing))} "
                f"named in `columns` not found; the file has: {', '.join(header)}"
            )
        twice = [col for col in dict.fromkeys(header) if col and header.count(col) > 1]
        if twice:  # which is meant? either would read one column's values as the other's
            raise SourceError(
                f"source {self.instance!r}: {where}: column {twice[0]!r} appears "
                f"{header.count(twice[0])} times in the header; rename or drop one"
            )
        pairs = [(field, col) for field, col in opts.columns.items()]
        pairs += [(col, col) for col in header if col not in renamed and col not in opts.columns]
        types: dict[str, str] = dict(opts.types)
        if opts.date_field and opts.date_field not in types:
            types[opts.date_field] = "date"
        fields = {field for field, _ in pairs}
        absent = [f for f in types if f not in fields]
        if absent:
            raise SourceError(
                f"source {self.instance!r}: {where}: field(s) {', '.join(map(repr, absent))} "
                f"named in `types` or `date_field` not found; the file has: {', '.join(header)}"
            )
        return _Plan(
            fields=[field for field, _ in pairs],
            columns=[col for _, col in pairs],
            typed=[(field, _CONVERTERS[types[field]]) for field, _ in pairs if field in types],
        )

    def format_of(self, path: str) -> str:
        """The format of file ``path``: the ``format`` option, else its extension's."""
        if self.options.format:
            return self.options.format
        if path.endswith((".jsonl", ".ndjson")):
            return "jsonl"
        return "parquet" if path.endswith((".parquet", ".pq")) else "csv"

    def _read_file(self, path: str, until: datetime | None, tally: ReadTally) -> Iterator[Row]:
        where = self._display(path)
        fmt = self.format_of(path)
        if fmt == "parquet":
            yield from self._read_parquet(path, where, until, tally)
            return
        try:
            handle = open(path, encoding=self.options.encoding, newline="")  # noqa: SIM115
        except (OSError, LookupError) as exc:
            raise SourceError(f"source {self.instance!r}: cannot open {path!r}: {exc}") from exc
        try:
            with handle:
                if fmt == "csv":
                    yield from self._read_csv(handle, where, until, tally)
                else:
                    yield from self._read_jsonl(handle, where, until, tally)
        except UnicodeDecodeError as exc:
            raise self._undecodable(path, where, exc) from exc

    def _undecodable(self, path: str, where: str, exc: UnicodeDecodeError) -> SourceError:
        line, column = undecodable_at(path, self.options.encoding)
        return SourceError(
            f"source {self.instance!r}: {where}:{line}: not {self.options.encoding} text "
            f"(byte 0x{exc.object[exc.start]:02x} at column {column}); set `encoding`, "
            "or fix the file"
        )

    def _keep(self, row: dict[str, object], until: datetime | None) -> bool:
        if until is None or self.options.date_field is None:
            return True
        return columnar.kept(row.get(self.options.date_field), until)

    def _convert(
        self, plan: _Plan, values: list[object], where: str, line: int, tally: ReadTally
    ) -> dict[str, object] | None:
        # The hot path for millions of rows: zip into a dict in C, then convert typed fields.
        row: dict[str, object] = dict(zip(plan.fields, values, strict=True))
        for field, convert in plan.typed:
            value = row[field]
            if value is None:
                continue
            if value == "" and convert is not _to_str:
                row[field] = None
                continue
            try:
                row[field] = convert(value)
            except _BadValue as exc:
                self._problem(tally, where, line, f"{field}: {exc}")
                return None
        return row

    def _read_csv(
        self, handle: TextIO, where: str, until: datetime | None, tally: ReadTally
    ) -> Iterator[Row]:
        # strict: a quote that is never closed fails at the end of the file, rather than
        # swallowing the rest of it into one field that reads as a row like any other.
        reader = csv.reader(handle, delimiter=self.options.delimiter, strict=True)
        header = self._next_record(reader, where, tally)
        if header is None:
            return
        header = [h.strip() for h in header]
        plan = self._plan(where, header)
        index = {col: i for i, col in enumerate(header)}
        columns = [index[col] for col in plan.columns]
        width = len(header)
        simple = columns == list(range(width))
        while True:
            start = reader.line_num + 1
            record = self._next_record(reader, where, tally)
            if record is None:
                return
            if not record:
                continue
            line = start
            if len(record) != width:
                self._problem(tally, where, line, f"expected {width} fields, found {len(record)}")
                continue
            values: list[object] = record if simple else [record[i] for i in columns]  # type: ignore[assignment]
            row = self._convert(plan, values, where, line, tally)
            if row is not None and self._keep(row, until):
                yield row

    def _next_record(self, reader: Any, where: str, tally: ReadTally) -> list[str] | None:
        """The next record, ``[]`` for one that was malformed (and counted), None at the end.

        An unclosed quote or an over-long field spoils the rest of the file: SourceError.
        """
        start = reader.line_num + 1
        try:
            record: list[str] = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            text = str(exc)
            if "unexpected end of data" in text:
                raise SourceError(
                    f"source {self.instance!r}: {where}:{start}: unclosed quote: the quoted "
                    f"field that opens on line {start} runs to the end of the file (line "
                    f"{reader.line_num}); fix the quoting in the file"
                ) from exc
            if "field larger than field limit" in text:
                raise SourceError(
                    f"source {self.instance!r}: {where}:{start}: a field longer than "
                    f"{csv.field_size_limit():,} characters (an unclosed quote?); fix the file"
                ) from exc
            self._problem(tally, where, start, f"unreadable CSV: {text}")
            return []
        return record

    def _read_jsonl(
        self, handle: TextIO, where: str, until: datetime | None, tally: ReadTally
    ) -> Iterator[Row]:
        plans: dict[tuple[str, ...], _Plan] = {}
        line = 0
        while text := handle.readline(MAX_JSON_LINE_CHARS + 1):
            line += 1
            if len(text) > MAX_JSON_LINE_CHARS:
                raise SourceError(
                    f"source {self.instance!r}: {where}:{line}: a line longer than "
                    f"{MAX_JSON_LINE_CHARS:,} characters; a JSON Lines record is one line"
                )
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as exc:
                self._problem(tally, where, line, f"not a JSON object: {exc}")
                continue
            if not isinstance(record, dict):
                self._problem(tally, where, line, "not a JSON object")
                continue
            keys = tuple(record)
            plan = plans.get(keys)
            if plan is None:
                plan = plans[keys] = self._json_plan(where, list(keys))
            values = [record.get(col) for col in plan.columns]
            row = self._convert(plan, values, where, line, tally)
            if row is not None and self._keep(row, until):
                yield row

    def _json_plan(self, where: str, keys: list[str]) -> _Plan:
        """A JSON record may leave keys out: a missing mapped or typed key reads as None."""
        wanted = list(keys)
        wanted += [c for c in self.options.columns.values() if c not in wanted]
        mapped = self.options.columns
        wanted += [f for f in self.options.types if f not in wanted and f not in mapped]
        date_field = self.options.date_field
        if date_field and date_field not in wanted and date_field not in self.options.columns:
            wanted.append(date_field)
        return self._plan(where, wanted)


def _arrow_can_read(path: str, encoding: str) -> bool:
    """Whether Arrow's CSV reader splits ``path`` exactly as the csv module does: UTF-8 text
    without a quote character (quoting is where the two readers' rules differ)."""
    try:
        if codecs.lookup(encoding).name not in ("utf-8", "utf-8-sig"):
            return False
        with open(path, "rb") as raw:
            if os.fstat(raw.fileno()).st_size == 0:
                return False
            with mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ) as data:
                return data.find(b'"') < 0
    except (OSError, LookupError, ValueError):
        return False  # the row path says what is wrong


#: A date in a snapshot file's name: 2026-09-01 or 20260901, not part of a longer number.
_DATE_IN_NAME = re.compile(r"(?<!\d)(\d{4})-?(\d{2})-?(\d{2})(?!\d)")


def _day_in_name(parts: tuple[str, str, str]) -> date | None:
    try:
        return date(int(parts[0]), int(parts[1]), int(parts[2]))
    except ValueError:
        return None


def undecodable_at(path: str, encoding: str) -> tuple[int, int]:
    """The line and column (1-based) of the first byte of ``path`` that does not decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    with open(path, "rb") as raw:
        for line, data in enumerate(raw, start=1):
            try:
                decoder.decode(data)
            except UnicodeDecodeError as exc:
                return line, exc.start + 1
    return 0, 0
