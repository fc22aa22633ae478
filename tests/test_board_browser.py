"""The risk board in headless Chromium, on the demo data, for two people: one who comes
through the organisation's sign-in proxy (a real reverse proxy on 127.0.0.3 that sets
X-Forwarded-User / X-Forwarded-Email, as oauth2-proxy does) and one local user with a
password. Each signs in, filters to "Mine", sorts by renewal, opens an account page and
sees its three charts, acknowledges, and sees "acknowledged by <person>" on the timeline
and in `swanwatch alerts list`. The screenshots in docs/img/ come from this run."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from test_board import CHROMIUM_ARGS, chromium  # noqa: F401 (the fixture)
from waiting import wait_until_async

from swanwatch.board_auth import hash_password
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.server import HttpServer
from swanwatch.store import BoardUser, BookQuery, Store
from swanwatch.store.book import select_page

REPO = Path(__file__).resolve().parent.parent
PROXY_FROM = "127.0.0.3"
SERVER = f"""
server:
  listen: "127.0.0.1:0"
  board:
    users: true
    proxy_auth: true
    trusted_proxies: ["{PROXY_FROM}"]
"""
DEMO_NOW = "2026-11-20T12:00:00Z"
PASSWORD = "correct horse battery staple"


async def _demo(tmp_path: Path) -> tuple[Path, Store, FrozenClock]:
    """The demo config and data in a folder of their own, run on four days up to the demo's
    "now" (so the score chart has a history)."""
    folder = tmp_path / "demo"
    shutil.copytree(REPO / "config", folder)
    path = folder / "demo.yaml"
    # The store in this test's folder (the demo's own is in the working directory).
    text = re.sub(r"url: sqlite:///\S+", f"url: sqlite:///{folder}/board.db", path.read_text())
    assert f"{folder}/board.db" in text
    # The demo's own server section (off unless $SWANWATCH_LISTEN) gives way to this test's.
    text = re.sub(r"\nserver:\n(?:(?:  .*)?\n)*", "\n", text)
    assert "\nserver:" not in text
    path.write_text(text + SERVER)
    config = load_config(path)
    clock = FrozenClock("2026-10-31T12:00:00Z")
    store = Store(config.store_url)
    for _ in range(4):
        clock.advance(timedelta(days=5))
        async with Engine(config, store, clock) as engine:
            await engine.cycle()
    assert str(clock.now().date()) == DEMO_NOW[:10]
    return path, store, clock


class SignInProxy:
    """A reverse proxy in front of the daemon that signs everyone in as one person: it
    connects from 127.0.0.3 and sets X-Forwarded-User, -Email and -For."""

    def __init__(self, upstream: str, user: str, email: str) -> None:
        self.upstream = upstream
        self.headers = {"X-Forwarded-User": user, "X-Forwarded-Email": email}
        transport = httpx.AsyncHTTPTransport(local_address=PROXY_FROM)
        self.client = httpx.AsyncClient(transport=transport, base_url=upstream)
        app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="off")
        )

    async def forward(self, request: Request) -> Response:
        drop = {"host", "content-length", "x-forwarded-user", "x-forwarded-email"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in drop}
        headers.update(self.headers)
        headers["X-Forwarded-For"] = request.client.host if request.client else ""
        upstream = await self.client.request(
            request.method,
            request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            headers=headers,
            content=await request.body(),
        )
        keep = {"content-type", "location", "set-cookie", "content-disposition"}
        out = {k: v for k, v in upstream.headers.items() if k.lower() in keep}
        return Response(upstream.content, status_code=upstream.status_code, headers=out)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[str]:
        import asyncio

        task = asyncio.create_task(self.server.serve())
        await wait_until_async(lambda: self.server.started, "the sign-in proxy to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            self.server.should_exit = True
            await task
            await self.client.aclose()


async def _renewals(page) -> list[str]:
    cells = page.locator("tbody.account tr.main td.renewal .nowrap:first-child")
    texts: list[str] = await cells.all_inner_texts()
    return texts


async def _mine_sorted_account_acked(
    page, base: str, person: str, owner: str, shots: Path, tag: str
):
    """Mine, sort by renewal, open the first account, see its charts, acknowledge."""
    await page.get_by_role("link", name="Mine", exact=True).click()
    await page.wait_for_url(f"{base}/board?mine=1")
    owners = await page.locator("tbody.account tr.main td:nth-child(3)").all_inner_texts()
    assert owners and set(owners) == {owner}, owners
    if tag == "proxy":  # a wide screen: the column's heading
        await page.locator('a.sort[data-sort="renewal"]').click()
    else:  # a phone: the table's headings are hidden; the sort control
        await page.get_by_label("Sort by").select_option("renewal")
        await page.get_by_label("Direction").select_option("asc")
        await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(lambda url: "sort=renewal" in url and "mine=1" in url)
    renewals = await _renewals(page)
    assert renewals == sorted(renewals) and renewals, renewals
    if tag == "proxy":
        await page.screenshot(path=str(shots / "board.png"), full_page=True)
    first = page.locator("tbody.account").first
    label = await first.locator("th a").inner_text()
    await first.locator("th a").click()
    await page.wait_for_url(lambda url: "/board/accounts/" in url)
    assert await page.locator("h1").inner_text() == label
    charts = page.locator("svg.chart")
    assert await charts.evaluate_all("els => els.map(e => e.dataset.chart)") == [
        "usage",
        "score",
        "tickets",
    ]
    # Each chart has drawn something: the usage line and band, the score line, bars.
    assert await page.locator('svg[data-chart="usage"] polyline.line').count() == 1
    assert await page.locator('svg[data-chart="usage"] polygon.band').count() == 1
    assert await page.locator('svg[data-chart="score"] polyline.score').count() == 1
    assert await page.locator('svg[data-chart="tickets"] rect.bar').count() >= 1
    await page.get_by_role("button", name="Acknowledge").first.click()
    await page.wait_for_url(lambda url: "done=ack" in url)
    timeline = await page.locator("ol.timeline").inner_text()
    assert f"acknowledged by {person}" in timeline
    if tag == "proxy":
        await page.screenshot(path=str(shots / "account.png"), full_page=True)
    return label


@pytest.mark.slow
async def test_two_people_sign_in_filter_sort_open_and_acknowledge(
    chromium: str,  # noqa: F811
    tmp_path: Path,
    run_cli,
) -> None:
    from playwright.async_api import async_playwright

    config_path, store, clock = await _demo(tmp_path)
    store.save_user(BoardUser("erin", hash_password(PASSWORD), "eli@swan.example", clock.now()))
    config = load_config(config_path)
    server = HttpServer(config, store, clock, "127.0.0.1", 0)
    await server.start()
    daemon = f"http://127.0.0.1:{server.port}"
    shots = Path(os.environ.get("SWANWATCH_SCREENSHOT_DIR", str(tmp_path)))
    os.makedirs(shots, exist_ok=True)
    # Whose accounts are at risk: the proxy's person owns the riskiest one.
    book, _ = select_page(store.book(), BookQuery(limit=50))
    owners = [line.account.owner for line in book.lines]
    dana = owners[0]
    other = next(o for o in owners if o and o != dana)
    assert dana
    store.save_user(BoardUser("erin", hash_password(PASSWORD), other, clock.now()))
    proxy = SignInProxy(daemon, user=dana.split("@")[0], email=dana)
    try:
        async with proxy.running() as base, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                # Through the proxy: no sign-in page, the person is the proxy's.
                context = await browser.new_context(
                    viewport={"width": 1280, "height": 900}, timezone_id="America/New_York"
                )
                page = await context.new_page()
                await page.goto(f"{base}/board")
                await page.wait_for_function(
                    "document.documentElement.dataset.tz === 'America/New_York'"
                )
                assert await page.locator(".person").inner_text() == dana
                assert "EST" in await page.locator("header time").inner_text()
                await _mine_sorted_account_acked(page, base, dana, dana, shots, "proxy")
                await context.close()
                # A local user: signs in with a password.
                context = await browser.new_context(viewport={"width": 390, "height": 844})
                page = await context.new_page()
                await page.goto(f"{daemon}/board")
                await page.get_by_role("link", name="Sign in with your user name").click()
                await page.get_by_label("User name").fill("erin")
                await page.get_by_label("Password").fill(PASSWORD)
                await page.get_by_role("button", name="Sign in").click()
                await page.wait_for_url(f"{daemon}/board")
                assert await page.locator(".person").inner_text() == "erin"
                await _mine_sorted_account_acked(page, daemon, "erin", other, shots, "user")
                await context.close()
            finally:
                await browser.close()
    finally:
        await server.stop()
    listed = run_cli("alerts", "list", "-c", str(config_path))
    assert listed.returncode == 0, listed.stderr
    assert f"acknowledged by {dana}" in listed.stdout
    assert "acknowledged by erin" in listed.stdout
    store.close()
