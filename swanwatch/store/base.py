"""The store's ground floor: the engine, migrations, transactions and the upsert helper.

SQLite runs in WAL mode. Every transaction that may write starts with BEGIN IMMEDIATE, so
concurrent writers wait for the lock (up to :data:`WRITE_WAIT_S`) instead of failing
half-way; a connection that only reads (:meth:`StoreBase._read`) begins deferred and waits
for no writer, nor holds one up.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache, lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    Table,
    any_,
    create_engine,
    event,
    func,
    literal,
    select,
    text,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from swanwatch.errors import StoreError
from swanwatch.store.leader import Leadership

MIGRATIONS = Path(__file__).parent / "migrations"
#: Rows per statement where a list goes into ``IN (...)``: well under every backend's limit.
BATCH = 500
#: The execution option of a connection that only reads (:meth:`StoreBase._read`).
READS_ONLY = "swanwatch_reads_only"
#: A fixed key for PostgreSQL's advisory lock that serialises migrations across replicas.
MIGRATION_LOCK = 0x5357_414E

T = TypeVar("T")


class StoreBase:
    """One SQL database: the engine, its schema, and transactions. Each aggregate's part of
    the store (accounts, signals, runs, alerts, outbox, shards) builds on this."""

    def __init__(self, url: str, *, migrate: bool = True, scratch: bool = False) -> None:
        self.url = url
        self.engine = make_engine(url, scratch=scratch)
        if migrate:
            self.upgrade()

    def close(self) -> None:
        self.engine.dispose()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def leadership(self) -> Leadership:
        """A handle to campaign for leadership among the replicas sharing this store."""
        return Leadership(self.engine, self.url)

    def upgrade(self, revision: str = "head") -> None:
        """Apply the Alembic migrations up to ``revision``.

        A store already at the head is left alone without importing Alembic, so quick
        commands (``swanwatch alerts list``) start quickly.
        """
        if revision == "head" and (head := migrations_head()) and self.revision() == head:
            return
        from alembic import command
        from alembic.config import Config as AlembicConfig

        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate the store at {self.safe_url}: {exc}") from exc

    def compact(self) -> tuple[int, int]:
        """Rewrite a SQLite store's file in :data:`SQLITE_PAGE_SIZE` pages, without the
        pages that rows no longer use (SQLite's VACUUM); its size before and after, in
        bytes. Nothing else may have the store open: the file is rewritten whole, so a
        store in use is refused and left as it was."""
        import sqlite3  # only here: the quick commands do without it

        path = make_url(self.url).database
        if self.dialect != "sqlite" or not path or path == ":memory:":
            raise StoreError(f"{self.safe_url}: only a SQLite file is compacted here "
                             "(PostgreSQL's autovacuum does this on its own)")  # fmt: skip
        before = Path(path).stat().st_size
        raw = self.engine.raw_connection()
        try:
            # Out of WAL first: its page size is fixed. SQLite leaves the mode as it is,
            # and says so, while another connection has the file open.
            try:
                mode = raw.execute("PRAGMA journal_mode=DELETE").fetchone()
            except sqlite3.OperationalError:  # locked: another connection is writing
                mode = None
            if mode is None or str(mode[0]).lower() != "delete":
                raise StoreError(f"{self.safe_url} is in use: stop the daemon and every "
                                 "other swanwatch on it, then compact")  # fmt: skip
            try:
                raw.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
                raw.execute("VACUUM")
            finally:
                raw.execute("PRAGMA journal_mode=WAL")
        except (SQLAlchemyError, sqlite3.Error) as exc:
            raise StoreError(f"cannot compact {self.safe_url}: {exc}") from exc
        finally:
            raw.close()
        return before, Path(path).stat().st_size

    def revision(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
            except SQLAlchemyError:
                return None
        return str(row[0]) if row else None

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError:
            return False
        return True

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back when it raises."""
        with self.engine.begin() as conn:
            yield conn

    def _read(self) -> Connection:
        """A connection that only reads. On SQLite its transaction begins deferred, so it
        takes no write lock: in WAL mode readers and the writer do not wait for each
        other. Every other transaction begins IMMEDIATE and holds the write lock until it
        ends, a read's too: a correlation pass's read of a batch's signals (0.1 to 0.3 s)
        held up the other process's writes, and theirs its reads."""
        return self.engine.connect().execution_options(**{READS_ONLY: True})


_REVISION = re.compile(r"^(down_revision|revision)\s*(?::[^=]+)?=\s*(.+)$", re.MULTILINE)


@cache
def migrations_head() -> str | None:
    """The one head revision of the migrations, read from their files; None when there is
    not exactly one or a file does not say plainly (then Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        text_ = path.read_text(encoding="utf-8")
        found = {m.group(1): m.group(2) for m in _REVISION.finditer(text_)}
        if "revision" not in found:
            continue
        if not all(re.fullmatch(r"None|\"[\w-]+\"", v.strip()) for v in found.values()):
            return None
        revisions.add(found["revision"].strip().strip('"'))
        parents.add(found.get("down_revision", "None").strip().strip('"'))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def among(column: Any, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """``column IN values`` for a long list (a correlation batch's 20,000 account ids).

    On PostgreSQL the list is one array parameter (``column = ANY(%s)``): as an ``IN``
    list it was 20,000 bind parameters, each rendered with its cast, in a statement the
    driver then split: 1.6 s of a 100,000-account cycle's correlation. On SQLite the
    values (texts) are one JSON array parameter too, unpacked by ``json_each`` (``column
    IN (SELECT value FROM json_each(?))``, searched by the column's index as an ``IN``
    list is): SQLAlchemy expanded an ``IN`` list of 20,000 into as many parameters, 0.2
    CPU s a statement, four statements a batch."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY  # heavy: only when needed

        result: ColumnElement[bool] = column == any_(literal(list(values), ARRAY(column.type)))
        return result
    if dialect == "sqlite" and _json_each() and all(type(v) is str for v in values):
        each = func.json_each(literal(json.dumps(list(values)))).table_valued("value")
        listed: ColumnElement[bool] = column.in_(select(each.c.value))
        return listed
    found: ColumnElement[bool] = column.in_(list(values))
    return found


@cache
def _json_each() -> bool:
    """Whether this Python's SQLite has ``json_each`` (built in since SQLite 3.38)."""
    import sqlite3

    try:
        sqlite3.connect(":memory:").execute("SELECT value FROM json_each('[1]')").close()
    except sqlite3.Error:
        return False
    return True


def insert(conn: Connection, table: Table) -> Any:
    """An INSERT with ``on_conflict_do_*`` for the connection's backend."""
    return insert_on(conn.dialect.name, table)


def insert_on(dialect: str, table: Table) -> Any:
    """:func:`insert` for a backend by its dialect's name."""
    # Imported here: PostgreSQL's dialect is heavy, and a quick read never writes.
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table)
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table)
    raise StoreError(f"upserts are not supported on {dialect}; use SQLite or PostgreSQL")


