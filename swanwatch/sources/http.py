"""The http source: records of a paginated JSON API, through httpx, paced and retried."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import ClassVar, Literal

import httpx
from pydantic import Field, model_validator

from swanwatch import tls
from swanwatch.clock import ensure_utc
from swanwatch.errors import SourceError
from swanwatch.interfaces import ReadTally, Row, Source, SourceOptions
from swanwatch.redact import scrub
from swanwatch.values import CONVERTERS, BadValue, TypeName, is_after

log = logging.getLogger("swanwatch.sources.http")

_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MISSING = object()


def dig(value: object, path: str) -> object:
    """The value at a dotted ``path`` (``a.b.0.c``) inside JSON, or ``_MISSING``."""
    if not path:
        return value
    for part in path.split("."):
        if isinstance(value, Mapping):
            if part not in value:
                return _MISSING
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(value) <= index < len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def _retry_after_s(response: httpx.Response) -> float | None:
    """Seconds a ``Retry-After`` header asks for: delta-seconds, or an HTTP date read against
    the response's own ``Date`` (so no local clock is consulted); None if neither works."""
    header = response.headers.get("Retry-After")
    if header is None:
        return None
    header = header.strip()
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(header)
        sent = parsedate_to_datetime(response.headers.get("Date", ""))
    except (TypeError, ValueError):
        return None
    return max(0.0, (ensure_utc(when) - ensure_utc(sent)).total_seconds())


