"""Forcing a race instead of hoping for one: hold whoever reads the alerts first right
after that read, while the test acts, then let it go on."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from swanwatch.store import Store

#: How long a held pass, or an acting thread, may take before the test fails.
DEADLINE_S = 120.0


class Gate:
    """Holds whoever reads the alerts first (a correlation pass, a person's action) right
    after that read, until ``released`` is set.

    The first statement that reads the alerts marks its thread; when that thread next
    hands a connection back (its read is over, no lock is held), it waits there.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.read = threading.Event()
        self.released = threading.Event()
        self.pass_thread: int | None = None
        self.held = False

    def _statement(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.pass_thread is None and "FROM alerts" in statement:
            self.pass_thread = threading.get_ident()

    def _checkin(self, *_args: Any) -> None:
        if self.held or threading.get_ident() != self.pass_thread:
            return
        self.held = True
        self.read.set()
        if not self.released.wait(DEADLINE_S):
            raise AssertionError("the held correlation pass was never let go")

    @contextmanager
    def installed(self) -> Iterator[Gate]:
        engine = self.store.engine
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine.pool, "checkin", self._checkin)
        try:
            yield self
        finally:
            self.released.set()
            event.remove(engine, "before_cursor_execute", self._statement)
            event.remove(engine.pool, "checkin", self._checkin)
