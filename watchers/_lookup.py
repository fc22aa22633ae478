"""One domain's registration record by RDAP then WHOIS, politely: bounded, paced, backing off."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from swanwatch import parse_instant

from . import _rdap, _whois  # noqa: TID251 (a sibling private helper)
from ._registrable import public_suffix_of, tld_of  # noqa: TID251

Source = Literal["auto", "rdap", "whois"]

#: Error codes, in the order of how much they tell (a record without expiry tells most).
ERROR_CODES = (
    "no_expiry", "not_found", "rate_limited", "unparseable", "timeout", "unreachable",
    "unsupported_tld",
)  # fmt: skip
#: Thin registries: the registry's WHOIS names the registrar's server, which has the details.
THIN_REGISTRIES = frozenset({"com", "net", "cc", "tv", "jobs"})


@dataclass
class DomainRecord:
    """What one lookup found: the expiry and its context, or the error that stands for it."""

    domain: str
    expires_at: datetime | None = None
    registrar: str | None = None
    status: list[str] = field(default_factory=list)
    nameservers: list[str] = field(default_factory=list)
    source: str = "rdap"
    server: str = ""
    error: str | None = None
    tz_known: bool = True
    retry_after_s: float | None = None

    @property
    def code(self) -> str | None:
        """The error code (``not_found``, ``timeout``, ...), None when the lookup succeeded."""
        return self.error.split(":", 1)[0] if self.error else None

    def as_json(self) -> dict[str, Any]:
        """The object ``swanwatch domain lookup --json`` prints."""
        return {
            "domain": self.domain,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z")
            if self.expires_at
            else None,
            "registrar": self.registrar,
            "status": list(self.status),
            "source": self.source,
            "server": self.server,
            "error": self.error,
        }

    def to_state(self) -> dict[str, Any]:
        """A JSON form for the watcher's state."""
        return {**self.as_json(), "nameservers": self.nameservers, "tz_known": self.tz_known}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> DomainRecord:
        """The record saved by :meth:`to_state`."""
        expires = data.get("expires_at")
        return cls(
            domain=str(data["domain"]),
            expires_at=parse_instant(expires) if expires else None,
            registrar=data.get("registrar"),
            status=list(data.get("status") or []),
            nameservers=list(data.get("nameservers") or []),
            source=str(data.get("source", "")),
            server=str(data.get("server", "")),
            error=data.get("error"),
            tz_known=bool(data.get("tz_known", True)),
        )


def _rank(record: DomainRecord) -> int:
    if record.expires_at is not None:
        return -1
    code = record.code or ""
    return ERROR_CODES.index(code) if code in ERROR_CODES else len(ERROR_CODES)


@dataclass(frozen=True)
class LookupSettings:
    """How lookups are made; the watcher's options and the CLI's flags fill it in."""

    source: Source = "auto"
    rdap_servers: Mapping[str, str] = field(default_factory=dict)
    whois_servers: Mapping[str, str] = field(default_factory=dict)
    whois_hosts: Mapping[str, str] = field(default_factory=dict)
    follow_referrals: bool = True
    rdap_timeout_s: float = 10.0
    whois_timeout_s: float = 10.0
    parse_timeout_s: float = 10.0
    parse_workers: int = 2
    concurrency: int = 32
    per_server_concurrency: int = 4
    per_server_rate_per_s: float = 5.0
    max_retry_wait_s: float = 10.0
    rate_limit_backoff_s: float = 60.0


#: Requests are paced this much under a server's rate, so that network jitter between our
#: start and the server's clock never shows it one request too many in a second.
PACE_MARGIN = 1.05


class _Server:
    """Per-server politeness: a concurrency bound, a start-rate pace and a back-off."""

    def __init__(self, concurrency: int, rate_per_s: float) -> None:
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.interval = PACE_MARGIN / rate_per_s if rate_per_s > 0 else 0.0
        self.last_start = -float("inf")
        self.blocked_until = 0.0
        self.backoffs = 0

    def wait_s(self) -> float:
        return max(0.0, self.blocked_until - time.monotonic())

    def start_in_s(self) -> float:
        """How long until this server may be sent the next request."""
        now = time.monotonic()
        return max(0.0, self.last_start + self.interval - now, self.blocked_until - now)

    def block(self, seconds: float) -> None:
        self.blocked_until = max(self.blocked_until, time.monotonic() + seconds)


