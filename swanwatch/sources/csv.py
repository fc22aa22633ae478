"""The csv source: CSV or JSON Lines files (a path or a glob), typed and streamed."""

from __future__ import annotations

import asyncio
import csv
import glob
import itertools
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import ClassVar, Literal, TextIO

from pydantic import Field

from swanwatch.clock import ensure_utc
from swanwatch.errors import SourceError
from swanwatch.interfaces import Row, Source, SourceOptions
from swanwatch.values import CONVERTERS, BadValue, TypeName, to_str

log = logging.getLogger("swanwatch.sources.csv")

#: Rows handed from the reading thread to the event loop at a time.
_BATCH_ROWS = 5_000

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
    """Rows from CSV or JSON Lines files, with renamed columns and checked types.

    A row whose value does not convert is logged and listed in ``problems`` as
    ``file:line: field: reason`` and skipped; the other rows are used. An empty cell of a
    non-``str`` field reads as ``None``. Files are streamed in a worker thread, never loaded
    whole.
    """

    name: ClassVar[str] = "csv"

    class Options(SourceOptions):
        path: str = Field(
            min_length=1,
            description="File or glob (e.g. data/usage-*.csv), relative to the config file.",
        )
        format: Literal["csv", "jsonl"] | None = Field(
            None, description="csv or jsonl; by default taken from each file's extension."
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
            raise SourceError(
                f"source {self.instance!r}: file not found: {pattern!r}; "
                "check `path` (relative to the config file)"
            )
        return [pattern]

    async def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        """Yield each file's rows in order, typed; rows dated after ``until`` left out."""
        files = self.files()
        self.problems = []
        self.problem_count = 0
        batches = self._batches(files, ensure_utc(until) if until is not None else None)
        try:
            while True:
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    break
                for row in batch:
                    yield row
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
        self, files: list[str], until: datetime | None
    ) -> Generator[list[Row], None, None]:
        rows = itertools.chain.from_iterable(self._read_file(f, until) for f in files)
        while batch := list(itertools.islice(rows, _BATCH_ROWS)):
            yield batch

    def _display(self, path: str) -> str:
        rel = os.path.relpath(path, self.base_dir)
        return path if rel.startswith("..") else rel

    def _problem(self, where: str, line: int, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < self.options.max_problems:
            text = f"{where}:{line}: {message}"
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

    def _read_file(self, path: str, until: datetime | None) -> Iterator[Row]:
        where = self._display(path)
        fmt = self.options.format or ("jsonl" if path.endswith((".jsonl", ".ndjson")) else "csv")
        try:
            handle = open(path, encoding=self.options.encoding, newline="")  # noqa: SIM115
        except OSError as exc:
            raise SourceError(f"source {self.instance!r}: cannot open {path!r}: {exc}") from exc
        with handle:
            if fmt == "csv":
                yield from self._read_csv(handle, where, until)
            else:
                yield from self._read_jsonl(handle, where, until)

    def _keep(self, row: dict[str, object], until: datetime | None) -> bool:
        if until is None or self.options.date_field is None:
            return True
        stamp = row.get(self.options.date_field)
        if isinstance(stamp, datetime):
            return stamp <= until
        if isinstance(stamp, date):
            return stamp <= until.date()
        return True  # an undated row is not dated after `until`

    def _convert(
        self, plan: _Plan, values: list[object], where: str, line: int
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
                self._problem(where, line, f"{field}: {exc}")
                return None
        return row

    def _read_csv(self, handle: TextIO, where: str, until: datetime | None) -> Iterator[Row]:
        reader = csv.reader(handle, delimiter=self.options.delimiter)
        try:
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            plan = self._plan(where, header)
            index = {col: i for i, col in enumerate(header)}
            columns = [index[col] for col in plan.columns]
            width = len(header)
            simple = columns == list(range(width))
            for record in reader:
                if not record:
                    continue
                line = reader.line_num
                if len(record) != width:
                    self._problem(where, line, f"expected {width} fields, found {len(record)}")
                    continue
                values: list[object] = record if simple else [record[i] for i in columns]  # type: ignore[assignment]
                row = self._convert(plan, values, where, line)
                if row is not None and self._keep(row, until):
                    yield row
        except csv.Error as exc:
            raise SourceError(
                f"source {self.instance!r}: {where}:{reader.line_num}: unreadable CSV: {exc}"
            ) from exc
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"source {self.instance!r}: {where}: not {self.options.encoding} text: {exc}"
            ) from exc

    def _read_jsonl(self, handle: TextIO, where: str, until: datetime | None) -> Iterator[Row]:
        plans: dict[tuple[str, ...], _Plan] = {}
        try:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except ValueError as exc:
                    self._problem(where, line, f"not a JSON object: {exc}")
                    continue
                if not isinstance(record, dict):
                    self._problem(where, line, "not a JSON object")
                    continue
                keys = tuple(record)
                plan = plans.get(keys)
                if plan is None:
                    plan = plans[keys] = self._json_plan(where, list(keys))
                row = self._convert(plan, [record.get(col) for col in plan.columns], where, line)
                if row is not None and self._keep(row, until):
                    yield row
        except UnicodeDecodeError as exc:
            raise SourceError(
                f"source {self.instance!r}: {where}: not {self.options.encoding} text: {exc}"
            ) from exc

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
