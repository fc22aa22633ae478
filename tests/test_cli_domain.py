"""`swanwatch domain lookup` against local RDAP and WHOIS servers."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from swanwatch.cli_domain import domain

TEXT = (
    b"Domain Name: acme.org\nRegistry Expiry Date: 2026-02-11T17:04:51Z\nRegistrar: Example Inc.\n"
)


@pytest.fixture
def whois_port() -> Iterator[int]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode().strip().lower()
            self.wfile.write(TEXT if line == "acme.org" else b"No match for domain.\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("name", "code", "error"), [("acme.org", 0, None), ("nope.org", 1, "not_found")]
)
def test_lookup_json(whois_port: int, name: str, code: int, error: str | None) -> None:
    result = CliRunner().invoke(
        domain,
        [
            "lookup",
            name,
            "--source",
            "whois",
            "--whois-server",
            f"127.0.0.1:{whois_port}",
            "--json",
        ],
    )
    assert result.exit_code == code, result.output
    out = json.loads(result.output)
    assert set(out) == {"domain", "expires_at", "registrar", "status", "source", "server", "error"}
    assert out["source"] == "whois" and out["server"] == f"127.0.0.1:{whois_port}"
    if error is None:
        assert out["expires_at"] == "2026-02-11T17:04:51Z" and out["registrar"] == "Example Inc."
    else:
        assert out["expires_at"] is None and out["error"].startswith(error + ": ")
