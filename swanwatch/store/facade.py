"""The :class:`Store` facade: every aggregate's part of the store in one class."""

from __future__ import annotations

from swanwatch.store.accounts import AccountsStore
from swanwatch.store.alerts import AlertsStore
from swanwatch.store.book import BookStore
from swanwatch.store.history import HistoryStore
from swanwatch.store.outbox import OutboxStore
from swanwatch.store.runs import RunsStore
from swanwatch.store.shards import ShardsStore
from swanwatch.store.signals import SignalsStore
from swanwatch.store.sources import SourcesStore
from swanwatch.store.users import UsersStore


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
