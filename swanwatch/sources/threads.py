"""Blocking reads that can be abandoned: a daemon thread per read, and a query canceller.

A database driver blocks its thread until the server answers. The sql source runs each read
on a :class:`ReadThread` of its own (a daemon thread: one stuck in a driver never keeps the
process from exiting), and when the read is abandoned (the watcher's timeout, a shutdown)
it asks the database to stop the statement through a :class:`QueryCanceller`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger("swanwatch.sources")

T = TypeVar("T")

#: How long a cancel request may take before it is left to itself (it runs in its own
#: daemon thread, so it never blocks the read that asked for it).
CANCEL_TIMEOUT_S = 5.0
#: How often a cancel is asked again while the statement has not ended, and when to stop.
CANCEL_REPEAT_S = 0.25
CANCEL_GIVE_UP_S = 600.0


class ReadThread:
    """One daemon thread that runs calls in order, for one read (some drivers, sqlite3
    among them, tie a connection to the thread that opened it)."""

    def __init__(self, name: str) -> None:
        self._calls: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
        """Run ``fn(*args)`` on the thread (in a copy of the caller's context)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put((fn, args, future, loop, contextvars.copy_context()))
        return future

    def stop(self) -> None:
        """Let the thread end once the calls already given have run."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            fn, args, future, loop, context = item
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # handed to the awaiting task, raised there
                _settle(loop, future, None, exc)
            else:
                _settle(loop, future, result, None)


def _settle(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Any],
    result: object,
    error: BaseException | None,
) -> None:
    def done() -> None:
        if future.done():
            return  # the awaiting task gave up on it
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    # The event loop may have closed: nobody is waiting any more.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(done)


class ReadAbandoned(Exception):
    """Raised in a read's thread when its statement would start after the read was
    abandoned: nobody waits for the rows, so the statement never runs."""


class QueryCanceller:
    """Holds the DBAPI connection of the statement running, to cancel it from elsewhere:
    ``cancel_safe()`` or ``cancel()`` (PostgreSQL drivers), ``interrupt()`` (sqlite3).

    A cancel is sticky. A read abandoned before its statement starts never starts it
    (:meth:`running` raises :class:`ReadAbandoned`), and one abandoned while the statement
    is about to start, when the database would take the request as a no-op (an idle
    connection has nothing to cancel), is asked again every ``CANCEL_REPEAT_S`` until the
    read's thread reports the statement over. On a loaded machine the watcher's timeout can
    fire at any point of the read, so no single moment may be the one that counts.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self._cancelled = False
        self._over = threading.Event()

    def running(self, dbapi_connection: Any) -> None:
        """The statement about to run is on this connection (None: none runs any more).

        Raises :class:`ReadAbandoned` when the read was cancelled before it started."""
        with self._lock:
            if dbapi_connection is not None and self._cancelled:
                raise ReadAbandoned("the read was abandoned before its statement started")
            self._connection = dbapi_connection
            if dbapi_connection is None:
                self._over.set()

    def cancel(self) -> bool:
        """Ask the database to stop the running statement; True when there was one."""
        with self._lock:
            self._cancelled = True
            connection = self._connection
        if connection is None:
            return False
        for name in ("cancel_safe", "cancel", "interrupt"):
            method = getattr(connection, name, None)
            if callable(method):
                threading.Thread(
                    target=self._keep_cancelling,
                    args=(method, name),
                    name="swanwatch-cancel",
                    daemon=True,
                ).start()
                return True
        log.warning("the database driver cannot cancel a running statement")
        return False

    def _keep_cancelling(self, method: Callable[..., object], name: str) -> None:
        """Repeat the request until the statement is over (or ``CANCEL_GIVE_UP_S`` passed)."""
        for _ in range(int(CANCEL_GIVE_UP_S / CANCEL_REPEAT_S)):
            _cancel(method, name)
            if self._over.wait(CANCEL_REPEAT_S):
                return
        log.warning("a cancelled statement still runs after %g s", CANCEL_GIVE_UP_S)


def _cancel(method: Callable[..., object], name: str) -> None:
    try:
        if name == "cancel_safe":
            method(timeout=CANCEL_TIMEOUT_S)
        else:
            method()
    except Exception as exc:  # the statement may have ended meanwhile
        log.info("cancelling a running statement: %s", exc)
