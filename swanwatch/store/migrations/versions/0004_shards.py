"""shards: cycles of a sharded watcher run and their shards; the task queue's schema

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

#: The store's migration lock (swanwatch.store.base.MIGRATION_LOCK), frozen here.
MIGRATION_LOCK = 0x5357_414E


def upgrade() -> None:
    op.create_table(
        "shard_cycles",
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("shards", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("instance", "cycle_id"),
    )
    # At most one open cycle per watcher instance: a new leader adopts it, never doubles it.
    op.create_index(
        "uq_shard_cycles_open",
        "shard_cycles",
        ["instance"],
        unique=True,
        postgresql_where=sa.text("finished_at IS NULL"),
        sqlite_where=sa.text("finished_at IS NULL"),
    )
    op.create_table(
        "shard_runs",
        sa.Column("instance", sa.String(length=200), nullable=False),
        sa.Column("cycle_id", sa.String(length=64), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("completions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("signals", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("instance", "cycle_id", "shard"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _install_queue_schema(bind)


def _install_queue_schema(bind: Connection) -> None:
    """The queue lives beside the store: install procrastinate's schema when it is there
    (the daemon applies it later otherwise), under the migration lock, once."""
    try:
        from procrastinate.schema import SchemaManager
    except ImportError:  # the `shards` extra is not installed
        return
    bind.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
    if bind.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar() is not None:
        return
    # Straight to the driver, without parameters: the script's `%` are not placeholders.
    cursor = bind.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(SchemaManager.get_schema())
    finally:
        cursor.close()


def downgrade() -> None:
    # procrastinate's own tables are left alone: they may hold jobs of other applications.
    op.drop_table("shard_runs")
    op.drop_index("uq_shard_cycles_open", table_name="shard_cycles")
    op.drop_table("shard_cycles")
