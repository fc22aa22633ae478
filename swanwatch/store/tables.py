"""The tables, all on one metadata: most as SQLModel classes, and those a quick read
touches (alerts, silences, feedback, notifications) with SQLAlchemy Core in
:mod:`swanwatch.store.core_tables`, re-exported here. Unique constraints carry
idempotency, not timing.

The upper-case names beside the classes (``ACCOUNTS``, ``NOTIFICATIONS``, ...) are the
SQLAlchemy tables the store's queries are written against. A fresh database migrated to
head has exactly this schema (tests/test_store_migrations.py checks, on both backends).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Table, Text, UniqueConstraint
from sqlalchemy import text as sql_text
from sqlmodel import Field, SQLModel

from swanwatch.store.core_tables import ALERTS, FEEDBACK, METADATA, NOTIFICATIONS, SILENCES
from swanwatch.store.types import UTCDateTime

__all__ = ["ALERTS", "FEEDBACK", "METADATA", "NOTIFICATIONS", "SILENCES"]  # and those below

# The classes below declare their tables on the store's one metadata, beside the Core ones.
SQLModel.metadata = METADATA


def table_of(row: type[SQLModel]) -> Table:
    """The SQLAlchemy table of a row class."""
    table: Table = row.__table__  # type: ignore[attr-defined]
    return table


def _utc(nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _count() -> Any:
    return Field(0, sa_column_kwargs={"server_default": "0"})


def _json() -> Any:
    return Field(default=None, sa_column=Column(JSON, nullable=True))


class AccountRow(SQLModel, table=True):
    __tablename__ = "accounts"
    __table_args__ = (
        Index("ix_accounts_owner", "owner"),
        Index("ix_accounts_segment", "segment"),
    )

    id: str = Field(primary_key=True, max_length=200)
    name: str = ""
    domains: Any = _json()
    owner: str | None = None
    segment: str | None = None
    arr: float = 0.0
    renewal_date: date | None = None
    tags: Any = _json()
    updated_at: datetime = _utc()
    #: Good reads of the accounts source in a row that did not list it (0: listed).
    absent_reads: int = _count()
    #: The first good read that did not list it.
    absent_since: datetime | None = _utc(nullable=True)


ACCOUNTS = table_of(AccountRow)


class SignalRow(SQLModel, table=True):
    """A signal, kept by account: on SQLite a table without rowid whose rows lie in the
    order of their key, so an account's signals (written by several watchers, runs apart)
    lie together and a correlation pass reads a batch of accounts' signals in 1.9 s per
    million rather than 3.3 s (BENCHMARKS.md, Correlation; migration 0012)."""

    __tablename__ = "signals"
    __table_args__ = (
        Index("ix_signals_active", "cleared_at", "account_id"),
        {"sqlite_with_rowid": False},
    )

    account_id: str = Field(max_length=200, primary_key=True)
    fingerprint: str = Field(max_length=64, primary_key=True, unique=True)
    watcher: str = Field(max_length=200, index=True)
    kind: str = Field(max_length=100)
    key: str = ""
    strength: float
    observed_at: datetime = _utc()
    first_seen: datetime = _utc()
    last_seen: datetime = _utc()
    cleared_at: datetime | None = _utc(nullable=True)
    summary: str
    evidence: Any = _json()
    half_life_days: float | None = None


SIGNALS = table_of(SignalRow)


class UnknownRow(SQLModel, table=True):
    __tablename__ = "unknowns"
    __table_args__ = (UniqueConstraint("watcher", "account_id", "key"),)

    id: int | None = Field(default=None, primary_key=True)
    watcher: str = Field(max_length=200)
    account_id: str = Field(max_length=200)
    key: str = ""
    reason: str
    first_seen: datetime = _utc()
    last_seen: datetime = _utc()


UNKNOWNS = table_of(UnknownRow)


class WatcherRunRow(SQLModel, table=True):
    __tablename__ = "watcher_runs"

    id: int | None = Field(default=None, primary_key=True)
    instance: str = Field(max_length=200, index=True)
    started_at: datetime = _utc()
    finished_at: datetime = _utc()
    ok: bool
    signals: int = 0
    unknowns: int = 0
    error: str | None = None
    traceback: str | None = None
    held: str | None = None


WATCHER_RUNS = table_of(WatcherRunRow)


class SourceHealthRow(SQLModel, table=True):
    """Each source as its last read left it (swanwatch.model.SourceHealth)."""

    __tablename__ = "source_health"

    source: str = Field(primary_key=True, max_length=200)
    state: str = Field(max_length=16)
    reason: str = ""
    rows: int | None = None
    malformed: int = _count()
    newest: date | None = None
    good_rows: int | None = None
    good_at: datetime | None = _utc(nullable=True)
    bad_reads: int = _count()
    since: datetime = _utc()
    checked_at: datetime = _utc()


SOURCE_HEALTH = table_of(SourceHealthRow)


class WatcherStatusRow(SQLModel, table=True):
    __tablename__ = "watcher_status"

    instance: str = Field(primary_key=True, max_length=200)
    last_run_at: datetime | None = _utc(nullable=True)
    last_success_at: datetime | None = _utc(nullable=True)
    consecutive_failures: int = 0
    last_error: str | None = None


WATCHER_STATUS = table_of(WatcherStatusRow)


class WatcherStateRow(SQLModel, table=True):
    __tablename__ = "watcher_state"

    instance: str = Field(primary_key=True, max_length=200)
    key: str = Field(primary_key=True, max_length=500)
    value: Any = _json()
    updated_at: datetime = _utc()


WATCHER_STATE = table_of(WatcherStateRow)


class ShardCycleRow(SQLModel, table=True):
    __tablename__ = "shard_cycles"
    # At most one open cycle per watcher instance: a new leader adopts it, never doubles it.
    __table_args__ = (
        Index(
            "uq_shard_cycles_open",
            "instance",
            unique=True,
            postgresql_where=sql_text("finished_at IS NULL"),
            sqlite_where=sql_text("finished_at IS NULL"),
        ),
    )

    instance: str = Field(primary_key=True, max_length=200)
    cycle_id: str = Field(primary_key=True, max_length=64)
    shards: int
    started_at: datetime = _utc()
    finished_at: datetime | None = _utc(nullable=True)


SHARD_CYCLES = table_of(ShardCycleRow)


class ShardRunRow(SQLModel, table=True):
    __tablename__ = "shard_runs"

    instance: str = Field(primary_key=True, max_length=200)
    cycle_id: str = Field(primary_key=True, max_length=64)
    shard: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    #: queued, running, retrying, done or failed.
    state: str = Field(max_length=16)
    attempts: int = _count()
    completions: int = _count()
    job_id: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    signals: int = _count()
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    started_at: datetime | None = _utc(nullable=True)
    finished_at: datetime | None = _utc(nullable=True)


SHARD_RUNS = table_of(ShardRunRow)


class LeadershipRow(SQLModel, table=True):
    """Two rows: ``leader`` carries the epoch that fences leader-only writes, ``lease`` the
    leader's renewals (swanwatch.store.leader)."""

    __tablename__ = "leadership"

    name: str = Field(primary_key=True, max_length=32)
    epoch: int = Field(
        0, sa_column=Column(BigInteger, nullable=False, server_default=sql_text("0"))
    )
    holder: str | None = Field(default=None, max_length=200)
    renewed_at: datetime | None = _utc(nullable=True)


