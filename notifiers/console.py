"""Prints alerts on standard output: for the terminal, logs and container output."""

from __future__ import annotations

import sys

from pydantic import Field

from swanwatch import DeliveryResult, Message, Notifier, NotifierOptions


class ConsoleNotifier(Notifier):
    """Writes each message to standard output (or standard error), one block per alert."""

    name = "console"

    class Options(NotifierOptions):
        stream: str = Field("stdout", pattern="^(stdout|stderr)$", description="stdout or stderr.")

    options: Options

    async def send(self, message: Message) -> DeliveryResult:
        out = sys.stdout if self.options.stream == "stdout" else sys.stderr
        try:
            # A plain-text alert opens with its title already: say it once.
            said = message.body.startswith(message.title)
            out.write(f"{message.body}\n\n" if said else f"{message.title}\n{message.body}\n\n")
            out.flush()
        except OSError as exc:
            return DeliveryResult(ok=False, reason=f"cannot write to {self.options.stream}: {exc}")
        return DeliveryResult(ok=True)
