"""The whole book: sorted by every column, searched, filtered, paged, exported as CSV, in
the store's one query and the board's pages; and the account page with its charts."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swanwatch.board_book import PAGE_SIZE, Filters, words
from swanwatch.board_charts import baseline_band
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.model import Account, Alert, AlertState, Severity, fingerprint
from swanwatch.server import create_app
from swanwatch.store import BookQuery, Store
from swanwatch.store.book import SORTS, select_page

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "board-token-for-tests-0123456789"
SEVERITIES = list(Severity)


def _book(store: Store, n: int = 120) -> list[Account]:
    accounts = [
        Account(
            id=f"acc-{i:03d}",
            name="" if i % 17 == 0 else f"{'Zeta' if i % 2 else 'alpha'} {i:03d}",
            owner=None if i % 11 == 0 else f"csm{i % 4}@swan.example",
            segment=["enterprise", "smb", None][i % 3],
            arr=float(1000 * (i % 37) + 500),
            renewal_date=None if i % 13 == 0 else date(2027, 1, 1) + timedelta(days=(i * 7) % 90),
        )
        for i in range(n)
    ]
    store.upsert_accounts(accounts, NOW)
    alerts = []
    for i, a in enumerate(accounts):
        for rule in ("pair", "tickets")[: 1 + (i % 4 == 0)]:
            started = NOW - timedelta(days=(i * 3) % 50, hours=i % 7)
            alerts.append(
                Alert(
                    fingerprint=fingerprint("t", a.id, rule),
                    account_id=a.id,
                    rule=rule,
                    title=f"{rule} on {a.id}",
                    severity=SEVERITIES[(i + len(rule)) % 4],
                    score=round(0.1 + ((i * 29) % 80) / 100, 2),
                    state=AlertState.RESOLVED if i % 23 == 5 else AlertState.FIRING,
                    muted_by="silence 1 by ops" if i % 19 == 3 else None,
                    started_at=started,
                    updated_at=started,
                )
            )
    store.save_alerts(alerts, [])
    return accounts


def _expected(store: Store, q: BookQuery) -> list[str]:
    """The book by hand: every open alert's account, sorted the documented way."""
    listed = {a.id: a for a in store.accounts()}
    per: dict[str, list[Alert]] = {}
    for alert in store.alerts(open_only=True):
        if q.muted or alert.muted_by is None:
            per.setdefault(alert.account_id, []).append(alert)
    rows: list[tuple[Any, float, str]] = []
    for account_id, group in per.items():
        a = listed[account_id]
        score = max(x.score for x in group)
        key: Any = {
            "risk": round(a.arr * score, 2),
            "account": a.label.lower(),
            "owner": a.owner,
            "segment": a.segment,
            "severity": max(x.severity.rank for x in group),
            "score": score,
            "arr": a.arr,
            "renewal": a.renewal_date,
            "since": min(x.started_at for x in group),
            "alerts": len(group),
        }[q.sort]
        rows.append((key, -round(a.arr * score, 2), a.id))
    present = sorted((r for r in rows if r[0] is not None), key=lambda r: (r[1], r[2]))
    present.sort(key=lambda r: r[0], reverse=q.descending)
    missing = sorted((r for r in rows if r[0] is None), key=lambda r: (r[1], r[2]))
    return [r[2] for r in present + missing]


@pytest.mark.parametrize("column", sorted(SORTS))
@pytest.mark.parametrize("descending", [True, False])
def test_every_column_sorts_both_ways(store: Store, column: str, descending: bool) -> None:
    _book(store)
    q = BookQuery(sort=column, descending=descending, limit=1000, muted=column == "alerts")
    page, _ = select_page(store.book(), q)
    assert [line.account.id for line in page.lines] == _expected(store, q)


def test_filters_search_and_pages_add_up(store: Store) -> None:
    accounts = _book(store)
    entries = store.book()
    everything, _ = select_page(entries, BookQuery(limit=1000))
    pages = [select_page(entries, BookQuery(offset=o, limit=25))[0] for o in range(0, 200, 25)]
    assert [line.account.id for p in pages for line in p.lines] == [
        line.account.id for line in everything.lines
    ]
    assert {p.total for p in pages} == {everything.total}
    zeta, _ = select_page(entries, BookQuery(search="ZETA 01", limit=1000))
    assert {line.account.id for line in zeta.lines} == {
        a.id for a in accounts if "zeta 01" in a.name.lower()
    } - _muted_or_resolved(store)
    by_id, _ = select_page(entries, BookQuery(search="acc-00", limit=1000))
    assert all(line.account.id.startswith("acc-00") for line in by_id.lines) and by_id.lines
    mine, _ = select_page(entries, BookQuery(owner="csm1@swan.example", segment="smb"))
    assert mine.lines and all(
        (line.account.owner, line.account.segment) == ("csm1@swan.example", "smb")
        for line in mine.lines
    )
    assert mine.at_risk == round(sum(line.revenue_at_risk for line in mine.lines), 2)


