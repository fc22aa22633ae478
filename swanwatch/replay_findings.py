"""A replay's watcher findings: what a run finds as the last stored run of its watcher
found is not written again.

In a replay most days find much of what the day before found: the same unknowns, often the
same signals. Storing them again changes nothing but when they were last seen, which
nothing a replay tells reads (correlation reads the signals, not when they were last seen;
the unknowns only the CLI lists). :class:`FindingsMemo` keeps, per watcher, the unknowns
of its last stored run that replaced them all, and the signals of its last stored run that
spoke for the whole book (not held, not a shard, no account absent, no state changed: no
signal cleared or expired but those it did not yield). A run whose unknowns are those
again (equal, in the same order) leaves them as they are; one whose signals are those again
too stores nothing: storing them would raise none (each is active) and clear none (none is
missing). A replay's store is its own: no one else writes its findings between two runs
of a watcher.
"""

from __future__ import annotations

from dataclasses import replace

from swanwatch.model import Signal
from swanwatch.store import Findings


class FindingsMemo:
    """Per watcher, the signals and the unknowns of the last stored runs (see the module)."""

    def __init__(self) -> None:
        self.signals: dict[str, list[Signal]] = {}
        self.unknowns: dict[str, list[tuple[str, str, str]]] = {}

    def trim(self, found: Findings) -> Findings | None:
        """``found`` as it needs storing: None when nothing needs it, without its unknowns
        when they are stored already."""
        if found.unknown_scope is not None or self.unknowns.get(found.watcher) != list(
            found.unknowns
        ):
            return found
        if _whole(found) and self.signals.get(found.watcher) == found.signals:
            return None
        # An empty scope of unknowns: none written, none removed.
        return replace(found, unknowns=(), unknown_scope=())

    def stored(self, found: Findings) -> None:
        """``found`` (as the run found it, before :meth:`trim`) is what the store holds."""
        if found.unknown_scope is None:
            self.unknowns[found.watcher] = list(found.unknowns)
        else:
            self.unknowns.pop(found.watcher, None)
        if _whole(found) and found.signals is not None:
            self.signals[found.watcher] = list(found.signals)
        else:
            self.signals.pop(found.watcher, None)


def _whole(found: Findings) -> bool:
    """A run's signals for every account, that expire nothing and change no state."""
    changed, deleted = found.state
    return (
        found.signals is not None
        and found.scope is None
        and not found.keep
        and not changed
        and not deleted
    )
