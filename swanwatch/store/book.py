"""The whole book of open risks, a page at a time: read in one query, then filtered,
searched, sorted and paged.

One row per account with an open alert: its highest score, its worst severity, its ARR at
risk (ARR x the highest score, as :func:`swanwatch.reports.risk_lines` reckons it), its
oldest open alert and how many it has. The risk board asks for one page of these
(:meth:`BookStore.book` reads every account's aggregates in one query; :func:`select_page`
filters, searches, sorts and pages them); only that page's alerts are loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select

from swanwatch.model import Alert, AlertState, Severity
from swanwatch.reports import group_totals
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


@dataclass(frozen=True, slots=True)
class BookAccount:
    """What the book shows of an account (lighter than :class:`Account`: 10,000 of them
    are read for each look at the book)."""

    id: str
    name: str
    owner: str | None
    segment: str | None
    arr: float
    renewal_date: date | None

    @property
    def label(self) -> str:
        return self.name or self.id

    def days_to_renewal(self, now: datetime) -> int | None:
        return None if self.renewal_date is None else (self.renewal_date - now.date()).days


@dataclass(frozen=True, slots=True)
class BookLine:
    """One account at risk, as a row of the book."""

    account: BookAccount
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


_SEVERITIES = {s.rank: s for s in Severity}


def _rank() -> Any:
    """An alert's severity as a number (info 0 .. critical 3), for MAX in SQL."""
    return case(
        *((ALERTS.c.severity == s.value, s.rank) for s in Severity),
        else_=0,
    )


def _open(muted: bool) -> Any:
    cond = ALERTS.c.state != AlertState.RESOLVED.value
    return cond if muted else and_(cond, ALERTS.c.muted_by.is_(None))


@dataclass(frozen=True, slots=True)
class BookEntry:
    """One account with open alerts, as one query reads it: its line of the book counting
    every open alert, and counting the unmuted ones only (None: all are muted)."""

    account: BookAccount
    every: BookLine
    unmuted: BookLine | None
    #: Its open alerts, and how many of them are muted.
    alerts: int
    muted: int

    def line(self, muted: bool) -> BookLine | None:
        """The account's line of the book, muted alerts counted or not."""
        return self.every if muted else self.unmuted


def _sort_key(column: str) -> Any:
    def account(line: BookLine) -> Any:
        return line.account.label.lower()

    keys: dict[str, Any] = {
        "risk": lambda line: line.revenue_at_risk,
        "account": account,
        "owner": lambda line: line.account.owner,
        "segment": lambda line: line.account.segment,
        "severity": lambda line: line.severity.rank,
        "score": lambda line: line.score,
        "arr": lambda line: line.account.arr,
        "renewal": lambda line: line.account.renewal_date,
        "since": lambda line: line.since,
        "alerts": lambda line: line.alerts,
    }
    return keys.get(column, keys["risk"])


def select_page(entries: Sequence[BookEntry], q: BookQuery) -> tuple[BookPage, list[BookLine]]:
    """The page ``q`` asks for out of the book, and every line it selects (pure).

    Sorted by the column, empty values last whichever way, then the riskiest, then the id.
    """
    text = q.search.strip().lower()
    chosen = []
    for entry in entries:
        line = entry.line(q.muted)
        if line is None:
            continue
        a = line.account
        if q.owner and (a.owner or "") != q.owner:
            continue
        if q.segment and (a.segment or "") != q.segment:
            continue
        if text and text not in a.name.lower() and text not in a.id.lower():
            continue
        chosen.append(line)
    chosen.sort(key=lambda line: (-line.revenue_at_risk, line.account.id))
    key = _sort_key(q.sort)
    present = [line for line in chosen if key(line) is not None]
    present.sort(key=key, reverse=q.descending)
    ordered = present + [line for line in chosen if key(line) is None]
    start = max(0, q.offset)
    page = BookPage(
        lines=ordered[start : start + max(1, q.limit)],
        total=len(ordered),
        arr=round(sum(line.account.arr for line in ordered), 2),
        at_risk=round(sum(line.revenue_at_risk for line in ordered), 2),
    )
    return page, ordered


