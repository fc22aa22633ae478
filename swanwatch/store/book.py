"""The whole book of open risks, a page at a time: filtered, searched and sorted in SQL.

One row per account with an open alert: its highest score, its worst severity, its ARR at
risk (ARR x the highest score, as :func:`swanwatch.reports.risk_lines` reckons it), its
oldest open alert and how many it has. The risk board asks for one page of these
(:meth:`BookStore.book_page`); only that page's alerts are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select

from swanwatch.model import Account, Alert, AlertState, Severity
from swanwatch.store.base import StoreBase, chunks
from swanwatch.store.tables import ACCOUNTS, ALERTS

#: The columns a page may be sorted by, and whether each sorts high first by default.
SORTS: dict[str, bool] = {
    "risk": True,
    "account": False,
    "owner": False,
    "segment": False,
    "severity": True,
    "score": True,
    "arr": True,
    "renewal": False,
    "since": False,
    "alerts": True,
}


@dataclass(frozen=True)
class BookQuery:
    """Which open risks, in what order, which page."""

    owner: str = ""
    segment: str = ""
    #: Part of an account's name or id (any case).
    search: str = ""
    #: Include alerts muted by a silence or by inhibition.
    muted: bool = False
    sort: str = "risk"
    descending: bool = True
    offset: int = 0
    limit: int = 50


@dataclass(frozen=True)
class BookLine:
    """One account at risk, as a row of the book."""

    account: Account
    score: float
    revenue_at_risk: float
    severity: Severity
    alerts: int
    since: datetime


@dataclass
class BookPage:
    """One page of the book, with the totals of everything the query selects."""

    lines: list[BookLine] = field(default_factory=list)
    #: Accounts the query selects (all pages), their ARR and their ARR at risk.
    total: int = 0
    arr: float = 0.0
    at_risk: float = 0.0


def _rank() -> Any:
    """An alert's severity as a number (info 0 .. critical 3), for MAX in SQL."""
    return case(
        *((ALERTS.c.severity == s.value, s.rank) for s in Severity),
        else_=0,
    )


def _open(muted: bool) -> Any:
    cond = ALERTS.c.state != AlertState.RESOLVED.value
    return cond if muted else and_(cond, ALERTS.c.muted_by.is_(None))


