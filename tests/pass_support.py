"""What two correlation passes are compared by: what they leave on record and what they
tell (tests/test_passes.py, tests/test_pass_workers.py)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from swanwatch.passes import PassTally
from swanwatch.store import Store


def on_record(store: Store, account_ids: Iterable[str]) -> dict[str, Any]:
    """The alerts (but their row ids), the outbox and these accounts' score history."""
    alerts = {a.fingerprint: a.model_dump(exclude={"id"}) for a in store.alerts()}
    outbox = sorted(
        (n.idempotency_key, n.alert_fingerprint, n.event, n.channel, n.title, n.severity)
        for n in store.notifications(limit=10_000)
    )
    scores = {i: store.score_history(i, date(2026, 1, 1)) for i in account_ids}
    return {"alerts": alerts, "outbox": outbox, "scores": scores}


def told(tally: PassTally) -> tuple[object, ...]:
    """A pass's counts, its notices and the alerts it changed, in no particular order."""
    notices = sorted((n.event, n.alert.fingerprint, n.new_signals) for n in tally.notices)
    changed = sorted(a.fingerprint for a in tally.changed)
    return (tally.accounts, tally.written, tally.enqueued, notices, changed)