def groups_of(lines: Sequence[BookLine], by: str) -> list[tuple[str, int, float, float]]:
    """(owner or segment, accounts, ARR, ARR at risk), largest risk first (pure)."""
    return group_totals(
        (
            (line.account.owner if by == "owner" else line.account.segment) or f"(no {by})",
            line.account.arr,
            line.revenue_at_risk,
        )
        for line in lines
    )


class BookStore(StoreBase):
    """The open risks per account, read in one query."""

    def book(self) -> list[BookEntry]:
        """Every account with an open alert, with its alerts' aggregates (one query, on the
        index of open alerts by account)."""
        unmuted = ALERTS.c.muted_by.is_(None)
        per = (
            select(
                ALERTS.c.account_id,
                func.max(ALERTS.c.score).label("score"),
                func.max(_rank()).label("rank"),
                func.count().label("alerts"),
                func.min(ALERTS.c.started_at).label("since"),
                func.max(case((unmuted, ALERTS.c.score))).label("u_score"),
                func.max(case((unmuted, _rank()))).label("u_rank"),
                func.sum(case((unmuted, 1), else_=0)).label("u_alerts"),
                func.min(case((unmuted, ALERTS.c.started_at))).label("u_since"),
            )
            .where(ALERTS.c.state != AlertState.RESOLVED.value)
            .group_by(ALERTS.c.account_id)
            .subquery("per")
        )
        facts = (ACCOUNTS.c[k] for k in ("id", "name", "owner", "segment", "arr", "renewal_date"))
        query = select(*facts, per).join(per, per.c.account_id == ACCOUNTS.c.id)
        with self._read() as conn:
            return [_entry(r) for r in conn.execute(query)]

    def muted_open_alerts(self) -> int:
        """How many open alerts of listed accounts are muted."""
        query = (
            select(func.count())
            .select_from(ALERTS.join(ACCOUNTS, ACCOUNTS.c.id == ALERTS.c.account_id))
            .where(_open(True), ALERTS.c.muted_by.is_not(None))
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def open_alerts_of(self, account_ids: Iterable[str], *, muted: bool = True) -> list[Alert]:
        """The open alerts of these accounts, worst first."""
        wanted = list(dict.fromkeys(account_ids))
        out: list[Alert] = []
        with self._read() as conn:
            for chunk in chunks(wanted):
                query = select(ALERTS).where(_open(muted), ALERTS.c.account_id.in_(chunk))
                out.extend(
                    Alert.model_validate(r, from_attributes=True) for r in conn.execute(query)
                )
        return sorted(out, key=lambda a: (-a.severity.rank, -a.score, a.rule, a.id or 0))


def _book_line(account: BookAccount, score: float, rank: int, alerts: int, since: Any) -> BookLine:
    return BookLine(
        account=account,
        score=score,
        revenue_at_risk=round(account.arr * score, 2),
        severity=_SEVERITIES.get(rank, Severity.INFO),
        alerts=alerts,
        since=since,
    )


def _entry(row: Any) -> BookEntry:
    # By position: 10,000 rows a read, where a look-up by name costs more than the query.
    ident, name, owner, segment, arr, renewal, _id, score, rank, alerts, since = row[:11]
    u_score, u_rank, u_alerts, u_since = row[11:15]
    account = BookAccount(ident, name, owner, segment, arr, renewal)
    every = _book_line(account, float(score), int(rank), int(alerts), since)
    unmuted = int(u_alerts or 0)
    return BookEntry(
        account=account,
        every=every,
        unmuted=(
            _book_line(account, float(u_score), int(u_rank), unmuted, u_since) if unmuted else None
        ),
        alerts=every.alerts,
        muted=every.alerts - unmuted,
    )
