"""`swanwatch alerts list` reads a plain SQLite store with the standard library: the same
alerts, in the same order, as the store reads them; anything else goes to the store."""

from __future__ import annotations

import json
import logging
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON

from swanwatch.model import Alert, AlertState, Contribution, Reason, Severity
from swanwatch.store import Store
from swanwatch.store.core_tables import ALERTS
from swanwatch.store.quick import ALERT_JSON, ALERT_TIMES, NOT_FIELDS, quick_alerts
from swanwatch.store.types import UTCDateTime

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
# Text as accounts and registries give it: quotes, backslashes, controls, any script.
TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\0"), max_size=12)
INSTANTS = st.builds(
    lambda minutes, hours: (T0 + timedelta(minutes=minutes)).astimezone(
        timezone(timedelta(hours=hours))
    ),
    st.integers(-(10**6), 10**6),
    st.integers(-12, 14),
)
JSON_SCALARS = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT
JSON_FLOATS = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def alerts(draw: st.DrawFn, fingerprint: str) -> Alert:
    contribution = st.builds(
        Contribution,
        fingerprint=TEXT, kind=TEXT, key=TEXT, summary=TEXT, strength=JSON_FLOATS,
        weight=JSON_FLOATS, decay=JSON_FLOATS, age_days=JSON_FLOATS, observed_at=INSTANTS,
    )  # fmt: skip
    reason = st.builds(
        Reason, rule=TEXT, title=TEXT, severity=st.sampled_from(Severity),
        since=st.none() | INSTANTS,
    )  # fmt: skip
    return Alert(
        fingerprint=fingerprint,
        # Few accounts and rules, few scores: the order's ties are broken as the store's.
        account_id=draw(st.sampled_from(["acme", "Acme", "ä-corp", "zeta"])),
        rule=draw(st.sampled_from(["pair", "usage", "renewal"])),
        title=draw(TEXT),
        severity=draw(st.sampled_from(Severity)),
        score=draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]) | st.floats(0.0, 1.0)),
        state=draw(st.sampled_from(AlertState)),
        contributions=tuple(draw(st.lists(contribution, max_size=2))),
        why_now=tuple(draw(st.lists(TEXT, max_size=2))),
        play=tuple(draw(st.lists(TEXT, max_size=2))),
        at_stake=draw(st.dictionaries(TEXT, JSON_SCALARS | JSON_FLOATS, max_size=3)),
        episode=draw(st.integers(1, 10**6)),
        started_at=draw(INSTANTS),
        updated_at=draw(INSTANTS),
        resolved_at=draw(st.none() | INSTANTS),
        clear_since=draw(st.none() | INSTANTS),
        snoozed_until=draw(st.none() | INSTANTS),
        last_notified_at=draw(st.none() | INSTANTS),
        last_notified_severity=draw(st.none() | st.sampled_from(Severity)),
        notify_count=draw(st.integers(0, 2**31)),
        notified_signals=tuple(draw(st.lists(TEXT, max_size=2))),
        muted_by=draw(st.none() | TEXT),
        acted_by=draw(st.none() | TEXT),
        flaps=draw(st.integers(0, 99)),
        reasons=tuple(draw(st.lists(reason, max_size=2))),
    )


@st.composite
def books(draw: st.DrawFn) -> list[Alert]:
    """Alerts new to the store (one example's are added to the last one's)."""
    book = uuid.uuid4().hex
    return [draw(alerts(f"{book}-{n}")) for n in range(draw(st.integers(0, 6)))]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(book=books(), open_only=st.booleans())
def test_the_quick_read_gives_what_the_store_gives(
    store_url: str, store: Store, book: list[Alert], open_only: bool
) -> None:
    store.save_alerts(book, [])
    quick = quick_alerts(store_url, open_only=open_only)
    assert quick == store.alerts(open_only=open_only)
    assert quick is not None
    saved = {a.fingerprint: a for a in book}
    read = [a for a in quick if a.fingerprint in saved]
    assert len(read) == sum(1 for a in book if a.open or not open_only)
    for alert in read:  # as they were given: nothing changed on the way
        assert alert.model_dump(exclude={"id"}) == saved[alert.fingerprint].model_dump(
            exclude={"id"}
        )


def test_the_quick_reader_knows_every_json_and_instant_column() -> None:
    assert {c.name for c in ALERTS.columns if isinstance(c.type, JSON)} == ALERT_JSON
    assert {c.name for c in ALERTS.columns if isinstance(c.type, UTCDateTime)} == ALERT_TIMES
    assert {c.name for c in ALERTS.columns} - NOT_FIELDS == set(Alert.model_fields)


