"""Waiting in tests: on a condition, never for a fixed time.

The deadline only bounds a test that is already failing, so it is generous: a loaded
two-core machine may be many times slower than a quiet one, and must still pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How long a condition may take before the test fails: long enough for a busy machine.
DEADLINE_S = 120.0
#: How often a condition is checked (a cheap query or a log read).
POLL_S = 0.05


def wait_until(
    condition: Callable[[], T | None],
    what: str,
    timeout_s: float = DEADLINE_S,
    describe: Callable[[], str] | None = None,
) -> T:
    """Return ``condition()``'s value as soon as it is true; fail naming ``what`` after
    ``timeout_s``.

    ``describe`` adds context to the failure (the logs of the processes involved, say).
    """
    deadline = time.monotonic() + timeout_s
    while not (value := condition()):
        if time.monotonic() > deadline:
            detail = f"\n{describe()}" if describe is not None else ""
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}{detail}")
        time.sleep(POLL_S)
    return value


async def wait_until_async(
    condition: Callable[[], object], what: str, timeout_s: float = DEADLINE_S
) -> None:
    """:func:`wait_until` for a coroutine: the event loop keeps running while it waits."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        await asyncio.sleep(POLL_S)
