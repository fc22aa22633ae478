"""The web risk board (``/board``): open risks ranked by ARR at risk, explained, actionable.

Server-rendered HTML from the ``board*.html.j2`` templates, no JavaScript. Access needs
``server.board_token``: presented once as ``/board?token=...``, it is traded for a signed,
expiring session cookie (HttpOnly, SameSite=Strict, path /board); without a configured
token the board answers 404. Every action is a POST form carrying a CSRF token bound to
that session; it acts through :mod:`swanwatch.actions`, as the CLI and the signed links do,
and redirects back (Post/Redirect/Get). Sessions and CSRF tokens are signed with
:mod:`swanwatch.signing`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from swanwatch.actions import Acknowledge, Action, AlertActions, Mark, Resolve, Snooze
from swanwatch.clock import Clock
from swanwatch.config import Config
from swanwatch.errors import ActionError, AlertNotFound, AmbiguousAlert
from swanwatch.model import Account, Alert, AlertState, Feedback, Verdict, fingerprint
from swanwatch.reports import RiskLine, risk_lines, totals
from swanwatch.signing import derive_key, same, sign, verify
from swanwatch.store import Store

log = logging.getLogger("swanwatch.board")

#: The session cookie's name.
COOKIE = "swanwatch_board"
#: Who the board's actions are recorded as (``ack:board``, feedback author ``board``).
ACTOR = "board"
#: At most this many accounts are listed (the riskiest); the totals cover all of them.
MAX_ROWS = 500


@dataclass(frozen=True)
class BoardAction:
    """One button of an alert: its label, what the status line says once done, and the
    action it takes (:mod:`swanwatch.actions`)."""

    label: str
    done: str
    action: Action


#: The form's ``action`` values, in the order the buttons appear.
ACTIONS: dict[str, BoardAction] = {
    "ack": BoardAction("Acknowledge", "Acknowledged", Acknowledge()),
    "snooze1": BoardAction("Snooze 1 day", "Snoozed for 1 day", Snooze(timedelta(days=1))),
    "snooze7": BoardAction("Snooze 7 days", "Snoozed for 7 days", Snooze(timedelta(days=7))),
    "resolve": BoardAction("Resolve", "Resolved", Resolve()),
    "useful": BoardAction("Mark useful", "Marked useful", Mark(Verdict.USEFUL)),
    "noise": BoardAction("Mark noise", "Marked as noise", Mark(Verdict.NOISE)),
}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex",
}


class BoardError(Exception):
    """A form the board cannot take, with the HTTP status to answer."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def _status_of(exc: ActionError) -> int:
    """The HTTP status of an action the board could not carry out."""
    if isinstance(exc, AlertNotFound | AmbiguousAlert):
        return 404
    return 409  # a new episode since the page was loaded, resolved meanwhile, ...


class BoardAccess:
    """The board's token, its session cookies and the CSRF tokens of its forms.

    A session is ``<expiry>.<mac>``: stateless, so every replica and every restart accepts
    it, and changing ``board_token`` ends every session. A form's CSRF token is a MAC of the
    session it was rendered for.
    """

    def __init__(self, token: str, ttl: timedelta, clock: Clock) -> None:
        self._token = token
        self._key = derive_key(token.encode("utf-8"), "swanwatch board v1")
        self.ttl = ttl
        self.clock = clock

    def token_ok(self, presented: str) -> bool:
        return same(presented, self._token)

    def new_session(self) -> str:
        expires = int((self.clock.now() + self.ttl).timestamp())
        return f"{expires}.{sign(self._key, 'session', str(expires))}"

    def session_ok(self, session: str | None) -> bool:
        if not session:
            return False
        expires, _, mac = session.partition(".")
        if not expires.isdigit() or not verify(self._key, mac, "session", expires):
            return False
        return self.clock.now().timestamp() < int(expires)

    def csrf(self, session: str) -> str:
        return sign(self._key, "csrf", session)

    def csrf_ok(self, session: str, presented: str) -> bool:
        return same(presented, self.csrf(session))


