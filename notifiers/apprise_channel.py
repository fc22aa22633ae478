"""Sends alerts through one Apprise URL: e-mail, Slack, Teams, Discord, webhooks and more."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from pydantic import Field, SecretStr

from swanwatch import DeliveryResult, Message, Notifier, NotifierOptions

#: Apprise's generic webhooks take extra HTTP headers as ``+Name=value`` URL arguments.
_WEBHOOK_SCHEMES = ("json", "jsons", "form", "forms", "xml", "xmls")


def _with_idempotency_key(url: str, key: str) -> str:
    scheme = url.split(":", 1)[0].lower()
    if scheme not in _WEBHOOK_SCHEMES or not key:
        return url
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}+Idempotency-Key={quote(key, safe='')}"


def _with_read_timeout(url: str, seconds: float) -> str:
    """``url`` with Apprise's read timeout (``rto``) at ``seconds``, unless it sets one:
    Apprise's own is 4 s, and a receiver that takes longer to answer (Power Automate's
    workflows often do) got the message it had taken, then again at every retry."""
    query = url.partition("?")[2]
    if any(arg.partition("=")[0].lower() == "rto" for arg in query.split("&")):
        return url
    return f"{url}{'&' if query else '?'}rto={seconds:g}"


def _reason(log_text: str) -> str:
    lines = [line.split(" - ", 2)[-1].strip() for line in log_text.splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))[:500]


class AppriseNotifier(Notifier):
    """One channel, one Apprise URL: each channel's outcome is recorded on its own.

    Generic webhooks (json://, form://, xml://) get the notification's idempotency key in
    an ``Idempotency-Key`` header, so a receiver can drop a redelivery after a crash.
    """

    name = "apprise"

    class Options(NotifierOptions):
        url: SecretStr = Field(description="The Apprise URL; secrets via ${ENV} in the config.")
        body_format: str = Field(
            "markdown", pattern="^(markdown|text|html)$", description="markdown, text or html."
        )
        timeout_s: float = Field(
            30.0,
            gt=0,
            description="How long a send waits for the receiver's answer, all told (and its "
            "read timeout, unless the URL sets rto): then it is a failed try, retried with "
            "the same Idempotency-Key.",
        )

    options: Options

    def check(self) -> str | None:
        import apprise

        # Apprise logs its refusal as an error; the one line returned says it instead.
        quiet = logging.getLogger("apprise")
        was, quiet.disabled = quiet.disabled, True
        try:
            if apprise.Apprise().add(self.options.url.get_secret_value()):
                return None
        finally:
            quiet.disabled = was
        scheme = self.options.url.get_secret_value().partition("://")[0] or "(none)"
        return (
            f"Apprise does not accept this URL (scheme {scheme}://); see "
            "https://github.com/caronc/apprise/wiki for the URL of each service"
        )

    async def send(self, message: Message) -> DeliveryResult:
        import apprise  # imported here: it is slow to import and only the sender needs it

        sender = apprise.Apprise()
        url = _with_idempotency_key(self.options.url.get_secret_value(), message.idempotency_key)
        url = _with_read_timeout(url, self.options.timeout_s)
        if not sender.add(url):
            return DeliveryResult(
                ok=False, reason=f"channel {self.channel}: Apprise does not accept this URL"
            )
        formats = {
            "markdown": apprise.NotifyFormat.MARKDOWN,
            "text": apprise.NotifyFormat.TEXT,
            "html": apprise.NotifyFormat.HTML,
        }
        with apprise.LogCapture(level=logging.WARNING) as logs:  # type: ignore[no-untyped-call]
            sending = sender.async_notify(
                body=message.body,
                title=message.title,
                body_format=formats[self.options.body_format],
            )
            try:
                # Apprise before 2.0 waits as long as the receiver keeps sending: a claim
                # and the sends behind it would be held for ever.
                ok = await asyncio.wait_for(sending, self.options.timeout_s)
            except TimeoutError:
                return DeliveryResult(
                    ok=False,
                    reason=f"channel {self.channel}: no answer within {self.options.timeout_s:g} s",
                )
            captured = logs.getvalue()
        if ok:
            return DeliveryResult(ok=True)
        why = _reason(captured) or "the service did not accept the message"
        return DeliveryResult(ok=False, reason=f"channel {self.channel}: {why}")
