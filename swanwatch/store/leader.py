"""Leadership among replicas that share one store: only the leader runs watchers.

On PostgreSQL the leader holds a session advisory lock on a dedicated connection: when the
process dies, its connection closes and the lock is free for the next replica at once. On
SQLite (one machine) the leader holds an exclusive lock on a file beside the database.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("swanwatch.leader")

#: The advisory lock key: the same for every replica of one store.
LEADER_LOCK = 0x5357_4C44


class Leadership:
    """Try to become the leader, check that it still is, and step down."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def try_acquire(self) -> bool:
        """Become the leader if nobody is; True when this process leads now."""
        if self.held:
            return self.check()
        if self.engine.dialect.name == "postgresql":
            return self._try_postgres()
        return self._try_file()

    def check(self) -> bool:
        """True while the lock is still held (a dropped connection loses it)."""
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT 1"))
                self._conn.commit()
            except SQLAlchemyError as exc:
                log.warning("lost the leader lock's connection: %s", exc)
                self._drop_connection()
                return False
            return True
        return self._file is not None

    def release(self) -> None:
        if self._conn is not None:
            # Closing the connection below frees the lock even if the unlock fails.
            with contextlib.suppress(SQLAlchemyError):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
            self._drop_connection()
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def _try_postgres(self) -> bool:
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            log.warning("cannot reach the store to campaign for leadership: %s", exc)
            return False
        try:
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": LEADER_LOCK}).scalar()
            )
            conn.commit()
        except SQLAlchemyError as exc:
            log.warning("leader campaign failed: %s", exc)
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None

    def _try_file(self) -> bool:
        database = make_url(self.url).database or ""
        if not database or database == ":memory:":
            self._file = open(os.devnull, "rb")  # noqa: SIM115 (held open while leading)
            return True
        path = Path(database).expanduser().with_suffix(Path(database).suffix + ".leader")
        handle = open(path, "ab")  # noqa: SIM115 (held open while leading)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True
