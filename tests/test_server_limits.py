"""Hostile request bodies against the real endpoint (uvicorn on 127.0.0.1): a body over the
limit is refused with 413 before it is read, whether its length is declared or streamed, and
the process's memory stays where it was."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.server import MAX_BODY_BYTES, HttpServer
from swanwatch.store import Store

HUGE = 600 * 1024 * 1024  # what the client says it will send (it never gets to)
CHUNK = b"x" * 65536


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.fixture
async def port(make_config) -> AsyncIterator[int]:
    config = load_config(
        make_config(
            """
notify: {console: false, base_url: "http://127.0.0.1:1", link_secret: s3cret-for-tests-0123}
server: {listen: "127.0.0.1:0", board_token: board-token-for-tests-0123}
"""
        )
    )
    store = Store(config.store_url)
    server = HttpServer(config, store, FrozenClock("2026-11-20T12:00:00Z"), "127.0.0.1", 0)
    await server.start()
    try:
        yield server.port
    finally:
        await server.stop()
        store.close()


def _hostile_post(port: int, path: str, *, chunked: bool) -> tuple[str, int]:
    """POST a body that would be 600 MB, as fast as the server takes it; stop at its answer.
    Returns the status line and how many body bytes went out."""
    sock = socket.create_connection(("127.0.0.1", port))
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUGE}"
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/x-www-form-urlencoded\r\n{framing}\r\n\r\n".encode()
    )
    piece = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n" if chunked else CHUNK
    sent, answer = 0, b""
    if not chunked:
        # As curl does with a large upload: a moment for the server to refuse first (it
        # does, on the declared length alone; sending on would only race its close).
        select.select([sock], [], [], 10.0)
    sock.setblocking(False)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and sent < HUGE:
            readable, writable, _ = select.select([sock], [sock], [], 1.0)
            if readable:
                try:
                    answer = sock.recv(4096)
                except ConnectionResetError:
                    break
                break
            if writable:
                try:
                    sent += sock.send(piece)
                except (BrokenPipeError, ConnectionResetError):
                    break
    finally:
        sock.close()
    return answer.split(b"\r\n", 1)[0].decode("latin-1"), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "streamed"])
@pytest.mark.parametrize("path", ["/a/some-token", "/board/alerts/abc"])
async def test_a_huge_body_is_refused_at_the_limit(port: int, path: str, chunked: bool) -> None:
    before = _rss_bytes()
    status, sent = await asyncio.to_thread(_hostile_post, port, path, chunked=chunked)
    assert status == "HTTP/1.1 413 Request Entity Too Large", (status, sent)
    # Far from 600 MB: what the limit let in, and what the sockets' buffers held.
    assert sent < 64 * 1024 * 1024
    assert _rss_bytes() - before < 64 * 1024 * 1024


async def test_a_body_within_the_limit_is_read(port: int) -> None:
    async with httpx.AsyncClient() as client:
        small = await client.post(f"http://127.0.0.1:{port}/a/some-token", content=b"days=3")
        large = await client.post(
            f"http://127.0.0.1:{port}/a/some-token", content=b"x" * (MAX_BODY_BYTES + 1)
        )
    assert small.status_code == 410  # read, and the forged link refused
    assert large.status_code == 413 and "at most 65536 bytes" in large.text