def test_the_quick_reader_leaves_to_the_store_what_it_does_not_know(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/swanwatch.db"
    assert quick_alerts(url, open_only=True) is None  # no store yet
    assert quick_alerts("sqlite://", open_only=True) is None  # in memory
    assert quick_alerts("sqlite:///:memory:", open_only=True) is None
    assert quick_alerts("postgresql+psycopg://x@127.0.0.1/test", open_only=True) is None
    (tmp_path / "swanwatch.db").write_bytes(b"not a database, but garbage " * 200)
    assert quick_alerts(url, open_only=True) is None  # the store says the file is broken
    (tmp_path / "swanwatch.db").unlink()
    sqlite3.connect(tmp_path / "swanwatch.db").close()  # an empty database: no schema
    assert quick_alerts(url, open_only=True) is None


def test_the_alerts_a_real_cycle_raised_are_read_quickly(make_config, run_cli) -> None:
    """Alerts as the engine writes them (contributions, reasons, stakes from a real run),
    not only as the test builds them: the quick reader answers, and as the store does."""
    from swanwatch.config import load_config

    path = make_config(
        """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: champion_departure, strength: 0.9, summary: "Ann \\"left\\""}
        - {account: acme, kind: usage_drop, strength: 0.9}
        - {account: globex, kind: usage_drop, strength: 0.9}
correlation:
  rules:
    - {name: pair, title: Champion left and usage fell, severity: high,
       all_of: [champion_departure, usage_drop], play: ["CSM: call the buyer."]}
notify: {console: false}
"""
    )
    assert run_cli("run", "--once", "-c", str(path)).returncode == 0
    url = load_config(path, check_plugins=False).store_url
    store = Store(url)
    try:
        for open_only in (True, False):
            quick = quick_alerts(url, open_only=open_only)
            assert quick is not None and quick == store.alerts(open_only=open_only)
        assert {a.account_id for a in quick or []} >= {"acme"}
    finally:
        store.close()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_store_an_older_release_made_is_left_to_the_store(
    store_url: str, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    store.save_alerts([Alert(fingerprint="f", account_id="a", rule="r", title="t",
                             severity=Severity.HIGH, score=0.5, started_at=T0,
                             updated_at=T0)], [])  # fmt: skip
    assert quick_alerts(store_url, open_only=True) == store.alerts(open_only=True)
    with_options = store_url + "?timeout=5"
    assert quick_alerts(with_options, open_only=True) is None  # options: SQLAlchemy's to read
    path = store_url.removeprefix("sqlite:///")
    store.close()
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE alerts DROP COLUMN reasons")  # as before migration 0010
    assert quick_alerts(store_url, open_only=True) is None
    with caplog.at_level(logging.DEBUG, logger="swanwatch.store"):
        (Path(path).parent / "garbage.db").write_bytes(b"garbage " * 600)
        assert quick_alerts(f"sqlite:///{Path(path).parent}/garbage.db", open_only=True) is None
    assert "not quickly" in caplog.text  # said, for whoever wonders why it is slow


def test_alerts_list_reads_the_same_on_every_store(
    store_url: str, store: Store, make_config, run_cli
) -> None:
    """SQLite through the quick reader, PostgreSQL through the store: the same listing."""
    book = [
        Alert(fingerprint=f"f{n}", account_id=account, rule="r", title=f"Risk {n}",
              severity=severity, score=0.5, state=state, started_at=T0, updated_at=T0,
              at_stake={"name": account.title(), "revenue_at_risk": arr})
        for n, (account, severity, arr, state) in enumerate([
            ("acme", Severity.HIGH, 5000.0, AlertState.FIRING),
            ("globex", Severity.CRITICAL, 10.0, AlertState.ACKNOWLEDGED),
            ("initech", Severity.HIGH, 90000.0, AlertState.FIRING),
            ("umbrella", Severity.CRITICAL, 99.0, AlertState.RESOLVED),
        ])
    ]  # fmt: skip
    store.save_alerts(book, [])
    config = str(make_config("watchers: []\n", store_url=store_url))
    listed = run_cli("alerts", "list", "--json", "-c", config)
    assert listed.returncode == 0, listed.stderr
    ranked = [(a["account_id"], a["status"]) for a in json.loads(listed.stdout)]
    assert ranked == [("globex", "acknowledged"), ("initech", "firing"), ("acme", "firing")]
    every = json.loads(run_cli("alerts", "list", "--all", "--json", "-c", config).stdout)
    assert [a["account_id"] for a in every] == ["umbrella", "globex", "initech", "acme"]
