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
"""

from __future__ import annotations

from swanwatch.store.accounts import AccountListing, AccountsStore
from swanwatch.store.alerts import AlertsStore
from swanwatch.store.book import BookLine, BookPage, BookQuery, BookStore
from swanwatch.store.history import HistoryStore, LoggedAction, SentNotice
from swanwatch.store.outbox import OutboxStore
from swanwatch.store.runs import RunsStore, WatcherStatus
from swanwatch.store.shards import ShardCycle, ShardRun, ShardsStore
from swanwatch.store.signals import Findings, SignalChanges, SignalsStore
from swanwatch.store.sources import SourcesStore
from swanwatch.store.users import BoardUser, UsersStore


class Store(
    AccountsStore,
    SignalsStore,
    RunsStore,
    SourcesStore,
    AlertsStore,
    OutboxStore,
    ShardsStore,
    BookStore,
    HistoryStore,
    UsersStore,
):
    """Accounts, signals, watcher runs, source health, alerts, the outbox and shards, in one
    SQL database.

    ``Store(url)`` migrates the database to the latest schema unless ``migrate=False``.
    """


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
