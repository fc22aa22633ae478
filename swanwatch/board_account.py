"""An account's page on the risk board (``/board/accounts/{id}``): its header, its open
alert with the reasons and the play, three charts (usage against its baseline, the risk
score over 180 days, tickets by week), a timeline of signals, alerts, notifications and
people's actions, and its contacts."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from swanwatch.board_book import Clocks, state_words
from swanwatch.board_charts import score_chart, tickets_chart, usage_chart, weekly
from swanwatch.board_facts import AccountFacts, Contact
from swanwatch.model import Account, Alert, StoredSignal
from swanwatch.store import LoggedAction, SentNotice

if TYPE_CHECKING:
    from swanwatch.board import Board

#: Days of score history and usage the charts show.
CHART_DAYS = 180
#: Weeks of tickets the chart shows.
TICKET_WEEKS = 26
#: Entries the timeline shows at most.
TIMELINE_MAX = 100


@dataclass(frozen=True)
class Moment:
    """One line of the timeline: when, what kind, what happened, and who."""

    at: datetime
    kind: str
    text: str
    who: str = ""


def timeline(
    signals: Sequence[StoredSignal],
    alerts: Sequence[Alert],
    sent: Sequence[SentNotice],
    actions: Sequence[LoggedAction],
) -> list[Moment]:
    """Signals raised and cleared, alerts fired and resolved, notifications sent and
    people's actions, newest first (pure)."""
    titles = {a.fingerprint: a.title for a in alerts}
    out = []
    for s in signals:
        out.append(Moment(s.first_seen, "signal", f"Signal: {s.summary}", s.watcher))
        if s.cleared_at is not None:
            out.append(Moment(s.cleared_at, "signal", f"Signal cleared: {s.kind}", s.watcher))
    for a in alerts:
        episode = f" (episode {a.episode})" if a.episode > 1 else ""
        out.append(Moment(a.started_at, "alert", f"Alert fired: {a.title}, {a.severity}{episode}"))
        if a.resolved_at is not None:
            out.append(Moment(a.resolved_at, "alert", f"Alert resolved: {a.title}"))
    for n in sent:
        out.append(Moment(n.sent_at, "notice", f"Sent to {n.channel}: {n.title} ({n.event})"))
    for act in actions:
        title = titles.get(act.alert_fingerprint, "an alert")
        detail = f" ({act.detail})" if act.detail else ""
        out.append(
            Moment(act.at, "action", f"{act.action} by {act.person}: {title}{detail}", act.person)
        )
    out.sort(key=lambda m: m.at, reverse=True)
    return out[:TIMELINE_MAX]


def _drop(signals: Sequence[StoredSignal]) -> tuple[str | None, tuple[date, date] | None]:
    """The metric and days of the account's active usage drop, if any."""
    for s in signals:
        if s.kind != "usage_drop" or s.cleared_at is not None:
            continue
        ev = s.evidence
        try:
            start = date.fromisoformat(str(ev.get("started", "")))
            end = date.fromisoformat(str(ev.get("last_day", ev.get("started", ""))))
        except ValueError:
            return str(ev.get("metric") or s.key or "") or None, None
        return str(ev.get("metric") or s.key or "") or None, (start, end)
    return None, None


def usage_svg(
    usage: Mapping[str, Mapping[date, float]], signals: Sequence[StoredSignal], today: date
) -> Markup:
    """The usage chart of the dropping metric (else the busiest one), last 180 days."""
    metric, drop = _drop(signals)
    if metric not in usage:
        metric = max(usage, key=lambda m: sum(usage[m].values()), default=None)
    if metric is None:
        return usage_chart({}, "usage", None)
    since = today - timedelta(days=CHART_DAYS)
    series = {d: v for d, v in usage[metric].items() if since <= d <= today}
    return usage_chart(series, metric, drop)


@dataclass(frozen=True)
class _Stored:
    """What the store holds of one account."""

    account: Account
    alerts: list[Alert]
    signals: list[StoredSignal]
    history: list[tuple[date, float]]
    sent: list[SentNotice]
    acted: list[LoggedAction]


@dataclass
class AccountView:
    """Everything the account page shows."""

    account: Account
    open_alerts: list[tuple[Alert, str]]
    days_to_renewal: int | None
    charts: dict[str, Markup]
    moments: list[Moment]
    contacts: list[Contact]
    problems: list[str]
    status: str = ""


class AccountPages:
    """The account pages of one board."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.facts = AccountFacts(board.config)

    def _stored(self, account_id: str, now: datetime) -> _Stored | None:
        store = self.board.store
        found = store.accounts([account_id])
        if not found:
            return None
        since = now.date() - timedelta(days=CHART_DAYS)
        return _Stored(
            found[0],
            store.alerts(account_id=account_id),
            store.signals(account_id=account_id, active_only=False),
            store.score_history(account_id, since),
            store.sent_notices(account_id),
            store.logged_actions(account_id),
        )

    async def page(self, request: Request) -> Response:
        board = self.board
        person = await board.viewer(request)
        if isinstance(person, Response):
            return person
        account_id = request.path_params["account_id"]
        clocks = board.clocks(request)
        stored = await asyncio.to_thread(self._stored, account_id, clocks.now)
        if stored is None:
            return board.message(
                "No such account", f"No account {account_id!r} is on record.", 404, link=board.url()
            )
        view = await self._view(stored, clocks)
        view.status = self._status(request, view)
        return board.render(
            "board_account.html.j2",
            view=view,
            clocks=clocks,
            actions=_actions(),
            **board.common(request, person, await board.csrf(request, person)),
        )

    async def _view(self, stored: _Stored, clocks: Clocks) -> AccountView:
        account, alerts_, signals_ = stored.account, stored.alerts, stored.signals
        today = clocks.now.date()
        usage, usage_problem = await self.facts.usage(account.id)
        tickets, tickets_problem = await self.facts.tickets(account.id)
        contacts, contacts_problem = await self.facts.contacts(account.id)
        first = today - timedelta(days=CHART_DAYS)
        charts = {
            "usage": usage_svg(usage, signals_, today),
            "score": score_chart(stored.history, first, today),
            "tickets": tickets_chart(
                weekly(tickets, today - timedelta(weeks=TICKET_WEEKS - 1), today)
            ),
        }
        open_alerts = [(a, state_words(a, clocks)) for a in alerts_ if a.open]
        open_alerts.sort(key=lambda pair: (-pair[0].severity.rank, -pair[0].score))
        return AccountView(
            account=account,
            open_alerts=open_alerts,
            days_to_renewal=account.days_to_renewal(clocks.now),
            charts=charts,
            moments=timeline(signals_, alerts_, stored.sent, stored.acted),
            contacts=sorted(contacts, key=lambda c: (c.role != "champion", c.name)),
            problems=[p for p in (usage_problem, tickets_problem, contacts_problem) if p],
        )

    def _status(self, request: Request, view: AccountView) -> str:
        from swanwatch.board import ACTIONS

        done = request.query_params.get("done", "")
        ref = request.query_params.get("alert", "")
        for alert, _state in view.open_alerts:
            if done in ACTIONS and alert.fingerprint == ref:
                return f"{ACTIONS[done].done}: {alert.title}."
        return ""


def _actions() -> Mapping[str, object]:
    from swanwatch.board import ACTIONS

    return ACTIONS
