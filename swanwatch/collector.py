"""Python's cyclic garbage collector, paused around work that makes many records that die
young and make no cycles (reference counting frees them as usual)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector paused for the block: a correlation batch makes a few hundred
    thousand small records, and each burst of them would otherwise set off full
    collections that walk every object of the process (a third of the batch's time or
    more); a quick command's imports make as many that live as long as the process. A
    pause begun while the collector is off (a pause around it) leaves it as it found it."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
