"""support_spike reads tickets as columns (CSV typed and as text, Parquet) and tallies every
account at once: the signals and unknowns are exactly those of the row path, whatever the
tickets hold."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.sources import csv as csv_source

from .test_support_spike import run

END = datetime(2026, 11, 20, 12, tzinfo=UTC)
NOW = "2026-11-20T12:00:00Z"


def tickets(seed: int, accounts: int, days: int) -> list[dict[str, object]]:
    """Tickets of a few accounts (and of one not watched): steady rates, bursts, P1s in
    every spelling, escalations as flags or words, open and unanswered tickets, tickets
    opened after now, shuffled rows."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for a in range(accounts + 1):
        rate = rng.choice([0.05, 0.3, 1.0, 3.0])
        start = rng.randint(0, days)
        burst = rng.random() < 0.5
        for hour in range(0, (days - start) * 24, 6):
            opened = END - timedelta(hours=hour, minutes=rng.randint(0, 300))
            near = hour < 7 * 24
            if rng.random() > rate / 4 * (6 if burst and near else 1):
                continue
            answered = rng.random() < 0.9 or hour < 24
            rows.append(
                {
                    "account_id": f"a{a}",
                    "ticket_id": rng.choice([f"T-{len(rows)}", "", "0"]),
                    "opened_at": opened + timedelta(hours=rng.choice([0, 0, 0, 30])),
                    "priority": rng.choice(["p1", "P1 ", "urgent", "p2", "p3", "", "Critical"]),
                    "escalated": rng.choice([True, False, False, False]),
                    "status": rng.choice(["closed", "open", "Solved", "pending", ""]),
                    "first_response_at": (
                        opened + timedelta(hours=rng.choice([1, 20, 60, 400])) if answered else None
                    ),
                }
            )
    if rng.random() < 0.5:
        rng.shuffle(rows)
    return rows


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10**6),
    accounts=st.integers(1, 4),
    days=st.integers(10, 150),
    replay=st.booleans(),
    options=st.fixed_dictionaries(
        {},
        optional={
            "window_days": st.sampled_from([3, 7]),
            "baseline_days": st.sampled_from([28, 56, 60]),
            "significance_scope": st.sampled_from(["account", "book"]),
            "dispersion": st.sampled_from([1.0, 2.5]),
            "rare_p1_chance": st.sampled_from([0.0, 0.1, 0.5]),
            "unanswered_after_h": st.sampled_from([4.0, 48.0]),
        },
    ),
)
def test_columns_tally_exactly_as_rows(
    seed: int, accounts: int, days: int, replay: bool, options: dict[str, object]
) -> None:
    rows = tickets(seed, accounts, days)
    ids = tuple(f"a{i}" for i in range(accounts))  # the last account is not watched
    asyncio.run(run(rows, NOW, replay=replay, accounts=ids, **options))


def test_a_file_read_in_many_blocks_judges_as_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tickets file bigger than the reader's block comes as many tables, joined a column at
    a time: the signals are still exactly those of the row path."""
    monkeypatch.setattr(csv_source, "BLOCK_BYTES", 1 << 9)  # a few tickets a block
    for seed in range(4):
        rows = tickets(seed, 4, 150)
        assert len(rows) * 60 > 4 * csv_source.BLOCK_BYTES  # several blocks, each a table
        asyncio.run(run(rows, NOW, accounts=("a0", "a1", "a2", "a3")))
