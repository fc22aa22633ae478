"""The query canceller stops a statement whenever the read is abandoned: before the
statement starts, while it is about to start, or while it runs (a loaded machine can fire
the watcher's timeout at any of those moments)."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from swanwatch.sources.threads import QueryCanceller, ReadAbandoned

ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"


def test_a_read_abandoned_before_its_statement_never_starts_it() -> None:
    canceller = QueryCanceller()
    assert canceller.cancel() is False  # nothing runs yet
    connection = sqlite3.connect(":memory:")
    with pytest.raises(ReadAbandoned):
        canceller.running(connection)
    connection.close()


def endless_read(
    connection: sqlite3.Connection, canceller: QueryCanceller
) -> tuple[threading.Thread, list[BaseException]]:
    """The endless query on a thread of its own (as a read runs), registered first; returns
    the thread and, once it ends, what stopped it."""
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            connection.execute(ENDLESS).fetchall()
        except sqlite3.OperationalError as exc:
            outcome.append(exc)
        finally:
            canceller.running(None)

    return threading.Thread(target=read, daemon=True), outcome


def test_a_cancel_asked_just_before_the_statement_starts_still_stops_it() -> None:
    """SQLite takes an interrupt on an idle connection as a no-op: the canceller asks
    again until the read reports the statement over, so the endless query ends."""
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    canceller = QueryCanceller()
    canceller.running(connection)
    assert canceller.cancel() is True  # registered, but the statement has not started
    reader, outcome = endless_read(connection, canceller)
    reader.start()
    reader.join(120)
    assert not reader.is_alive(), "the statement was never stopped"
    assert outcome and "interrupted" in str(outcome[0])
    connection.close()


def test_a_cancel_stops_a_statement_running_in_another_thread() -> None:
    connection = sqlite3.connect(":memory:", check_same_thread=False)
    canceller = QueryCanceller()
    canceller.running(connection)
    reader, outcome = endless_read(connection, canceller)
    reader.start()
    assert canceller.cancel() is True
    reader.join(120)
    assert not reader.is_alive(), "the statement was never stopped"
    assert outcome and "interrupted" in str(outcome[0])
    connection.close()