def _muted_or_resolved(store: Store) -> set[str]:
    shown = {a.account_id for a in store.alerts(open_only=True) if a.muted_by is None}
    return {a.id for a in store.accounts()} - shown


@given(
    sort=st.sampled_from(sorted(SORTS)),
    descending=st.booleans(),
    page=st.integers(1, 5),
    owner=st.sampled_from(["", "csm0@swan.example", "nobody@x"]),
    search=st.sampled_from(["", "a", "acc-1", "Zeta"]),
    muted=st.booleans(),
)
@settings(max_examples=60, deadline=None)
def test_a_filters_url_round_trips(sort, descending, page, owner, search, muted) -> None:
    """Whatever the view, its URL gives the same view back: a view is a link to share."""
    f = Filters(
        owner=owner, search=search, muted=muted, sort=sort, descending=descending, page=page
    )
    again = Filters.of(dict(httpx.QueryParams(f.query())))
    assert again == f


def test_ages_in_words() -> None:
    assert words(timedelta(minutes=5)) == "5\u00a0minutes"
    assert words(timedelta(hours=1)) == "1\u00a0hour"
    assert words(timedelta(days=3, hours=2)) == "3\u00a0days"
    assert words(timedelta(days=20)) == "2\u00a0weeks"
    assert words(timedelta(days=200)) == "6\u00a0months"


def test_the_baseline_band_follows_the_same_weekday() -> None:
    start = date(2026, 8, 3)  # a Monday
    series = {
        start + timedelta(days=i): (100.0 if (start + timedelta(days=i)).weekday() < 5 else 10.0)
        for i in range(70)
    }
    band = {b.day: b for b in baseline_band(series)}
    monday = start + timedelta(weeks=8)
    assert band[monday].mid == 100.0 and band[monday + timedelta(days=5)].mid == 10.0
    assert start + timedelta(weeks=3) not in band  # fewer than four weeks before it


async def test_pages_csv_and_an_account_page(make_config) -> None:
    path = make_config(f"server:\n  board_token: {TOKEN}\n")
    config = load_config(path)
    store = Store(config.store_url)
    _book(store)
    store.record_scores({"acc-004": 0.2}, date(2026, 6, 1), keep_from=date(2026, 1, 1))
    store.record_scores({"acc-004": 0.7}, date(2026, 11, 20), keep_from=date(2026, 5, 24))
    app = create_app(config, store, FrozenClock(NOW))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://board.test") as client:
        await client.get("/board", params={"token": TOKEN})
        first = (await client.get("/board", params={"sort": "renewal", "dir": "asc"})).text
        ranked = re.findall(r'data-account="([^"]+)"', first)
        assert len(ranked) == PAGE_SIZE
        assert ranked == _expected(store, BookQuery(sort="renewal", descending=False))[:PAGE_SIZE]
        assert 'aria-sort="ascending"' in first and "page 1 of 3" in first
        second = (
            await client.get("/board", params={"sort": "renewal", "dir": "asc", "page": "2"})
        ).text
        assert (
            re.findall(r'data-account="([^"]+)"', second)[0]
            == _expected(store, BookQuery(sort="renewal", descending=False))[PAGE_SIZE]
        )
        exported = await client.get("/board/export.csv", params={"sort": "renewal", "dir": "asc"})
        assert exported.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["account_id"] for r in rows] == _expected(
            store, BookQuery(sort="renewal", descending=False)
        )
        account = await client.get("/board/accounts/acc-004")
        assert account.status_code == 200
        for chart in ("usage", "score", "tickets"):
            assert f'data-chart="{chart}"' in account.text
        assert 'class="line score"' in account.text  # the two scores on record, drawn
        assert "Alert fired: pair on acc-004" in account.text
        assert (await client.get("/board/accounts/nope")).status_code == 404
    store.close()
