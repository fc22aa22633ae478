"""Leadership among replicas that share one store: only the leader runs watchers.

PostgreSQL: the leader holds a session advisory lock on a dedicated connection, made so
that a dead, cut-off or frozen leader cannot keep it and two leaders cannot write at once:

- The lock connection has TCP keepalives and ``tcp_user_timeout`` on both ends (libpq's
  ``keepalives_*`` and the server's ``tcp_keepalives_*``, ``client_connection_check_interval``),
  so the database drops the session of a host that went away within seconds.
- Every use of it (campaign, the check before each run) runs under a statement timeout and
  a client-side deadline that cuts the socket: a frozen connection answers "lost" in time.
- The leader renews a lease (``leadership.renewed_at``, on the database's clock) at each
  check. A standby that finds the lock held but the lease expired terminates the holder's
  sessions and takes over: this frees a lock that TCP alone would keep (a peer whose kernel
  still answers while the process or the path beyond it is stuck).
- Each acquisition increments an epoch and ends the previous holder's sessions. Leader-only
  work runs inside :meth:`Leadership.fenced`: each transaction it begins first reads the
  epoch ``FOR SHARE`` and fails with :class:`LeadershipLost` when it moved on, so a deposed
  leader's late write is refused rather than landing beside the new leader's.
- Every connection of the store carries ``application_name`` "swanwatch <replica id>".

SQLite (one machine): an exclusive lock on a file beside the database; the epoch and the
fence work the same way (BEGIN IMMEDIATE makes the check and the write one).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from swanwatch.errors import LeadershipLost, StoreError
from swanwatch.store.health import first_line

log = logging.getLogger("swanwatch.leader")

#: The advisory lock key: the same for every replica of one store (fits in 32 bits, so
#: pg_locks shows it as classid 0, objid LEADER_LOCK).
LEADER_LOCK = 0x5357_4C44
#: Environment variable that names this replica (default: host name and process id).
REPLICA_ENV = "SWANWATCH_REPLICA"

_NAMED: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()
_FENCE: ContextVar[int | None] = ContextVar("swanwatch_leader_epoch", default=None)
_HELD = (
    "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
    "AND objid::bigint = :k AND objsubid = 1 AND granted AND pid = pg_backend_pid())"
)
_TAKEN = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
    "AND objid::bigint = :k AND objsubid = 1 AND granted AND pid <> pg_backend_pid() "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def default_replica() -> str:
    """This process's name among the replicas: ``$SWANWATCH_REPLICA`` or host:pid."""
    return os.environ.get(REPLICA_ENV) or f"{socket.gethostname()}:{os.getpid()}"


def application_name(replica: str) -> str:
    """The ``application_name`` of this replica's connections (PostgreSQL keeps 63 bytes)."""
    return f"swanwatch {replica}".encode()[:63].decode("utf-8", "ignore")


