"""Who is at the board: identity headers only from a trusted proxy, failed sign-ins limited
and logged, redirects on the configured public address, local users from the CLI."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
from datetime import timedelta

import httpx
from test_board import CONFIG, TOKEN

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.model import AlertState
from swanwatch.server import create_app
from swanwatch.store import Store

BOARD = f"""  board_token: {TOKEN}
  board:
    public_url: https://risk.example.com/
    proxy_auth: true
    users: true
    trusted_proxies: ["10.0.0.0/24"]"""


async def _app(make_config):
    config = load_config(make_config(CONFIG.format(board=BOARD)))
    clock = FrozenClock("2026-11-20T12:00:00Z")
    store = Store(config.store_url)
    async with Engine(config, store, clock) as engine:
        await engine.cycle()
    return create_app(config, store, clock), store, clock


def _client(app, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://board.test")


async def test_identity_headers_only_from_a_trusted_proxy(make_config, caplog) -> None:
    app, store, _clock = await _app(make_config)
    who = {"X-Forwarded-User": "ann", "X-Forwarded-Email": "ann@csm.example"}
    async with _client(app, "192.0.2.7") as outsider:
        refused = await outsider.get("/board", headers=who)
    assert refused.status_code == 403 and "trusted proxy" in refused.text
    assert "Acme" not in refused.text
    assert "not a trusted proxy" in caplog.text and "192.0.2.7" in caplog.text
    async with _client(app, "10.0.0.5") as proxy:
        page = await proxy.get("/board", headers=who)
        assert page.status_code == 200 and ">ann@csm.example</strong>" in page.text
        mine = await proxy.get("/board", params={"mine": "1"}, headers=who)
        assert 'data-account="acme"' in mine.text and 'data-account="globex"' not in mine.text
    store.close()


async def test_failed_token_attempts_wait_longer_and_are_logged(make_config, caplog) -> None:
    app, store, clock = await _app(make_config)
    caplog.set_level(logging.WARNING, "swanwatch.board")
    async with _client(app, "198.51.100.9") as guesser, _client(app, "198.51.100.10") as other:
        for _ in range(5):
            assert (await guesser.get("/board", params={"token": "x" * 32})).status_code == 403
        sixth = await guesser.get("/board", params={"token": "y" * 32})
        assert sixth.status_code == 403  # counted: from now on it waits
        blocked = await guesser.get("/board", params={"token": TOKEN})
        assert blocked.status_code == 429 and blocked.headers["retry-after"] == "1"
        assert (await other.get("/board", params={"token": TOKEN})).status_code == 200
        clock.advance(timedelta(seconds=2))
        assert (await guesser.get("/board", params={"token": TOKEN})).status_code == 200
    assert caplog.text.count("failed sign-in from 198.51.100.9") == 6
    store.close()


async def test_redirects_use_the_public_url_not_the_host_header(make_config) -> None:
    app, store, _clock = await _app(make_config)
    async with _client(app, "192.0.2.8") as client:
        slash = await client.get("/board/", headers={"Host": "evil.example"})
        assert slash.status_code == 303
        assert slash.headers["location"] == "https://risk.example.com/board"
        client.cookies.clear()
        await client.get("/board", params={"token": TOKEN})
        page = await client.get("/board")
        (alert,) = store.alerts(account_id="acme")
        csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
        done = await client.post(
            f"/board/alerts/{alert.fingerprint}",
            data={"csrf": csrf, "episode": str(alert.episode), "action": "ack"},
            headers={"Host": "evil.example"},
        )
        assert done.headers["location"].startswith("https://risk.example.com/board?")
    assert store.alert(alert.fingerprint).state == AlertState.ACKNOWLEDGED
    assert store.alert(alert.fingerprint).acted_by == "ack:board"
    store.close()


def test_users_add_list_and_sign_in(make_config, swanwatch_cmd, subprocess_env) -> None:
    path = make_config(CONFIG.format(board=BOARD))

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*swanwatch_cmd, "users", *args, "-c", str(path)],
            input=stdin,
            capture_output=True,
            text=True,
            env=subprocess_env,
            timeout=120,
        )

    added = cli(
        "add", "ann", "--owner", "ann@csm.example", "--password-stdin", stdin="a long password\n"
    )
    assert added.returncode == 0, added.stderr
    assert "Added user ann (owner ann@csm.example)" in added.stdout
    listed = cli("list")  # in a pipe: JSON
    assert [(u["name"], u["owner"]) for u in json.loads(listed.stdout)] == [
        ("ann", "ann@csm.example")
    ]
    assert "argon2" not in listed.stdout
    short = cli("add", "bo", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "too short" in short.stderr
    config = load_config(path)
    store = Store(config.store_url)
    (user,) = store.users()
    assert (
        user.password_hash.startswith("$argon2id$") and "a long password" not in user.password_hash
    )
    app = create_app(config, store, FrozenClock("2026-11-20T12:00:00Z"))

    async def sign_in(password: str, **browser: str) -> httpx.Response:
        async with _client(app, "192.0.2.9") as client:
            response = await client.post(
                "/board/signin", data={"user": "ann", "password": password}, headers=browser
            )
            if response.status_code == 303:
                return await client.get("/board")
            return response

    assert asyncio.run(sign_in("wrong password")).status_code == 401
    page = asyncio.run(sign_in("a long password"))
    assert page.status_code == 200 and ">ann</strong>" in page.text
    # What browsers send: the board's own form signs in, another site's page never does
    # (it would sign the victim's browser in as the attacker), right password or not.
    own = asyncio.run(sign_in("a long password", Origin="http://board.test"))
    assert own.status_code == 200 and ">ann</strong>" in own.text
    fetched = asyncio.run(sign_in("a long password", **{"Sec-Fetch-Site": "same-origin"}))
    assert fetched.status_code == 200 and ">ann</strong>" in fetched.text
    for forged in (
        {"Origin": "https://attacker.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://board.test"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        refused = asyncio.run(sign_in("a long password", **forged))
        assert refused.status_code == 403, forged
        assert "another site" in refused.text and "set-cookie" not in refused.headers
    assert cli("remove", "ann").returncode == 0
    assert asyncio.run(sign_in("a long password")).status_code == 401
    store.close()
