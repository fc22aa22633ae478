"""typed outbox: group kind beside the group key, a fencing token per claim, typed payloads,
no body (rendered when sent)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

The group key lost its meaning-carrying prefix (``group|``, ``digest|``, ``quiet|``) to a
``group_kind`` column. Payloads become the typed notices of ``swanwatch.model``: an alert
notice keeps the alert, event, label, new signals and who acts through the links; a
notification stored as finished text (no payload, or a leaders' digest of before) keeps its
body in a ``rendered`` payload, since the ``body`` column goes: bodies are rendered when
sent. Frozen here: the shapes as they were at this revision, no live code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_KINDS = ("group", "digest", "quiet")
_ALERT_KEYS = ("alert", "event", "label", "new_signals", "who")
_PAGE = 1000

_NOTES = sa.table(
    "notifications",
    sa.column("id", sa.Integer()),
    sa.column("channel", sa.String()),
    sa.column("event", sa.String()),
    sa.column("title", sa.String()),
    sa.column("body", sa.String()),
    sa.column("group_kind", sa.String()),
    sa.column("group_key", sa.String()),
    sa.column("payload", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("group_kind", sa.String(length=16), nullable=False, server_default="none")
        )
        batch_op.add_column(
            sa.Column("lease_token", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_index("ix_notifications_group_key")
    _rewrite(op.get_bind(), _forward)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("body")
        batch_op.create_index("ix_notifications_group", ["group_kind", "group_key"], unique=False)


def downgrade() -> None:
    # A digest rendered at send time has no stored body: it goes back with its title.
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_group")
        batch_op.add_column(sa.Column("body", sa.String(), nullable=False, server_default=""))
    _rewrite(op.get_bind(), _backward)
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("lease_token")
        batch_op.drop_column("group_kind")
        batch_op.create_index("ix_notifications_group_key", ["group_key"], unique=False)


def _rewrite(bind: Connection, change: Callable[[Any], dict[str, Any]]) -> None:
    """Apply ``change`` to every notification, a page at a time."""
    stmt = (
        sa.update(_NOTES)
        .where(_NOTES.c.id == sa.bindparam("row_id"))
        .values(
            group_kind=sa.bindparam("new_kind"),
            group_key=sa.bindparam("new_key"),
            body=sa.bindparam("new_body"),
            payload=sa.bindparam("new_payload", type_=sa.JSON(none_as_null=True)),
        )
    )
    last = 0
    while True:
        rows = bind.execute(
            sa.select(_NOTES).where(_NOTES.c.id > last).order_by(_NOTES.c.id).limit(_PAGE)
        ).all()
        if not rows:
            return
        bind.execute(stmt, [{"row_id": r.id, **change(r)} for r in rows])
        last = rows[-1].id


def _forward(row: Any) -> dict[str, Any]:
    prefix, _, rest = (row.group_key or "").partition("|")
    kind, key = (prefix, rest) if prefix in _KINDS and rest else ("none", "")
    return {"new_kind": kind, "new_key": key, "new_body": "", "new_payload": _notice(row)}


def _notice(row: Any) -> dict[str, Any]:
    """The typed payload of an old row."""
    old = row.payload if isinstance(row.payload, dict) else {}
    alert = old.get("alert")
    if old.get("kind") != "alert" or not isinstance(alert, dict):
        return {"kind": "rendered", "body": row.body or ""}
    return {
        "kind": "alert",
        "alert": alert,
        "event": old.get("event") or row.event,
        "label": old.get("label") or alert.get("account_id") or "",
        "new_signals": list(old.get("new_signals") or ()),
        "who": old.get("who") or row.channel,
    }


def _backward(row: Any) -> dict[str, Any]:
    kind = row.group_kind or "none"
    key = f"{kind}|{row.group_key}" if kind != "none" else ""
    payload = row.payload if isinstance(row.payload, dict) else {}
    if payload.get("kind") == "rendered":
        return {
            "new_kind": kind,
            "new_key": key,
            "new_body": payload.get("body", ""),
            "new_payload": None,
        }
    if payload.get("kind") == "alert":
        kept = {k: payload[k] for k in _ALERT_KEYS if k in payload}
        return {
            "new_kind": kind,
            "new_key": key,
            "new_body": row.title,
            "new_payload": {**kept, "kind": "alert"},
        }
    return {
        "new_kind": kind,
        "new_key": key,
        "new_body": row.title,
        "new_payload": {"kind": "leaders"},
    }