@dataclass(frozen=True)
class Filters:
    """What the board is narrowed to: an owner, a segment; muted alerts shown or not."""

    owner: str = ""
    segment: str = ""
    muted: bool = False

    @classmethod
    def of(cls, params: Mapping[str, str]) -> Filters:
        return cls(
            owner=params.get("owner", "").strip(),
            segment=params.get("segment", "").strip(),
            muted=params.get("muted", "") in ("1", "on", "true", "yes"),
        )

    @property
    def active(self) -> bool:
        return bool(self.owner or self.segment)

    def match(self, account: Account) -> bool:
        return (not self.owner or (account.owner or "") == self.owner) and (
            not self.segment or (account.segment or "") == self.segment
        )

    def query(self, **extra: str) -> str:
        """The query string that keeps these filters (and ``extra``), without a ``?``."""
        pairs = [("owner", self.owner), ("segment", self.segment)]
        pairs.append(("muted", "1" if self.muted else ""))
        pairs.extend(extra.items())
        return urlencode([(k, v) for k, v in pairs if v])


def anchor(account_id: str) -> str:
    """The HTML id of an account's rows (account ids may hold any character)."""
    return "acct-" + fingerprint("board", account_id)[:12]


@dataclass(frozen=True)
class AlertView:
    """One alert as a board row's detail shows it."""

    alert: Alert
    state: str
    verdicts: tuple[str, ...]
    actions: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Row:
    """One account at risk: its line of the ranking and its open alerts."""

    rank: int
    line: RiskLine
    anchor: str
    days_to_renewal: int | None
    alerts: tuple[AlertView, ...]
    muted: bool
    open: bool


@dataclass
class BoardView:
    """Everything the board page shows."""

    now: datetime
    filters: Filters
    rows: list[Row]
    listed: int
    summary: tuple[int, float, float]
    by_owner: list[tuple[str, int, float, float]]
    by_segment: list[tuple[str, int, float, float]]
    owners: list[str]
    segments: list[str]
    muted_alerts: int
    status: str = ""


def _state(alert: Alert) -> str:
    if alert.state == AlertState.SNOOZED and alert.snoozed_until is not None:
        return f"snoozed until {alert.snoozed_until:%Y-%m-%d %H:%M} UTC"
    if alert.state == AlertState.ACKNOWLEDGED:
        who = (alert.acted_by or "").partition(":")[2]
        return f"acknowledged by {who}" if who else "acknowledged"
    return str(alert.state)


def _alert_view(alert: Alert, verdicts: set[str]) -> AlertView:
    actions = tuple(
        (value, action.label)
        for value, action in ACTIONS.items()
        if not (value == "ack" and alert.state == AlertState.ACKNOWLEDGED)
    )
    return AlertView(alert, _state(alert), tuple(sorted(verdicts)), actions)


