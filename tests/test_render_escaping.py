"""Data is inert in every format: an account name or a CSV field cannot make a link, a
mention, a heading or HTML, in chat markdown, plain text or e-mail."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from swanwatch.delivery.render import Part, Renderer, chat_text, plain_text
from swanwatch.model import Alert, Severity

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
NAME = "Acme <!here> [Login](https://evil.example)"
WHY = "Usage fell [x](javascript:alert(1)) <https://evil.example|Your bank> @everyone\n# Pay"


def _part(links: dict[str, str] | None = None) -> Part:
    alert = Alert(
        fingerprint="fp",
        account_id="acme",
        rule="r",
        title="Usage is falling",
        severity=Severity.HIGH,
        score=0.7,
        why_now=(WHY,),
        play=("CSM: call the buyer.",),
        at_stake={"owner": "@channel <@U123>"},
        started_at=NOW,
        updated_at=NOW,
    )
    return Part(alert=alert, event="firing", label=NAME, links=links)


@pytest.mark.parametrize("fmt", ["chat", "text"])
def test_chat_and_text_leave_data_inert(fmt: str) -> None:
    links = {k: f"https://sw.example/a/{k}-tok_en" for k in ("ack", "snooze", "noise")}
    title, body = Renderer().message(fmt, [_part(links), _part(links)])
    for shown in (title, body):
        assert "@everyone" not in shown and "@channel" not in shown
        assert "\n# Pay" not in shown
    if fmt == "chat":
        assert "\\<!here\\>" in body and "\\[Login\\](https://evil.example)" in body
        assert "\\[x\\](javascript:alert(1))" in body and "\\<@U123\\>" in body
        # Swanwatch's own links, and its own markdown, are left alone.
        assert "[Acknowledge](https://sw.example/a/ack-tok_en)" in body
        assert body.startswith("**2 alerts**") and "\n\n---\n\n" in body
    else:
        assert "<!here>" in body  # plain text: shown as it is, and nothing renders it


def test_email_escapes_html() -> None:
    _title, body = Renderer().message("email", [_part()])
    assert "<!here>" not in body and "&lt;!here&gt;" in body
    assert "<https://evil" not in body


def test_the_escapes() -> None:
    assert chat_text("a_b _c_ *d* `e` \\f") == "a_b \\_c\\_ \\*d\\* \\`e\\` \\\\f"
    assert plain_text("@here, @Everyone and\nme@here.example") == (
        "@\u200bhere, @\u200bEveryone and me@here.example"
    )
