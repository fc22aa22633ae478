"""A third-party watcher: a signal for every account that carries a given tag.

Teams flag accounts by hand in their CRM ("exec-escalation", "at-risk"); this turns the
flag into a signal that correlation weighs with the others.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from pydantic import Field

from swanwatch import Signal, WatchContext, Watcher, WatcherOptions


class TagFlagWatcher(Watcher):
    """An account tagged `tag` is a signal of strength `strength`."""

    name = "tag_flag"

    class Options(WatcherOptions):
        tag: str = Field("at-risk", description="The account tag that raises the signal.")
        strength: float = Field(0.6, ge=0, le=1, description="The signal's strength, 0..1.")

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        now = ctx.clock.now()
        for account in ctx.accounts:
            if self.options.tag in account.tags:
                yield Signal(
                    account_id=account.id,
                    kind=self.name,
                    key=self.options.tag,
                    strength=self.options.strength,
                    observed_at=now,
                    summary=f"{account.label} is tagged {self.options.tag!r} in the CRM.",
                )
