"""Prometheus metrics and readiness: what ops look at to know Swanwatch is doing its job."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from swanwatch.store import Store


@dataclass
class DaemonState:
    """What the daemon tells the HTTP endpoint about itself."""

    started: bool = False
    leading: bool = False
    stopping: bool = False
    problems: list[str] = field(default_factory=list)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: str) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_: str, samples: Iterable[tuple[dict[str, str], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(**labels)} {value:g}")


def readiness(store: Store, state: DaemonState) -> list[str]:
    """Why this replica is not ready (an empty list when it is)."""
    problems = list(state.problems)
    if not state.started:
        problems.append("the scheduler has not started")
    if state.stopping:
        problems.append("stopping")
    if not store.ping():
        problems.append("the store does not answer")
    return problems


def metrics_text(store: Store, state: DaemonState) -> str:
    """The Prometheus text exposition (format 0.0.4) of Swanwatch's gauges."""
    out = _Writer()
    out.metric("swanwatch_up", "gauge", "1 while the daemon runs.", [({}, 1)])
    out.metric(
        "swanwatch_leader",
        "gauge",
        "1 on the replica that runs the watchers.",
        [({}, 1 if state.leading else 0)],
    )
    statuses = store.watcher_statuses()
    out.metric(
        "swanwatch_watcher_last_success_timestamp_seconds",
        "gauge",
        "When each watcher last succeeded (Unix time).",
        [
            ({"watcher": name}, s.last_success_at.timestamp())
            for name, s in sorted(statuses.items())
            if s.last_success_at is not None
        ],
    )
    out.metric(
        "swanwatch_watcher_consecutive_failures",
        "gauge",
        "Failed runs in a row per watcher.",
        [({"watcher": name}, s.consecutive_failures) for name, s in sorted(statuses.items())],
    )
    out.metric(
        "swanwatch_signals_active",
        "gauge",
        "Active signals per kind.",
        [({"kind": kind}, n) for kind, n in sorted(store.signal_counts().items())],
    )
    out.metric(
        "swanwatch_alerts",
        "gauge",
        "Alerts per state, severity and whether muted.",
        [
            ({"state": st, "severity": sev, "muted": str(m).lower()}, n)
            for (st, sev, m), n in sorted(store.alert_counts().items())
        ],
    )
    outbox = store.outbox_counts()
    out.metric(
        "swanwatch_outbox_notifications",
        "gauge",
        "Notifications in the outbox per status.",
        [({"status": status}, n) for status, n in sorted(outbox.items())],
    )
    out.metric(
        "swanwatch_dead_letters",
        "gauge",
        "Notifications given up on (see `outbox list`).",
        [({}, outbox.get("dead", 0))],
    )
    return "\n".join(out.lines) + "\n"