class _Blocked(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"backing off for {seconds:.0f} s more")
        self.seconds = seconds


class DomainLookup:
    """Looks domains up with one small HTTP client per RDAP server and a WHOIS parse pool.

    Use as an async context manager; :meth:`lookup` is safe to call concurrently.
    """

    def __init__(self, settings: LookupSettings, bootstrap: Mapping[str, str]) -> None:
        self.settings = settings
        self.bootstrap = dict(bootstrap)
        self._global = asyncio.Semaphore(max(1, settings.concurrency))
        self._servers: dict[str, _Server] = {}
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._tls: ssl.SSLContext | None = None
        self._iana: dict[str, str | None] = {}
        self._iana_lock = asyncio.Lock()
        self.pool = _whois.ParsePool(settings.parse_workers, timeout_s=settings.parse_timeout_s)
        #: Queries sent, per server: for the benchmark and the tests.
        self.queries: dict[str, int] = {}

    async def __aenter__(self) -> DomainLookup:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients and stop the parse workers."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
        await self.pool.aclose()

    # -- politeness -----------------------------------------------------------------------

    def _server(self, key: str) -> _Server:
        if key not in self._servers:
            s = self.settings
            self._servers[key] = _Server(s.per_server_concurrency, s.per_server_rate_per_s)
        return self._servers[key]

    @contextlib.asynccontextmanager
    async def _gate(self, key: str) -> AsyncIterator[_Server]:
        """Hold a per-server and a global slot, paced to the server's rate.

        The global slot is taken only once the server's pace allows a start, so lookups
        waiting on a slow or rate-limited server never idle a global slot.
        """
        server = self._server(key)
        blocked = server.wait_s()
        if blocked > self.settings.max_retry_wait_s:
            raise _Blocked(blocked)
        async with server.slots:
            while True:
                wait = server.start_in_s()
                if wait > 0:
                    await asyncio.sleep(wait)
                    continue
                await self._global.acquire()
                if server.start_in_s() > 0:  # another lookup started here while we queued
                    self._global.release()
                    continue
                server.last_start = time.monotonic()
                break
            try:
                self.queries[key] = self.queries.get(key, 0) + 1
                yield server
            finally:
                self._global.release()

    # -- choosing servers -----------------------------------------------------------------

    @staticmethod
    def _pick(table: Mapping[str, str], domain: str) -> str | None:
        suffix = public_suffix_of(domain)
        for key in (suffix, tld_of(domain), "*"):
            if key in table:
                return table[key]
        return None

    def rdap_base(self, domain: str) -> str | None:
        """The RDAP base URL for ``domain``: the option map first, then the bootstrap. A
        top-level domain's own record is the root zone's, kept by IANA (the bootstrap names
        each TLD's registry, which holds the names under it, not the TLD itself)."""
        if _is_tld(domain):
            return self.settings.rdap_servers.get("*") or IANA_RDAP
        return self._pick(self.settings.rdap_servers, domain) or self.bootstrap.get(tld_of(domain))

    def _dial(self, host: str) -> tuple[str, int]:
        mapped = self.settings.whois_hosts.get(host.lower())
        return _whois.split_host_port(mapped or host)

    async def whois_server(self, domain: str) -> str | None:
        """The WHOIS server (host[:port]) for ``domain``: option map, built-in table, IANA."""
        if _is_tld(domain):  # the root zone's record of it, as for RDAP
            return self.settings.whois_servers.get("*") or _whois.IANA_WHOIS
        chosen = self._pick(self.settings.whois_servers, domain)
        if chosen:
            return chosen
        tld = tld_of(domain)
        if tld in _whois.WHOIS_SERVERS:
            return _whois.WHOIS_SERVERS[tld]
        async with self._iana_lock:
            if tld not in self._iana:
                self._iana[tld] = await self._ask_iana(tld)
        return self._iana[tld]

    async def _ask_iana(self, tld: str) -> str | None:
        host, port = self._dial(_whois.IANA_WHOIS)
        try:
            async with self._gate(f"{host}:{port}"):
                raw = await _whois.whois_query(
                    host, port, tld, timeout_s=self.settings.whois_timeout_s
                )
        except (_whois.WhoisFailure, _Blocked):
            return None
        for line in _whois.decode(raw).splitlines():
            key, _, value = line.partition(":")
            if key.strip().lower() in ("whois", "refer") and value.strip():
                return value.strip()
        return None

    # -- lookups --------------------------------------------------------------------------

    async def lookup(self, domain: str, source: Source | None = None) -> DomainRecord:
        """The registration record of ``domain`` (A-labels), from RDAP and/or WHOIS."""
        how = source or self.settings.source
        if how == "rdap":
            return await self.lookup_rdap(domain)
        if how == "whois":
            return await self.lookup_whois(domain)
        results: list[DomainRecord] = []
        if self.rdap_base(domain):
            first = await self.lookup_rdap(domain)
            if first.expires_at is not None:
                return first
            results.append(first)
        second = await self.lookup_whois(domain)
        if second.code == "unsupported_tld" and results:
            return results[0]
        results.append(second)
        return min(results, key=_rank)

    async def lookup_rdap(self, domain: str) -> DomainRecord:
        """The record from the domain's RDAP server."""
        base = self.rdap_base(domain)
        record = DomainRecord(domain=domain, source="rdap", server=base or "")
        if base is None:
            record.error = f"unsupported_tld: no RDAP server known for .{tld_of(domain)}"
            return record
        url = _rdap.domain_url(base, domain)
        answer = await self._fetch_rdap(record, base, url)
        if answer is not None:
            _read_rdap(record, url, *answer)
        return record

    async def _fetch_rdap(
        self, record: DomainRecord, base: str, url: str
    ) -> tuple[int, bytes] | None:
        """The HTTP status and body of the RDAP answer, a short Retry-After waited out; None,
        with ``record.error`` said, when there is no answer to read."""
        client = self._client(base)
        for _attempt in range(3):
            try:
                async with self._gate(base) as server:
                    response = await client.get(url)
                    body = await response.aread()
                    if response.status_code == 429:
                        wait = _retry_after(response.headers.get("retry-after"))
                        backoff = self.settings.rate_limit_backoff_s
                        server.block(wait if wait is not None else backoff)
            except _Blocked as exc:
                record.error = f"rate_limited: {base} {exc}"
                record.retry_after_s = exc.seconds
                return None
            except httpx.TimeoutException:
                limit = self.settings.rdap_timeout_s
                record.error = f"timeout: no answer from {url} in {limit:g} s"
                return None
            except httpx.HTTPError as exc:
                record.error = f"unreachable: {url}: {exc.__class__.__name__}: {exc}"[:300]
                return None
            if response.status_code != 429:
                return response.status_code, body
            wait = _retry_after(response.headers.get("retry-after"))
            record.retry_after_s = wait
            if wait is not None and wait <= self.settings.max_retry_wait_s:
                continue  # the gate waits out the back-off before the next try
            record.error = f"rate_limited: HTTP 429 from {url}" + (
                f", retry after {wait:g} s" if wait is not None else ""
            )
            return None
        record.error = f"rate_limited: HTTP 429 from {url} after retrying"
        return None

    def _client(self, base: str) -> httpx.AsyncClient:
        if base not in self._clients:
            s = self.settings
            if self._tls is None:
                # one context for all the clients: loading the CA store costs ~30 ms a time
                self._tls = httpx.create_ssl_context()
            self._clients[base] = httpx.AsyncClient(
                verify=self._tls,
                timeout=s.rdap_timeout_s,
                limits=httpx.Limits(max_connections=s.per_server_concurrency),
                headers={"Accept": _rdap.RDAP_TYPES, "User-Agent": "swanwatch-domain-expiry"},
                follow_redirects=True,
            )
        return self._clients[base]

    async def lookup_whois(self, domain: str) -> DomainRecord:
        """The record from the domain's WHOIS server (and its registrar's, for thin ones)."""
        server = await self.whois_server(domain)
        record = DomainRecord(domain=domain, source="whois", server=server or "")
        if server is None:
            record.error = f"unsupported_tld: no WHOIS server known for .{tld_of(domain)}"
            return record
        record = await self._ask_whois(domain, server)
        tld = tld_of(domain)
        if (
            self.settings.follow_referrals
            and record.expires_at is not None
            and tld in THIN_REGISTRIES
            and record.referral
            and record.referral.lower() not in (server.lower(), _whois.IANA_WHOIS)
        ):
            detail = await self._ask_whois(domain, record.referral, registry=False)
            record = replace(
                record,
                registrar=record.registrar or detail.registrar,
                status=record.status or detail.status,
                nameservers=record.nameservers or detail.nameservers,
            )
        return record

    async def _ask_whois(self, domain: str, server: str, *, registry: bool = True) -> _WhoisRecord:
        host, port = self._dial(server)
        label = host if port == 43 else f"{host}:{port}"
        record = _WhoisRecord(domain=domain, source="whois", server=label)
        # the registry's own query syntax; a registrar's server takes the plain name
        plain = not registry or _is_tld(domain)  # IANA takes the plain name of a TLD
        query = domain if plain else _whois.query_line(domain, tld_of(domain))
        try:
            async with self._gate(label) as gate:
                raw = await _whois.whois_query(
                    host, port, query, timeout_s=self.settings.whois_timeout_s
                )
        except _Blocked as exc:
            record.error = f"rate_limited: {label} {exc}"
            record.retry_after_s = exc.seconds
            return record
        except _whois.WhoisFailure as exc:
            record.error = f"{exc.code}: {exc.detail}"
            return record
        text = _whois.decode(raw)
        parsed = await self.pool.parse(domain, text)
        outcome = parsed.get("outcome")
        if outcome == "rate_limited":
            gate.backoffs += 1
            wait = min(self.settings.rate_limit_backoff_s * 2 ** (gate.backoffs - 1), 3600.0)
            gate.block(wait)
            record.retry_after_s = wait
        elif outcome == "ok":
            gate.backoffs = 0
        record.registrar = parsed.get("registrar")
        record.status = list(parsed.get("status") or [])
        record.nameservers = list(parsed.get("nameservers") or [])
        record.referral = parsed.get("referral")
        if outcome == "ok" and parsed.get("expires_at"):
            record.expires_at = parse_instant(parsed["expires_at"])
            record.tz_known = bool(parsed.get("tz_known"))
        else:
            detail = parsed.get("detail") or "no detail"
            record.error = f"{outcome}: {detail}"
        return record


