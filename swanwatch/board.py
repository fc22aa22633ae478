"""The web risk board (``/board``): the whole book of open risks, each account's page, the
silences, and the actions, for a person who signed in.

Server-rendered HTML from the ``board*.html.j2`` templates; the one small script
(``/board/static/board.js``) only tells the server the browser's time zone. Who is at the
board, and how they signed in, is :mod:`swanwatch.board_auth` (a trusted proxy's header, a
local user, or the shared token). Every action is a POST form carrying a CSRF token bound
to the person's session; it acts through :mod:`swanwatch.actions` as that person, as the
CLI and the signed links do, and redirects back (Post/Redirect/Get). Redirects are built on
``server.board.public_url`` (or are paths), never on the request's Host header.

The pieces: :mod:`swanwatch.board_book` (the book's view, CSV, words and times),
:mod:`swanwatch.board_account` (an account's page), :mod:`swanwatch.board_silences`, and
:mod:`swanwatch.board_charts` (inline SVG).
"""

from __future__ import annotations

import asyncio
import logging
import time as monotonic_time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from swanwatch.actions import Acknowledge, Action, AlertActions, Mark, Resolve, Snooze
from swanwatch.board_auth import (
    EMAIL_HEADER,
    SHARED,
    USER_HEADER,
    VIA_PROXY,
    Person,
    Sessions,
    SignIn,
    SignInGuard,
    cross_site,
    hash_tag,
    password_ok,
)
from swanwatch.board_book import (
    TZ_COOKIE,
    BookView,
    Clocks,
    Filters,
    anchor,
    csv_of,
    days_words,
    rows_of,
)
from swanwatch.clock import Clock
from swanwatch.config import Config
from swanwatch.errors import ActionError, AlertNotFound, AmbiguousAlert
from swanwatch.model import Verdict
from swanwatch.store import Store
from swanwatch.store.book import BookEntry, groups_of, select_page

log = logging.getLogger("swanwatch.board")

#: The session cookie's name.
COOKIE = "swanwatch_board"
#: Who the shared token's actions are recorded as.
ACTOR = SHARED
#: How long the book read for one page serves the next ones (this board's actions drop it
#: at once; another replica's or the CLI's show within this long).
BOOK_TTL = 5.0
#: The longest snooze "until a date" may ask for.
MAX_SNOOZE = timedelta(days=365)


@dataclass(frozen=True)
class BoardAction:
    """One button of an alert: its label, what the status line says once done, and the
    action it takes (:mod:`swanwatch.actions`); a snooze "until" takes its date from the form."""

    label: str
    done: str
    action: Action | None


#: The form's ``action`` values, in the order the buttons appear.
ACTIONS: dict[str, BoardAction] = {
    "ack": BoardAction("Acknowledge", "Acknowledged", Acknowledge()),
    "snooze1": BoardAction("Snooze 1 day", "Snoozed for 1 day", Snooze(timedelta(days=1))),
    "snooze7": BoardAction("Snooze 1 week", "Snoozed for 1 week", Snooze(timedelta(days=7))),
    "snooze_until": BoardAction("Snooze until", "Snoozed", None),
    "resolve": BoardAction("Resolve", "Resolved", Resolve()),
    "useful": BoardAction("Mark useful", "Marked useful", Mark(Verdict.USEFUL)),
    "noise": BoardAction("Mark noise", "Marked as noise", Mark(Verdict.NOISE)),
}
#: The book's columns as the sort control names them.
SORT_LABELS = {
    "risk": "ARR at risk",
    "account": "Account",
    "owner": "Owner",
    "segment": "Segment",
    "severity": "Severity",
    "score": "Score",
    "arr": "ARR",
    "renewal": "Renewal",
    "since": "Open for",
    "alerts": "Alerts",
}
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; img-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
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


def _money(value: float) -> str:
    return f"${value:,.0f}"


def _pct(value: float) -> str:
    return f"{value:.0%}"


def _day(value: date | datetime | None) -> str:
    return "" if value is None else f"{value:%Y-%m-%d}"


