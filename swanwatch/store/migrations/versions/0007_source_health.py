"""source health: each source as its last read left it; accounts absent from good reads;
watcher runs held for an unhealthy source

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "source_health",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("malformed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("newest", sa.Date(), nullable=True),
        sa.Column("good_rows", sa.Integer(), nullable=True),
        sa.Column("good_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("bad_reads", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("absent_reads", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("absent_since", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("watcher_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("held", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("watcher_runs", schema=None) as batch_op:
        batch_op.drop_column("held")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_column("absent_since")
        batch_op.drop_column("absent_reads")
    op.drop_table("source_health")
