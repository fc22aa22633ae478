"""Secrets have a minimum strength, and what an upstream answers is cut and scrubbed of
credentials before it is stored or logged."""

from __future__ import annotations

import logging

import pytest

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.errors import ConfigError
from swanwatch.redact import scrub
from swanwatch.store import Store

TOKEN = "tok-4f9a-very-secret-0071"


@pytest.mark.parametrize(
    ("section", "value", "why"),
    [
        ("notify: {base_url: 'https://sw.example', link_secret: x}", "", "too short"),
        ("notify: {link_secret: xxxxxxxxxxxxxxxxxxxx}", "", "too predictable"),
        ("notify: {link_secret: abababababababababab}", "", "too predictable"),
        ("server: {board_token: '1234567'}", "", "too short"),
        ("server: {board_token: '1111111111111111'}", "", "too predictable"),
        ("notify: {base_url: 'https://sw.example'}", "short", "$SWANWATCH_LINK_SECRET is too"),
    ],
)
def test_a_weak_secret_is_refused(
    make_config, monkeypatch: pytest.MonkeyPatch, section: str, value: str, why: str
) -> None:
    if value:
        monkeypatch.setenv("SWANWATCH_LINK_SECRET", value)
    with pytest.raises(ConfigError, match=why.replace("$", r"\$")):
        load_config(make_config(section + "\n"))


def test_a_strong_secret_is_taken(make_config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWANWATCH_LINK_SECRET", "Zq8-vN2r_Lx5tW9k")
    config = load_config(make_config("notify: {base_url: 'https://sw.example'}\n"))
    assert config.notify.secret() == b"Zq8-vN2r_Lx5tW9k"


async def test_a_receiver_that_echoes_the_token_is_stored_scrubbed(
    make_config, caplog: pytest.LogCaptureFixture
) -> None:
    path = make_config(
        f"""
watchers:
  - type: static
    options: {{signals: [{{account: acme, kind: usage_drop, strength: 0.9}}]}}
correlation:
  rules: [{{name: u, title: Usage fell, severity: high, any_of: [usage_drop]}}]
notify:
  console: false
  channels: {{hook: {{type: echo, options: {{token: "{TOKEN}"}}}}}}
"""
    )
    config = load_config(path)
    store = Store(config.store_url)
    try:
        with caplog.at_level(logging.DEBUG):
            async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
                await engine.cycle()
        (note,) = store.notifications()
        error = note.last_error or ""
        assert error.startswith("HTTP 401") and "Bearer ***" in error
        assert TOKEN not in error and len(error) <= 300
        assert TOKEN not in caplog.text
    finally:
        store.close()


def test_scrub_masks_what_credentials_look_like() -> None:
    text = (
        'GET https://bob:hunter22@api.example.com/x?api_key=zzz123&page=2 -> {"Authorization": '
        '"Basic dXNlcjpwYXNz", "X-API-Key": "k-99", "password": "swordfish"}\nnext line'
    )
    out = scrub(text, secrets=["k-99-not-there"])
    for secret in ("hunter22", "zzz123", "dXNlcjpwYXNz", "k-99", "swordfish"):
        assert secret not in out
    assert "page=2" in out and "\n" not in out
    assert scrub("x" * 1000) == "x" * 299 + "…"