#: The SET clause of an upsert, from the table's ``excluded`` row and the columns written.
Updates = Callable[[Any, tuple[str, ...]], dict[str, Any]]


def upsert(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: list[str],
    updates: Updates | None = None,
) -> None:
    """Insert ``rows``, updating those whose ``keys`` exist: one statement, compiled once
    and executed for all rows (executemany), not one statement per row or chunk.

    ``updates(excluded, columns)`` gives the SET clause; by default every non-key column
    written. The statement is built once for each table, columns, keys and ``updates``
    (a module's function, not a closure made per call): building it took three times as
    long as executing it, for a watcher's one-row records of its run (BENCHMARKS.md,
    Backtest).
    """
    if not rows:
        return
    stmt = _upsert(conn.dialect.name, table, tuple(rows[0]), tuple(keys), updates)
    conn.execute(stmt, list(rows))


@lru_cache(maxsize=256)
def _upsert(
    dialect: str,
    table: Table,
    columns: tuple[str, ...],
    keys: tuple[str, ...],
    updates: Updates | None,
) -> Any:
    stmt = insert_on(dialect, table)
    if updates is not None:
        set_ = updates(stmt.excluded, columns)
    else:
        set_ = {c: stmt.excluded[c] for c in columns if c not in keys}
    return stmt.on_conflict_do_update(index_elements=list(keys), set_=set_)


