"""The risk board's whole book: the view a URL asks for (filters, search, sort, page), the
rows of one page, their CSV, and the words and times the pages show (pure)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from swanwatch.model import Alert, AlertState, Feedback, fingerprint
from swanwatch.store import BookLine, BookPage, BookQuery
from swanwatch.store.book import SORTS

#: Accounts per page.
PAGE_SIZE = 50
#: The most rows one CSV export holds.
MAX_EXPORT = 100_000
#: The cookie the board's script sets to the browser's time zone.
TZ_COOKIE = "swanwatch_tz"
_NBSP = "\u00a0"


def _flag(value: str) -> bool:
    return value in ("1", "on", "true", "yes")


@dataclass(frozen=True)
class Filters:
    """What a board URL asks for: owner, segment, "mine", a search, muted alerts shown or
    not, the sort column and direction, and the page. All of it lives in the URL, so a view
    is a link to share."""

    owner: str = ""
    segment: str = ""
    mine: bool = False
    search: str = ""
    muted: bool = False
    sort: str = "risk"
    descending: bool = True
    page: int = 1

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Filters:
        sort = params.get("sort", "risk")
        sort = sort if sort in SORTS else "risk"
        direction = params.get("dir", "")
        descending = SORTS[sort] if direction not in ("asc", "desc") else direction == "desc"
        try:
            page = max(1, min(100_000, int(params.get("page", "1"))))
        except ValueError:
            page = 1
        return cls(
            owner=params.get("owner", "").strip()[:200],
            segment=params.get("segment", "").strip()[:200],
            mine=_flag(params.get("mine", "")),
            search=params.get("q", "").strip()[:200],
            muted=_flag(params.get("muted", "")),
            sort=sort,
            descending=descending,
            page=page,
        )

    @property
    def active(self) -> bool:
        return bool(self.owner or self.segment or self.mine or self.search or self.muted)

    def book_query(self, owner: str, *, everything: bool = False) -> BookQuery:
        """The store's query for this view; ``owner`` is the one to filter by (the person's
        own with "mine")."""
        return BookQuery(
            owner=owner,
            segment=self.segment,
            search=self.search,
            muted=self.muted,
            sort=self.sort,
            descending=self.descending,
            offset=0 if everything else (self.page - 1) * PAGE_SIZE,
            limit=MAX_EXPORT if everything else PAGE_SIZE,
        )

    def pairs(self, **extra: str) -> list[tuple[str, str]]:
        pairs = [
            ("owner", self.owner),
            ("segment", self.segment),
            ("mine", "1" if self.mine else ""),
            ("q", self.search),
            ("muted", "1" if self.muted else ""),
        ]
        if self.sort != "risk" or self.descending != SORTS["risk"]:
            pairs.append(("sort", self.sort))
            pairs.append(("dir", "desc" if self.descending else "asc"))
        if self.page > 1:
            pairs.append(("page", str(self.page)))
        pairs.extend(extra.items())
        return [(k, v) for k, v in pairs if v]

    def query(self, **extra: str) -> str:
        """The query string that keeps this view (and ``extra``), without a ``?``."""
        return urlencode(self.pairs(**extra))

    def sorted_by(self, column: str) -> str:
        """The query that sorts by ``column``: its natural direction, or the other way when
        it is already sorted by it; back to the first page."""
        descending = not self.descending if column == self.sort else SORTS[column]
        return replace(self, sort=column, descending=descending, page=1).query()

    def on_page(self, page: int) -> str:
        return replace(self, page=page).query()

    def hidden(self) -> list[tuple[str, str]]:
        """The view as hidden form fields (an action's form returns to the same view)."""
        return self.pairs()


@dataclass(frozen=True)
class Clocks:
    """Times as one viewer reads them: in their time zone, ages in words."""

    now: datetime
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))

    @classmethod
    def of(cls, now: datetime, zone_name: str | None) -> Clocks:
        try:
            zone = ZoneInfo(unquote(zone_name)) if zone_name else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return cls(now=now, zone=zone)

    def when(self, value: datetime | None) -> str:
        """``2026-11-20 07:00 EST``: a time in the viewer's zone."""
        if value is None:
            return ""
        local = value.astimezone(self.zone)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    def iso(self, value: datetime | None) -> str:
        return "" if value is None else value.astimezone(UTC).isoformat()

    def age(self, value: datetime | None) -> str:
        """How long ago, in words that do not wrap: ``3 days``, ``2 weeks``."""
        return "" if value is None else words(self.now - value)


