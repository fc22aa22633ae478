"""A real daemon whose store refuses its correlation pass (a restart, a full disk, a locked
file): one plain line in the log that says what failed and what happens next, no traceback
of a job gone wrong; the next pass writes what was decided, once."""

from __future__ import annotations

from pathlib import Path

import pytest
from ops_support import daemon, log_records, wait_until
from sqlalchemy import text

from swanwatch.store import Store

CONFIG = """
watchers:
  - type: static
    schedule: {every: 1s}
    options:
      signals:
        - {account: acme, kind: usage_drop, strength: 0.8, key: reports}
correlation:
  rules:
    - {name: sagging, title: Usage sagging, severity: warning, any_of: [usage_drop]}
daemon:
  startup_spread: 0s
  leader_check: 0.5s
notify: {console: true}
"""

#: A trigger that refuses every new alert, as a store that cannot take the pass would.
REFUSE = {
    "sqlite": [
        "CREATE TRIGGER refuse_alerts BEFORE INSERT ON alerts "
        "BEGIN SELECT RAISE(ABORT, 'alerts refused by the test'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_alerts() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'alerts refused by the test'; END $$",
        "CREATE TRIGGER refuse_alerts BEFORE INSERT ON alerts "
        "FOR EACH ROW EXECUTE FUNCTION refuse_alerts()",
    ],
}

ALLOW = {
    "sqlite": "DROP TRIGGER refuse_alerts",
    "postgresql": "DROP TRIGGER refuse_alerts ON alerts",
}


@pytest.mark.slow
def test_a_refused_correlation_pass_is_one_plain_line_and_the_next_pass_writes_it_once(
    store_url: str, make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    config = make_config(CONFIG, store_url=store_url)
    store = Store(store_url)
    with store.engine.begin() as conn:
        for statement in REFUSE[store.dialect]:
            conn.execute(text(statement))
    log = tmp_path / "daemon.log"

    def refusals() -> list[dict[str, object]]:
        return [
            r for r in log_records(log) if "refused by the test" in f"{r['message']}{r.get('exc')}"
        ]

    with daemon(swanwatch_cmd, config, subprocess_env, log, tmp_path) as proc:
        (first, *_) = wait_until(refusals, "a correlation pass refused by the store")
        assert store.alerts() == []
        with store.engine.begin() as conn:
            conn.execute(text(ALLOW[store.dialect]))
        wait_until(lambda: store.alerts(), "the next pass to write the alert")
        runs = len(store.runs("static", limit=1000))
        wait_until(lambda: len(store.runs("static", limit=1000)) > runs + 1, "two more passes")
    assert proc.returncode == 0
    message = str(first["message"])
    assert message.startswith("correlation could not read or write the store: ")
    assert message.endswith("; the pass after the next watcher run decides again")
    assert first["level"] == "ERROR" and "exc" not in first
    assert not [r for r in log_records(log) if r["message"] == "scheduled job failed"]
    (alert,) = store.alerts()
    assert alert.account_id == "acme" and alert.episode == 1
    assert [(n.account_id, n.event) for n in store.notifications()] == [("acme", "firing")]
    store.close()
