"""Swanwatch: weak signals in, compound churn-risk alerts out.

The flow, one direction, one module per stage:

- sources      ``swanwatch.sources`` (csv, sql, http) and :class:`Source`: business records
               in; ``swanwatch.accounts`` reads the accounts from them;
               ``swanwatch.sources.health`` judges every read (ok, suspect, stale, broken);
               ``swanwatch.sources.history`` says how each keeps its history (a replay
               refuses one that keeps none: no look-ahead)
- watchers     :class:`Watcher` plugins, run by ``swanwatch.engine``: :class:`Signal` out
- correlate    ``swanwatch.correlate``: signals, accounts and now in; assessments out, and
               one alert per account (pure); ``swanwatch.rules`` is the rule language
               (which kinds, ``where``, severity raised with the stake)
- alerts       ``swanwatch.alerts``: the lifecycle of each account's :class:`Alert`:
               firing, updates, escalation, repeats, ops alerts, and what needs telling
               (pure); ``swanwatch.muting`` the silences that hold notices back
- actions      ``swanwatch.actions``: a person acknowledges, snoozes, resolves, marks or
               silences an alert (the CLI, signed links and the board all act through it)
- delivery     ``swanwatch.delivery``: the durable outbox and its worker
- notifiers    :class:`Notifier` plugins: a :class:`Message` onto a channel

``swanwatch.engine`` runs one cycle of it all; ``swanwatch.redact`` cuts and scrubs what an
upstream answers before it is stored or logged; ``swanwatch.store`` is the only code that
speaks SQL; ``swanwatch.daemon``, ``swanwatch.server`` (signed links, the board) and the
``swanwatch.cli*`` modules are the faces.

Plugins import only the names below, the row readers of ``swanwatch.values`` (and
``swanwatch.testing`` in their tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swanwatch.lazy import lazy_names

if TYPE_CHECKING:
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
        ReadTally,
        Replayer,
        Row,
        Source,
        SourceOptions,
        SourceUse,
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

# Where each public name lives. The package imports nothing heavy until a name is used, so
# ``swanwatch --help`` starts without pydantic, httpx or the store (PEP 562).
_HOMES = {
    "Clock": "swanwatch.clock",
    "FrozenClock": "swanwatch.clock",
    "SystemClock": "swanwatch.clock",
    "parse_instant": "swanwatch.clock",
    "ConfigError": "swanwatch.errors",
    "PluginError": "swanwatch.errors",
    "SourceError": "swanwatch.errors",
    "StoreError": "swanwatch.errors",
    "SwanwatchError": "swanwatch.errors",
    "DeliveryResult": "swanwatch.interfaces",
    "Notifier": "swanwatch.interfaces",
    "NotifierOptions": "swanwatch.interfaces",
    "PluginOptions": "swanwatch.interfaces",
    "ReadTally": "swanwatch.interfaces",
    "Replayer": "swanwatch.interfaces",
    "Row": "swanwatch.interfaces",
    "Source": "swanwatch.interfaces",
    "SourceOptions": "swanwatch.interfaces",
    "SourceUse": "swanwatch.interfaces",
    "StateMap": "swanwatch.interfaces",
    "WatchContext": "swanwatch.interfaces",
    "Watcher": "swanwatch.interfaces",
    "WatcherOptions": "swanwatch.interfaces",
    "Account": "swanwatch.model",
    "Alert": "swanwatch.model",
    "AlertState": "swanwatch.model",
    "Message": "swanwatch.model",
    "Severity": "swanwatch.model",
    "Signal": "swanwatch.model",
    "fingerprint": "swanwatch.model",
}


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
    "ReadTally",
    "Replayer",
    "Row",
    "Severity",
    "Signal",
    "Source",
    "SourceError",
    "SourceOptions",
    "SourceUse",
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

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