def words(delta: timedelta) -> str:
    """A length of time in one unit of words (non-breaking): ``5 minutes``, ``3 days``."""
    seconds = max(0.0, delta.total_seconds())
    for unit, size, below in (
        ("minute", 60, 3600),
        ("hour", 3600, 2 * 86400),
        ("day", 86400, 14 * 86400),
        ("week", 7 * 86400, 9 * 7 * 86400),
    ):
        if seconds < below:
            n = max(1 if unit != "minute" else 0, int(seconds // size))
            return f"{n}{_NBSP}{unit}{'s' if n != 1 else ''}"
    months = int(seconds // (30.44 * 86400))
    return f"{months}{_NBSP}month{'s' if months != 1 else ''}"


def days_words(days: int | None) -> str:
    """A renewal's distance: ``in 51 days``, ``today``, ``3 days ago``."""
    if days is None:
        return ""
    if days == 0:
        return "today"
    unit = "day" if abs(days) == 1 else "days"
    return f"in {days}{_NBSP}{unit}" if days > 0 else f"{-days}{_NBSP}{unit} ago"


def anchor(account_id: str) -> str:
    """The HTML id of an account's rows (account ids may hold any character)."""
    return "acct-" + fingerprint("board", account_id)[:12]


def state_words(alert: Alert, clocks: Clocks) -> str:
    """An alert's state as the board says it: ``acknowledged by ann``, ``snoozed until``."""
    if alert.state == AlertState.SNOOZED and alert.snoozed_until is not None:
        return f"snoozed until {clocks.when(alert.snoozed_until)}"
    if alert.state == AlertState.ACKNOWLEDGED:
        who = (alert.acted_by or "").partition(":")[2]
        return f"acknowledged by {who}" if who else "acknowledged"
    return str(alert.state)


@dataclass(frozen=True)
class AlertView:
    """One alert as the board shows it: its state in words and the feedback given."""

    alert: Alert
    state: str
    verdicts: tuple[str, ...]


@dataclass(frozen=True)
class Row:
    """One account at risk on the page: its line and its open alerts."""

    rank: int
    line: BookLine
    anchor: str
    days_to_renewal: int | None
    alerts: tuple[AlertView, ...]
    open: bool

    @property
    def muted(self) -> bool:
        return all(v.alert.muted_by is not None for v in self.alerts)


@dataclass
class BookView:
    """Everything the book page shows."""

    filters: Filters
    page: BookPage
    rows: list[Row]
    by_owner: list[tuple[str, int, float, float]]
    by_segment: list[tuple[str, int, float, float]]
    owners: list[str]
    segments: list[str]
    muted_alerts: int
    owner: str = ""
    status: str = ""

    @property
    def pages(self) -> int:
        return max(1, -(-self.page.total // PAGE_SIZE))


def rows_of(
    page: BookPage,
    alerts: Sequence[Alert],
    feedback: Sequence[Feedback],
    filters: Filters,
    clocks: Clocks,
    open_account: str = "",
) -> list[Row]:
    """A page's rows with their alerts (pure)."""
    per_account: dict[str, list[Alert]] = {}
    for a in alerts:
        per_account.setdefault(a.account_id, []).append(a)
    verdicts: dict[tuple[str, int], set[str]] = {}
    for f in feedback:
        verdicts.setdefault((f.alert_fingerprint, f.episode), set()).add(str(f.verdict))
    first = (filters.page - 1) * PAGE_SIZE
    rows = []
    for n, line in enumerate(page.lines, start=first + 1):
        group = per_account.get(line.account.id, [])
        views = tuple(
            AlertView(
                a,
                state_words(a, clocks),
                tuple(sorted(verdicts.get((a.fingerprint, a.episode), ()))),
            )
            for a in group
        )
        rows.append(
            Row(
                rank=n,
                line=line,
                anchor=anchor(line.account.id),
                days_to_renewal=line.account.days_to_renewal(clocks.now),
                alerts=views,
                open=line.account.id == open_account,
            )
        )
    return rows


#: The CSV's columns.
CSV_COLUMNS = (
    "account_id",
    "account",
    "owner",
    "segment",
    "severity",
    "score",
    "arr",
    "arr_at_risk",
    "renewal_date",
    "days_to_renewal",
    "open_alerts",
    "open_since",
)


def _cell(value: object) -> object:
    """A spreadsheet never runs a cell as a formula: text that starts like one is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_of(lines: Sequence[BookLine], now: datetime) -> str:
    """The book's lines as CSV, in the view's order."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for line in lines:
        a = line.account
        renewal: date | None = a.renewal_date
        days = a.days_to_renewal(now)
        writer.writerow(
            _cell(v)
            for v in (
                a.id,
                a.label,
                a.owner or "",
                a.segment or "",
                str(line.severity),
                f"{line.score:.4f}",
                f"{a.arr:.2f}",
                f"{line.revenue_at_risk:.2f}",
                renewal.isoformat() if renewal else "",
                "" if days is None else days,
                line.alerts,
                line.since.astimezone(UTC).isoformat(),
            )
        )
    return out.getvalue()
