"""Slack and Teams payloads, as Apprise really sends them, checked against the services'
documented message shapes. The hosts are unreachable here, so the requests go through a
local HTTPS proxy (HTTPS_PROXY) that ends the TLS with a test CA's certificate
(REQUESTS_CA_BUNDLE) and records them: no part of Apprise or Swanwatch is replaced."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import delivery_support
import pytest

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.store import Store

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
TEAMS = "workflows://prod-161.westeurope.logic.azure.com:443/4f7a9c1e2b3d4e5f/sig0123456789abcdef"


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    p = delivery_support.CapturingProxy(reply=b"ok")
    ca = tmp_path / "ca.pem"
    p.write_ca(str(ca))
    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{p.port}")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    yield p
    p.close()


#: What a CSV field may hold: a Markdown link to a script, a Slack channel ping, a Slack
#: link dressed as something else, a mention, a heading on a line of its own.
HOSTILE = (
    "Usage fell [click here](javascript:alert(1)) <!channel> "
    "<https://evil.example/login|Open your bank> @everyone\\n# Pay now"
)


async def _send_alert(make_config, url: str, summary: str = "", name: str = "") -> None:
    path = make_config(
        f"""
watchers:
  - type: static
    options:
      signals:
        - {{account: acme, kind: champion_departure, strength: 0.9}}
        - {{account: acme, kind: usage_drop, strength: 0.9, summary: "{summary}"}}
correlation:
  rules:
    - {{name: pair, title: Champion left and usage fell, severity: high,
       all_of: [champion_departure, usage_drop], play: ["CSM: call the buyer."]}}
notify:
  console: false
  base_url: https://swanwatch.example.com
  link_secret: s3cret-for-tests-0123
  channels:
    chat: {{url: "{url}"}}
"""
    )
    if name:  # the account's name comes from the CRM export
        accounts = path.parent / "accounts.csv"
        accounts.write_text(accounts.read_text().replace("Acme Corp", f'"{name}"'))
    config = load_config(path)
    store = Store(config.store_url)
    try:
        async with Engine(config, store, FrozenClock("2026-11-20T12:00:00Z")) as engine:
            await engine.cycle()
        (note,) = store.notifications()
        assert note.status == "sent", note.last_error
    finally:
        store.close()


async def test_slack_gets_an_incoming_webhook_message(proxy, make_config) -> None:
    await _send_alert(make_config, SLACK)
    (request,) = proxy.captured
    # https://api.slack.com/messaging/webhooks: POST JSON to hooks.slack.com/services/T/B/X
    assert request.host == "hooks.slack.com"
    assert request.method == "POST"
    assert request.path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    assert request.headers["content-type"].startswith("application/json")
    payload = request.json()
    # A message has text, blocks or attachments; legacy attachments carry title, text, color.
    assert payload.get("text") or payload.get("blocks") or payload.get("attachments")
    (attachment,) = payload["attachments"]
    assert attachment["title"] == "[HIGH] Acme Corp: Champion left and usage fell"
    assert attachment["color"].startswith("#")
    text = attachment["text"]
    assert "of $120,000 ARR" in text and "CSM: call the buyer." in text
    # Markdown links become Slack's mrkdwn links <url|label>.
    assert "<https://swanwatch.example.com/a/" in text and "|Acknowledge>" in text
    assert "](" not in text


async def test_teams_gets_an_adaptive_card_through_a_workflow(proxy, make_config) -> None:
    await _send_alert(make_config, TEAMS)
    (request,) = proxy.captured
    assert request.host == "prod-161.westeurope.logic.azure.com"
    assert request.method == "POST"
    assert request.path.startswith("/workflows/4f7a9c1e2b3d4e5f/triggers/manual/paths/invoke")
    assert "sig=sig0123456789abcdef" in request.path
    payload = request.json()
    # https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/
    # connectors-using: {"type": "message", "attachments": [{"contentType":
    # "application/vnd.microsoft.card.adaptive", "content": {AdaptiveCard}}]}
    assert payload["type"] == "message"
    (attachment,) = payload["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert str(card["version"]).startswith("1.")
    texts = [b.get("text", "") for b in card["body"] if b.get("type") == "TextBlock"]
    joined = "\n".join(texts)
    assert "Champion left and usage fell" in joined
    assert "CSM: call the buyer." in joined


async def test_data_cannot_make_links_or_mentions_in_slack(proxy, make_config) -> None:
    name = "Acme <!here> [Login](https://evil.example)"
    await _send_alert(make_config, SLACK, summary=HOSTILE, name=name)
    (request,) = proxy.captured
    (attachment,) = request.json()["attachments"]
    text, title = attachment["text"], attachment["title"]
    for shown in (text, title):
        assert "<!channel>" not in shown and "<!here>" not in shown
        assert "<https://evil.example" not in shown and "|Open your bank>" not in shown
        assert "|Login>" not in shown and "<javascript:" not in shown
        assert "@everyone" not in shown
    assert "&lt;!channel&gt;" in text and "&lt;!here&gt;" in title  # shown as text
    assert "[click here](javascript:alert(1))" in text  # literal, not a link
    assert "Pay now" in text and "\n# Pay now" not in text
    assert "|Acknowledge>" in text  # Swanwatch's own links still work
