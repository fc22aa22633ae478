"""The store: the only code that speaks SQL. SQLite by default, any SQLAlchemy URL works.

One module per aggregate, each a part of the :class:`Store` facade:

- ``base``      the engine, migrations, transactions, the upsert helper
- ``accounts``  the accounts as the accounts source last described them
- ``signals``   signals by fingerprint, and unknowns
- ``runs``      watcher runs, statuses and state
- ``alerts``    alerts (saved with their notices), silences, feedback
- ``outbox``    notifications: queue, claim under a fencing token, settle, list
- ``shards``    cycles and shards of sharded watcher runs, the task queue's schema
- ``tables``    every table; ``migrations`` builds them (self-contained scripts)
- ``leader``    leadership among replicas
"""

from __future__ import annotations

from swanwatch.store.accounts import AccountsStore
from swanwatch.store.alerts import AlertsStore
from swanwatch.store.outbox import OutboxStore
from swanwatch.store.runs import RunsStore, WatcherStatus
from swanwatch.store.shards import ShardCycle, ShardRun, ShardsStore
from swanwatch.store.signals import SignalChanges, SignalsStore


class Store(AccountsStore, SignalsStore, RunsStore, AlertsStore, OutboxStore, ShardsStore):
    """Accounts, signals, watcher runs, alerts, the outbox and shards, in one SQL database.

    ``Store(url)`` migrates the database to the latest schema unless ``migrate=False``.
    """


__all__ = ["ShardCycle", "ShardRun", "SignalChanges", "Store", "WatcherStatus"]
