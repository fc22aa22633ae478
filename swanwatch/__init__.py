"""Swanwatch: weak signals in, compound churn-risk alerts out.

The flow, one direction, one module per stage:

- sources      ``swanwatch.sources`` (csv, sql, http) and :class:`Source`: business records
               in; ``swanwatch.accounts`` reads the accounts from them
- watchers     :class:`Watcher` plugins, run by ``swanwatch.engine``: :class:`Signal` out
- correlate    ``swanwatch.correlate``: signals, accounts and now in; assessments out (pure)
- alerts       ``swanwatch.alerts``: the lifecycle of each :class:`Alert`: firing, repeats,
               silences, inhibition, ops alerts, and what needs telling (pure)
- actions      ``swanwatch.actions``: a person acknowledges, snoozes, resolves, marks or
               silences an alert (the CLI, signed links and the board all act through it)
- delivery     ``swanwatch.delivery``: the durable outbox and its worker
- notifiers    :class:`Notifier` plugins: a :class:`Message` onto a channel

``swanwatch.engine`` runs one cycle of it all; ``swanwatch.store`` is the only code that
speaks SQL; ``swanwatch.daemon``, ``swanwatch.server`` (signed links, the board) and the
``swanwatch.cli*`` modules are the faces.

Plugins import only the names below, the row readers of ``swanwatch.values`` (and
``swanwatch.testing`` in their tests).
"""

from __future__ import annotations

from swanwatch.clock import Clock, FrozenClock, SystemClock, parse_instant
from swanwatch.errors import (
    ConfigError,
    PluginError,
    SourceError,
    StoreError,
    SwanwatchError,
)
from swanwatch.interfaces import (
    DeliveryResult,
    Notifier,
    NotifierOptions,
    PluginOptions,
    Row,
    Source,
    SourceOptions,
    StateMap,
    WatchContext,
    Watcher,
    WatcherOptions,
)
from swanwatch.model import (
    Account,
    Alert,
    AlertState,
    Message,
    Severity,
    Signal,
    fingerprint,
)

__version__ = "0.1.0"

__all__ = [
    "Account",
    "Alert",
    "AlertState",
    "Clock",
    "ConfigError",
    "DeliveryResult",
    "FrozenClock",
    "Message",
    "Notifier",
    "NotifierOptions",
    "PluginError",
    "PluginOptions",
    "Row",
    "Severity",
    "Signal",
    "Source",
    "SourceError",
    "SourceOptions",
    "StateMap",
    "StoreError",
    "SwanwatchError",
    "SystemClock",
    "WatchContext",
    "Watcher",
    "WatcherOptions",
    "__version__",
    "fingerprint",
    "parse_instant",
]
