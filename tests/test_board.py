"""The web risk board: access by token and cookie, ranked rows, filters, muted alerts,
CSRF-safe actions that act through the alert lifecycle (Post/Redirect/Get), and one real
headless-chromium run against the daemon's HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from swanwatch.board import COOKIE
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.errors import SwanwatchError
from swanwatch.model import AlertState, Verdict
from swanwatch.server import HttpServer, create_app
from swanwatch.store import Store

TOKEN = "board-token-for-tests-0123456789"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

CONFIG = """
watchers:
  - type: static
    options:
      signals:
        - {{account: acme, kind: champion_departure, strength: 0.9}}
        - {{account: acme, kind: usage_drop, strength: 0.9}}
        - {{account: globex, kind: champion_departure, strength: 0.9}}
        - {{account: globex, kind: usage_drop, strength: 0.9}}
        - {{account: initech, kind: support_spike, strength: 0.9}}
correlation:
  rules:
    - name: pair
      title: Champion left & usage <fell>
      severity: high
      all_of: [champion_departure, usage_drop]
      play: ["CSM: call the economic buyer this week."]
    - {{name: tickets, title: Support tickets piling up, severity: warning,
       any_of: [support_spike]}}
notify:
  console: false
server:
  listen: "127.0.0.1:0"
{board}
"""


async def _setup(make_config, board: str = f"  board_token: {TOKEN}"):
    config = load_config(make_config(CONFIG.format(board=board)))
    clock = FrozenClock("2026-11-20T12:00:00Z")
    store = Store(config.store_url)
    async with Engine(config, store, clock) as engine:
        await engine.cycle()
    return config, store, clock


@pytest.fixture
async def board(make_config):
    """A signed-in client on the board's app, the store and the clock."""
    config, store, clock = await _setup(make_config)
    app = create_app(config, store, clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as client:
        signed_in = await client.get("/board", params={"token": TOKEN})
        assert signed_in.status_code == 200
        yield client, store, clock
    store.close()


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def _ranked(page: str) -> list[str]:
    return re.findall(r'class="account" data-account="([^"]+)"', page)


# --- access -----------------------------------------------------------------------------


async def test_without_a_board_token_the_board_is_off(make_config) -> None:
    config, store, clock = await _setup(make_config, board="")
    transport = httpx.ASGITransport(app=create_app(config, store, clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as client:
        for response in (
            await client.get("/board"),
            await client.get("/board", params={"token": TOKEN}),
            await client.post("/board/alerts/x", data={"action": "ack"}),
        ):
            assert response.status_code == 404
            assert "server.board_token" in response.text
        assert (await client.get("/healthz")).text == "ok\n"  # the rest is unchanged
    store.close()


async def test_token_once_then_an_httponly_strict_cookie(make_config) -> None:
    config, store, clock = await _setup(make_config)
    transport = httpx.ASGITransport(app=create_app(config, store, clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as client:
        anonymous = await client.get("/board")
        assert anonymous.status_code == 403 and "?token=" in anonymous.text
        assert "Acme" not in anonymous.text
        wrong = await client.get("/board", params={"token": "x" * 32})
        assert wrong.status_code == 403 and COOKIE not in wrong.headers.get("set-cookie", "")
        ok = await client.get("/board", params={"token": TOKEN, "owner": "ann@csm.example"})
        assert ok.status_code == 200
        cookie = ok.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/board" in cookie
        assert "Max-Age=604800" in cookie and "Secure" not in cookie  # plain http here
        # The page moves on to the board without the token in the address.
        assert 'http-equiv="refresh" content="0; url=/board?owner=ann%40csm.example"' in ok.text
        assert TOKEN not in ok.text
        page = await client.get("/board")
        assert page.status_code == 200 and "Acme Corp" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert page.headers["referrer-policy"] == "no-referrer"
        # The session expires with the clock; a forged cookie is refused.
        clock.advance(timedelta(days=7, seconds=1))
        assert (await client.get("/board")).status_code == 403
        client.cookies.set(COOKIE, "9999999999.forged", domain="board.test", path="/board")
        assert (await client.get("/board")).status_code == 403
    store.close()


async def test_sign_out_ends_the_session(board) -> None:
    client, _store, _clock = board
    page = await client.get("/board")
    done = await client.post("/board/signout", data={"csrf": _csrf(page.text)})
    assert done.status_code == 200 and "Signed out" in done.text
    assert f'{COOKIE}=""' in done.headers["set-cookie"] or "Max-Age=0" in done.headers["set-cookie"]
    assert (await client.get("/board")).status_code == 403


def test_a_short_board_token_is_refused_and_an_empty_one_is_off(make_config) -> None:
    path = make_config('server:\n  board_token: "short"\n')
    with pytest.raises(SwanwatchError, match="board_token is too short"):
        load_config(path)
    # `${SWANWATCH_BOARD_TOKEN:-}` with the variable unset
    assert load_config(make_config('server:\n  board_token: ""\n')).server.board_token is None


def test_store_feedback_for_some_alerts(store: Store) -> None:
    from datetime import UTC, datetime

    from swanwatch.model import Feedback

    at = datetime(2026, 11, 20, tzinfo=UTC)
    for fp, verdict in (("a" * 32, Verdict.USEFUL), ("b" * 32, Verdict.NOISE)):
        store.add_feedback(
            Feedback(
                alert_fingerprint=fp,
                rule="r",
                episode=1,
                verdict=verdict,
                author="board",
                created_at=at,
            )
        )
    assert [f.verdict for f in store.feedback_for(["a" * 32, "c" * 32])] == [Verdict.USEFUL]
    assert len(store.feedback_for(["a" * 32, "b" * 32, "a" * 32])) == 2
    assert store.feedback_for([]) == []


# --- the page ---------------------------------------------------------------------------


async def test_rows_ranked_by_arr_at_risk_with_totals_and_details(board) -> None:
    client, store, _clock = board
    page = (await client.get("/board")).text
    assert _ranked(page) == ["acme", "globex", "initech"]
    acme = store.alert(next(a.fingerprint for a in store.alerts() if a.account_id == "acme"))
    assert acme is not None
    at_risk = round(120000 * acme.score)
    assert f"${at_risk:,}" in page and '<td class="num hide-narrow">$120,000</td>' in page
    assert "2027-01-10" in page and "in 51\u00a0days" in page  # renewal, from the injected clock
    # Rules by their titles, not their ids.
    assert "<li>Champion left &amp; usage &lt;fell&gt; <span" in page
    # Details: why now, the contributing signals, the play, and the six actions.
    assert "Why now" in page and "champion_departure on acme." in page
    assert "CSM: call the economic buyer this week." in page
    for label in (
        "Acknowledge",
        "Snooze 1 day",
        "Snooze 1 week",
        "Snooze until",
        "Resolve",
        "Mark useful",
        "Mark noise",
    ):
        assert f">{label}</button>" in page
    # Text from the store is escaped.
    assert "Champion left &amp; usage &lt;fell&gt;" in page and "<fell>" not in page
    # Totals: three accounts, all their ARR.
    assert "<dt>Accounts at risk</dt><dd>3</dd>" in page
    assert "<dt>ARR of these accounts</dt><dd>$169,000</dd>" in page


async def test_filters_by_owner_and_segment(board) -> None:
    client, _store, _clock = board
    ann = (await client.get("/board", params={"owner": "ann@csm.example"})).text
    assert _ranked(ann) == ["acme", "initech"]
    assert "<dt>Accounts at risk</dt><dd>2</dd>" in ann
    assert '<option value="ann@csm.example" selected>' in ann
    mid = (await client.get("/board", params={"segment": "mid-market"})).text
    assert _ranked(mid) == ["globex"]
    nobody = (await client.get("/board", params={"owner": "zed@csm.example"})).text
    assert _ranked(nobody) == [] and "No open risks match these filters" in nobody


async def test_muted_alerts_are_hidden_unless_asked_for(board) -> None:
    client, store, _clock = board
    (initech,) = store.alerts(account_id="initech")
    store.save_alerts([initech.model_copy(update={"muted_by": "silence 1 by ops"})], [])
    hidden = (await client.get("/board")).text
    assert _ranked(hidden) == ["acme", "globex"]
    assert "<dt>Muted alerts (hidden)</dt><dd>1</dd>" in hidden
    shown = (await client.get("/board", params={"muted": "1"})).text
    assert _ranked(shown) == ["acme", "globex", "initech"]
    assert "Muted: silence 1 by ops." in shown and 'name="muted" value="1" checked' in shown


# --- actions ----------------------------------------------------------------------------


async def _act(client, store, account: str, action: str, **extra: str) -> httpx.Response:
    (alert,) = store.alerts(account_id=account)
    page = await client.get("/board")
    form = {"csrf": _csrf(page.text), "episode": str(alert.episode), "action": action, **extra}
    response: httpx.Response = await client.post(f"/board/alerts/{alert.fingerprint}", data=form)
    return response


async def test_acknowledge_then_redirect_back_with_the_filters(board) -> None:
    client, store, _clock = board
    done = await _act(client, store, "acme", "ack", owner="ann@csm.example")
    assert done.status_code == 303
    (alert,) = store.alerts(account_id="acme")
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acted_by == "ack:board"
    location = urlsplit(done.headers["location"])
    assert location.path == "/board" and location.fragment.startswith("acct-")
    query = parse_qs(location.query)
    assert query["owner"] == ["ann@csm.example"] and query["done"] == ["ack"]
    assert query["open"] == ["acme"]
    page = (await client.get(f"{location.path}?{location.query}")).text
    assert 'role="status">Acknowledged: Champion left &amp; usage &lt;fell&gt; on Acme Corp.' in (
        page
    )
    assert "acknowledged by board" in page
    assert f'id="{location.fragment}" class="account"' in page
    assert "<details open>" in page
    assert _ranked(page) == ["acme", "initech"]  # still open, still ranked


async def test_snooze_resolve_and_feedback_act_through_the_lifecycle(board) -> None:
    client, store, clock = board
    assert (await _act(client, store, "globex", "snooze7")).status_code == 303
    (globex,) = store.alerts(account_id="globex")
    assert globex.state == AlertState.SNOOZED
    assert globex.snoozed_until == clock.now() + timedelta(days=7)
    assert (await _act(client, store, "acme", "useful")).status_code == 303
    assert (await _act(client, store, "acme", "useful")).status_code == 303  # once is kept
    assert (await _act(client, store, "initech", "noise")).status_code == 303
    verdicts = sorted((f.verdict, f.author) for f in store.feedback())
    assert verdicts == [(Verdict.NOISE, "board"), (Verdict.USEFUL, "board")]
    assert (await _act(client, store, "initech", "resolve")).status_code == 303
    (initech,) = store.alerts(account_id="initech")
    assert initech.state == AlertState.RESOLVED and initech.acted_by == "resolve:board"
    page = (await client.get("/board")).text
    assert _ranked(page) == ["acme", "globex"]
    assert "marked useful" in page and "snoozed until 2026-11-27 12:00 UTC" in page
    again = await client.post(
        f"/board/alerts/{initech.fingerprint}",
        data={"csrf": _csrf(page), "episode": str(initech.episode), "action": "ack"},
    )
    assert again.status_code == 409 and "already resolved" in again.text


async def test_forms_need_the_session_and_its_csrf_token(board) -> None:
    client, store, _clock = board
    (alert,) = store.alerts(account_id="acme")
    url = f"/board/alerts/{alert.fingerprint}"
    form = {"episode": str(alert.episode), "action": "ack"}
    missing = await client.post(url, data=form)
    assert missing.status_code == 403 and "Reload the board" in missing.text
    forged = await client.post(url, data={**form, "csrf": "A" * 43})
    assert forged.status_code == 403
    page = await client.get("/board")
    token = _csrf(page.text)
    client.cookies.clear()
    assert (await client.post(url, data={**form, "csrf": token})).status_code == 403
    assert store.alert(alert.fingerprint).state == AlertState.FIRING


async def test_stale_episode_unknown_alert_and_unknown_action(board) -> None:
    client, store, _clock = board
    (alert,) = store.alerts(account_id="acme")
    csrf = _csrf((await client.get("/board")).text)
    url = f"/board/alerts/{alert.fingerprint}"
    stale = await client.post(
        url, data={"csrf": csrf, "episode": str(alert.episode + 1), "action": "ack"}
    )
    assert stale.status_code == 409 and "new episode" in stale.text
    gone = await client.post(
        "/board/alerts/0123456789abcdef", data={"csrf": csrf, "episode": "1", "action": "ack"}
    )
    assert gone.status_code == 404
    odd = await client.post(url, data={"csrf": csrf, "episode": "1", "action": "delete"})
    assert odd.status_code == 400
    assert store.alert(alert.fingerprint).state == AlertState.FIRING


# --- in a real browser ------------------------------------------------------------------


@pytest.fixture
def chromium() -> str:
    """Debian's chromium; missing, the browser test fails (it never skips silently)."""
    found = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if found is None:
        pytest.fail(
            f"the board's browser test needs Chromium ({CHROMIUM} or `chromium` on PATH): "
            "apt-get install chromium (.ci/run does it when it is missing)"
        )
    return found


@pytest.mark.slow
async def test_in_headless_chromium(make_config, chromium: str, tmp_path: Path) -> None:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        pytest.fail("the board's browser test needs playwright: pip install '.[test]'")
    config, store, clock = await _setup(make_config)
    server = HttpServer(config, store, clock, "127.0.0.1", 0)
    await server.start()
    base = f"http://127.0.0.1:{server.port}"
    shots = Path(os.environ.get("SWANWATCH_SCREENSHOT_DIR", str(tmp_path)))
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 900})
                await page.goto(f"{base}/board?token={TOKEN}")
                await page.wait_for_url(f"{base}/board")
                assert await page.title() == "Risk board · Swanwatch"
                rows = page.locator("tbody.account")
                assert await rows.evaluate_all("els => els.map(e => e.dataset.account)") == [
                    "acme",
                    "globex",
                    "initech",
                ]
                cookies = await page.context.cookies()
                (session,) = [c for c in cookies if c["name"] == COOKIE]
                assert session["httpOnly"] and session["sameSite"] == "Strict"
                acme = rows.filter(has_text="Acme Corp")
                await acme.get_by_text("Details and actions").click()
                await page.screenshot(path=str(shots / "board-open.png"), full_page=True)
                await acme.get_by_role("button", name="Acknowledge").click()
                await page.wait_for_url(re.compile(r"done=ack"))
                status = page.get_by_role("status")
                assert await status.inner_text() == (
                    "Acknowledged: Champion left & usage <fell> on Acme Corp."
                )
                acme = page.locator("tbody.account", has_text="Acme Corp")
                assert "acknowledged by board" in await acme.locator("tr.main").inner_text()
                assert await acme.get_by_role("button", name="Acknowledge").count() == 0
                await page.screenshot(path=str(shots / "board-acked.png"), full_page=True)
            finally:
                await browser.close()
    finally:
        await server.stop()
    (alert,) = store.alerts(account_id="acme")
    assert alert.state == AlertState.ACKNOWLEDGED and alert.acted_by == "ack:board"
    store.close()
