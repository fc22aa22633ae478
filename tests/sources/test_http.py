"""The http source against a real local HTTP server: auth from env, the three kinds of
pagination, 429 Retry-After and 5xx backoff, field mapping, the cut at ``until``."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from swanwatch import SourceError
from swanwatch.sources.http import HttpSource
from swanwatch.testing import make_source

RECORDS = [
    {
        "id": i,
        "account": {"id": f"acc-{i % 3}", "name": f"A{i}"},
        "day": f"2026-11-{i:02d}",
        "value": str(i * 10),
    }
    for i in range(1, 8)
]


class Api:
    """The fake API's state: what it was asked, and how it should misbehave."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = []
        self.failures: dict[str, list[tuple[int, dict[str, str]]]] = {}
        self.lock = threading.Lock()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        with self.lock:
            self.requests.append((parts.path, query, dict(handler.headers.items())))
            queued = self.failures.get(parts.path)
            failure = queued.pop(0) if queued else None
        if failure is not None:
            status, headers = failure
            self.send(handler, status, {"error": "try later"}, headers)
            return
        page = int(query.get("page", ["1"])[0])
        if parts.path == "/link":
            chunk = RECORDS[(page - 1) * 3 : page * 3]
            headers = {}
            if page * 3 < len(RECORDS):
                headers["Link"] = (
                    f'</link?page={page + 1}&kind=x>; rel="next", </link>; rel="first"'
                )
            self.send(handler, 200, chunk, headers)
        elif parts.path == "/cursor":
            at = int(query.get("after", ["0"])[0])
            chunk = RECORDS[at : at + 2]
            nxt = str(at + 2) if at + 2 < len(RECORDS) else None
            self.send(handler, 200, {"data": {"items": chunk}, "meta": {"next": nxt}})
        elif parts.path == "/page":
            size = int(query.get("size", ["3"])[0])
            self.send(handler, 200, {"results": RECORDS[(page - 1) * size : page * size]})
        elif parts.path == "/secure":
            auth = handler.headers.get("Authorization", "")
            key = handler.headers.get("X-API-Key", "")
            basic = "Basic " + base64.b64encode(b"ann:s3cret").decode()
            if auth in ("Bearer tok-123", basic) or key == "key-9":
                self.send(handler, 200, RECORDS[:1])
            else:
                self.send(handler, 401, {"error": "unauthorised"})
        elif parts.path == "/loop-cursor":  # a cursor that never moves on
            sent = query.get("cursor", [""])[0]
            self.send(handler, 200, {"data": RECORDS[:2], "next": "abc", "sent": sent})
        elif parts.path == "/loop-link":  # a next link to the page itself
            self.send(handler, 200, RECORDS[:2], {"Link": '</loop-link>; rel="next"'})
        elif parts.path == "/same-page":  # ignores the page number
            self.send(handler, 200, {"results": RECORDS[:3]})
        elif parts.path == "/echo":  # an error body that echoes the request, credentials too
            headers = dict(handler.headers.items())
            self.send(handler, 403, {"error": "forbidden", "request": {"headers": headers}})
        elif parts.path == "/html":
            handler.send_response(200)
            handler.send_header("Content-Type", "text/html")
            handler.end_headers()
            handler.wfile.write(b"<html>login</html>")
        else:
            self.send(handler, 404, {"error": "no such thing"})

    @staticmethod
    def send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)


@pytest.fixture
def api() -> Iterator[tuple[Api, str]]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


async def read(source: Any, until: datetime | None = None) -> list[dict[str, object]]:
    return [dict(r) async for r in source.rows(until=until)]


MAPPING = {
    "fields": {"account_id": "account.id", "date": "day"},
    "types": {"value": "float"},
    "only_mapped": False,
}


async def test_link_header_pagination_with_field_mapping(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source("http", {"url": f"{base}/link", **MAPPING, "date_field": "date"})
    rows = await read(source)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5, 6, 7]
    assert rows[0] == {"id": 1, "account_id": "acc-1", "date": date(2026, 11, 1), "value": 10.0}
    assert [q.get("page") for _, q, _ in state.requests] == [None, ["2"], ["3"]]
    assert isinstance(source, HttpSource) and source.pages == 3


