"""The daemon's HTTP endpoint (Starlette on uvicorn, in the daemon's own event loop).

Signed action links (``/a/{token}``: GET shows what the link will do, the page's POST does
it through :mod:`swanwatch.actions`, so a chat client previewing the link never acts),
``/healthz`` (the process answers, and a leader can confirm its lock), ``/readyz`` (it can
do its job: scheduler started, the store takes a write), ``/metrics`` (Prometheus,
:mod:`swanwatch.metrics`), ``POST /-/reload`` (from this machine: re-read the config, as
SIGHUP does), and the risk board (``/board``, :mod:`swanwatch.board`).

No request body is read past :data:`MAX_BODY_BYTES` (:class:`BodyLimit`): a larger declared
length is refused before a byte of it is read, a streamed one as soon as it passes the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import logging
import socket
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from swanwatch.actions import Acknowledge, Action, AlertActions, Done, Mark, Snooze
from swanwatch.board import Board
from swanwatch.board_auth import TrustedProxies
from swanwatch.clock import Clock
from swanwatch.config import Config
from swanwatch.delivery.links import LinkClaim, LinkError, read_token
from swanwatch.errors import ActionError, AlertNotFound, EndpointError, InvalidAction
from swanwatch.metrics import (
    CONTENT_TYPE,
    DaemonState,
    StoreCall,
    StoreReading,
    exposition,
    read_store,
    state_problems,
)
from swanwatch.model import Alert, Verdict
from swanwatch.store import Store
from swanwatch.store.health import write_probe

log = logging.getLogger("swanwatch.server")

_VERBS = {
    "ack": "Acknowledge",
    "snooze": "Snooze",
    "noise": "Mark as noise",
    "useful": "Mark as useful",
}
_SNOOZE_DAYS = (1, 3, 7, 14)

#: The largest request body taken: an action link's or a board form's is well under 1 KiB.
MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is refused with 413, before it is
    read. A ``Content-Length`` over the limit is refused at once, without calling the app; a
    body streamed without one is cut off as soon as it passes the limit. Memory stays
    bounded whatever a client sends (uvicorn stops reading the socket while the app does)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            log.warning(
                "refused a %s-byte request body to %s (at most %d)",
                declared.decode("latin-1")[:20],
                scope.get("path", "?"),
                self.limit,
            )
            await self._too_large(scope, receive, send)
            return
        taken = 0

        async def bounded() -> Message:
            nonlocal taken
            message = await receive()
            if message["type"] == "http.request":
                taken += len(message.get("body", b""))
                if taken > self.limit:
                    log.warning("cut off a streamed request body to %s", scope.get("path", "?"))
                    raise HTTPException(413, self._why())
            return message

        await self.app(scope, bounded, send)

    def _why(self) -> str:
        return f"request body too large: at most {self.limit} bytes\n"

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = PlainTextResponse(self._why(), status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    doc = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<meta name='robots' content='noindex'><title>{html.escape(title)}</title></head>"
        "<body style='font-family:Helvetica,Arial,sans-serif;max-width:36em;margin:2em auto;"
        f"padding:0 1em;color:#1f2328;'><h1 style='font-size:1.3em'>{html.escape(title)}</h1>"
        f"{body}</body></html>"
    )
    return HTMLResponse(doc, status_code=status, headers={"Cache-Control": "no-store"})


def _link_action(claim: LinkClaim, form: dict[str, list[str]]) -> Action:
    """What a link asks for; a snooze for the days chosen on its page (1 to 30)."""
    if claim.action == "ack":
        return Acknowledge()
    if claim.action == "snooze":
        days = claim.snooze / timedelta(days=1)
        if form.get("days"):
            try:
                days = float(form["days"][0])
            except ValueError:
                raise InvalidAction("the snooze length is not a number of days") from None
            if not 0 < days <= 30:
                raise InvalidAction("a snooze lasts between 1 and 30 days")
        return Snooze(timedelta(days=days))
    return Mark(Verdict.NOISE if claim.action == "noise" else Verdict.USEFUL)


def _done_text(done: Done) -> str:
    """What the page says once a link's action is done."""
    alert = done.alert
    what = f"{alert.title} on {alert.account_id}"
    match done.action:
        case Acknowledge():
            return f"{what} is acknowledged: no more repeats."
        case Snooze():
            return f"{what} is snoozed until {alert.snoozed_until:%Y-%m-%d %H:%M} UTC."
        case Mark(verdict=verdict) if not done.new:
            return f"You had already marked this alert as {verdict}."
        case Mark(verdict=verdict):
            return f"Thank you: {what} is marked as {verdict}."
    return f"{what}: done."


