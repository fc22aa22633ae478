"""Who is at the risk board: the person, how they signed in, and the guards on the way in.

Three ways in (docs/board.md):

- a trusted reverse proxy's ``X-Forwarded-User`` / ``X-Forwarded-Email`` (oauth2-proxy sets
  them), believed only from ``server.board.trusted_proxies``; the same headers from any other
  address are refused (:class:`TrustedProxies` marks which requests came through one);
- a local user and password (``swanwatch users add``), checked against an argon2 hash;
- the shared ``board_token``, the fallback: everyone who has it acts as ``board``.

Sessions are signed cookies (:class:`Sessions`): an expiry, how the person signed in and
who, under a key kept in the store (so every replica accepts them) mixed with the board
token (changing it signs everyone out); a local user's session also covers their password
hash, so a new password ends the old sessions. Failed sign-ins are counted per client
address (:class:`SignInGuard`): after a few, each further one doubles the wait, and every
failure is logged. The sign-in form, which no session protects yet, refuses a post another
site's page made (:func:`cross_site`): that would sign the browser in as someone else.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha256
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from swanwatch.clock import Clock
from swanwatch.settings_board import BoardConfig
from swanwatch.signing import b64decode, b64encode, derive_key, same, sign, verify

log = logging.getLogger("swanwatch.board")

#: The identity headers a trusted proxy sets.
USER_HEADER = "x-forwarded-user"
EMAIL_HEADER = "x-forwarded-email"
#: Who the shared token's actions are recorded as.
SHARED = "board"
#: The scope key that says a request came through a trusted proxy.
VIA_PROXY = "swanwatch.via_proxy"


class SignIn(StrEnum):
    """How a person signed in."""

    PROXY = "proxy"
    USER = "user"
    TOKEN = "token"


@dataclass(frozen=True)
class Person:
    """Who is at the board: the name their actions are recorded under, how they signed in,
    and the owner identity "Mine" shows (as the accounts source spells owners)."""

    name: str
    way: SignIn
    owner: str = ""

    @property
    def label(self) -> str:
        if self.way == SignIn.TOKEN:
            return f"{SHARED} (shared token)"
        return self.name


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (argon2-cffi's defaults, RFC 9106 low-memory)."""
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def password_ok(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches an argon2 hash; a malformed hash never matches."""
    from argon2 import PasswordHasher
    from argon2.exceptions import Argon2Error, InvalidHashError

    try:
        return PasswordHasher().verify(stored_hash, password)
    except (Argon2Error, InvalidHashError):
        return False


def hash_tag(password_hash: str) -> str:
    """A short digest of a password hash, signed into the user's sessions."""
    return sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class Sessions:
    """Signed session cookies and CSRF tokens. A session is
    ``<expiry>.<way>.<name, base64url>.<mac>``: stateless, so every replica and restart
    accepts it until it expires."""

    def __init__(self, secret: str, token: str | None, ttl: timedelta, clock: Clock) -> None:
        self._key = derive_key(f"{secret}\x1f{token or ''}".encode(), "swanwatch board v2")
        self._token = token
        self.ttl = ttl
        self.clock = clock

    def token_ok(self, presented: str) -> bool:
        return self._token is not None and same(presented, self._token)

    def new(self, way: SignIn, name: str, tag: str = "") -> str:
        expires = str(int((self.clock.now() + self.ttl).timestamp()))
        who = b64encode(name.encode("utf-8"))
        return f"{expires}.{way}.{who}.{sign(self._key, 'session', expires, way, name, tag)}"

    def read(self, session: str | None) -> tuple[SignIn, str, str] | None:
        """(way, name, mac) of a session still valid before the user's tag is checked; the
        caller checks it with :meth:`holds`."""
        if not session or session.count(".") != 3:
            return None
        expires, way, who, mac = session.split(".")
        if not expires.isdigit() or way not in SignIn.__members__.values():
            return None
        if self.clock.now().timestamp() >= int(expires):
            return None
        try:
            name = b64decode(who).decode("utf-8")
        except ValueError:
            return None
        return SignIn(way), name, f"{expires}.{mac}"

    def holds(self, way: SignIn, name: str, stamp: str, tag: str = "") -> bool:
        expires, _, mac = stamp.partition(".")
        return verify(self._key, mac, "session", expires, way, name, tag)

    def csrf(self, bound_to: str) -> str:
        return sign(self._key, "csrf", bound_to)

    def csrf_ok(self, bound_to: str, presented: str) -> bool:
        return same(presented, self.csrf(bound_to))


@dataclass
class _Failures:
    count: int = 0
    blocked_until: datetime | None = None


class SignInGuard:
    """Failed sign-ins per client address: ``free`` failures, then each further one makes
    the address wait twice as long as the last (1 s, 2 s, 4 s, ... up to ``longest``).
    A good sign-in clears the count. At most ``remembered`` addresses are kept (the oldest
    forgotten first), so memory stays bounded whoever knocks."""

    def __init__(
        self,
        clock: Clock,
        *,
        free: int = 5,
        longest: timedelta = timedelta(minutes=15),
        remembered: int = 10_000,
    ) -> None:
        self.clock = clock
        self.free = free
        self.longest = longest
        self.remembered = remembered
        self._seen: OrderedDict[str, _Failures] = OrderedDict()

    def wait(self, address: str) -> timedelta | None:
        """How long ``address`` must still wait before it may try again, or None."""
        found = self._seen.get(address)
        if found is None or found.blocked_until is None:
            return None
        left = found.blocked_until - self.clock.now()
        return left if left > timedelta(0) else None

    def failed(self, address: str, what: str) -> None:
        """Count a failed sign-in (``what``: "board token", "password for ann") and log it."""
        found = self._seen.pop(address, None) or _Failures()
        found.count += 1
        self._seen[address] = found
        while len(self._seen) > self.remembered:
            self._seen.popitem(last=False)
        extra = found.count - self.free
        if extra > 0:
            pause = min(self.longest, timedelta(seconds=2 ** min(extra - 1, 20)))
            found.blocked_until = self.clock.now() + pause
            log.warning(
                "board: failed sign-in from %s (%s), %d in a row: it waits %d s",
                address,
                what,
                found.count,
                pause.total_seconds(),
            )
        else:
            log.warning(
                "board: failed sign-in from %s (%s), %d in a row", address, what, found.count
            )

    def succeeded(self, address: str) -> None:
        self._seen.pop(address, None)


class TrustedProxies:
    """ASGI middleware: a request from a trusted proxy takes its scheme from
    ``X-Forwarded-Proto`` and its client address from ``X-Forwarded-For`` (the nearest
    address that is not itself a trusted proxy), and is marked as having come through one
    (``scope[VIA_PROXY]``). From any other address those headers are ignored."""

    def __init__(self, app: ASGIApp, config: BoardConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        peer = (scope.get("client") or ("", 0))[0]
        if not self.config.trusts(peer):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        scope = dict(scope)
        scope[VIA_PROXY] = True
        proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip().lower()
        if proto in ("http", "https"):
            scope["scheme"] = proto
        chain = headers.get(b"x-forwarded-for", b"").decode("latin-1")
        hops = [h.strip() for h in chain.split(",") if h.strip()]
        while hops and self.config.trusts(hops[-1]):
            hops.pop()
        if hops:
            scope["client"] = (hops[-1], 0)
        await self.app(scope, receive, send)


def cross_site(headers: Mapping[str, str], own: str, public_url: str | None) -> bool:
    """True when a browser says this request was made by another site's page.

    ``headers`` are the request's (lower-case names), ``own`` the origin it was addressed
    to (``scheme://host[:port]``). Browsers send ``Sec-Fetch-Site`` with every request
    and ``Origin`` with every POST; a client that sends neither is not a browser, so
    nobody else's page can make it post. ``public_url`` (the board's address behind a
    proxy) counts as the board's own origin too.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    own_origins = {own.lower()}
    if public_url:
        parts = urlsplit(public_url)
        own_origins.add(f"{parts.scheme}://{parts.netloc}".lower())
    return origin.lower() not in own_origins
