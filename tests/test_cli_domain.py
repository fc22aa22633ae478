"""`swanwatch domain lookup` against local RDAP and WHOIS servers."""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

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
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
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


def _config(tmp_path: Path, watchers: str) -> Path:
    (tmp_path / "accounts.csv").write_text("id,name,domains\nacme,Acme,acme.org\n")
    path = tmp_path / "swanwatch.yaml"
    path.write_text(
        "version: 1\n"
        "sources:\n"
        "  accounts: {type: csv, options: {path: accounts.csv}}\n"
        "accounts: {source: accounts}\n"
        f"watchers:\n{watchers}"
    )
    return path


def test_lookup_takes_the_domain_expiry_options_from_the_config(
    whois_port: int, tmp_path: Path
) -> None:
    config = _config(
        tmp_path,
        "  - type: usage_drop\n"
        "  - type: domain_expiry\n"
        "    options:\n"
        "      source: whois\n"
        "      rdap_bootstrap_url: null\n"
        f"      whois_servers: {{'*': '127.0.0.1:{whois_port}'}}\n",
    )
    result = CliRunner().invoke(domain, ["lookup", "acme.org", "-c", str(config), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["server"] == f"127.0.0.1:{whois_port}" and out["source"] == "whois"
    assert out["expires_at"] == "2026-02-11T17:04:51Z"


def test_lookup_with_a_config_without_the_watcher_is_a_config_error(tmp_path: Path) -> None:
    config = _config(tmp_path, "  - type: usage_drop\n")
    result = CliRunner().invoke(domain, ["lookup", "acme.org", "-c", str(config)])
    assert result.exit_code == 2
    assert "no watcher of type domain_expiry" in result.output