def execute_rows(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> int:
    """Execute ``stmt`` once for each of ``rows`` (its parameters by name) through the
    driver's executemany, each value bound by its parameter's type as SQLAlchemy binds it,
    without SQLAlchemy's handling of each row (a first correlation pass's 66,000 alerts
    and notifications took 2.4 s of cProfile to write this way, 3.5 s through
    SQLAlchemy's multi-row INSERTs: BENCHMARKS.md, Correlation). Returns the
    rows the statement changed, summed over ``rows`` by the driver (sqlite3 and psycopg 3
    both sum them). The statement has no RETURNING: executemany returns no rows."""
    if not rows:
        return 0
    dialect = conn.dialect
    compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
    binds = compiled.binds
    names = list(compiled.positiontup or ()) if compiled.positional else list(binds)
    processors = [_processor(binds[n].type, dialect) for n in names]
    bound = [(i, bind) for i, bind in enumerate(processors) if bind is not None]
    # The statement's own values (``version + 1``), and an INSERT's columns left out of
    # the rows, which take their Python-side defaults as they do there.
    fixed = {n: binds[n].effective_value for n in names if n not in rows[0]}
    for column in getattr(compiled, "insert_prefetch", ()):
        if column.default is None or not column.default.is_scalar:
            raise ValueError(f"no value for column {column.key}, and no constant default")
        fixed[column.key] = column.default.arg
    if fixed:
        rows = [fixed | dict(row) for row in rows]
    take = itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],)
    values: list[Any] = []
    for row in rows:
        value = take(row)
        if bound:
            listed = list(value)
            for i, bind in bound:
                listed[i] = bind(listed[i])
            value = tuple(listed)
        values.append(value)
    if not compiled.positional:
        values = [dict(zip(names, v, strict=True)) for v in values]
    result = conn.exec_driver_sql(compiled.string, values)
    return int(result.rowcount)


