"""Sends alerts through one Apprise URL: e-mail, Slack, Teams, Discord, webhooks and more."""

from __future__ import annotations

from pydantic import Field, SecretStr

from swanwatch import DeliveryResult, Message, Notifier, NotifierOptions


class AppriseNotifier(Notifier):
    """One channel, one Apprise URL: each channel's outcome is recorded on its own."""

    name = "apprise"

    class Options(NotifierOptions):
        url: SecretStr = Field(description="The Apprise URL; secrets via ${ENV} in the config.")
        body_format: str = Field(
            "markdown", pattern="^(markdown|text|html)$", description="markdown, text or html."
        )

    options: Options

    async def send(self, message: Message) -> DeliveryResult:
        import apprise  # imported here: it is slow to import and only the sender needs it

        sender = apprise.Apprise()
        if not sender.add(self.options.url.get_secret_value()):
            return DeliveryResult(
                ok=False, reason=f"channel {self.channel}: Apprise does not accept this URL"
            )
        formats = {
            "markdown": apprise.NotifyFormat.MARKDOWN,
            "text": apprise.NotifyFormat.TEXT,
            "html": apprise.NotifyFormat.HTML,
        }
        ok = await sender.async_notify(
            body=message.body,
            title=message.title,
            body_format=formats[self.options.body_format],
        )
        if ok:
            return DeliveryResult(ok=True)
        return DeliveryResult(
            ok=False, reason=f"channel {self.channel}: the service did not accept the message"
        )
