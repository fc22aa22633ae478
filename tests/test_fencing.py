"""Leader-only writes are fenced by the leadership epoch: a deposed leader's late write is
refused by the store, not stored beside the new leader's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ops_support import wait_until

from swanwatch.errors import LeadershipLost
from swanwatch.model import WatcherRun
from swanwatch.store import Store
from swanwatch.store.leader import Leadership

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
RUN = WatcherRun(instance="w", started_at=NOW, finished_at=NOW, ok=True)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_deposed_leaders_writes_are_refused(store_url: str) -> None:
    one, two = Store(store_url), Store(store_url)
    first = Leadership(one.engine, one.url, replica="one", lease_s=3)
    second = Leadership(two.engine, two.url, replica="two", lease_s=3)
    try:
        assert first.try_acquire() and first.epoch == 1
        assert not second.try_acquire()  # held, and the lease is fresh
        with first.fenced():
            one.record_run(RUN)
        # first stops confirming (frozen): once its lease is over, second takes over.
        wait_until(second.try_acquire, "the lease to run out and second to lead")
        assert second.epoch == 2
        with pytest.raises(LeadershipLost, match=r"epoch 1.*epoch 2"), first.fenced():
            one.record_run(RUN)
        with second.fenced():
            two.record_run(RUN)
        # first finds out at its next confirmation, and cannot fence anything any more.
        assert not first.confirm()
        with pytest.raises(LeadershipLost), first.fenced():
            pass
        assert [r.ok for r in two.runs("w")] == [True, True]
        with two.engine.connect() as conn:
            names = {
                r[0]
                for r in conn.exec_driver_sql(
                    "SELECT application_name FROM pg_stat_activity "
                    "WHERE datname = current_database()"
                )
            }
        assert "swanwatch two" in names
    finally:
        first.release()
        second.release()
        one.close()
        two.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_sqlite_leadership_has_an_epoch_too(store_url: str) -> None:
    store = Store(store_url)
    first = Leadership(store.engine, store.url, replica="one")
    second = Leadership(store.engine, store.url, replica="two")
    try:
        assert first.try_acquire() and not second.try_acquire()
        with first.fenced():
            store.record_run(RUN)
        first.release()
        assert second.try_acquire() and second.epoch == 2
        with pytest.raises(LeadershipLost), first.fenced():
            pass
        with second.fenced():
            store.record_run(RUN)
    finally:
        second.release()
        store.close()
