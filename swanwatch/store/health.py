"""The store's health, for ops: can it be opened, written, and how far behind is the outbox.

``preflight`` runs before the daemon opens the store, so that the usual mistakes (a folder
it cannot write, a database not in UTF8) end in one line rather than a traceback.
``write_probe`` is readiness: a write in a transaction that is rolled back, since a store
that answers SELECT 1 may still refuse every write (read-only, full, corrupted).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from swanwatch.clock import ensure_utc
from swanwatch.errors import StoreError
from swanwatch.model import NotificationStatus
from swanwatch.store.core_tables import NOTIFICATIONS


def first_line(exc: BaseException) -> str:
    """An error's first line (SQLAlchemy's carry the statement and a link below it)."""
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def preflight(url: str) -> None:
    """Raise :class:`StoreError` with one line when the store cannot be used as it is."""
    parsed = make_url(url)
    safe = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        _sqlite_preflight(parsed.database or "")
        return
    if parsed.get_backend_name() != "postgresql":
        return
    engine = create_engine(url, poolclass=NullPool, connect_args=_connect_timeout(url))
    try:
        with engine.connect() as conn:
            encoding = conn.execute(
                text(
                    "SELECT pg_encoding_to_char(encoding) FROM pg_database "
                    "WHERE datname = current_database()"
                )
            ).scalar()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot connect to the store at {safe}: {first_line(exc)}") from exc
    finally:
        engine.dispose()
    if encoding != "UTF8":
        raise StoreError(
            f"the database at {safe} is encoded {encoding}, not UTF8: create it with "
            "`CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0` and point store.url there"
        )


def _connect_timeout(url: str) -> dict[str, int]:
    driver = make_url(url).get_driver_name()
    return {"connect_timeout": 10} if driver in ("psycopg", "psycopg2") else {}


def _sqlite_preflight(database: str) -> None:
    if not database or database == ":memory:":
        return
    path = Path(database).expanduser()
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store's folder {folder}: {exc.strerror}; create it or set "
            "store.url to a writable place"
        ) from exc
    # WAL mode writes <db>-wal and <db>-shm beside the file: the folder must be writable.
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StoreError(
            f"the store's folder {folder} is not writable by this user (uid {os.getuid()}); "
            "fix its permissions or set store.url to a writable place"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StoreError(
            f"the store {path} is not readable and writable by this user (uid {os.getuid()}); "
            "fix its permissions"
        )


def write_probe(engine: Engine, replica: str) -> str | None:
    """None when the store takes a write; otherwise why not (one line). Nothing is kept."""
    try:
        with engine.connect() as conn:
            trans = conn.begin()
            try:
                conn.execute(
                    text("INSERT INTO leadership (name, epoch, holder) VALUES (:n, 0, :h)"),
                    {"n": f"probe:{os.getpid()}"[:32], "h": replica[:200]},
                )
            finally:
                trans.rollback()
    except SQLAlchemyError as exc:
        return f"the store refuses writes: {first_line(exc)}"
    return None


def oldest_due_at(engine: Engine, now: datetime) -> datetime | None:
    """When the longest-waiting pending notification fell due (None when none is due)."""
    table = NOTIFICATIONS
    query = select(func.min(table.c.next_attempt_at)).where(
        table.c.status == NotificationStatus.PENDING.value, table.c.next_attempt_at <= now
    )
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    return ensure_utc(value) if value is not None else None


def existing_revision(url: str) -> str | None:
    """The schema revision of the store at ``url``, opened read-only and changed in no way:
    None when there is no store there yet (no SQLite file, no schema in the database).
    StoreError when the database cannot be reached."""
    parsed = make_url(url)
    safe = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or database == ":memory:" or not Path(database).expanduser().exists():
            return None
        path = Path(database).expanduser().resolve()
        engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)
    else:
        engine = create_engine(url, poolclass=NullPool, connect_args=_connect_timeout(url))
    try:
        with engine.connect() as conn:
            try:
                return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            except SQLAlchemyError:
                return None  # the database answers, but holds no Swanwatch schema yet
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot open the store at {safe}: {first_line(exc)}") from exc
    finally:
        engine.dispose()
