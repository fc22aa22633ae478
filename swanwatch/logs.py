"""Logging: one JSON object per line off a terminal, readable lines on one.

Every record carries its time in UTC, level, logger and message, and the ids in scope:
``replica``, ``watcher``, ``account``, ``alert`` (set with :func:`log_context` around the
work, or passed as ``extra={"alert": ...}``). A traceback is one field, ``exc``, never
extra lines. uvicorn, APScheduler and every other library log through the same handler.

The format is ``logging.format`` in the config (``auto``: JSON unless standard error is a
terminal; ``json``; ``text``), or ``$SWANWATCH_LOG_FORMAT``; the level ``--log-level``,
``$SWANWATCH_LOG_LEVEL`` or ``logging.level``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any, Literal

LogFormat = Literal["auto", "json", "text"]

#: The ids a record carries when known, in this order.
CONTEXT_FIELDS = ("replica", "watcher", "account", "alert")
FORMAT_ENV = "SWANWATCH_LOG_FORMAT"

_CONTEXT: ContextVar[Mapping[str, str] | None] = ContextVar("swanwatch_log_context", default=None)
_PROCESS: dict[str, str] = {}
# Record attributes that are not extras (uvicorn's color_message repeats the message).
_STANDARD = set(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
_QUIET = ("httpx", "httpcore", "apscheduler", "alembic", "uvicorn", "asyncio")


class _State:
    explicit_level: str | None = None
    default_level = "WARNING"


@contextmanager
def log_context(**ids: str | None) -> Iterator[None]:
    """Within the block (and the tasks and threads it starts), records carry these ids."""
    merged = {**(_CONTEXT.get() or {}), **{k: v for k, v in ids.items() if v is not None}}
    token = _CONTEXT.set(merged)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def set_process_ids(**ids: str) -> None:
    """Ids every record of this process carries (the replica)."""
    _PROCESS.update(ids)


def _ids(record: logging.LogRecord) -> dict[str, str]:
    found = {**_PROCESS, **(_CONTEXT.get() or {})}
    for name in CONTEXT_FIELDS:
        value = record.__dict__.get(name)
        if value is not None:
            found[name] = str(value)
    return {k: found[k] for k in CONTEXT_FIELDS if k in found}


def _utc(record: logging.LogRecord) -> str:
    stamp = datetime.fromtimestamp(record.created, UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ts, level, logger, message, the ids, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _utc(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_ids(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``2026-11-26T10:00:00.123Z INFO swanwatch.engine: message [watcher=w]``, for people."""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in _ids(record).items() if k != "replica")
        line = f"{_utc(record)} {record.levelname} {record.name}: {record.getMessage()}"
        if ids:
            line += f" [{ids}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so that configuring again replaces it rather than adding a second one."""


def configure(
    level: str | None = None,
    fmt: str | None = None,
    *,
    default_level: str | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Send every logger's records to standard error in one format.

    ``level`` given here (the command line, the environment) wins over a later
    :func:`apply_config`; ``default_level`` is used when nothing sets one.
    """
    if level is not None:
        _State.explicit_level = level.upper()
    if default_level is not None:
        _State.default_level = default_level.upper()
    chosen = (_State.explicit_level or _State.default_level).upper()
    out = stream if stream is not None else sys.stderr
    wanted = (os.environ.get(FORMAT_ENV) or fmt or "auto").lower()
    if wanted not in ("auto", "json", "text"):
        wanted = "auto"
    use_json = wanted == "json" or (wanted == "auto" and not _isatty(out))
    handler = _Handler(out)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn brings handlers of its own when it configures logging; ours is enough.
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


def apply_config(level: str, fmt: str) -> None:
    """The config file's ``logging`` section (the command line's level still wins)."""
    configure(None, fmt, default_level=level)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
