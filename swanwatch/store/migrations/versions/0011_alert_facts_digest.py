"""alert facts digest: each alert keeps the digest of the facts its candidate gave it, so
a steady correlation pass settles it without reading the alert

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

The column is NULL ("unknown") on the alerts already there: a pass reads those in full,
as before, and the next write of each saves its digest.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("facts_digest", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("facts_digest")