def build_view(
    alerts: Sequence[Alert],
    accounts: Mapping[str, Account],
    feedback: Sequence[Feedback],
    filters: Filters,
    now: datetime,
    open_account: str = "",
) -> BoardView:
    """The board from open alerts, their accounts and their feedback (pure)."""
    muted_alerts = sum(1 for a in alerts if a.muted_by is not None and a.account_id in accounts)
    shown = [a for a in alerts if a.open and (filters.muted or a.muted_by is None)]
    every = risk_lines(shown, accounts)
    owners = sorted({line.account.owner for line in every if line.account.owner})
    segments = sorted({line.account.segment for line in every if line.account.segment})
    lines = [line for line in every if filters.match(line.account)]
    per_account: dict[str, list[Alert]] = defaultdict(list)
    for a in shown:
        per_account[a.account_id].append(a)
    verdicts: dict[tuple[str, int], set[str]] = defaultdict(set)
    for f in feedback:
        verdicts[(f.alert_fingerprint, f.episode)].add(str(f.verdict))
    rows = []
    for rank, line in enumerate(lines[:MAX_ROWS], start=1):
        group = sorted(
            per_account[line.account.id], key=lambda a: (-a.severity.rank, -a.score, a.rule)
        )
        rows.append(
            Row(
                rank=rank,
                line=line,
                anchor=anchor(line.account.id),
                days_to_renewal=line.account.days_to_renewal(now),
                alerts=tuple(_alert_view(a, verdicts[(a.fingerprint, a.episode)]) for a in group),
                muted=all(a.muted_by is not None for a in group),
                open=line.account.id == open_account,
            )
        )
    summary = totals(lines, "all")
    return BoardView(
        now=now,
        filters=filters,
        rows=rows,
        listed=len(lines),
        summary=summary[0][1:] if summary else (0, 0.0, 0.0),
        by_owner=totals(lines, "owner"),
        by_segment=totals(lines, "segment"),
        owners=owners,
        segments=segments,
        muted_alerts=muted_alerts,
    )


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _day(value: date | datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d}"


