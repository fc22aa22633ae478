"""outbox: route, group key, fallback channel and render payload per notification

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("route", sa.String(length=200), nullable=False, server_default="")
        )
        batch_op.add_column(
            sa.Column("group_key", sa.String(length=400), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("fallback", sa.String(), nullable=True))
        batch_op.add_column(sa.Column("payload", sa.JSON(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notifications_group_key"), ["group_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_group_key"))
        batch_op.drop_column("payload")
        batch_op.drop_column("fallback")
        batch_op.drop_column("group_key")
        batch_op.drop_column("route")