async def test_cursor_pagination_and_records_path(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source(
        "http",
        {
            "url": f"{base}/cursor",
            "pagination": "cursor",
            "records_path": "data.items",
            "cursor_path": "meta.next",
            "cursor_param": "after",
            "params": {"fields": "all"},
            "fields": {"account": "account.name"},
            "only_mapped": True,
        },
    )
    rows = await read(source)
    assert rows == [{"account": f"A{i}"} for i in range(1, 8)]
    assert [q.get("after") for _, q, _ in state.requests] == [None, ["2"], ["4"], ["6"]]
    assert all(q["fields"] == ["all"] for _, q, _ in state.requests)


async def test_page_number_pagination_stops_on_a_short_page(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source(
        "http",
        {
            "url": f"{base}/page",
            "pagination": "page",
            "records_path": "results",
            "page_size": 3,
            "page_size_param": "size",
        },
    )
    assert len(await read(source)) == 7
    assert [q["page"] for _, q, _ in state.requests] == [["1"], ["2"], ["3"]]


async def test_until_leaves_out_later_records_and_is_sent(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source(
        "http", {"url": f"{base}/link", **MAPPING, "date_field": "date", "until_param": "until"}
    )
    rows = await read(source, until=datetime(2026, 11, 3, 23, tzinfo=UTC))
    assert [r["id"] for r in rows] == [1, 2, 3]
    assert state.requests[0][1]["until"] == ["2026-11-03T23:00:00Z"]


async def test_bad_records_are_listed_and_skipped(api: tuple[Api, str]) -> None:
    _, base = api
    source = make_source("http", {"url": f"{base}/link", "types": {"day": "int"}})
    assert isinstance(source, HttpSource)
    assert await read(source) == []
    assert source.problems[0] == "page 1, record 1: day: '2026-11-01' is not an integer"


@pytest.mark.parametrize(
    "options, env",
    [
        ({"auth": "bearer", "token_env": "T_TOKEN"}, {"T_TOKEN": "tok-123"}),
        (
            {"auth": "basic", "username_env": "T_USER", "password_env": "T_PASS"},
            {"T_USER": "ann", "T_PASS": "s3cret"},
        ),
        ({"auth": "header", "token_env": "T_KEY"}, {"T_KEY": "key-9"}),
    ],
)
async def test_auth_from_the_environment(
    api: tuple[Api, str],
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, str],
    env: dict[str, str],
) -> None:
    _, base = api
    source = make_source("http", {"url": f"{base}/secure", "pagination": "none", **options})
    with pytest.raises(SourceError, match="environment variable T_"):
        await read(source)
    for name, value in env.items():
        monkeypatch.setenv(name, "wrong" if name in ("T_TOKEN", "T_KEY", "T_PASS") else value)
    with pytest.raises(SourceError, match=r"HTTP 401 .*check the credentials"):
        await read(source)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert len(await read(source)) == 1


async def test_429_waits_for_retry_after_and_5xx_backs_off(api: tuple[Api, str]) -> None:
    state, base = api
    now = datetime.now(UTC)
    state.failures["/link"] = [
        (503, {}),
        (502, {}),
        (429, {"Retry-After": "1"}),
        # An HTTP date, read against the response's own Date header: 0 s here.
        (429, {"Retry-After": format_datetime(now, usegmt=True)}),
    ]
    source = make_source("http", {"url": f"{base}/link", "backoff_s": 0.05})
    assert isinstance(source, HttpSource)
    started = time.monotonic()
    assert len(await read(source)) == 7
    elapsed = time.monotonic() - started
    # 0.05 + 0.1 backoff, then the 1 s Retry-After; the date form's 0 s not read as more
    assert 1.15 <= elapsed < 30
    assert source.requests == 4 + 3


async def test_gives_up_after_max_retries(api: tuple[Api, str]) -> None:
    state, base = api
    state.failures["/link"] = [(500, {})] * 10
    source = make_source("http", {"url": f"{base}/link", "backoff_s": 0.01, "max_retries": 2})
    with pytest.raises(SourceError, match=r"GET .*/link failed after 3 attempts: HTTP 500"):
        await read(source)
    assert len(state.requests) == 3


async def test_a_long_retry_after_fails_at_once(api: tuple[Api, str]) -> None:
    state, base = api
    state.failures["/link"] = [(429, {"Retry-After": "3600"})]
    source = make_source("http", {"url": f"{base}/link"})
    with pytest.raises(SourceError, match="asked to wait 3600 s"):
        await read(source)


async def test_client_errors_are_not_retried(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source("http", {"url": f"{base}/nothing"})
    failed = r"source 'http' \(http\): GET .*/nothing failed: HTTP 404"
    with pytest.raises(SourceError, match=failed):
        await read(source)
    assert len(state.requests) == 1


async def test_not_json_and_no_list_are_named(api: tuple[Api, str]) -> None:
    _, base = api
    with pytest.raises(SourceError, match="did not return JSON"):
        await read(make_source("http", {"url": f"{base}/html"}))
    with pytest.raises(SourceError, match="no list at `records_path` 'data'"):
        await read(make_source("http", {"url": f"{base}/link", "records_path": "data"}))


async def test_network_errors_are_retried_then_reported() -> None:
    source = make_source(
        "http", {"url": "http://127.0.0.1:1/x", "backoff_s": 0.01, "max_retries": 1}
    )
    with pytest.raises(SourceError, match="failed after 2 attempts: ConnectError"):
        await read(source)


async def test_pacing_spaces_requests(api: tuple[Api, str]) -> None:
    _, base = api
    source = make_source("http", {"url": f"{base}/link", "max_requests_per_s": 20})
    started = time.monotonic()
    await read(source)
    assert time.monotonic() - started >= 0.09  # three requests, 50 ms apart


def test_auth_needs_its_variables() -> None:
    with pytest.raises(ValueError, match="needs `token_env`"):
        make_source("http", {"url": "https://x.example", "auth": "bearer"})


# --- a listing that loops, an error body with credentials in it ------------------------------


async def test_a_repeated_cursor_stops_the_read(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source(
        "http",
        {
            "url": f"{base}/loop-cursor",
            "records_path": "data",
            "pagination": "cursor",
            "cursor_path": "next",
        },
    )
    with pytest.raises(SourceError, match=r"again .*a repeated cursor.*the listing loops"):
        _ = [r async for r in source.rows()]
    assert len(state.requests) == 2  # the first page, the second; never a third


async def test_a_next_link_to_the_page_itself_stops_the_read(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source("http", {"url": f"{base}/loop-link"})
    with pytest.raises(SourceError, match="the listing loops"):
        _ = [r async for r in source.rows()]
    assert len(state.requests) == 1


async def test_an_api_that_ignores_the_page_number_stops_the_read(api: tuple[Api, str]) -> None:
    state, base = api
    source = make_source(
        "http",
        {"url": f"{base}/same-page", "records_path": "results", "pagination": "page"},
    )
    with pytest.raises(SourceError, match=r"page 2 .* is the same as page 1"):
        _ = [r async for r in source.rows()]
    assert len(state.requests) == 2


async def test_an_error_body_is_cut_and_its_credentials_masked(
    api: tuple[Api, str], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, base = api
    monkeypatch.setenv("ECHO_TOKEN", "tok-very-secret-123456")
    source = make_source(
        "http",
        {"url": f"{base}/echo", "auth": "bearer", "token_env": "ECHO_TOKEN", "max_retries": 0},
    )
    with pytest.raises(SourceError) as raised:
        _ = [r async for r in source.rows()]
    message = str(raised.value)
    assert "HTTP 403" in message and "Bearer ***" in message
    assert "tok-very-secret-123456" not in message
    assert "tok-very-secret-123456" not in caplog.text
    assert len(message) < 600
