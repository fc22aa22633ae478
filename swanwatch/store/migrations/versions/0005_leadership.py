"""leadership: the leader's epoch (fencing) and lease (takeover of a frozen leader)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Two rows: "leader" carries the epoch (leader-only transactions lock it FOR SHARE),
    # "lease" the leader's renewals, so renewing never waits for the leader's own work.
    table = op.create_table(
        "leadership",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("holder", sa.String(length=200), nullable=True),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(table, [{"name": "leader", "epoch": 0}, {"name": "lease", "epoch": 0}])


def downgrade() -> None:
    op.drop_table("leadership")