#: Where the root zone's records (each top-level domain's own) are served over RDAP.
IANA_RDAP = "https://rdap.iana.org"


def _is_tld(domain: str) -> bool:
    """Whether ``domain`` is a top-level domain itself (one label: ``cn``, ``google``)."""
    return "." not in domain.rstrip(".")


@dataclass
class _WhoisRecord(DomainRecord):
    referral: str | None = None


def _read_rdap(record: DomainRecord, url: str, status: int, body: bytes) -> None:
    """Fill ``record`` from an RDAP answer, or say in ``record.error`` why it cannot be."""
    if status == 404:
        record.error = f"not_found: HTTP 404 from {url}"
        return
    if status >= 400:
        record.error = f"unreachable: HTTP {status} from {url}"
        return
    try:
        found = _rdap.read_domain(body)
    except _rdap.RdapUnparseable as exc:
        record.error = f"unparseable: {exc}"
        return
    record.registrar = found["registrar"]
    record.status = found["status"]
    record.nameservers = found["nameservers"]
    record.expires_at = found["expires_at"]
    if record.expires_at is None:
        record.error = (
            f"unparseable: expiration eventDate {found['bad_date']!r} is no date"
            if found["bad_date"]
            else "no_expiry: the RDAP answer has no expiration event"
        )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    # Retry-After as a date is compared with the wall clock by nature: it names a wall time.
    return max(0.0, when.timestamp() - time.time())