LEADERSHIP = table_of(LeadershipRow)


class ScoreHistoryRow(SQLModel, table=True):
    """Each account's risk score, one row a day (the last correlation pass's), kept for
    ``store.score_history`` (swanwatch.store.history)."""

    __tablename__ = "score_history"

    account_id: str = Field(primary_key=True, max_length=200)
    day: date = Field(primary_key=True)
    score: float


SCORE_HISTORY = table_of(ScoreHistoryRow)


class ActionLogRow(SQLModel, table=True):
    """Every person's action on an alert, with who and when (the account page's timeline)."""

    __tablename__ = "action_log"
    __table_args__ = (Index("ix_action_log_account", "account_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    alert_fingerprint: str = Field(max_length=64)
    account_id: str = Field(max_length=200)
    episode: int
    #: acknowledged, snoozed, resolved, marked useful, ...
    action: str = Field(max_length=40)
    person: str = Field(max_length=200)
    detail: str = ""
    at: datetime = _utc()


ACTION_LOG = table_of(ActionLogRow)


class BoardUserRow(SQLModel, table=True):
    """A local user of the risk board (`swanwatch users add`): a password hash, never the
    password, and the owner identity "Mine" filters by."""

    __tablename__ = "board_users"

    name: str = Field(primary_key=True, max_length=200)
    password_hash: str
    owner: str = ""
    created_at: datetime = _utc()


BOARD_USERS = table_of(BoardUserRow)


class BoardSecretRow(SQLModel, table=True):
    """The random key the board signs its sessions with, shared by every replica."""

    __tablename__ = "board_secrets"

    name: str = Field(primary_key=True, max_length=64)
    value: str
    created_at: datetime = _utc()


BOARD_SECRETS = table_of(BoardSecretRow)
