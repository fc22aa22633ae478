"""champion_departure reads contacts as columns (CSV typed and as text, Parquet) and judges
only the accounts where something can be wrong: the signals and unknowns are exactly those
of the row path, whatever the contacts hold."""

from __future__ import annotations

import asyncio
import random
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.sources import csv as csv_source
from swanwatch.sources.csv import CsvSource
from swanwatch.testing import make_account

from .replaying import compare
from .table_files import table_sources
from .test_champion_departure import NOW, run

TODAY = date(2026, 11, 20)


def contacts(seed: int, accounts: int) -> list[dict[str, object]]:
    """Contacts of a few accounts (and of one not watched), each with a history of rows:
    roles, titles, companies and statuses that change, e-mails in other cases or missing,
    logins recent, old or absent, changes on one day, and from the future."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for a in range(accounts + 1):
        for c in range(rng.randint(0, 5)):
            email = rng.choice([f"p{c}@a{a}.example", f"P{c}@A{a}.example ", "", f"p{c}@x"])
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                changed = TODAY - timedelta(days=rng.choice([400, 120, 60, 20, 5, 0, -3]))
                login = TODAY - timedelta(days=rng.choice([1, 10, 40, 100]))
                rows.append(
                    {
                        "account_id": f"a{a}",
                        "email": email,
                        "name": rng.choice([f"Person {c}", "", f"person {c} "]),
                        "title": rng.choice(["VP Ops", "CFO", "Analyst", ""]),
                        "role": rng.choice(["champion", "Sponsor", "user", "", "champion "]),
                        "status": rng.choice(["active", "", "left", "Bounced", "inactive"]),
                        "last_login": rng.choice([login.isoformat(), None]),
                        "changed_at": rng.choice([changed.isoformat(), None]),
                        "company": rng.choice(["Acme", "Globex", ""]),
                    }
                )
    if rng.random() < 0.5:
        rng.shuffle(rows)
    return rows


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    accounts=st.integers(1, 5),
    replay=st.booleans(),
    options=st.fixed_dictionaries(
        {},
        optional={
            "key_roles": st.sampled_from([["champion", "sponsor"], ["sponsor"], ["user", ""]]),
            "inactive_days": st.sampled_from([7, 30]),
            "recent_days": st.sampled_from([10, 90, 500]),
            "signal_no_champion": st.booleans(),
        },
    ),
)
def test_columns_judge_exactly_as_rows(
    seed: int, accounts: int, replay: bool, options: dict[str, object]
) -> None:
    rows = contacts(seed, accounts)
    ids = tuple(f"a{i}" for i in range(accounts))  # the last account is not watched
    asyncio.run(run(rows, NOW, replay=replay, accounts=ids, **options))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    accounts=st.integers(1, 4),
    steps=st.lists(st.tuples(st.integers(1, 12), st.booleans()), min_size=1, max_size=8),
    options=st.fixed_dictionaries(
        {},
        optional={
            "inactive_days": st.sampled_from([7, 30]),
            "recent_days": st.sampled_from([10, 90]),
            "signal_no_champion": st.booleans(),
        },
    ),
)
def test_the_replay_judges_each_day_as_watch_does(
    seed: int, accounts: int, steps: list[tuple[int, bool]], options: dict[str, object]
) -> None:
    """A replay that carries the contacts' screen from day to day (contacts changed on
    some days, accounts that come and go) gives each day what watch() gives afresh."""
    rows = contacts(seed, accounts)
    with tempfile.TemporaryDirectory() as tmp:
        types = {"last_login": "date", "changed_at": "date"}
        sources = table_sources("contacts", rows, Path(tmp), types)
        dated = CsvSource(
            "contacts",
            CsvSource.Options(path=sources[0].options.path, types=types, date_field="changed_at"),
        )
        everyone = [make_account(f"a{i}") for i in range(accounts)]
        now = datetime.combine(TODAY, datetime.min.time(), UTC) - timedelta(days=25, hours=-12)
        days = []
        for ahead, drop in steps:
            now += timedelta(days=ahead)
            listed = [a for a in everyone if not (drop and a.id == "a0")]
            days.append((now, listed, {"contacts": dated}))
        asyncio.run(compare("champion_departure", options, days))


def test_a_file_read_in_many_blocks_judges_as_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A contacts file bigger than the reader's block comes as many tables, joined a column
    at a time: the signals are still exactly those of the row path."""
    monkeypatch.setattr(csv_source, "BLOCK_BYTES", 1 << 9)  # a few contacts a block
    for seed in range(6):
        rows = contacts(seed, 12)
        assert len(rows) * 80 > 4 * csv_source.BLOCK_BYTES  # several blocks, each a table
        ids = tuple(f"a{i}" for i in range(12))
        asyncio.run(run(rows, NOW, accounts=ids))
