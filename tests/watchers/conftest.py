"""Local RDAP (HTTP) and WHOIS (TCP) servers on 127.0.0.1 for the domain watchers' tests."""

from __future__ import annotations

import http.server
import json
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

Answer = str | bytes | None | Callable[[str], "str | bytes | None"]


@dataclass
class FakeWhois:
    """A WHOIS server: a query line in, the text mapped to any of its words out, close.

    ``latency_s`` delays every answer; a mapped None never answers (a silent server).
    ``starts`` records when each query arrived, to check a client's pacing.
    """

    answers: dict[str, Answer] = field(default_factory=dict)
    latency_s: float = 0.0
    queries: list[str] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    port: int = 0

    def answer(self, line: str) -> bytes | None:
        for word in line.replace(",", " ").split():
            word = word.lower().removesuffix("/e")
            if word in self.answers:
                found = self.answers[word]
                found = found(line) if callable(found) else found
                if found is None:
                    return None
                return found.encode() if isinstance(found, str) else found
        return b"No match for domain.\r\n"


@dataclass
class FakeRdap:
    """An RDAP server: GET /domain/<name> answers (status, body, headers) mapped to the name.

    ``queued`` answers for a name come first, one per request, before its ``answers``.
    """

    answers: dict[str, tuple[int, object, dict[str, str]]] = field(default_factory=dict)
    queued: dict[str, list[tuple[int, object, dict[str, str]]]] = field(default_factory=dict)
    latency_s: float = 0.0
    queries: list[str] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/rdap/"


def _serve_whois(fake: FakeWhois) -> socketserver.ThreadingTCPServer:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline(4096).decode("utf-8", "replace").strip()
            fake.starts.append(time.monotonic())
            fake.queries.append(line)
            body = fake.answer(line)
            if fake.latency_s:
                time.sleep(fake.latency_s)
            if body is None:
                time.sleep(5)
                return
            self.wfile.write(body)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    return server


def _serve_rdap(fake: FakeRdap) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            fake.starts.append(time.monotonic())
            fake.queries.append(self.path)
            name = self.path.rstrip("/").rsplit("/", 1)[-1].lower()
            queued = fake.queued.get(name)
            status, body, headers = (
                queued.pop(0)
                if queued
                else fake.answers.get(name, (404, {"errorCode": 404, "title": "Not Found"}, {}))
            )
            if fake.latency_s:
                time.sleep(fake.latency_s)
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/rdap+json")
            self.send_header("Content-Length", str(len(raw)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    fake.port = server.server_address[1]
    return server


@pytest.fixture
def whois_server() -> Iterator[FakeWhois]:
    """A local WHOIS server; set ``answers`` (word -> text) in the test."""
    fake = FakeWhois()
    server = _serve_whois(fake)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def whois_server2() -> Iterator[FakeWhois]:
    """A second WHOIS server (a registrar's, for referrals)."""
    fake = FakeWhois()
    server = _serve_whois(fake)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def rdap_server() -> Iterator[FakeRdap]:
    """A local RDAP server; set ``answers`` (domain -> (status, body, headers)) in the test."""
    fake = FakeRdap()
    server = _serve_rdap(fake)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield fake
    server.shutdown()
    server.server_close()


def rdap_domain(
    name: str, expires: str | None, *, registrar: str = "Example Registrar, Inc.",
    status: tuple[str, ...] = ("client transfer prohibited",),
) -> dict[str, object]:  # fmt: skip
    """An RFC 9083 domain object."""
    events: list[dict[str, str]] = [
        {"eventAction": "registration", "eventDate": "2001-03-05T10:00:00Z"}
    ]
    if expires:
        events.append({"eventAction": "expiration", "eventDate": expires})
    return {
        "objectClassName": "domain",
        "ldhName": name.upper(),
        "rdapConformance": ["rdap_level_0"],
        "status": list(status),
        "events": events,
        "entities": [{
            "objectClassName": "entity", "roles": ["registrar"], "handle": "9999",
            "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                     ["fn", {}, "text", registrar]]],
        }],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS1.EXAMPLE-DNS.NET"}],
    }  # fmt: skip