def _keepalives(timeout_s: float) -> dict[str, Any]:
    """libpq connection parameters: detect a dead peer within about ``timeout_s``."""
    idle = max(1, int(timeout_s / 3))
    return {
        "keepalives": 1,
        "keepalives_idle": idle,
        "keepalives_interval": max(1, idle // 2),
        "keepalives_count": 3,
        "tcp_user_timeout": int(timeout_s * 1000),
        "connect_timeout": max(2, int(timeout_s)),
    }


def _is_libpq(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql" and engine.dialect.driver in ("psycopg", "psycopg2")


def _check_fence(conn: Connection) -> None:
    """On every transaction of the store while fenced: the epoch must still be ours."""
    epoch = _FENCE.get()
    if epoch is None:
        return
    lock = " FOR SHARE" if conn.dialect.name == "postgresql" else ""
    current = conn.exec_driver_sql(
        f"SELECT epoch FROM leadership WHERE name = 'leader'{lock}"
    ).scalar()
    if current != epoch:
        raise LeadershipLost(
            f"leader-only write refused: this replica led in epoch {epoch}, the store is at "
            f"epoch {current}; another replica leads now"
        )


def prepare_store_engine(engine: Engine, replica: str) -> None:
    """Name the store's connections after the replica, give them keepalives, fence them.

    Idempotent. Pooled connections opened before are dropped, so every one is named.
    """
    if not event.contains(engine, "begin", _check_fence):
        event.listen(engine, "begin", _check_fence)
    if not _is_libpq(engine) or _NAMED.get(engine) == replica:
        return
    _NAMED[engine] = replica
    params = {"application_name": application_name(replica), **_keepalives(30.0)}
    params.pop("connect_timeout")

    @event.listens_for(engine, "do_connect")
    def _named(_dialect: Any, _record: Any, _cargs: Any, cparams: dict[str, Any]) -> None:
        for key, value in params.items():
            cparams.setdefault(key, value)

    engine.dispose()


class _Deadline:
    """Cuts a connection's socket when a call on it takes longer than ``seconds``: the
    blocked call then fails at once instead of waiting on a frozen peer."""

    def __init__(self, conn: Connection, seconds: float) -> None:
        self.fd = int(conn.connection.dbapi_connection.fileno())  # type: ignore[union-attr]
        self.seconds = seconds
        self.fired = False
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._cut)
        self._timer.daemon = True

    def _cut(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(OSError):
                sock = socket.socket(fileno=os.dup(self.fd))
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                finally:
                    sock.close()

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()


class Leadership:
    """Campaign for leadership, confirm it before leader-only work, fence that work, step down.

    ``lease_s``: how long a leader that stopped renewing keeps the lock before a standby
    takes it (PostgreSQL). Each call on the lock connection must answer within a third of it.
    """

    def __init__(
        self, engine: Engine, url: str, *, replica: str | None = None, lease_s: float = 15.0
    ) -> None:
        self.engine = engine
        self.url = url
        self.replica = replica or default_replica()
        self.name = application_name(self.replica)
        self.set_lease(lease_s)
        self.epoch: int | None = None
        self._conn: Connection | None = None
        self._file: IO[bytes] | None = None
        self._lock_engine: Engine | None = None
        prepare_store_engine(engine, self.replica)

    def set_lease(self, lease_s: float) -> None:
        """The lease, and the deadline of each call on the lock connection (a third of it);
        a new lock connection is opened with them at the next campaign."""
        self.lease_s = lease_s
        self.timeout_s = max(1.0, lease_s / 3)
        engine = getattr(self, "_lock_engine", None)
        if engine is not None and self._conn is None:
            engine.dispose()
            self._lock_engine = None

    @property
    def held(self) -> bool:
        return self._conn is not None or self._file is not None

    def try_acquire(self) -> bool:
        """Become the leader if nobody is (or the leader's lease expired); True when this
        process leads now, False when another replica does. A leader confirms (and
        renews) its lock instead.

        Raises :class:`StoreError` when the store does not answer in time: then nobody
        here knows who leads.
        """
        if self.held:
            return self.confirm()
        if self.engine.dialect.name == "postgresql":
            return self._try_postgres()
        return self._try_file()

    def confirm(self) -> bool:
        """True while this replica still holds the lock in its epoch; renews the lease.

        Answers within ``timeout_s``: a connection that does not is cut and counts as lost.
        """
        if self._conn is not None:
            deadline = _Deadline(self._conn, self.timeout_s)
            try:
                with deadline:
                    ok = self._conn.execute(
                        text(
                            "UPDATE leadership SET renewed_at = clock_timestamp() "
                            "WHERE name = 'lease' AND holder = :me AND (SELECT epoch FROM "
                            f"leadership WHERE name = 'leader') = :epoch AND {_HELD} RETURNING 1"
                        ),
                        {"me": self.name, "epoch": self.epoch, "k": LEADER_LOCK},
                    ).first()
            except SQLAlchemyError as exc:
                why = f"no answer within {self.timeout_s:g} s" if deadline.fired else str(exc)
                log.warning("cannot confirm the leader lock: %s", why.splitlines()[0])
                self._drop_connection()
                return False
            if ok is None:
                log.warning("the leader lock or epoch %s is no longer ours", self.epoch)
                self._drop_connection()
            return ok is not None
        if self._file is not None:
            return self._read_epoch() == self.epoch
        return False

    @contextlib.contextmanager
    def fenced(self) -> Iterator[int]:
        """Within the block (and the threads it starts with asyncio.to_thread), every
        transaction on the store checks that this replica's epoch is still current."""
        if self.epoch is None or not self.held:
            raise LeadershipLost("this replica does not lead: leader-only work refused")
        token = _FENCE.set(self.epoch)
        try:
            yield self.epoch
        finally:
            _FENCE.reset(token)

    def release(self) -> None:
        if self._conn is not None:
            # Closing the connection below frees the lock even if the unlock fails.
            with contextlib.suppress(SQLAlchemyError), _Deadline(self._conn, self.timeout_s):
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LEADER_LOCK})
            self._drop_connection()
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        self.epoch = None
        if self._lock_engine is not None:
            self._lock_engine.dispose()
            self._lock_engine = None

    # --- PostgreSQL ---------------------------------------------------------------------

    def _lock_connection(self) -> Connection:
        if self._lock_engine is None:
            args = {"application_name": self.name, **_keepalives(self.timeout_s)}
            self._lock_engine = create_engine(
                self.url,
                poolclass=NullPool,
                connect_args=args if _is_libpq(self.engine) else {},
                isolation_level="AUTOCOMMIT",
            )
        conn = self._lock_engine.connect()
        ms = int(self.timeout_s * 1000)
        settings = {
            "statement_timeout": ms,
            "lock_timeout": ms,
            "tcp_keepalives_idle": max(1, ms // 3000),
            "tcp_keepalives_interval": max(1, ms // 6000),
            "tcp_keepalives_count": 3,
            "tcp_user_timeout": ms,
            "client_connection_check_interval": max(1000, ms // 3),  # PostgreSQL 14 and later
        }
        with _Deadline(conn, self.timeout_s):
            for name, value in settings.items():
                try:
                    conn.execute(
                        text("SELECT set_config(:n, :v, false)"), {"n": name, "v": str(value)}
                    )
                except SQLAlchemyError as exc:
                    log.debug("lock connection: %s not set: %s", name, exc)
        return conn

    def _try_postgres(self) -> bool:
        try:
            conn = self._lock_connection()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot reach the store to campaign for leadership: {first_line(exc)}"
            ) from exc
        try:
            with _Deadline(conn, self.timeout_s * 2):
                got = self._lock(conn) or (self._expired(conn) and self._take_over(conn))
                if got:
                    self.epoch = self._claim(conn)
        except SQLAlchemyError as exc:
            conn.invalidate()
            conn.close()
            raise StoreError(f"the leader campaign failed: {first_line(exc)}") from exc
        if not got:
            conn.close()
            return False
        self._conn = conn
        return True

    @staticmethod
    def _lock(conn: Connection) -> bool:
        query = text("SELECT pg_try_advisory_lock(:k)")
        return bool(conn.execute(query, {"k": LEADER_LOCK}).scalar())

    def _expired(self, conn: Connection) -> bool:
        """The lock is held, but its holder has not renewed the lease in ``lease_s``."""
        row = conn.execute(
            text(
                "SELECT holder FROM leadership WHERE name = 'lease' AND (renewed_at IS NULL "
                "OR clock_timestamp() - renewed_at > make_interval(secs => :lease))"
            ),
            {"lease": self.lease_s},
        ).first()
        if row is None:
            return False
        log.warning(
            "leader %s has not renewed its lease for over %g s: taking over", row[0], self.lease_s
        )
        return True

    def _take_over(self, conn: Connection) -> bool:
        """End the sessions that hold the lock, then take it (within a few seconds)."""
        for (pid,) in conn.execute(text(_TAKEN), {"k": LEADER_LOCK}).all():
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._lock(conn):
                return True
            time.sleep(0.1)
        return False

    def _claim(self, conn: Connection) -> int:
        """Start a new epoch: end the previous holder's sessions (so none of its
        transactions can still commit), then increment the epoch and take the lease."""
        previous = conn.execute(
            text("SELECT holder FROM leadership WHERE name = 'leader'")
        ).scalar()
        if previous and previous != self.name:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                    "application_name = :old AND datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ),
                {"old": previous},
            )
        epoch = conn.execute(
            text(
                "WITH e AS (UPDATE leadership SET epoch = epoch + 1, holder = :me "
                "WHERE name = 'leader' RETURNING epoch), "
                "l AS (UPDATE leadership SET holder = :me, renewed_at = clock_timestamp() "
                "WHERE name = 'lease') SELECT epoch FROM e"
            ),
            {"me": self.name},
        ).scalar()
        return int(epoch or 0)

    def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._conn.invalidate()
                self._conn.close()
            self._conn = None
        self.epoch = None

    # --- SQLite: a file lock ------------------------------------------------------------

    def _try_file(self) -> bool:
        database = make_url(self.url).database or ""
        if not database or database == ":memory:":
            handle: IO[bytes] = open(os.devnull, "rb")  # noqa: SIM115 (held open while leading)
        else:
            path = Path(database).expanduser().with_suffix(Path(database).suffix + ".leader")
            handle = open(path, "ab")  # noqa: SIM115 (held open while leading)
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                return False
        with self.engine.begin() as conn:
            conn.execute(
                text("UPDATE leadership SET epoch = epoch + 1, holder = :me WHERE name = 'leader'"),
                {"me": self.name},
            )
            self.epoch = int(
                conn.execute(text("SELECT epoch FROM leadership WHERE name = 'leader'")).scalar()
                or 0
            )
        self._file = handle
        return True

    def _read_epoch(self) -> int | None:
        try:
            with self.engine.connect() as conn:
                value = conn.execute(
                    text("SELECT epoch FROM leadership WHERE name = 'leader'")
                ).scalar()
        except SQLAlchemyError as exc:
            log.warning("cannot confirm the leader epoch: %s", first_line(exc))
            return None
        return None if value is None else int(value)