def snooze_until(text: str, zone_name: str | None, now: datetime) -> Snooze:
    """A snooze until the start of ``text`` (YYYY-MM-DD) in the viewer's zone."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise BoardError(f"snooze until {text!r}: give a date as YYYY-MM-DD", 400) from None
    zone = Clocks.of(now, zone_name).zone
    until = datetime.combine(day, time(0, 0), tzinfo=zone).astimezone(UTC)
    if until <= now:
        raise BoardError(f"snooze until {day}: that day has begun already; pick a later one", 400)
    if until - now > MAX_SNOOZE:
        raise BoardError(f"snooze until {day}: at most a year ahead", 400)
    return Snooze(until - now)


class Board:
    """The board's routes over one store: pages, actions, sign-in and sign-out."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.settings = config.server.board
        self.store = store
        self.clock = clock
        self.actions = AlertActions(store, clock)
        token = config.server.board_token
        self.token = token.get_secret_value() if token is not None else None
        self.on = self.token is not None or self.settings.users or self.settings.proxy_auth
        self.guard = SignInGuard(clock)
        self._sessions: Sessions | None = None
        self._held: tuple[float, list[BookEntry]] | None = None
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("swanwatch", "templates"),
            autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",)),
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=jinja2.StrictUndefined,
        )
        self.env.filters.update(money=_money, pct=_pct, day=_day, days=days_words)
        self.env.globals.update(
            timedelta_days=lambda days: timedelta(days=days),
            one_day=timedelta(days=1),
            as_time=lambda day: datetime.combine(day, time(0, 0), tzinfo=UTC),
        )

    def routes(self) -> list[Route]:
        from swanwatch.board_account import AccountPages
        from swanwatch.board_silences import SilencePages

        accounts = AccountPages(self)
        silences = SilencePages(self)
        return [
            Route("/board", self.page, methods=["GET"], name="board"),
            Route("/board/", self.to_board, methods=["GET"]),
            Route("/board/export.csv", self.export, methods=["GET"]),
            Route("/board/static/board.js", self.script, methods=["GET"]),
            Route("/board/signin", self.sign_in_page, methods=["GET"]),
            Route("/board/signin", self.sign_in, methods=["POST"]),
            Route("/board/alerts/{fingerprint}", self.act, methods=["POST"]),
            Route("/board/accounts/{account_id:path}", accounts.page, methods=["GET"]),
            Route("/board/silences", silences.page, methods=["GET"]),
            Route("/board/silences", silences.add, methods=["POST"]),
            Route("/board/silences/{silence_id:int}/expire", silences.expire, methods=["POST"]),
            Route("/board/signout", self.sign_out, methods=["POST"]),
        ]

    # --- responses ----------------------------------------------------------------------

    def render(self, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        body = self.env.get_template(template).render(**context)
        return HTMLResponse(body, status_code=code, headers=_SECURITY_HEADERS)

    def message(
        self,
        title: str,
        text: str,
        status: int,
        *,
        link: str | None = None,
        link_text: str = "Back to the risk board",
        refresh: bool = False,
        sign_in: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        response = self.render(
            "board_message.html.j2",
            status,
            title=title,
            text=text,
            link=link,
            link_text=link_text,
            refresh=refresh,
            sign_in_url=self.url("/signin") if sign_in and self.settings.users else None,
        )
        response.headers.update(headers or {})
        return response

    def path(self, request: Request | None = None) -> str:
        """The board's path (under the app's root path)."""
        root = str(request.scope.get("root_path", "")) if request is not None else ""
        return root.rstrip("/") + "/board"

    def url(self, sub: str = "", query: str = "", fragment: str = "") -> str:
        """A board address: on ``public_url`` when configured, else a path; never built on
        the request's Host header."""
        base = (self.settings.public_url or "") + "/board" + sub
        return base + (f"?{query}" if query else "") + (f"#{fragment}" if fragment else "")

    def redirect(self, sub: str = "", query: str = "", fragment: str = "") -> Response:
        return RedirectResponse(self.url(sub, query, fragment), status_code=303)

    def _off(self) -> HTMLResponse:
        return self.message(
            "The risk board is off",
            "This Swanwatch has no way to sign in to the board: set server.board_token, "
            "server.board.users or server.board.proxy_auth in its configuration to turn the "
            "board on. See docs/board.md.",
            404,
        )

    def signed_out(self, request: Request) -> HTMLResponse:
        ways = []
        if self.settings.users:
            ways.append("sign in with your user name and password")
        if self.token is not None:
            ways.append("open /board?token=... with the board token your Swanwatch admin gave you")
        return self.message(
            "Sign in to the risk board",
            "The risk board shows customer data, so it needs to know who you are: "
            + ", or ".join(ways or ["come through your organisation's sign-in proxy"])
            + ". If you already signed in on this browser and came here from another site, "
            "continue:",
            403,
            link=self.url("", str(request.url.query)),
            link_text="Open the risk board",
            sign_in=True,
        )

    async def to_board(self, _request: Request) -> Response:
        return self.redirect()

    async def script(self, _request: Request) -> Response:
        text = resources.files("swanwatch").joinpath("templates/board.js").read_text("utf-8")
        return Response(
            text,
            media_type="text/javascript",
            headers={**_SECURITY_HEADERS, "Cache-Control": "max-age=3600"},
        )

    # --- who is there -------------------------------------------------------------------

    async def sessions(self) -> Sessions:
        if self._sessions is None:
            secret = await asyncio.to_thread(self.store.board_secret, self.clock.now())
            self._sessions = Sessions(
                secret, self.token, self.config.server.board_session, self.clock
            )
        return self._sessions

    def client(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def viewer(self, request: Request) -> Person | Response:
        """The person at the board, or the response that refuses or asks them to sign in."""
        person = await self.identify(request)
        return self.signed_out(request) if person is None else person

    async def identify(self, request: Request) -> Person | Response | None:
        """The person at the board; a refusal (the board off, identity headers from an
        address that is no trusted proxy); or None, signed out."""
        if not self.on:
            return self._off()
        user = request.headers.get(USER_HEADER, "").strip()
        email = request.headers.get(EMAIL_HEADER, "").strip()
        if user or email:
            if not request.scope.get(VIA_PROXY):
                log.warning(
                    "board: refused identity headers (%s) from %s, which is not a trusted proxy",
                    email or user,
                    self.client(request),
                )
                return self.message(
                    "Refused",
                    "This request names a person in X-Forwarded-User / X-Forwarded-Email but "
                    "did not come from a trusted proxy (server.board.trusted_proxies).",
                    403,
                )
            if self.settings.proxy_auth:
                return Person(name=email or user, way=SignIn.PROXY, owner=email or user)
        return await self._from_cookie(request)

    async def _from_cookie(self, request: Request) -> Person | None:
        sessions = await self.sessions()
        found = sessions.read(request.cookies.get(COOKIE))
        if found is None:
            return None
        way, name, stamp = found
        if way == SignIn.TOKEN and self.token is not None and sessions.holds(way, name, stamp):
            return Person(name=SHARED, way=SignIn.TOKEN)
        if way == SignIn.USER and self.settings.users:
            record = await asyncio.to_thread(self.store.user, name)
            if record is not None and sessions.holds(
                way, name, stamp, hash_tag(record.password_hash)
            ):
                return Person(name=record.name, way=SignIn.USER, owner=record.owner)
        return None

    def csrf_key(self, request: Request, person: Person) -> str:
        """What a person's CSRF tokens are bound to: their session, or their proxy identity."""
        if person.way == SignIn.PROXY:
            return f"proxy:{person.name}"
        return request.cookies.get(COOKIE, "")

    async def csrf(self, request: Request, person: Person) -> str:
        return (await self.sessions()).csrf(self.csrf_key(request, person))

    async def form(self, request: Request) -> dict[str, str]:
        body = (await request.body()).decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body).items()}

    async def acting(self, request: Request, form: Mapping[str, str]) -> Person | Response:
        """The person behind a POST form whose CSRF token holds, else the refusal."""
        person = await self.viewer(request)
        if isinstance(person, Response):
            return person
        sessions = await self.sessions()
        if not sessions.csrf_ok(self.csrf_key(request, person), form.get("csrf", "")):
            return self.message(
                "Nothing done",
                "This form does not belong to your session (it is from an older sign-in or "
                "another site). Reload the board and try again.",
                403,
                link=self.url(),
            )
        return person

    def common(self, request: Request, person: Person, csrf: str) -> dict[str, Any]:
        """What every signed-in page's frame shows."""
        return {
            "person": person,
            "csrf": csrf,
            "board_url": self.path(request),
            "signout_url": self.path(request) + "/signout",
            "silences_url": self.path(request) + "/silences",
            "script_url": self.path(request) + "/static/board.js",
            "account_url": lambda account_id: self.path(request) + "/accounts/" + account_id,
            "alert_url": lambda fp: self.path(request) + f"/alerts/{fp}",
        }

    def clocks(self, request: Request) -> Clocks:
        return Clocks.of(self.clock.now(), request.cookies.get(TZ_COOKIE))

    # --- signing in and out -------------------------------------------------------------

    def _sign_in_cookie(self, request: Request, response: Response, value: str) -> None:
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(self.config.server.board_session.total_seconds()),
            path=self.path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    def _wait(self, request: Request) -> Response | None:
        address = self.client(request)
        left = self.guard.wait(address)
        if left is None:
            return None
        seconds = max(1, int(left.total_seconds() + 0.999))
        log.warning("board: sign-in from %s refused: it must wait %d s", address, seconds)
        return self.message(
            "Too many failed sign-ins",
            f"Too many failed sign-ins from your address: wait {seconds} seconds and try again.",
            429,
            headers={"Retry-After": str(seconds)},
        )

    async def _token_sign_in(self, request: Request, presented: str) -> Response:
        address = self.client(request)
        sessions = await self.sessions()
        if not sessions.token_ok(presented):
            self.guard.failed(address, "board token")
            return self.message(
                "This board link is not valid",
                "The token in this link does not match this Swanwatch's board token "
                "(it may have been changed). Ask your Swanwatch admin for the current link.",
                403,
            )
        self.guard.succeeded(address)
        # A page that moves on by itself rather than a redirect: the token leaves the
        # address bar, and the next request is same-site even when the link was followed
        # from another site (a SameSite=Strict cookie rides only on those).
        response = self.message(
            "Signed in",
            "Opening the risk board...",
            200,
            link=self.url("", Filters.of(request.query_params).query()),
            link_text="Open the risk board",
            refresh=True,
        )
        self._sign_in_cookie(request, response, sessions.new(SignIn.TOKEN, SHARED))
        return response

    async def sign_in_page(self, request: Request) -> Response:
        if not self.on:
            return self._off()
        if not self.settings.users:
            return self.signed_out(request)
        return self.render(
            "board_signin.html.j2", action=self.path(request) + "/signin", error="", name=""
        )

    async def sign_in(self, request: Request) -> Response:
        if not self.on or not self.settings.users:
            return self._off() if not self.on else self.signed_out(request)
        waiting = self._wait(request)
        if waiting is not None:
            return waiting
        own = f"{request.url.scheme}://{request.url.netloc}"
        if cross_site(request.headers, own, self.settings.public_url):
            log.warning("board: a sign-in posted by another site's page was refused")
            return self.message(
                "Sign in here",
                "That sign-in came from another site's page. Open the risk board's "
                "sign-in page and sign in there.",
                403,
            )
        form = await self.form(request)
        name = form.get("user", "").strip()
        record = await asyncio.to_thread(self.store.user, name) if name else None
        ok = record is not None and await asyncio.to_thread(
            password_ok, record.password_hash, form.get("password", "")
        )
        address = self.client(request)
        if record is None or not ok:
            self.guard.failed(address, f"password for {name[:80]!r}")
            return self.render(
                "board_signin.html.j2",
                401,
                action=self.path(request) + "/signin",
                error="That user name and password do not match.",
                name=name,
            )
        self.guard.succeeded(address)
        log.info("board: %s signed in from %s", record.name, address)
        sessions = await self.sessions()
        response = self.redirect()
        value = sessions.new(SignIn.USER, record.name, hash_tag(record.password_hash))
        self._sign_in_cookie(request, response, value)
        return response

    async def sign_out(self, request: Request) -> Response:
        form = await self.form(request)
        person = await self.acting(request, form)
        if isinstance(person, Response):
            return person
        response = self.message(
            "Signed out", "This browser no longer has access to the risk board.", 200
        )
        response.delete_cookie(
            COOKIE,
            path=self.path(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return response

    # --- the book -----------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        if not self.on:
            return self._off()
        params = request.query_params
        if "token" in params and self.token is not None:
            return self._wait(request) or await self._token_sign_in(request, params["token"])
        person = await self.viewer(request)
        if isinstance(person, Response):
            return person
        filters = Filters.of(params)
        clocks = self.clocks(request)
        view = await asyncio.to_thread(self._book, filters, person, clocks, params.get("open", ""))
        view.status = await asyncio.to_thread(
            self._status, params.get("done", ""), params.get("alert", "")
        )
        return self.render(
            "board.html.j2",
            view=view,
            clocks=clocks,
            actions=ACTIONS,
            export_url=self.path(request) + "/export.csv",
            sort_labels=SORT_LABELS,
            **self.common(request, person, await self.csrf(request, person)),
        )

    def _owner(self, filters: Filters, person: Person) -> str:
        return person.owner if filters.mine else filters.owner

    def book(self) -> list[BookEntry]:
        """Every account with open alerts: read in one query, then kept :data:`BOOK_TTL`
        (this board's own actions drop it at once) so that paging and sorting the book
        does not read it again each time."""
        held = self._held
        if held is not None and monotonic_time.monotonic() - held[0] < BOOK_TTL:
            return held[1]
        entries = self.store.book()
        self._held = (monotonic_time.monotonic(), entries)
        return entries

    def forget_book(self) -> None:
        """After an action: the next page reads the book again."""
        self._held = None

    def _book(
        self, filters: Filters, person: Person, clocks: Clocks, open_account: str
    ) -> BookView:
        owner = self._owner(filters, person)
        if filters.mine and not owner:
            owner = "\x00nobody"  # the shared token has no accounts of its own
        entries = self.book()
        page, selected = select_page(entries, filters.book_query(owner))
        ids = [line.account.id for line in page.lines]
        alerts = self.store.open_alerts_of(ids, muted=filters.muted)
        feedback = self.store.feedback_for(a.fingerprint for a in alerts)
        return BookView(
            filters=filters,
            page=page,
            rows=rows_of(page, alerts, feedback, filters, clocks, open_account),
            by_owner=groups_of(selected, "owner"),
            by_segment=groups_of(selected, "segment"),
            owners=sorted({e.account.owner for e in entries if e.account.owner}),
            segments=sorted({e.account.segment for e in entries if e.account.segment}),
            muted_alerts=sum(e.muted for e in entries),
            owner=owner if filters.mine else "",
        )

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

    async def export(self, request: Request) -> Response:
        """The current view (filters, search, sort; every page) as CSV."""
        person = await self.viewer(request)
        if isinstance(person, Response):
            return person
        filters = Filters.of(request.query_params)
        owner = self._owner(filters, person) or ("\x00nobody" if filters.mine else "")
        entries = await asyncio.to_thread(self.book)
        page, _ = select_page(entries, filters.book_query(owner, everything=True))
        stamp = f"{self.clock.now():%Y%m%d-%H%M}"
        return Response(
            csv_of(page.lines, self.clock.now()),
            media_type="text/csv; charset=utf-8",
            headers={
                **_SECURITY_HEADERS,
                "Content-Disposition": f'attachment; filename="swanwatch-risks-{stamp}.csv"',
            },
        )

    # --- actions -----------------------------------------------------------------------

    def _action(self, request: Request, form: Mapping[str, str]) -> tuple[str, Action, int]:
        value = form.get("action", "")
        if value not in ACTIONS:
            raise BoardError(f"unknown action {value!r}", 400)
        try:
            episode = int(form.get("episode", ""))
        except ValueError:
            raise BoardError("the form carries no alert episode", 400) from None
        chosen = ACTIONS[value].action
        if chosen is None:
            chosen = snooze_until(
                form.get("until", ""), request.cookies.get(TZ_COOKIE), self.clock.now()
            )
        return value, chosen, episode

    async def act(self, request: Request) -> Response:
        form = await self.form(request)
        person = await self.acting(request, form)
        if isinstance(person, Response):
            return person
        filters = Filters.of(form)
        back_to_account = form.get("back", "") == "account"
        try:
            value, action, episode = self._action(request, form)
            done = await asyncio.to_thread(
                self.actions.act,
                request.path_params["fingerprint"],
                action,
                by=person.name,
                episode=episode,
            )
        except BoardError as exc:
            return self.message("Nothing done", str(exc), exc.status, link=self.url())
        except ActionError as exc:
            return self.message("Nothing done", str(exc), _status_of(exc), link=self.url())
        self.forget_book()
        alert = done.alert
        if back_to_account:
            return self.redirect(
                "/accounts/" + quote(alert.account_id, safe=""),
                f"done={value}&alert={alert.fingerprint}",
            )
        query = filters.query(done=value, alert=alert.fingerprint, open=alert.account_id)
        return self.redirect("", query, anchor(alert.account_id))
