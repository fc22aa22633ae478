"""The alerts of a SQLite store read with the standard library alone, for ``swanwatch
alerts list``: the command a CSM types most, and the one they wait for.

Importing SQLAlchemy cost that command about half its time (0.694 s with it, 0.342 s
without, on one host: BENCHMARKS.md, Start-up), so on a plain SQLite file the alerts are
read with :mod:`sqlite3` and validated from their JSON text as :class:`AlertsStore` reads
them in a pass. It only ever answers the simple case, a store at a plain path holding the schema
and rows it can read; for anything else (no file yet, another URL, a driver error, a
store an older release made) it answers None and the command reads through
:class:`~swanwatch.store.alerts.AlertsStore`, which says what is wrong. The two read the
same rows into the same alerts, in the same order (tests/test_store_quick.py).
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from swanwatch.model import Alert, AlertState

log = logging.getLogger("swanwatch.store")

#: The alert columns stored as JSON (their text goes into the alert's JSON as it is).
ALERT_JSON = frozenset(
    {"contributions", "why_now", "play", "at_stake", "notified_signals", "reasons"}
)
#: The alert columns that hold instants (SQLite keeps them as UTC text without offset).
ALERT_TIMES = frozenset(
    {
        "started_at",
        "updated_at",
        "resolved_at",
        "clear_since",
        "snoozed_until",
        "last_notified_at",
    }
)
#: Columns of the table that are not fields of the alert.
NOT_FIELDS = frozenset({"facts_digest"})

#: A plain SQLite URL: a file path, with no query (options) and nothing to unquote.
_PLAIN = re.compile(r"sqlite:///([^?#%]+)")


def json_as_is(value: Any) -> str:
    """A JSON column's text (or an integer) as it goes into its alert's JSON."""
    return str(value)


def sqlite_instant(value: Any) -> str:
    """An instant as SQLite keeps it (UTC text without offset) as JSON text."""
    return f'"{value}"'


def _scalar(value: Any) -> str:
    """A text or a number as JSON."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return str(value)
    if kind is float:
        return repr(value)
    raise ValueError(f"an alert column holds a {kind.__name__}")


def plain_sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///PATH`` URL with no options; None for any other URL."""
    found = _PLAIN.fullmatch(url)
    if found is None or found.group(1) == ":memory:":
        return None
    return Path(found.group(1))


def quick_alerts(url: str, *, open_only: bool) -> list[Alert] | None:
    """The alerts in the store at ``url`` (``open_only``: not resolved), in the order
    :meth:`AlertsStore.alerts` gives them; None when this reader does not answer (see the
    module's doc): then ask the store itself."""
    path = plain_sqlite_file(url)
    if path is None or not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
    except sqlite3.Error:
        return None
    try:
        return _read(conn, open_only)
    except (sqlite3.Error, ValueError) as exc:
        # No schema yet, an older one, a broken file: the store says which. Said here
        # too, for whoever wonders why the command is slow.
        log.debug("alerts read through the store, not quickly: %s", exc)
        return None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, open_only: bool) -> list[Alert] | None:
    if conn.execute("SELECT version_num FROM alembic_version").fetchone() is None:
        return None
    where = "WHERE state != ? " if open_only else ""
    cursor = conn.execute(
        f"SELECT * FROM alerts {where}ORDER BY score DESC, account_id, rule",
        (AlertState.RESOLVED.value,) if open_only else (),
    )
    names = [d[0] for d in cursor.description]
    if Alert.model_fields.keys() - set(names):
        return None  # a schema an older release made: the store says to upgrade it
    keep = [i for i, name in enumerate(names) if name not in NOT_FIELDS]
    encode = [(f'"{names[i]}":', _encoder(names[i])) for i in keep]
    validate = Alert.model_validate_json
    return [validate(alert_json([row[i] for i in keep], encode)) for row in cursor]


def _encoder(column: str) -> Callable[[Any], str]:
    """How a value (not None) of ``column`` is written into its alert's JSON."""
    if column in ALERT_JSON:
        return json_as_is
    return sqlite_instant if column in ALERT_TIMES else _scalar


def alert_json(values: Sequence[Any], encode: Sequence[tuple[str, Callable[[Any], str]]]) -> str:
    """A row of the alerts table as the JSON text of its alert, each value (not None)
    written by its column's encoder (``"key":`` and how); a SQL NULL as null. Here, not
    beside :class:`AlertsStore`, so that this module needs no SQLAlchemy; the store's
    reads in a pass use it too."""
    parts = [
        key + ("null" if value is None else write(value))
        for (key, write), value in zip(encode, values, strict=True)
    ]
    return "{" + ",".join(parts) + "}"
