"""the risk board: daily score history, the action log, local users, the session key;
indexes for paging 10,000 open risks and an account's timeline

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "score_history",
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("account_id", "day"),
    )
    op.create_table(
        "action_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=200), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("person", sa.String(length=200), nullable=False),
        sa.Column("detail", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_action_log_account", "action_log", ["account_id", "at"], unique=False)
    op.create_table(
        "board_users",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("password_hash", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "board_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_index("ix_accounts_owner", "accounts", ["owner"], unique=False)
    op.create_index("ix_accounts_segment", "accounts", ["segment"], unique=False)
    op.create_index(
        "ix_alerts_open_account", "alerts", ["state", "account_id", "score"], unique=False
    )
    op.create_index(
        "ix_notifications_account", "notifications", ["account_id", "sent_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_account", table_name="notifications")
    op.drop_index("ix_alerts_open_account", table_name="alerts")
    op.drop_index("ix_accounts_segment", table_name="accounts")
    op.drop_index("ix_accounts_owner", table_name="accounts")
    op.drop_table("board_secrets")
    op.drop_table("board_users")
    op.drop_index("ix_action_log_account", table_name="action_log")
    op.drop_table("action_log")
    op.drop_table("score_history")
