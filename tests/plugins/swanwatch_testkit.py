"""Watchers for Swanwatch's own tests, installed as a real distribution on sys.path.

They are found through their entry points, exactly like any third-party plugin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from pydantic import BaseModel, Field, SecretStr

from swanwatch import (
    DeliveryResult,
    Message,
    Notifier,
    NotifierOptions,
    Signal,
    SourceUse,
    WatchContext,
    Watcher,
    WatcherOptions,
)


class SignalSpec(BaseModel):
    account: str
    kind: str
    strength: float = Field(0.8, ge=0.0, le=1.0)
    key: str = ""
    days_ago: float = 0.0
    summary: str = ""


class StaticWatcher(Watcher):
    """Yields the signals its options list, for the accounts that exist."""

    name = "static"

    class Options(WatcherOptions):
        signals: list[SignalSpec] = Field(default_factory=list, description="What to yield.")
        unknown: list[str] = Field(
            default_factory=list, description="Accounts to report as not judged."
        )

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        from datetime import timedelta

        known = {a.id for a in ctx.accounts}
        for account in self.options.unknown:
            ctx.report_unknown(account, "the registry did not answer", key="lookup")
        for spec in self.options.signals:
            if spec.account in known:
                yield Signal(
                    account_id=spec.account,
                    kind=spec.kind,
                    key=spec.key,
                    strength=spec.strength,
                    observed_at=ctx.clock.now() - timedelta(days=spec.days_ago),
                    summary=spec.summary or f"{spec.kind} on {spec.account}.",
                )


class ProbeWatcher(Watcher):
    """Historical: yields one signal per row it reads from a source (key: the row's id; the
    summary names the row's `day`), so a replay shows exactly which rows it could see."""

    name = "probe"
    historical = True

    class Options(WatcherOptions):
        source: str = Field(description="The source to read.")
        declare: bool = Field(True, description="Declare the source in uses().")

    options: Options

    def uses(self) -> tuple[SourceUse, ...]:
        return (SourceUse(self.options.source),) if self.options.declare else ()

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        now = ctx.clock.now()
        async for row in ctx.source(self.options.source).rows(until=now if ctx.replay else None):
            yield Signal(
                account_id=str(row["account_id"]),
                kind="probe",
                key=str(row["id"]),
                strength=0.5,
                observed_at=now,
                summary=f"row {row['id']} dated {row['day']}",
            )


class BoomWatcher(Watcher):
    """Always raises."""

    name = "boom"

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        raise RuntimeError("the registry is on fire")
        yield  # pragma: no cover


class HangWatcher(Watcher):
    """Never finishes."""

    name = "hang"

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        await asyncio.sleep(3600)
        return
        yield  # pragma: no cover


class CountingWatcher(Watcher):
    """Counts its runs in its persistent state, and can be slow, or held at a gate."""

    name = "counting"

    class Options(WatcherOptions):
        sleep_s: float = Field(0.0, description="How long each run takes.")
        gate: str | None = Field(
            None,
            description="A file each run waits for, once it has touched `<gate>.started`: "
            "a test holds a run under way for exactly as long as it needs.",
        )

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        if self.options.gate:
            gate = Path(self.options.gate)
            await ctx.run_blocking(gate.with_name(gate.name + ".started").touch)
            # Another process opens the gate: a file to poll, no event to wait on.
            while not await ctx.run_blocking(gate.exists):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(self.options.sleep_s)
        ctx.state.set("runs", int(ctx.state.get("runs", 0)) + 1)
        return
        yield  # pragma: no cover


class StuckWatcher(Watcher):
    """Blocks a worker thread for good, as a lookup that never returns would; it writes
    ``touch`` first, so a test knows when."""

    name = "stuck"

    class Options(WatcherOptions):
        touch: str = Field(description="A file written just before the thread blocks.")

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        import threading
        from pathlib import Path

        await ctx.run_blocking(Path(self.options.touch).write_text, "blocked")
        await ctx.run_blocking(threading.Event().wait)
        return
        yield  # pragma: no cover


class EchoNotifier(Notifier):
    """A webhook whose receiver refuses every message with a body that echoes the request,
    its Authorization header included (as some do)."""

    name = "echo"

    class Options(NotifierOptions):
        token: SecretStr = Field(description="The bearer token the webhook is sent with.")

    options: Options

    async def send(self, message: Message) -> DeliveryResult:
        token = self.options.token.get_secret_value()
        echoed = f'{{"request": {{"headers": {{"Authorization": "Bearer {token}"}}}}}}'
        return DeliveryResult(ok=False, reason=f"HTTP 401: {echoed} " + "detail " * 200)


class NotAWatcher:
    """Registered as a watcher by mistake."""

    name = "not_a_watcher"
