"""How the engine tells of a finished watcher run: its log line, the metrics, the progress."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from swanwatch.model import Signal, WatcherRun

if TYPE_CHECKING:
    from swanwatch.metrics import Metrics

#: The engine's logger: a run's line is the engine's.
log = logging.getLogger("swanwatch.engine")


def report_run(
    run: WatcherRun,
    raised: Sequence[Signal],
    cleared_kinds: Sequence[str],
    seconds: float,
    metrics: Metrics | None,
    progress: Callable[[str, str, int], None] | None,
) -> None:
    """Log the run's outcome, tell ``metrics`` (the daemon's /metrics) and ``progress``."""
    outcome = "ok" if run.ok else "FAILED"
    if run.held:
        outcome = f"held ({run.held})"
    log.info(
        "watcher %s: %s, %d signals (%d new, %d cleared), %d unknown, %.2f s",
        run.instance,
        outcome,
        run.signals,
        len(raised),
        len(cleared_kinds),
        run.unknowns,
        seconds,
    )
    if metrics is not None:
        metrics.observe_run(
            run.instance,
            ok=run.ok,
            seconds=seconds,
            unknowns=run.unknowns,
            raised=[s.kind for s in raised],
            cleared=cleared_kinds,
        )
    if progress is not None:
        progress(run.instance, "done", run.signals)