def driver_rows(conn: Connection, query: Any) -> list[Any]:
    """The rows of ``query`` as plain tuples of what the driver gives: executed as
    SQLAlchemy executes it (its parameters bound by their types), but read straight from
    the driver's cursor, without SQLAlchemy's work on each row (a ``Row`` made, each
    column's result processor run). For a bulk read whose columns the driver already
    gives as they are wanted (texts, numbers): a correlation pass reads a million
    signals, and their ``Row`` objects were about a seventh of that read's CPU time
    (BENCHMARKS.md, Correlation). A driver's error, met at the execution or while the
    rows are read, is raised as SQLAlchemy raises it."""
    result = conn.execute(query)
    try:
        return list(result.cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error as exc:  # SQLite meets some as it reads rows
        context = result.context
        raise DBAPIError.instance(
            context.statement, context.parameters, exc, conn.dialect.loaded_dbapi.Error
        ) from exc
    finally:
        result.close()


def _processor(kind: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """The bind processor of a type on ``dialect``; for instants, remembering each value's
    (the rows of one write share a few: now, the day)."""
    bind: Callable[[Any], Any] | None = kind.dialect_impl(dialect).bind_processor(dialect)
    if bind is None or not isinstance(getattr(kind, "impl_instance", kind), DateTime):
        return bind
    seen: dict[Any, Any] = {}

    def remembered(value: Any) -> Any:
        try:
            return seen[value]
        except KeyError:
            out = seen[value] = bind(value)
            return out

    return remembered


def chunks(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def make_engine(url: str, *, scratch: bool = False) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with BEGIN IMMEDIATE, PostgreSQL pooled.

    ``scratch``: a store thrown away after use (a replay's temporary SQLite file), its
    connections kept open between transactions and never synced to disk.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, parsed.database or "", scratch)
    if parsed.get_backend_name() == "postgresql":
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: str, database: str, scratch: bool = False) -> Engine:
    if database and database != ":memory:":
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": WRITE_WAIT_S, "check_same_thread": False}
    if scratch:  # a pool: opening a connection (and closing the last) costs more than a step
        engine = create_engine(url, pool_size=4, max_overflow=4, connect_args=connect_args)
    else:
        engine = create_engine(url, poolclass=NullPool, connect_args=connect_args)
    synchronous = "OFF" if scratch else "NORMAL"
    # Told each time a connection goes back to the pool (a transaction of this process
    # ended): a writer of this process waiting for the write lock tries again at once.
    freed = threading.Condition()

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        # Before WAL: only a new, empty file takes it (an older store keeps its pages
        # until `swanwatch db compact`).
        cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute(f"PRAGMA busy_timeout={int(WRITE_WAIT_S * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if conn.get_execution_options().get(READS_ONLY):
            conn.exec_driver_sql("BEGIN")  # deferred: no write lock (see StoreBase._read)
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None  # a connection in use has one
        raw.execute("PRAGMA busy_timeout=0")
        try:
            if not _write_lock(raw, WRITE_WAIT_S, freed):  # again, failing as SQLAlchemy says
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        finally:
            raw.execute(f"PRAGMA busy_timeout={int(WRITE_WAIT_S * 1000)}")

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, _record: Any) -> None:
        with freed:
            freed.notify_all()

    return engine


#: The page size of a new SQLite store: SQLite's default is 4 KiB. A correlation pass
#: reads a million signals and writes alerts and notifications of a few KiB each; in
#: pages four times larger, a first pass over 100,000 accounts spent 28% less time in the
#: kernel (5.5 s, not 7.7) and took 3% less wall time (BENCHMARKS.md, Correlation).
SQLITE_PAGE_SIZE = 16384
#: How long a SQLite writer waits for the write lock before it fails ("database is
#: locked"); the busy timeout of every other statement too.
WRITE_WAIT_S = 30.0
#: The longest pause between two tries for the write lock.
_LOCK_POLL_S = 0.005


def _write_lock(raw: Any, wait_s: float, freed: threading.Condition) -> bool:
    """``BEGIN IMMEDIATE`` on a SQLite connection whose busy timeout is off, tried again
    until it takes the write lock (True), or ``wait_s`` has passed or it failed otherwise
    (False: a read-only database, say). Between tries it waits at most 5 ms, less when
    ``freed`` is told that a transaction of this process ended.

    SQLite's own busy handler pauses up to 100 ms between tries: with two processes
    writing a pass's batches (a transaction of about half a second each), the one waiting
    woke on average 50 ms after the lock was free, a second of a 14 s pass over 100,000
    accounts. Within one process (watchers storing their runs at once) a writer wakes
    when the other's connection is given back: a replay's 400 accounts over 180 days
    waited 2.5 s in 531 pauses, and took 3% longer (BENCHMARKS.md, Backtest)."""
    import sqlite3

    deadline = time.monotonic() + wait_s
    pause = 0.0002
    while True:
        try:
            raw.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # busy: wait; else let SQLAlchemy raise it
            if "locked" not in str(exc) and "busy" not in str(exc):
                return False
        else:
            return True
        if time.monotonic() >= deadline:
            return False
        with freed:
            freed.wait(pause)
        pause = min(pause * 2, _LOCK_POLL_S)
