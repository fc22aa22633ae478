"""An account's history for the risk board: its daily risk score, and who did what to its
alerts (the action log), with the signals and notifications it had on record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.engine import Connection

from swanwatch.store.base import StoreBase, among, upsert
from swanwatch.store.tables import ACTION_LOG, NOTIFICATIONS, SCORE_HISTORY


@dataclass(frozen=True)
class LoggedAction:
    """One person's action on an alert, as the action log keeps it."""

    alert_fingerprint: str
    account_id: str
    episode: int
    action: str
    person: str
    at: datetime
    detail: str = ""


@dataclass(frozen=True)
class SentNotice:
    """A notification sent about one of an account's alerts."""

    alert_fingerprint: str
    channel: str
    event: str
    title: str
    sent_at: datetime


def chart_score(score: float) -> float:
    """A score as the day's history keeps it: in whole percent, the board chart's
    resolution (it draws 0 to 100% and says "now 44%"). A pass rewrites an account's day
    only when its percent moves, not at each pass as its signals decay: at 100,000 accounts
    that was 100,000 rows rewritten every pass (BENCHMARKS.md, Correlation)."""
    return round(score, 2)


def write_scores(conn: Connection, day: date, scores: Mapping[str, float]) -> None:
    """Each account's score for ``day``, in a transaction of the caller's (a later pass
    the same day replaces it)."""
    rows = [{"account_id": k, "day": day, "score": chart_score(v)} for k, v in scores.items()]
    upsert(conn, SCORE_HISTORY, rows, ["account_id", "day"])


class HistoryStore(StoreBase):
    """Daily scores, the action log, and an account's sent notifications."""

    def record_scores(
        self, scores: Mapping[str, float], day: date, *, keep_from: date | None
    ) -> None:
        """Each account's score for ``day`` (a later pass the same day replaces it), and
        the history before ``keep_from`` dropped (None: none dropped). One transaction."""
        with self._tx() as conn:
            write_scores(conn, day, scores)
            if keep_from is not None:
                conn.execute(delete(SCORE_HISTORY).where(SCORE_HISTORY.c.day < keep_from))

    def scores_on(self, day: date, account_ids: Sequence[str]) -> dict[str, float]:
        """The scores recorded for ``day`` of these accounts (a few thousand at most)."""
        table = SCORE_HISTORY
        query = select(table.c.account_id, table.c.score).where(
            table.c.day == day, among(table.c.account_id, account_ids, self.dialect)
        )
        with self._read() as conn:
            return {str(a): float(s) for a, s in conn.execute(query)}

    def score_history(self, account_id: str, since: date) -> list[tuple[date, float]]:
        """An account's daily scores from ``since`` on, oldest first."""
        table = SCORE_HISTORY
        query = (
            select(table.c.day, table.c.score)
            .where(table.c.account_id == account_id, table.c.day >= since)
            .order_by(table.c.day)
        )
        with self._read() as conn:
            return [(r.day, float(r.score)) for r in conn.execute(query)]

    def log_action(self, action: LoggedAction) -> None:
        with self._tx() as conn:
            conn.execute(
                ACTION_LOG.insert().values(
                    alert_fingerprint=action.alert_fingerprint,
                    account_id=action.account_id,
                    episode=action.episode,
                    action=action.action,
                    person=action.person,
                    detail=action.detail,
                    at=action.at,
                )
            )

    def logged_actions(self, account_id: str, *, limit: int = 200) -> list[LoggedAction]:
        """The newest actions on an account's alerts, newest first."""
        table = ACTION_LOG
        query = (
            select(table)
            .where(table.c.account_id == account_id)
            .order_by(table.c.at.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [
                LoggedAction(
                    alert_fingerprint=r.alert_fingerprint,
                    account_id=r.account_id,
                    episode=r.episode,
                    action=r.action,
                    person=r.person,
                    at=r.at,
                    detail=r.detail,
                )
                for r in conn.execute(query)
            ]

    def sent_notices(self, account_id: str, *, limit: int = 200) -> list[SentNotice]:
        """The newest notifications sent about an account's alerts, newest first."""
        table = NOTIFICATIONS
        query = (
            select(table)
            .where(table.c.account_id == account_id, table.c.sent_at.is_not(None))
            .order_by(table.c.sent_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [
                SentNotice(
                    alert_fingerprint=r.alert_fingerprint,
                    channel=r.channel,
                    event=r.event,
                    title=r.title,
                    sent_at=r.sent_at,
                )
                for r in conn.execute(query)
            ]