class BookStore(StoreBase):
    """The open risks per account, a page at a time."""

    def _selected(self, q: BookQuery) -> Select[Any]:
        per = (
            select(
                ALERTS.c.account_id,
                func.max(ALERTS.c.score).label("score"),
                func.max(_rank()).label("rank"),
                func.count().label("alerts"),
                func.min(ALERTS.c.started_at).label("since"),
            )
            .where(_open(q.muted))
            .group_by(ALERTS.c.account_id)
            .subquery("per")
        )
        risk = (ACCOUNTS.c.arr * per.c.score).label("risk")
        query = select(ACCOUNTS, per.c.score, per.c.rank, per.c.alerts, per.c.since, risk).join(
            per, per.c.account_id == ACCOUNTS.c.id
        )
        if q.owner:
            query = query.where(ACCOUNTS.c.owner == q.owner)
        if q.segment:
            query = query.where(ACCOUNTS.c.segment == q.segment)
        if q.search.strip():
            text = q.search.strip().lower()
            query = query.where(
                or_(
                    func.lower(ACCOUNTS.c.name).contains(text, autoescape=True),
                    func.lower(ACCOUNTS.c.id).contains(text, autoescape=True),
                )
            )
        return query

    def book_page(self, q: BookQuery) -> BookPage:
        """The page ``q`` asks for, and the totals of all it selects."""
        selected = self._selected(q).subquery("selected")
        columns = {
            "risk": selected.c.risk,
            "account": func.lower(func.coalesce(func.nullif(selected.c.name, ""), selected.c.id)),
            "owner": selected.c.owner,
            "segment": selected.c.segment,
            "severity": selected.c.rank,
            "score": selected.c.score,
            "arr": selected.c.arr,
            "renewal": selected.c.renewal_date,
            "since": selected.c.since,
            "alerts": selected.c.alerts,
        }
        key = columns.get(q.sort, selected.c.risk)
        order = key.desc() if q.descending else key.asc()
        # Empty values last whichever way, then the riskiest, then the id: a stable order.
        nulls = case((key.is_(None), 1), else_=0)
        page = (
            select(selected)
            .order_by(nulls, order, selected.c.risk.desc(), selected.c.id)
            .offset(max(0, q.offset))
            .limit(max(1, q.limit))
        )
        sums = select(
            func.count(),
            func.coalesce(func.sum(selected.c.arr), 0.0),
            func.coalesce(func.sum(selected.c.risk), 0.0),
        )
        with self.engine.connect() as conn:
            total, arr, at_risk = conn.execute(sums).one()
            rows = list(conn.execute(page))
        return BookPage(
            lines=[_line(r) for r in rows],
            total=int(total),
            arr=round(float(arr), 2),
            at_risk=round(float(at_risk), 2),
        )

    def book_groups(self, q: BookQuery, by: str) -> list[tuple[str, int, float, float]]:
        """(owner or segment, accounts, ARR, ARR at risk) over everything ``q`` selects,
        largest risk first."""
        selected = self._selected(q).subquery("selected")
        column = selected.c.owner if by == "owner" else selected.c.segment
        name = func.coalesce(column, "")
        query = (
            select(name, func.count(), func.sum(selected.c.arr), func.sum(selected.c.risk))
            .group_by(name)
            .order_by(func.sum(selected.c.risk).desc(), name)
        )
        blank = f"(no {by})"
        with self.engine.connect() as conn:
            return [
                (str(g) or blank, int(n), round(float(a), 2), round(float(r), 2))
                for g, n, a, r in conn.execute(query)
            ]

    def book_choices(self) -> tuple[list[str], list[str], int]:
        """The owners and segments of accounts with open risks (for the filters), and how
        many open alerts are muted."""
        open_ids = select(ALERTS.c.account_id).where(_open(True)).distinct()
        listed = ACCOUNTS.c.id.in_(open_ids)
        owners = select(ACCOUNTS.c.owner).where(listed, ACCOUNTS.c.owner.is_not(None)).distinct()
        segments = (
            select(ACCOUNTS.c.segment).where(listed, ACCOUNTS.c.segment.is_not(None)).distinct()
        )
        muted = (
            select(func.count())
            .select_from(ALERTS.join(ACCOUNTS, ACCOUNTS.c.id == ALERTS.c.account_id))
            .where(_open(True), ALERTS.c.muted_by.is_not(None))
        )
        with self.engine.connect() as conn:
            return (
                sorted(str(o) for (o,) in conn.execute(owners) if o),
                sorted(str(s) for (s,) in conn.execute(segments) if s),
                int(conn.execute(muted).scalar_one()),
            )

    def open_alerts_of(self, account_ids: Iterable[str], *, muted: bool = True) -> list[Alert]:
        """The open alerts of these accounts, worst first."""
        wanted = list(dict.fromkeys(account_ids))
        out: list[Alert] = []
        with self.engine.connect() as conn:
            for chunk in chunks(wanted):
                query = select(ALERTS).where(_open(muted), ALERTS.c.account_id.in_(chunk))
                out.extend(
                    Alert.model_validate(r, from_attributes=True) for r in conn.execute(query)
                )
        return sorted(out, key=lambda a: (-a.severity.rank, -a.score, a.rule, a.id or 0))


def _line(row: Any) -> BookLine:
    account = Account(
        id=row.id,
        name=row.name,
        domains=tuple(row.domains or ()),
        owner=row.owner,
        segment=row.segment,
        arr=row.arr,
        renewal_date=row.renewal_date,
        tags=tuple(row.tags or ()),
    )
    return BookLine(
        account=account,
        score=float(row.score),
        revenue_at_risk=round(float(row.risk), 2),
        severity=next((s for s in Severity if s.rank == row.rank), Severity.INFO),
        alerts=int(row.alerts),
        since=row.since,
    )