class HttpSource(Source):
    """Records from a JSON API: one GET per page, records at ``records_path`` in each body.

    Auth comes from the environment (``token_env``, ``username_env``/``password_env``), so no
    secret sits in the config. Pages follow the ``Link: <...>; rel="next"`` header, a cursor
    in the body, or a page number. Requests are paced to ``max_requests_per_s``; a 429 waits
    for its ``Retry-After``, a 5xx or a network error backs off exponentially, both up to
    ``max_retries`` times. ``fields`` maps output fields to dotted paths in each record
    (``account_id: account.id``); ``types`` checks values as the csv source does, and a
    record that does not convert is listed in ``problems`` and skipped.

    No look-ahead: records dated after ``until`` (by ``date_field``) are left out here; set
    ``until_param`` to also send the cut to the API.

    A listing that loops fails the read: a page asked for twice (a repeated cursor, a
    ``Link`` to itself), or the same body returned for another page. Error bodies are cut
    and their credentials scrubbed before they are stored or logged.
    """

    name: ClassVar[str] = "http"
    counts_reads: ClassVar[bool] = True

    class Options(SourceOptions):
        url: str = Field(pattern=r"^https?://", description="The first page's URL (http or https).")
        params: dict[str, str | int | float | bool] = Field(
            default_factory=dict, description="Query parameters sent with every request."
        )
        headers: dict[str, str] = Field(
            default_factory=dict, description="Extra request headers (no secrets: see auth)."
        )
        auth: Literal["none", "bearer", "basic", "header"] = Field(
            "none",
            description="bearer: Authorization: Bearer $token_env; basic: $username_env and "
            "$password_env; header: `auth_header`: $token_env.",
        )
        token_env: str | None = Field(
            None, description="Environment variable holding the token (bearer, header)."
        )
        username_env: str | None = Field(
            None, description="Environment variable holding the basic-auth user name."
        )
        password_env: str | None = Field(
            None, description="Environment variable holding the basic-auth password."
        )
        auth_header: str = Field(
            "X-API-Key", min_length=1, description="Header that carries the token (header auth)."
        )
        records_path: str = Field(
            "", description="Dotted path to the list of records in a body; empty: the body is it."
        )
        fields: dict[str, str] = Field(
            default_factory=dict,
            description="Output field -> dotted path in a record; other top-level keys are "
            "kept unless `only_mapped`.",
        )
        only_mapped: bool = Field(False, description="Keep only the fields named in `fields`.")
        types: dict[str, TypeName] = Field(
            default_factory=dict,
            description="Output field -> int, float, str, date, datetime or bool, checked.",
        )
        date_field: str | None = Field(
            None,
            description="The field that dates a record; rows(until=...) leaves out later ones. "
            "Read as a date unless typed otherwise.",
        )
        until_param: str | None = Field(
            None, description="Query parameter that sends the cut (ISO 8601) to the API too."
        )
        pagination: Literal["none", "link", "cursor", "page"] = Field(
            "link",
            description="link: follow the Link rel=next header; cursor: `cursor_path` in the "
            "body sent back as `cursor_param`; page: `page_param` counting up.",
        )
        cursor_path: str = Field(
            "next_cursor",
            description="Dotted path to the next cursor (or next page URL) in a body; "
            "missing, null or empty ends the listing.",
        )
        cursor_param: str = Field("cursor", description="Query parameter that sends the cursor.")
        page_param: str = Field("page", description="Query parameter of the page number.")
        first_page: int = Field(1, ge=0, description="Number of the first page.")
        page_size: int | None = Field(
            None,
            ge=1,
            description="Records per page, sent as `page_size_param` if set; a "
            "shorter page is the last.",
        )
        page_size_param: str = Field("per_page", description="Query parameter of the page size.")
        max_pages: int = Field(10_000, ge=1, description="Pages read at most before failing.")
        timeout_s: float = Field(30.0, gt=0, description="Seconds allowed for one request.")
        max_requests_per_s: float | None = Field(
            None, gt=0, description="Pace requests to at most this many a second."
        )
        max_retries: int = Field(
            5, ge=0, description="Retries of one request after a 429, a 5xx or a network error."
        )
        backoff_s: float = Field(
            1.0, ge=0, description="First wait before retrying a 5xx or network error; doubles."
        )
        max_backoff_s: float = Field(60.0, ge=0, description="Longest wait between retries.")
        max_retry_after_s: float = Field(
            300.0,
            ge=0,
            description="A 429 asking to wait longer than this fails the read instead.",
        )

        @model_validator(mode="after")
        def _auth_has_its_variables(self) -> HttpSource.Options:
            if self.auth in ("bearer", "header") and not self.token_env:
                raise ValueError(f"auth {self.auth!r} needs `token_env`")
            if self.auth == "basic" and not (self.username_env and self.password_env):
                raise ValueError("auth 'basic' needs `username_env` and `password_env`")
            return self

    options: Options

    def __init__(self, instance: str, options: SourceOptions, *, base_dir: str = ".") -> None:
        super().__init__(instance, options, base_dir=base_dir)
        #: Records of the last read that did not convert, as ``page N, record M: reason``.
        self.problems: list[str] = []
        #: Requests the last read sent, retries included.
        self.requests = 0
        #: Pages the last read fetched.
        self.pages = 0
        self._last_request = 0.0

    # --- set-up -----------------------------------------------------------------------

    def _env(self, name: str | None, what: str) -> str:
        value = os.environ.get(name or "")
        if not value:
            raise SourceError(
                f"source {self.instance!r} (http): environment variable {name} ({what}) is not set"
            )
        return value

    def _client(self) -> httpx.AsyncClient:
        opts = self.options
        headers = {"Accept": "application/json", **opts.headers}
        auth: httpx.Auth | None = None
        if opts.auth == "bearer":
            headers["Authorization"] = f"Bearer {self._env(opts.token_env, 'bearer token')}"
        elif opts.auth == "header":
            headers[opts.auth_header] = self._env(opts.token_env, "API token")
        elif opts.auth == "basic":
            auth = httpx.BasicAuth(
                self._env(opts.username_env, "user name"), self._env(opts.password_env, "password")
            )
        return tls.client(headers=headers, auth=auth, timeout=opts.timeout_s)

    # --- reading ----------------------------------------------------------------------

    def history(self) -> str | None:
        """Records dated by ``date_field``, or an API sent the cut in ``until_param``."""
        if self.options.date_field:
            return f"rows dated by {self.options.date_field!r}"
        if self.options.until_param:
            return f"the API cuts at {self.options.until_param!r}"
        return None

    def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        """Yield every page's records in order, mapped and typed; later ones left out."""
        tally = self.tally()
        self.problems, self.requests, self.pages = [], 0, 0
        return tally.rows_of(self._pages(until, tally))

    async def _pages(self, until: datetime | None, tally: ReadTally) -> AsyncIterator[list[Row]]:
        """Each page's rows, until the last page; SourceError when the listing loops."""
        opts = self.options
        cut = ensure_utc(until) if until is not None else None
        params: dict[str, str | int | float | bool] = dict(opts.params)
        if cut is not None and opts.until_param:
            params[opts.until_param] = cut.isoformat().replace("+00:00", "Z")
        if opts.pagination == "page":
            params[opts.page_param] = opts.first_page
            if opts.page_size is not None:
                params[opts.page_size_param] = opts.page_size
        url: str | None = opts.url
        asked: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
        bodies: dict[bytes, int] = {}
        async with self._client() as client:
            while url is not None:
                self._not_again(asked, url, params)
                response = await self._get(client, url, params)
                self.pages += 1
                self._new_body(bodies, response)
                body = self._json(response)
                records = dig(body, opts.records_path)
                if not isinstance(records, list):
                    raise SourceError(
                        f"source {self.instance!r} (http): page {self.pages} ({response.url}) "
                        f"has no list at `records_path` {opts.records_path or '(the body)'!r}"
                    )
                yield self._page_rows(records, cut, tally)
                url, params = self._next(response, body, url, params, len(records))

    def _not_again(
        self,
        asked: set[tuple[str, tuple[tuple[str, str], ...]]],
        url: str,
        params: Mapping[str, str | int | float | bool],
    ) -> None:
        """Fail before a page is asked for a second time, or past ``max_pages``."""
        opts = self.options
        if self.pages >= opts.max_pages:
            raise SourceError(
                f"source {self.instance!r} (http): more than {opts.max_pages} pages at "
                f"{opts.url}; raise `max_pages` or check the pagination settings"
            )
        key = (url, tuple(sorted((k, str(v)) for k, v in params.items())))
        if key in asked:
            again = f"{url} with {dict(key[1])}" if key[1] else url
            raise SourceError(
                f"source {self.instance!r} (http): page {self.pages + 1} would ask for "
                f"{again} again (a repeated cursor, or a `Link` to itself): the listing "
                f"loops; check `pagination` ({opts.pagination}) and the API"
            )
        asked.add(key)

    def _new_body(self, bodies: dict[bytes, int], response: httpx.Response) -> None:
        """Fail when a page's body is one an earlier page already returned."""
        if self.options.pagination not in ("cursor", "page") or not response.content:
            return
        digest = hashlib.sha256(response.content).digest()
        first = bodies.setdefault(digest, self.pages)
        if first != self.pages:
            raise SourceError(
                f"source {self.instance!r} (http): page {self.pages} ({response.url}) is the "
                f"same as page {first}: the API ignores the `{self._paging_param()}` "
                "parameter, and the listing would loop"
            )

    def _paging_param(self) -> str:
        opts = self.options
        return opts.page_param if opts.pagination == "page" else opts.cursor_param

    def _page_rows(
        self, records: list[object], cut: datetime | None, tally: ReadTally
    ) -> list[Row]:
        opts = self.options
        out: list[Row] = []
        for number, record in enumerate(records, start=1):
            row = self._row(record, number, tally)
            if row is None:
                continue
            if (
                cut is not None
                and opts.date_field is not None
                and is_after(row.get(opts.date_field), cut)
            ):
                continue
            out.append(row)
        return out

    def _next(
        self,
        response: httpx.Response,
        body: object,
        url: str,
        params: dict[str, str | int | float | bool],
        count: int,
    ) -> tuple[str | None, dict[str, str | int | float | bool]]:
        """The next page's URL and parameters, or (None, ...) after the last page."""
        opts = self.options
        if opts.pagination == "link":
            link = response.links.get("next", {}).get("url")
            # The next link carries its own query; send only what it lacks.
            return (str(response.url.join(link)), {}) if link else (None, params)
        if opts.pagination == "cursor":
            cursor = dig(body, opts.cursor_path)
            if cursor is _MISSING or cursor in (None, ""):
                return None, params
            if isinstance(cursor, str) and cursor.startswith(("http://", "https://", "/")):
                return str(response.url.join(cursor)), {}
            return url, {**params, opts.cursor_param: str(cursor)}
        if opts.pagination == "page":
            if count == 0 or (opts.page_size is not None and count < opts.page_size):
                return None, params
            page = params.get(opts.page_param, opts.first_page)
            return url, {**params, opts.page_param: int(page) + 1}
        return None, params

    async def _pace(self) -> None:
        rate = self.options.max_requests_per_s
        if rate is None:
            return
        wait = self._last_request + 1.0 / rate - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last_request = time.monotonic()

    async def _get(
        self, client: httpx.AsyncClient, url: str, params: Mapping[str, str | int | float | bool]
    ) -> httpx.Response:
        opts = self.options
        where = f"source {self.instance!r} (http): GET {url}"
        for attempt in range(opts.max_retries + 1):
            await self._pace()
            self.requests += 1
            backoff = min(opts.max_backoff_s, opts.backoff_s * 2**attempt)
            try:
                response = await client.get(url, params=dict(params) if params else None)
            except httpx.TransportError as exc:
                if attempt == opts.max_retries:
                    raise SourceError(
                        f"{where} failed after {attempt + 1} attempts: {type(exc).__name__}: "
                        f"{self._scrub(str(exc))}"
                    ) from exc
                log.warning("%s: %s; retrying in %.1f s", where, self._scrub(str(exc)), backoff)
                await asyncio.sleep(backoff)
                continue
            if response.status_code < 400:
                return response
            if response.status_code not in _RETRY_STATUS or attempt == opts.max_retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise SourceError(
                    f"{where} failed{tries}: HTTP {response.status_code} "
                    f"{response.reason_phrase}: {self._scrub(response.text)!r}"
                    + (
                        "; check the credentials in the environment"
                        if response.status_code in (401, 403)
                        else ""
                    )
                )
            wait = backoff
            if response.status_code == 429:
                asked = _retry_after_s(response)
                if asked is not None:
                    if asked > opts.max_retry_after_s:
                        raise SourceError(
                            f"{where}: rate limited, and asked to wait {asked:.0f} s, more "
                            f"than `max_retry_after_s` ({opts.max_retry_after_s:g} s)"
                        )
                    wait = asked
            log.warning("%s: HTTP %d; retrying in %.1f s", where, response.status_code, wait)
            await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _scrub(self, text: str) -> str:
        """Upstream text cut short, the source's own credentials and any others masked."""
        opts = self.options
        names = (opts.token_env, opts.username_env, opts.password_env)
        return scrub(text, [os.environ.get(n or "", "") for n in names])

    def _json(self, response: httpx.Response) -> object:
        try:
            return response.json()
        except ValueError as exc:
            raise SourceError(
                f"source {self.instance!r} (http): {response.url} did not return JSON "
                f"({response.headers.get('content-type', 'no content type')}): {exc}"
            ) from exc

    def _row(self, record: object, number: int, tally: ReadTally) -> dict[str, object] | None:
        opts = self.options
        where = f"page {self.pages}, record {number}"
        if not isinstance(record, Mapping):
            self._problem(tally, f"{where}: not a JSON object")
            return None
        row: dict[str, object] = {}
        if not opts.only_mapped:
            mapped_tops = {path.split(".")[0] for path in opts.fields.values()}
            row.update((k, v) for k, v in record.items() if k not in mapped_tops)
        for field, path in opts.fields.items():
            value = dig(record, path)
            row[field] = None if value is _MISSING else value
        types: dict[str, str] = dict(opts.types)
        if opts.date_field and opts.date_field not in types:
            types[opts.date_field] = "date"
        for field, type_name in types.items():
            value = row.get(field)
            if value is None or value == "":
                row[field] = None
                continue
            try:
                row[field] = CONVERTERS[type_name](value)
            except BadValue as exc:
                self._problem(tally, f"{where}: {field}: {exc}")
                return None
        return row

    def _problem(self, tally: ReadTally, text: str) -> None:
        tally.skipped(text)
        if len(self.problems) < 1000:
            self.problems.append(text)
        log.warning("source %r: skipped malformed record: %s", self.instance, text)