class Board:
    """The board's routes over one store: the page, the actions, signing out."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.actions = AlertActions(store, clock)
        token = config.server.board_token
        self.access = (
            BoardAccess(token.get_secret_value(), config.server.board_session, clock)
            if token is not None
            else None
        )
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("swanwatch", "templates"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters.update(money=_money, pct=_pct, day=_day)

    def routes(self) -> list[Route]:
        return [
            Route("/board", self.page, methods=["GET"], name="board"),
            Route("/board/alerts/{fingerprint}", self.act, methods=["POST"]),
            Route("/board/signout", self.sign_out, methods=["POST"]),
        ]

    # --- responses ----------------------------------------------------------------------

    def _render(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(name).render(**context)
        return HTMLResponse(body, status_code=status, headers=_SECURITY_HEADERS)

    def _message(
        self,
        request: Request,
        title: str,
        text: str,
        status: int,
        *,
        link: str | None = None,
        link_text: str = "Back to the risk board",
        refresh: bool = False,
    ) -> HTMLResponse:
        return self._render(
            "board_message.html.j2",
            status,
            title=title,
            text=text,
            link=link,
            link_text=link_text,
            refresh=refresh,
        )

    @staticmethod
    def _url(request: Request, query: str = "", fragment: str = "") -> str:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return (
            f"{root}/board" + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")
        )

    def _off(self, request: Request) -> HTMLResponse:
        return self._message(
            request,
            "The risk board is off",
            "This Swanwatch has no board token: set server.board_token in its configuration "
            "(from an environment variable) to turn the board on. See docs/board.md.",
            404,
        )

    def _signed_out(self, request: Request) -> HTMLResponse:
        return self._message(
            request,
            "Sign in to the risk board",
            "The risk board shows customer data, so it needs its access link: open "
            "/board?token=... with the board token your Swanwatch admin gave you. If you "
            "already signed in on this browser and came here from another site, continue:",
            403,
            link=self._url(request, str(request.url.query)),
            link_text="Open the risk board",
        )

    def _session(self, request: Request) -> str | None:
        assert self.access is not None
        session = request.cookies.get(COOKIE)
        return session if self.access.session_ok(session) else None

    def _set_cookie(self, request: Request, response: Response, value: str, ttl: int) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=ttl,
            path=self._url(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    # --- the page ----------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        if self.access is None:
            return self._off(request)
        params = request.query_params
        if "token" in params:
            if not self.access.token_ok(params["token"]):
                return self._message(
                    request,
                    "This board link is not valid",
                    "The token in this link does not match this Swanwatch's board token "
                    "(it may have been changed). Ask your Swanwatch admin for the current link.",
                    403,
                )
            # A page that moves on by itself rather than a redirect: the token leaves the
            # address bar, and the next request is same-site even when the link was
            # followed from another site (a SameSite=Strict cookie rides only on those).
            target = self._url(request, Filters.of(params).query())
            response = self._message(
                request,
                "Signed in",
                "Opening the risk board...",
                200,
                link=target,
                link_text="Open the risk board",
                refresh=True,
            )
            ttl = int(self.access.ttl.total_seconds())
            self._set_cookie(request, response, self.access.new_session(), ttl)
            return response
        session = self._session(request)
        if session is None:
            return self._signed_out(request)
        filters = Filters.of(params)
        view = await asyncio.to_thread(self._view, filters, params.get("open", ""))
        view.status = await asyncio.to_thread(
            self._status, params.get("done", ""), params.get("alert", "")
        )
        return self._render(
            "board.html.j2",
            view=view,
            actions=ACTIONS,
            csrf=self.access.csrf(session),
            board_url=self._url(request),
            signout_url=self._url(request) + "/signout",
            alert_url=lambda fp: self._url(request) + f"/alerts/{fp}",
        )

    def _view(self, filters: Filters, open_account: str) -> BoardView:
        alerts = self.store.alerts(open_only=True)
        accounts = {a.id: a for a in self.store.accounts({a.account_id for a in alerts})}
        feedback = self.store.feedback_for(a.fingerprint for a in alerts)
        return build_view(alerts, accounts, feedback, filters, self.clock.now(), open_account)

    def _status(self, done: str, ref: str) -> str:
        if done not in ACTIONS or not ref:
            return ""
        found = self.store.alerts(fingerprints=[ref])
        if not found:
            return ""
        alert = found[0]
        accounts = self.store.accounts([alert.account_id])
        who = accounts[0].label if accounts else alert.account_id
        return f"{ACTIONS[done].done}: {alert.title} on {who}."

    # --- actions -----------------------------------------------------------------------

    async def _form(self, request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body).items()}

    def _check_form(self, request: Request, form: Mapping[str, str]) -> Response | None:
        """None when the session and the form's CSRF token hold, else the refusal."""
        assert self.access is not None
        session = self._session(request)
        if session is None:
            return self._signed_out(request)
        if not self.access.csrf_ok(session, form.get("csrf", "")):
            return self._message(
                request,
                "Nothing done",
                "This form does not belong to your session (it is from an older sign-in or "
                "another site). Reload the board and try again.",
                403,
                link=self._url(request),
            )
        return None

    async def act(self, request: Request) -> Response:
        if self.access is None:
            return self._off(request)
        form = await self._form(request)
        refused = self._check_form(request, form)
        if refused is not None:
            return refused
        filters = Filters.of(form)
        back = self._url(request, filters.query())
        action = form.get("action", "")
        try:
            if action not in ACTIONS:
                raise BoardError(f"unknown action {action!r}", 400)
            try:
                episode = int(form.get("episode", ""))
            except ValueError:
                raise BoardError("the form carries no alert episode", 400) from None
            done = await asyncio.to_thread(
                self.actions.act,
                request.path_params["fingerprint"],
                ACTIONS[action].action,
                by=ACTOR,
                episode=episode,
            )
        except BoardError as exc:
            return self._message(request, "Nothing done", str(exc), exc.status, link=back)
        except ActionError as exc:
            return self._message(request, "Nothing done", str(exc), _status_of(exc), link=back)
        alert = done.alert
        query = filters.query(done=action, alert=alert.fingerprint, open=alert.account_id)
        return RedirectResponse(
            self._url(request, query, anchor(alert.account_id)), status_code=303
        )

    async def sign_out(self, request: Request) -> Response:
        if self.access is None:
            return self._off(request)
        form = await self._form(request)
        refused = self._check_form(request, form)
        if refused is not None:
            return refused
        response = self._message(
            request,
            "Signed out",
            "This browser no longer has access to the risk board.",
            200,
        )
        response.delete_cookie(
            COOKIE,
            path=self._url(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response
