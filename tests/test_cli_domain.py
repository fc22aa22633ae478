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


#: The root zone's record of a top-level domain, as IANA's WHOIS server words one: who runs
#: it, its registry's server, no expiry (a TLD is delegated, not registered for a term).
IANA_TLD = (
    b"% IANA WHOIS server\n\n"
    b"domain:       EXAMPLETLD\n\n"
    b"organisation: Example Registry Services\n"
    b"address:      1 Root Street\n\n"
    b"nserver:      A.NIC.EXAMPLETLD 192.0.2.1\n"
    b"whois:        whois.nic.exampletld\n\n"
    b"status:       ACTIVE\n\n"
    b"created:      2014-06-05\n"
    b"changed:      2023-01-10\n"
    b"source:       IANA\n"
)


@pytest.fixture
def iana_port() -> Iterator[tuple[int, list[str]]]:
    """A WHOIS server that answers as IANA's does: the record of the TLD asked for."""
    asked: list[str] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            line = self.rfile.readline().decode().strip()
            asked.append(line)
            self.wfile.write(IANA_TLD if line.lower() == "exampletld" else b"% no match\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1], asked
    server.shutdown()
    server.server_close()


def test_a_top_level_domain_is_looked_up_at_iana_and_has_no_expiry(
    iana_port: tuple[int, list[str]], tmp_path: Path
) -> None:
    # Nothing maps the TLD to a server: it is IANA's record (whois.iana.org, here on loopback).
    port, asked = iana_port
    config = _config(
        tmp_path,
        "  - type: domain_expiry\n"
        "    options:\n"
        "      rdap_bootstrap_url: null\n"
        f"      whois_hosts: {{whois.iana.org: '127.0.0.1:{port}'}}\n",
    )
    result = CliRunner().invoke(
        domain, ["lookup", "ExampleTLD.", "-c", str(config), "--source", "whois", "--json"]
    )
    assert result.exit_code == 1, result.output
    out = json.loads(result.output)
    assert out["server"] == f"127.0.0.1:{port}" and asked == ["exampletld"]
    assert out["expires_at"] is None and out["error"].startswith("no_expiry: ")


@pytest.mark.parametrize("name", ["not a domain", "https://acme.example", "a", "123", "cn-", ""])
def test_what_is_no_domain_name_is_refused_before_any_lookup(name: str) -> None:
    result = CliRunner().invoke(domain, ["lookup", name, "--source", "whois"])
    assert result.exit_code == 2 and "is not a domain name" in result.output