class ActionLinks:
    """Checks a link and carries out its action through :mod:`swanwatch.actions`."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.actions = AlertActions(store, clock)
        self.clock = clock

    def _claim(self, token: str) -> LinkClaim:
        secret = self.config.notify.secret()
        if secret is None:
            raise LinkError("action links are not configured on this Swanwatch")
        return read_token(secret, token, self.clock.now())

    def _alert(self, claim: LinkClaim) -> Alert:
        return self.actions.find(claim.fingerprint, episode=claim.episode)

    async def show(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            claim = self._claim(token)
            alert = await asyncio.to_thread(self._alert, claim)
        except (LinkError, ActionError) as exc:
            return _unusable(exc)
        verb = _VERBS[claim.action]
        choice = ""
        if claim.action == "snooze":
            default = max(1, round(claim.snooze / timedelta(days=1)))
            options = "".join(
                f"<option value='{d}'{' selected' if d == default else ''}>{d} days</option>"
                for d in _SNOOZE_DAYS
            )
            choice = f"<p><label>For <select name='days'>{options}</select></label></p>"
        state = html.escape(str(alert.state))
        body = (
            f"<p><strong>{html.escape(alert.title)}</strong> on account "
            f"<strong>{html.escape(alert.account_id)}</strong> ({html.escape(str(alert.severity))}"
            f", {state}).</p>"
            f"<form method='post'>{choice}<button type='submit' style='font-size:1.1em;"
            f"padding:.4em 1.2em'>{verb}</button></form>"
            f"<p style='color:#667;font-size:.9em'>As {html.escape(claim.who)}.</p>"
        )
        return _page(f"{verb}?", body)

    async def act(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        try:
            claim = self._claim(token)
            done = await asyncio.to_thread(self._apply, claim, form)
        except InvalidAction as exc:
            return _page("Nothing done", f"<p>{html.escape(str(exc))}</p>", 409)
        except (LinkError, ActionError) as exc:
            return _unusable(exc)
        return _page("Done", f"<p>{html.escape(_done_text(done))}</p>")

    def _apply(self, claim: LinkClaim, form: dict[str, list[str]]) -> Done:
        return self.actions.act(
            claim.fingerprint,
            _link_action(claim, form),
            by=f"link:{claim.who}",
            episode=claim.episode,
        )


def _unusable(exc: Exception) -> HTMLResponse:
    """410: the link is forged, expired, stale, or its alert is gone."""
    text = "the alert of this link no longer exists" if isinstance(exc, AlertNotFound) else exc
    return _page("Link not usable", f"<p>{html.escape(str(text))}</p>", 410)


def create_app(
    config: Config, store: Store, clock: Clock, state: DaemonState | None = None
) -> Starlette:
    """The HTTP application: action links, the risk board, health, readiness and metrics."""
    links = ActionLinks(config, store, clock)
    board = Board(config, store, clock)
    ops = OpsRoutes(store, clock, state)
    app = Starlette(
        routes=[
            *ops.routes(),
            Route("/a/{token}", links.show, methods=["GET"]),
            Route("/a/{token}", links.act, methods=["POST"]),
            *board.routes(),
        ],
        # Inside Starlette's error handling: the 413 raised mid-read becomes a response.
        # X-Forwarded-* are believed from server.board.trusted_proxies only.
        middleware=[
            Middleware(TrustedProxies, config=config.server.board),
            Middleware(BodyLimit),
        ],
    )
    # A path with a stray slash is not redirected to an address built on the Host header.
    app.router.redirect_slashes = False
    return app


class OpsRoutes:
    """/healthz, /readyz, /metrics, and POST /-/reload from this machine only."""

    #: How long /readyz and /metrics wait for the store before answering without it.
    STORE_TIMEOUT_S = 5.0

    def __init__(self, store: Store, clock: Clock, state: DaemonState | None) -> None:
        self.store = store
        self.clock = clock
        self.state = state if state is not None else DaemonState(started=True, standalone=True)
        self._probe = StoreCall(self.STORE_TIMEOUT_S)
        self._read = StoreCall(self.STORE_TIMEOUT_S)

    def routes(self) -> list[Route]:
        return [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics, methods=["GET"]),
            Route("/-/reload", self.reload, methods=["POST"]),
        ]

    async def healthz(self, _request: Request) -> Response:
        """The process answers; a leader that cannot confirm its lock is not healthy."""
        problem = self.state.leadership_problem
        if problem:
            return PlainTextResponse(f"unhealthy: {problem}\n", status_code=503)
        return PlainTextResponse("ok\n")

    async def readyz(self, _request: Request) -> Response:
        """Able to work: started, not stopping, and the store takes a write."""
        problems = state_problems(self.state)
        try:
            refused = await self._probe(lambda: write_probe(self.store.engine, self.state.replica))
        except TimeoutError:
            refused = f"the store did not answer within {self.STORE_TIMEOUT_S:g} s"
        if refused:
            problems.append(refused)
        if problems:
            return PlainTextResponse("not ready: " + "; ".join(problems) + "\n", status_code=503)
        return PlainTextResponse("ready\n")

    async def metrics(self, _request: Request) -> Response:
        now = self.clock.now()
        try:
            reading = await self._read(lambda: read_store(self.store, self.state, now))
        except TimeoutError:
            reading = StoreReading(up=False, error="timeout")
        return Response(exposition(self.state, reading), media_type=CONTENT_TYPE)

    async def reload(self, request: Request) -> Response:
        """Re-read the config file, as SIGHUP does (`swanwatch reload`)."""
        client = request.client.host if request.client else ""
        if client not in ("127.0.0.1", "::1", "localhost"):
            return PlainTextResponse("reload is only taken from this machine\n", status_code=403)
        if self.state.reload is None:
            return PlainTextResponse("nothing to reload: not a daemon\n", status_code=404)
        problems = await self.state.reload()
        if problems:
            return PlainTextResponse("\n".join(["refused:", *problems]) + "\n", status_code=422)
        return PlainTextResponse("reloaded\n")


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """Serves :func:`create_app` on ``host:port`` inside the running event loop."""

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        host: str,
        port: int,
        state: DaemonState | None = None,
    ) -> None:
        self.app = create_app(config, store, clock, state)
        # log_config=None: uvicorn logs through our handler (swanwatch.logs), not its own.
        self._server = _EmbeddedServer(
            uvicorn.Config(
                self.app,
                host=host,
                port=port,
                log_config=None,
                lifespan="off",
                access_log=False,
                # X-Forwarded-* are the app's to judge (TrustedProxies), from its proxies only.
                proxy_headers=False,
            )
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (useful when started on port 0)."""
        sockets = self._server.servers[0].sockets if self._server.servers else []
        return int(sockets[0].getsockname()[1]) if sockets else self._server.config.port

    def bind(self) -> socket.socket:
        """The listening socket, or :class:`EndpointError` in one line (port in use, ...)."""
        config = self._server.config
        try:
            infos = socket.getaddrinfo(config.host, config.port, type=socket.SOCK_STREAM)
            family, kind, proto, _name, address = infos[0]
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            raise EndpointError(
                f"server.listen {config.host}:{config.port}: {exc.strerror or exc}"
            ) from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
        except OSError as exc:
            sock.close()
            hint = (
                "another process listens there; stop it or change server.listen"
                if exc.errno == errno.EADDRINUSE
                else "check server.listen"
            )
            raise EndpointError(
                f"cannot listen on {config.host}:{config.port}: {exc.strerror}; {hint}"
            ) from exc
        sock.setblocking(False)
        return sock

    async def start(self) -> None:
        sock = self.bind()
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="http-server")
        while not self._server.started:
            if self._task.done():
                await self._task
                raise EndpointError("the HTTP endpoint stopped while starting; see the log above")
            await asyncio.sleep(0.01)
        log.info("HTTP endpoint on port %d", self.port)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        await asyncio.wait({self._task}, timeout=5)
        self._task = None
