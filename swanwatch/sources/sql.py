"""The sql source: rows of a query against any SQLAlchemy URL, streamed, cut at ``until``."""

from __future__ import annotations

import asyncio
import logging
import os.path
import re
from collections.abc import AsyncIterator, Callable, Generator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator
from sqlalchemy import Connection, Date, DateTime, Engine, bindparam, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.sql.elements import TextClause

from swanwatch.clock import ensure_utc
from swanwatch.errors import SourceError
from swanwatch.interfaces import ReadTally, Row, Source, SourceOptions
from swanwatch.sources.threads import QueryCanceller, ReadThread
from swanwatch.values import CONVERTERS, BadValue, TypeName, is_after

log = logging.getLogger("swanwatch.sources.sql")

#: ``until`` when no cut is asked: a query that says ``day <= :until`` then reads everything.
_NO_CUT_DATE = date(9999, 12, 31)
_NO_CUT_DATETIME = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
_UNTIL = re.compile(r"(?<![:\w]):until\b")
#: How long an abandoned read waits for its cursor to close before leaving it to its thread.
_CLOSE_WAIT_S = 5.0


def _first_line(exc: BaseException) -> str:
    """The database's own message, without SQLAlchemy's trailing background link."""
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


class SqlSource(Source):
    """Rows of one SQL query against any database SQLAlchemy speaks to.

    Push the work into the database: the query should return what the watcher needs, already
    aggregated (for usage: one row per account, day and metric, ``GROUP BY`` in the query),
    so that thousands of rows cross the wire instead of millions. Rows are streamed through a
    server-side cursor in batches of ``batch_rows``; the blocking database calls run in a
    worker thread of the source's own, never on the event loop.

    No look-ahead: when ``date_field`` is set and a cut is asked (the backtest's simulated
    now), the query is wrapped as ``SELECT * FROM (query) WHERE date_field <= :cut``, which
    the database pushes down into the query; rows after the cut are also dropped on
    arrival. A query may name ``:until`` itself (bound to the cut, or to 9999-12-31 when
    there is none) to place the condition where it wants it.

    A read that is abandoned (the watcher's timeout, a shutdown) cancels its statement in
    the database (the driver's cancel; SQLite's interrupt), and ``statement_timeout_s``
    bounds a statement on PostgreSQL besides. The blocking calls run on a daemon thread of
    the read's own, so one stuck in a driver never keeps the process from exiting.
    """

    name: ClassVar[str] = "sql"
    counts_reads: ClassVar[bool] = True

    class Options(SourceOptions):
        url: SecretStr = Field(
            description="SQLAlchemy URL, e.g. postgresql+psycopg://user:${DB_PASSWORD}@host/db; "
            "a relative SQLite path is relative to the config file.",
        )
        query: str = Field(
            min_length=1,
            description="The SELECT to run; aggregate in it (GROUP BY). May use :until and "
            "the names in `params` as bind parameters.",
        )
        params: dict[str, str | int | float | bool] = Field(
            default_factory=dict, description="Further bind parameters of the query, by name."
        )
        date_field: str | None = Field(
            None,
            description="The result column that dates a row; rows(until=...) leaves out later "
            "rows, in the database. Read as `date_type` unless typed otherwise.",
        )
        date_type: Literal["date", "datetime"] = Field(
            "date",
            description="Whether `date_field` (and :until) hold dates or timestamps: a date "
            "cut compares whole days.",
        )
        columns: dict[str, str] = Field(
            default_factory=dict,
            description="Output field -> result column; other columns keep their names.",
        )
        types: dict[str, TypeName] = Field(
            default_factory=dict,
            description="Output field -> int, float, str, date, datetime or bool, checked on "
            "arrival; NUMERIC values arrive as float unless typed otherwise.",
        )
        batch_rows: int = Field(
            5000, ge=1, description="Rows fetched from the server-side cursor at a time."
        )
        connect_timeout_s: float = Field(
            10.0, gt=0, description="Seconds to wait for a connection (where the driver allows)."
        )
        statement_timeout_s: float | None = Field(
            None,
            gt=0,
            description="PostgreSQL: the server ends a statement running longer than this. "
            "A read abandoned by the watcher's timeout is cancelled either way.",
        )

        @field_validator("query")
        @classmethod
        def _one_statement(cls, value: str) -> str:
            stripped = value.strip().rstrip(";").strip()
            if not stripped:
                raise ValueError("the query is empty")
            return stripped

    options: Options

    def __init__(self, instance: str, options: SourceOptions, *, base_dir: str = ".") -> None:
        super().__init__(instance, options, base_dir=base_dir)
        self._engine: Engine | None = None
        #: Rows the last read fetched from the database (after the cut, before type checks).
        self.rows_fetched = 0
        #: Rows the last read skipped because a value did not convert, as ``row N: reason``.
        self.problems: list[str] = []

    # --- set-up -----------------------------------------------------------------------

    def _url(self) -> URL:
        try:
            url = make_url(self.options.url.get_secret_value())
        except ArgumentError as exc:
            raise SourceError(
                f"source {self.instance!r} (sql): `url` is not an SQLAlchemy URL: {exc}"
            ) from None
        database = url.database or ""
        if (
            url.get_backend_name() == "sqlite"
            and database not in ("", ":memory:")
            and not os.path.isabs(database)
            and not database.startswith("file:")
        ):
            url = url.set(database=os.path.join(self.base_dir, database))
        return url

    def describe_url(self) -> str:
        """The URL with its password hidden, for messages."""
        try:
            return self._url().render_as_string(hide_password=True)
        except SourceError:
            return "<invalid url>"

    def engine(self) -> Engine:
        """The source's engine, created on first use (a small pool, reused across reads)."""
        if self._engine is None:
            url = self._url()
            connect_args: dict[str, object] = {}
            backend = url.get_backend_name()
            timeout = self.options.connect_timeout_s
            if backend == "postgresql":
                connect_args["connect_timeout"] = max(1, round(timeout))
                limit = self.options.statement_timeout_s
                if limit is not None:
                    connect_args["options"] = f"-c statement_timeout={max(1, round(limit * 1000))}"
            elif backend == "sqlite":
                connect_args["timeout"] = timeout
            try:
                self._engine = (
                    create_engine(
                        url,
                        connect_args=connect_args,
                        pool_pre_ping=True,
                        pool_size=2,
                        max_overflow=2,
                    )
                    if backend != "sqlite"
                    else create_engine(url, connect_args=connect_args)
                )
            except (ArgumentError, NoSuchModuleError, ImportError) as exc:
                raise SourceError(
                    f"source {self.instance!r} (sql): cannot use {self.describe_url()}: {exc}; "
                    "check `url` and that the database driver is installed"
                ) from exc
        return self._engine

    async def aclose(self) -> None:
        """Dispose of the engine (called by the engine at shutdown)."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Close the source's pooled connections (a later read opens new ones)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def statement(self, until: datetime | None) -> tuple[TextClause, dict[str, object]]:
        """The statement to run and its parameters, wrapped to leave out rows after ``until``."""
        opts = self.options
        sql = opts.query
        params: dict[str, object] = dict(opts.params)
        kind = Date() if opts.date_type == "date" else DateTime(timezone=True)
        cut: date | datetime | None = None
        if until is not None:
            until = ensure_utc(until)
            cut = until.date() if opts.date_type == "date" else until
        binds = []
        if _UNTIL.search(sql):
            params["until"] = (
                cut
                if cut is not None
                else (_NO_CUT_DATE if opts.date_type == "date" else _NO_CUT_DATETIME)
            )
            binds.append(bindparam("until", type_=kind))
        if cut is not None and opts.date_field:
            column = self.engine().dialect.identifier_preparer.quote(opts.date_field)
            sql = (
                f"SELECT * FROM (\n{sql}\n) AS swanwatch_q "
                f"WHERE swanwatch_q.{column} <= :swanwatch_cut"
            )
            params["swanwatch_cut"] = cut
            binds.append(bindparam("swanwatch_cut", type_=kind))
        return text(sql).bindparams(*binds), params

    def history(self) -> str | None:
        """Rows dated by ``date_field``, or a query that cuts at ``:until`` itself."""
        if self.options.date_field:
            return f"rows dated by {self.options.date_field!r}"
        if _UNTIL.search(self.options.query):
            return "the query cuts at :until"
        return None

    # --- reading ----------------------------------------------------------------------

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        """Yield the query's rows, typed; rows dated after ``until`` left out."""
        tally = self.tally()
        self.rows_fetched = 0
        self.problems = []
        return tally.rows_of(self._read(ensure_utc(until) if until is not None else None, tally))

    async def _read(self, cut: datetime | None, tally: ReadTally) -> AsyncIterator[list[Row]]:
        """The rows in batches, fetched on a thread of the read's own."""
        # One thread for the whole read: some drivers (sqlite3) tie a connection to a thread.
        worker = ReadThread(f"swanwatch-sql-{self.instance}")
        running = QueryCanceller()
        batches: Generator[list[Row], None, None] | None = None
        try:
            batches = await worker.call(self._batches, cut, tally, running)
            while (batch := await worker.call(next, batches, None)) is not None:
                yield batch
        except asyncio.CancelledError:
            running.cancel()  # abandoned mid-statement: the database stops it
            raise
        finally:
            if batches is not None:
                closing = worker.call(batches.close)
                await asyncio.wait({closing}, timeout=_CLOSE_WAIT_S)
            worker.stop()

    def _batches(
        self, until: datetime | None, tally: ReadTally, running: QueryCanceller
    ) -> Generator[list[Row], None, None]:
        """Runs in the read's thread: created there, so the connection is opened there."""
        statement, params = self.statement(until)
        engine = self.engine()
        where = f"source {self.instance!r} (sql, {self.describe_url()})"
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise SourceError(f"{where}: cannot connect: {_first_line(exc)}") from exc
        return self._stream(conn, statement, params, until, where, tally, running)

    def _stream(
        self,
        conn: Connection,
        statement: TextClause,
        params: Mapping[str, object],
        until: datetime | None,
        where: str,
        tally: ReadTally,
        running: QueryCanceller,
    ) -> Generator[list[Row], None, None]:
        opts = self.options
        with conn:
            # Registered here, on the read's thread just before the statement runs: a read
            # abandoned before this point never starts it (ReadAbandoned).
            running.running(conn.connection.dbapi_connection)
            try:
                result = conn.execution_options(
                    stream_results=True, yield_per=opts.batch_rows
                ).execute(statement, dict(params))
            except SQLAlchemyError as exc:
                running.running(None)
                raise SourceError(
                    f"{where}: the query failed: {_first_line(exc)}; check `query`"
                ) from exc
            try:
                yield from self._fetch(result, until, where, tally)
            finally:
                running.running(None)

    def _fetch(
        self, result: Any, until: datetime | None, where: str, tally: ReadTally
    ) -> Generator[list[Row], None, None]:
        opts = self.options
        with result:
            keys = list(result.keys())
            convert = self._converter(keys, where, tally)
            date_field = opts.date_field
            while True:
                try:
                    chunk = result.fetchmany(opts.batch_rows)
                except SQLAlchemyError as exc:
                    raise SourceError(
                        f"{where}: reading rows failed after {self.rows_fetched}: "
                        f"{_first_line(exc)}"
                    ) from exc
                if not chunk:
                    return
                number = self.rows_fetched
                self.rows_fetched += len(chunk)
                out: list[Row] = []
                for record in chunk:
                    number += 1
                    row = convert(tuple(record), number)
                    if row is None:
                        continue
                    if (
                        until is not None
                        and date_field is not None
                        and is_after(row.get(date_field), until)
                    ):
                        continue  # the database should have left it out already
                    out.append(row)
                yield out

    def _converter(
        self, keys: list[str], where: str, tally: ReadTally
    ) -> Callable[[tuple[object, ...], int], dict[str, object] | None]:
        opts = self.options
        missing = [c for c in opts.columns.values() if c not in keys]
        renamed = {col: field for field, col in opts.columns.items()}
        fields = [renamed.get(k, k) for k in keys]
        absent = [
            f
            for f in [*opts.types, *([opts.date_field] if opts.date_field else [])]
            if f not in fields
        ]
        if missing or absent:
            raise SourceError(
                f"{where}: column(s) {', '.join(map(repr, missing + absent))} named in "
                f"`columns`, `types` or `date_field` are not in the result; it has: "
                f"{', '.join(keys)}"
            )
        types: dict[str, str] = dict(opts.types)
        if opts.date_field and opts.date_field not in types:
            types[opts.date_field] = opts.date_type  # SQLite hands dates over as text
        typed = [(i, f, CONVERTERS[types[f]]) for i, f in enumerate(fields) if f in types]
        untyped = [i for i, f in enumerate(fields) if f not in types]

        def convert(values: tuple[object, ...], number: int) -> dict[str, object] | None:
            row = dict(zip(fields, values, strict=True))
            for i in untyped:
                value = values[i]
                if isinstance(value, Decimal):
                    row[fields[i]] = float(value)
                elif isinstance(value, datetime) and value.tzinfo is not None:
                    row[fields[i]] = value.astimezone(UTC)
            for _, field, to in typed:
                value = row[field]
                if value is None:
                    continue
                try:
                    row[field] = to(value)
                except BadValue as exc:
                    problem = f"row {number}: {field}: {exc}"
                    tally.skipped(problem)
                    if len(self.problems) < 1000:
                        self.problems.append(problem)
                    log.warning("source %r: skipped malformed row: %s", self.instance, problem)
                    return None
            return row

        return convert
