"""one alert per account: alerts keep every rule that holds as their reasons; the open
alerts of each account are merged into one

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

An account's alert is now keyed by the account alone (``sha256("alert", account, "*")``),
every rule that holds on it is one of its ``reasons``, and the most severe names it. Open
alerts of before were one per (account, rule): per account, the most severe (then the
riskiest, then the oldest) becomes the account's alert, with the others' rules as further
reasons and their signals, lines and plays joined to it, each once; the others are
resolved quietly (``acted_by`` says into which alert), with no notice, so nobody is told
anything by the upgrade. The keeper keeps its state, acknowledgement and what was told.
Swanwatch's own alerts (account ``@swanwatch``) stay one per watcher or source. Resolved
alerts keep their old fingerprints, as history. Downgrade drops the column only: merged
alerts stay merged. Frozen here: the shapes as they were at this revision, no live code.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_OPS_ACCOUNT = "@swanwatch"
_RANK = {"info": 0, "warning": 1, "high": 2, "critical": 3}

_ALERTS = sa.table(
    "alerts",
    sa.column("id", sa.Integer()),
    sa.column("fingerprint", sa.String()),
    sa.column("account_id", sa.String()),
    sa.column("rule", sa.String()),
    sa.column("title", sa.String()),
    sa.column("severity", sa.String()),
    sa.column("score", sa.Float()),
    sa.column("state", sa.String()),
    sa.column("contributions", sa.JSON()),
    sa.column("why_now", sa.JSON()),
    sa.column("play", sa.JSON()),
    sa.column("started_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("resolved_at", sa.DateTime(timezone=True)),
    sa.column("acted_by", sa.String()),
    sa.column("reasons", sa.JSON()),
    sa.column("version", sa.Integer()),
)


def _account_fingerprint(account_id: str) -> str:
    return hashlib.sha256("\x1f".join(("alert", account_id, "*")).encode()).hexdigest()[:32]


def _stamp(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _once(items: list[Any], key: Any = None) -> list[Any]:
    seen: dict[Any, Any] = {}
    for item in items:
        seen.setdefault(key(item) if key else item, item)
    return list(seen.values())


def _merge(conn: sa.engine.Connection, group: list[Any]) -> None:
    ranked = sorted(group, key=lambda r: (-_RANK.get(r.severity, 0), -(r.score or 0), r.id))
    keeper, others = ranked[0], ranked[1:]
    reasons = [
        {"rule": r.rule, "title": r.title, "severity": r.severity, "since": _stamp(r.started_at)}
        for r in ranked
    ]
    contributions = _once(
        [c for r in ranked for c in (r.contributions or [])],
        key=lambda c: c.get("fingerprint") if isinstance(c, dict) else str(c),
    )
    merged = _account_fingerprint(keeper.account_id)
    conn.execute(
        sa.update(_ALERTS)
        .where(_ALERTS.c.id == keeper.id)
        .values(
            fingerprint=merged,
            reasons=reasons,
            contributions=contributions,
            why_now=_once([w for r in ranked for w in (r.why_now or [])]),
            play=_once([p for r in ranked for p in (r.play or [])]),
            version=_ALERTS.c.version + 1,
        )
    )
    for r in others:
        conn.execute(
            sa.update(_ALERTS)
            .where(_ALERTS.c.id == r.id)
            .values(
                state="resolved",
                resolved_at=keeper.updated_at,
                acted_by=f"merged into {merged}",
                reasons=[],
                version=_ALERTS.c.version + 1,
            )
        )


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reasons", sa.JSON(), nullable=True))
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(_ALERTS).where(
            _ALERTS.c.state != "resolved", _ALERTS.c.account_id != _OPS_ACCOUNT
        )
    ).all()
    by_account: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_account[row.account_id].append(row)
    for group in by_account.values():
        _merge(conn, group)


def downgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("reasons")
