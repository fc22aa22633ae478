"""The store: the only code that speaks SQL. SQLite by default, any SQLAlchemy URL works.

One module per aggregate, each a part of the :class:`Store` facade:

- ``base``      the engine, migrations, transactions, the upsert helper
- ``accounts``  the accounts as the accounts source last described them, and those it dropped
- ``signals``   signals by fingerprint, and unknowns
- ``runs``      watcher runs, statuses and state
- ``sources``   each source's health (ok, suspect, stale, broken)
- ``alerts``    alerts (saved with their notices), silences, feedback
- ``outbox``    notifications: queue, claim under a fencing token, settle, list
- ``book``      the open risks per account, a page at a time (the risk board)
- ``history``   each account's daily score, the action log, the notices it was sent
- ``users``     the risk board's local users and session key
- ``shards``    cycles and shards of sharded watcher runs, the task queue's schema
- ``tables``    every table; ``migrations`` builds them (self-contained scripts)
- ``leader``    leadership among replicas
- ``facade``    :class:`Store`, all of the above in one class

The package imports its modules when a name is first used (PEP 562), so a command that
reads one aggregate (``swanwatch alerts list``: :class:`~swanwatch.store.alerts.AlertsStore`)
imports that one and not the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from swanwatch.lazy import lazy_names

if TYPE_CHECKING:
    from swanwatch.store.accounts import AccountListing
    from swanwatch.store.book import BookLine, BookPage, BookQuery
    from swanwatch.store.facade import Store
    from swanwatch.store.history import LoggedAction, SentNotice
    from swanwatch.store.runs import WatcherStatus
    from swanwatch.store.shards import ShardCycle, ShardRun
    from swanwatch.store.signals import Findings, SignalChanges
    from swanwatch.store.users import BoardUser

# Where each public name lives.
_HOMES = {
    "AccountListing": "swanwatch.store.accounts",
    "BoardUser": "swanwatch.store.users",
    "BookLine": "swanwatch.store.book",
    "BookPage": "swanwatch.store.book",
    "BookQuery": "swanwatch.store.book",
    "Findings": "swanwatch.store.signals",
    "LoggedAction": "swanwatch.store.history",
    "SentNotice": "swanwatch.store.history",
    "ShardCycle": "swanwatch.store.shards",
    "ShardRun": "swanwatch.store.shards",
    "SignalChanges": "swanwatch.store.signals",
    "Store": "swanwatch.store.facade",
    "WatcherStatus": "swanwatch.store.runs",
}


__all__ = [
    "AccountListing",
    "BoardUser",
    "BookLine",
    "BookPage",
    "BookQuery",
    "Findings",
    "LoggedAction",
    "SentNotice",
    "ShardCycle",
    "ShardRun",
    "SignalChanges",
    "Store",
    "WatcherStatus",
]

__getattr__, __dir__ = lazy_names(__name__, _HOMES, __all__)
