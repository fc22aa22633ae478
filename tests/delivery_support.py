"""Real local servers for the delivery tests: a JSON webhook, an SMTP server, and an HTTPS
proxy that captures what Apprise sends to Slack or Teams (hosts unreachable here)."""

from __future__ import annotations

import email
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import trustme
from aiosmtpd.controller import Controller

from swanwatch.alerts import Notice
from swanwatch.clock import FrozenClock
from swanwatch.model import Alert, NoticeEvent, Severity


def notice(
    account: str, clock: FrozenClock, event: NoticeEvent = NoticeEvent.FIRING, fingerprint: str = ""
) -> Notice:
    """A high alert's notice for ``account`` (fingerprint ``fp-<account>`` unless given), as
    of the clock's now: what a delivery test queues."""
    alert = Alert(
        fingerprint=fingerprint or f"fp-{account}",
        account_id=account,
        rule="sag",
        title=f"Usage sagging at {account}",
        severity=Severity.HIGH,
        score=0.9,
        started_at=clock.now(),
        updated_at=clock.now(),
        notify_count=1,
    )
    return Notice(alert=alert, event=event)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    #: How many POSTs had been answered when this one arrived.
    answered_before: int = 0


class Hook:
    """A JSON webhook on 127.0.0.1: records each POST it answers 200; can fail, or hold.

    ``fail_with`` answers every POST with that status (nothing is recorded).
    ``answer_after_s`` makes it a slow receiver: each POST is answered (and recorded) that
    long after it was read, requests in parallel. After :meth:`hold`, each POST waits, once
    read, for the test to :meth:`release` it: the test decides when a request is "in
    flight" and when it ends, no timer does. ``arrivals`` lists every POST read (held,
    failed or answered), in order; ``settled`` counts those whose answer (failure or
    success) is decided.
    """

    def __init__(self, port: int = 0) -> None:
        self.received: list[Received] = []
        self.arrivals: list[Received] = []
        self.fail_with: int | None = None
        self.settled = 0
        self.answer_after_s = 0.0
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self._holding = False
        self._permits = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                got = Received(dict(self.headers), json.loads(raw), time.monotonic())
                if hook.answer_after_s:
                    time.sleep(hook.answer_after_s)  # the receiver's own pace
                with hook._changed:
                    got.answered_before = len(hook.received)
                    hook.arrivals.append(got)
                    hook._changed.notify_all()
                    while hook._holding and hook._permits == 0:
                        hook._changed.wait()
                    if hook._holding:
                        hook._permits -= 1
                    failing = hook.fail_with
                    if failing is None:
                        hook.received.append(got)
                    hook.settled += 1
                    hook._changed.notify_all()
                self.send_response(failing or 200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def keys(self) -> list[str]:
        """The Idempotency-Key of each answered POST, in order."""
        with self.lock:
            return [r.headers.get("Idempotency-Key", "") for r in self.received]

    def hold(self) -> None:
        """From now on, each POST waits for :meth:`release` before it is answered."""
        with self._changed:
            self._holding = True
            self._permits = 0

    def release(self, count: int = 1) -> None:
        """Let ``count`` held (or future) POSTs be answered."""
        with self._changed:
            self._permits += count
            self._changed.notify_all()

    def open(self) -> None:
        """Stop holding: every waiting and future POST is answered at once."""
        with self._changed:
            self._holding = False
            self._changed.notify_all()

    def wait_for_arrivals(self, count: int, timeout_s: float = 120.0) -> list[Received]:
        """Block until ``count`` POSTs have arrived (answered or held); returns them all."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.arrivals) >= count, timeout_s):
                raise AssertionError(
                    f"webhook: {len(self.arrivals)} of {count} requests in {timeout_s:g} s"
                )
            return list(self.arrivals)

    def wait_settled(self, count: int, timeout_s: float = 120.0) -> None:
        """Block until the answers of ``count`` POSTs are decided."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.settled >= count, timeout_s):
                raise AssertionError(
                    f"webhook: {self.settled} of {count} requests answered in {timeout_s:g} s"
                )

    def close(self) -> None:
        self.open()
        self.server.shutdown()
        self.server.server_close()


class Trickle:
    """An HTTP receiver on 127.0.0.1 that, while :attr:`trickling` is set, reads each POST,
    answers 200 with a long body and sends it a byte at a time, each byte well within any
    read timeout, for as long as the test lets it: a client's read timeout never fires. Not
    trickling, it answers 200 at once. ``keys``: the Idempotency-Key of every POST read."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.every_s = every_s
        self.trickling = threading.Event()
        self.keys: list[str] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            stream = conn.makefile("rb")
            _, headers = CapturingProxy._read_head(stream)
            stream.read(int(headers.get("content-length", "0")))
            self.keys.append(headers.get("idempotency-key", ""))
            try:
                if not self.trickling.is_set():
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                while self.trickling.is_set():
                    conn.sendall(b"x")
                    time.sleep(self.every_s)  # the receiver's pace, not the test's
            except OSError:
                return  # the client gave up

    def close(self) -> None:
        self.trickling.clear()
        self._sock.close()


class Mailbox:
    """An aiosmtpd SMTP server on 127.0.0.1 that keeps every message."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        box = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                message = email.message_from_bytes(envelope.content, policy=policy.default)
                box.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()


@dataclass
class Captured:
    host: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CapturingProxy:
    """An HTTPS proxy on 127.0.0.1: answers CONNECT, ends the TLS itself with a certificate
    of a test CA (given to requests through REQUESTS_CA_BUNDLE), records each request and
    answers ``reply``. Apprise's real HTTP code runs unchanged up to the socket."""

    reply: bytes = b"ok"
    captured: list[Captured] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca = trustme.CA()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._serve, daemon=True).start()

    def write_ca(self, path: str) -> None:
        self.ca.cert_pem.write_to_path(path)

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    @staticmethod
    def _read_head(stream: Any) -> tuple[str, dict[str, str]]:
        line = stream.readline().decode("latin-1").strip()
        headers = {}
        while True:
            h = stream.readline().decode("latin-1")
            if h in ("\r\n", "\n", ""):
                break
            name, _, value = h.partition(":")
            headers[name.strip().lower()] = value.strip()
        return line, headers

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            raw = conn.makefile("rb")
            line, _ = self._read_head(raw)
            method, target, _ = line.split(" ", 2)
            if method != "CONNECT":
                conn.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host = target.rsplit(":", 1)[0]
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self.ca.issue_cert(host).configure_cert(context)
            with context.wrap_socket(conn, server_side=True) as tls:
                stream = tls.makefile("rb")
                request, headers = self._read_head(stream)
                method, path, _ = request.split(" ", 2)
                body = stream.read(int(headers.get("content-length", "0")))
                self.captured.append(Captured(host, method, path, headers, body))
                tls.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                    + f"Content-Length: {len(self.reply)}\r\n\r\n".encode()
                    + self.reply
                )

    def close(self) -> None:
        self._stop = True
        self._sock.close()
