"""A watcher's replayer against its watch(), day after day: each day the replayer gives
exactly what a fresh watch() gives (signals, unknowns, state, reads), whatever came before."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import httpx

from swanwatch import Account, FrozenClock, Source, StateMap, WatchContext
from swanwatch.plugins import watcher_class

#: One simulated day: its time, the accounts listed, and the sources as they are that day.
Day = tuple[datetime, Sequence[Account], Mapping[str, Source]]


async def compare(
    kind: str, options: Mapping[str, object], days: Sequence[Day], *, replay: bool = True
) -> int:
    """Replay ``days`` in order with ``kind``'s replayer and, each day, with a fresh
    watch() from the same state; assert both give the same. Returns the signals seen."""
    cls = watcher_class(kind)
    replayer = cls(kind, cls.Options.model_validate(options)).replayer()
    assert replayer is not None
    state: dict[str, Any] = {}
    seen = 0
    async with httpx.AsyncClient() as http:

        async def one(
            now: datetime, accounts: Sequence[Account], sources: Any, judge: Callable[..., Any]
        ) -> tuple[Any, ...]:
            ctx = WatchContext(
                instance=kind,
                clock=FrozenClock(now),
                http=http,
                log=logging.getLogger("test"),
                accounts=list(accounts),
                state=StateMap(state),
                sources=dict(sources),
                replay=replay,
            )
            signals = [s async for s in judge(ctx)]
            return signals, list(ctx.unknowns), ctx.state.changes()

        for i, (now, accounts, sources) in enumerate(days):
            fresh = cls(kind, cls.Options.model_validate(options))
            want = await one(now, accounts, sources, fresh.watch)
            got = await one(now, accounts, sources, replayer.day)
            assert got == want, f"day {i} ({now:%Y-%m-%d})"
            changed, deleted = want[2]
            state.update(changed)
            for key in deleted:
                state.pop(key, None)
            seen += len(want[0])
    return seen
