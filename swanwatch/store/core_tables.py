"""The tables a quick read touches (alerts, silences, feedback, the outbox), declared with
SQLAlchemy Core: importing them builds no SQLModel class and no ORM mapper, so
``swanwatch alerts list`` starts quickly (tests/test_cli_startup.py checks).

:mod:`swanwatch.store.tables` declares the other tables on the same :data:`METADATA` and
re-exports these; each table is declared once, here or there. Defaults as SQLModel gives
them: a field's default is the column's (Python-side) default, ``str`` is ``VARCHAR``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text

from swanwatch.store.types import UTCDateTime

#: The metadata every table of the store is declared on.
METADATA = MetaData()
#: An empty-string server default, spelled as SQL (as the database reports it back).
EMPTY = sql_text("''")


def _id() -> Column[Any]:
    return Column("id", Integer, primary_key=True)


def _str(name: str, length: int | None = None, **kw: Any) -> Column[Any]:
    """A text column, NOT NULL unless ``nullable=True`` (then its default is None)."""
    return Column(name, String(length), nullable=kw.pop("nullable", False), **kw)


def _int(name: str, default: int | None = None) -> Column[Any]:
    return Column(name, Integer, nullable=False, default=default)


def _utc(name: str, *, nullable: bool = False, index: bool = False) -> Column[Any]:
    return Column(name, UTCDateTime(), nullable=nullable, index=index)


def _count(name: str) -> Column[Any]:
    return Column(name, Integer, nullable=False, default=0, server_default="0")


def _json(name: str) -> Column[Any]:
    return Column(name, JSON, nullable=True)


ALERTS = Table(
    "alerts",
    METADATA,
    _id(),
    _str("fingerprint", 64, unique=True),
    _str("account_id", 200, index=True),
    _str("rule", 200),
    _str("title"),
    _str("severity", 20),
    Column("score", Float, nullable=False),
    _str("state", 20, index=True),
    _json("contributions"),
    _json("why_now"),
    _json("play"),
    _json("at_stake"),
    _int("episode", 1),
    _utc("started_at"),
    _utc("updated_at"),
    _utc("resolved_at", nullable=True),
    _utc("clear_since", nullable=True),
    _utc("snoozed_until", nullable=True),
    _utc("last_notified_at", nullable=True),
    _str("last_notified_severity", nullable=True),
    _int("notify_count", 0),
    _json("notified_signals"),
    _str("muted_by", nullable=True),
    _str("acted_by", nullable=True),
    _count("flaps"),
    # Counts the writes: each is made only over the version it was read at.
    _count("version"),
    # Every rule that holds, most severe first (migration 0010).
    _json("reasons"),
    # The digest of the facts its candidate gave it (swanwatch.facts.alert_digest), saved
    # with every write: a steady pass settles the alert from it without reading the rest.
    # NULL: unknown (migration 0011); a migration that changes an alert's facts sets it
    # NULL again.
    _str("facts_digest", 32, nullable=True),
    # The board's pages: open alerts grouped by account.
    Index("ix_alerts_open_account", "state", "account_id", "score"),
)

NOTIFICATIONS = Table(
    "notifications",
    METADATA,
    _id(),
    _str("idempotency_key", 400, unique=True),
    _str("alert_fingerprint", 64, index=True),
    _str("account_id", default=""),
    _str("channel", 200),
    _str("event", 20),
    _str("severity", 20),
    # The title, for `outbox list`: the body is rendered when the notification is sent.
    _str("title"),
    _str("status", 20),
    _int("attempts", 0),
    _utc("next_attempt_at"),
    _str("last_error", nullable=True),
    _utc("created_at"),
    _utc("sent_at", nullable=True),
    _str("lease_owner", nullable=True),
    _utc("lease_until", nullable=True),
    # Counts the claims: a sender records an outcome only under the claim it holds.
    _count("lease_token"),
    # The route that chose this channel (for pacing and the fallback).
    _str("route", 200, default="", server_default=EMPTY),
    # Why it is batched (a GroupKind: none, group, digest, quiet) and with what: the
    # notifications of one kind and key are sent together.
    _str("group_kind", 16, default="none", server_default="none"),
    _str("group_key", 400, default="", server_default=EMPTY),
    # The channel to hand this notification to when its own keeps failing.
    _str("fallback", nullable=True),
    # What the renderer needs at send time (a NoticePayload as JSON).
    _json("payload"),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_group", "group_kind", "group_key"),
    Index("ix_notifications_account", "account_id", "sent_at"),
)

SILENCES = Table(
    "silences",
    METADATA,
    _id(),
    _json("matchers"),
    _utc("starts_at"),
    _utc("ends_at", index=True),
    _str("author"),
    _str("reason"),
    _utc("created_at"),
)

FEEDBACK = Table(
    "feedback",
    METADATA,
    _id(),
    _str("alert_fingerprint", 64, index=True),
    _str("rule", 200),
    _int("episode"),
    _str("verdict", 20),
    _str("author"),
    _str("note", default=""),
    _utc("created_at"),
    UniqueConstraint("alert_fingerprint", "episode", "author", "verdict"),
)
