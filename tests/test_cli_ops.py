"""What the container relies on: `swanwatch health` against a real ops endpoint on
127.0.0.1 (ready, not ready, nobody there), and $SWANWATCH_STORE_URL over store.url."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from swanwatch.cli_ops import health
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.metrics import DaemonState
from swanwatch.server import HttpServer
from swanwatch.store import Store


async def _health_against(make_config, state: DaemonState, path: str) -> Result:
    config = load_config(make_config("server:\n  listen: 127.0.0.1:0\n"))
    store = Store(config.store_url)
    server = HttpServer(config, store, FrozenClock("2026-11-20T12:00:00Z"), "127.0.0.1", 0, state)
    await server.start()
    try:
        url = f"http://127.0.0.1:{server.port}{path}"
        # The command blocks: it runs in a thread while this loop serves it.
        return await asyncio.to_thread(CliRunner().invoke, health, ["--url", url])
    finally:
        await server.stop()
        store.close()


async def test_health_exits_0_when_ready(make_config) -> None:
    result = await _health_against(make_config, DaemonState(started=True), "/readyz")
    assert result.exit_code == 0, result.output
    assert "200 ready" in result.output


async def test_health_exits_1_when_not_ready(make_config) -> None:
    state = DaemonState(started=True, stopping=True)
    result = await _health_against(make_config, state, "/readyz")
    assert result.exit_code == 1
    assert "HTTP 503: not ready: stopping" in result.output


def test_health_exits_1_when_nothing_listens() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, now closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = CliRunner().invoke(health, ["--url", f"http://127.0.0.1:{port}/readyz"])
    assert result.exit_code == 1
    assert "no answer" in result.output and "server.listen" in result.output


def test_health_url_from_the_environment(monkeypatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SWANWATCH_HEALTH_URL", f"http://127.0.0.1:{port}/healthz")
    result = CliRunner().invoke(health, [])
    assert result.exit_code == 1
    assert f"127.0.0.1:{port}/healthz" in result.output


@pytest.mark.parametrize("env", [None, ""])
def test_store_url_from_the_file_without_the_variable(make_config, monkeypatch, env) -> None:
    if env is None:
        monkeypatch.delenv("SWANWATCH_STORE_URL", raising=False)
    else:
        monkeypatch.setenv("SWANWATCH_STORE_URL", env)
    path = make_config("", store_url="sqlite:///from-file.db")
    assert load_config(path).store_url == f"sqlite:///{path.parent / 'from-file.db'}"


def test_store_url_variable_replaces_the_file(make_config, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SWANWATCH_STORE_URL", "postgresql+psycopg://sw@db:5432/sw")
    assert load_config(make_config("")).store_url == "postgresql+psycopg://sw@db:5432/sw"
    # A relative SQLite path is still relative to the config file.
    monkeypatch.setenv("SWANWATCH_STORE_URL", "sqlite:///env.db")
    assert load_config(make_config("")).store_url == f"sqlite:///{tmp_path / 'env.db'}"


def test_store_url_variable_fills_a_file_without_store(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "a.csv").write_text("id\nacme\n")
    path = tmp_path / "swanwatch.yaml"
    path.write_text("sources:\n  a: {type: csv, options: {path: a.csv}}\naccounts: {source: a}\n")
    monkeypatch.setenv("SWANWATCH_STORE_URL", "postgresql+psycopg://sw@db/sw")
    assert load_config(path).store_url == "postgresql+psycopg://sw@db/sw"
