"""support_spike: counts judged by their chance at the account's own rate; unanswered tickets."""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import httpx
import pytest
from scipy import stats
from swanwatch.watchers._counts import dispersion_index, log10_tail, predictive

from swanwatch import Source, SourceOptions
from swanwatch.testing import (
    assert_watcher_contract,
    last_unknowns,
    make_account,
    rows_source,
    run_watcher,
)

from .table_files import by_rows_and_columns

NOW = "2026-11-20T12:00:00Z"
END = datetime(2026, 11, 20, 12, tzinfo=UTC)


def ticket(
    opened: datetime,
    *,
    prio: str = "p3",
    escalated: bool = False,
    answered: bool = True,
    status: str = "closed",
    account: str = "acme",
    n: list[int] = [0],  # noqa: B006 (a running ticket number)
) -> dict[str, object]:
    n[0] += 1
    return {
        "account_id": account,
        "ticket_id": f"T-{n[0]}",
        "opened_at": opened,
        "priority": prio,
        "escalated": escalated,
        "status": status,
        "first_response_at": opened + timedelta(hours=3) if answered else None,
    }


def usual(
    account: str = "acme",
    per_week: float = 1.0,
    seed: int = 1,
    days: int = 120,
    p1_share: float = 0.0,
) -> list[dict[str, object]]:
    """Ordinary traffic: about ``per_week`` tickets a week, on weekdays."""
    rng = random.Random(seed)
    rows = []
    for i in range(days):
        day = END - timedelta(days=days - i, hours=2)
        if day.weekday() < 5:
            for _ in range(int(per_week / 5) + (rng.random() < (per_week / 5) % 1)):
                prio = "p1" if rng.random() < p1_share else rng.choice(["p2", "p3", "p4"])
                rows.append(ticket(day, account=account, prio=prio))
    return rows


def burst(start: date, count: int, **kw: object) -> list[dict[str, object]]:
    t0 = datetime(start.year, start.month, start.day, 10, tzinfo=UTC)
    return [ticket(t0 + timedelta(hours=7 * i), **kw) for i in range(count)]  # type: ignore[arg-type]


async def run(
    rows: list[dict[str, object]],
    now: str = NOW,
    *,
    replay: bool = False,
    accounts: tuple[str, ...] = ("acme",),
    **options: object,
) -> list:  # type: ignore[type-arg]
    """The watcher over ``rows`` row by row, and (the same signals and unknowns, checked)
    as columns from a CSV file, typed and as text, and from Parquet."""
    return await by_rows_and_columns(
        "support_spike",
        "tickets",
        rows,
        types=TICKET_TYPES,
        date_field="opened_at",
        accounts=accounts,
        now=now,
        replay=replay,
        options=options,
    )


TICKET_TYPES = {"opened_at": "datetime", "escalated": "bool", "first_response_at": "datetime"}


async def test_contract() -> None:
    rows = usual() + burst(date(2026, 11, 16), 9)
    await assert_watcher_contract(
        "support_spike",
        accounts=[make_account("acme")],
        now=NOW,
        sources={"tickets": rows_source(rows)},
    )


async def test_quiet_on_ordinary_traffic() -> None:
    rows = [r for s in range(20) for r in usual(f"a{s}", per_week=0.5 + s, seed=s)]
    assert await run(rows, accounts=tuple(f"a{s}" for s in range(20))) == []


async def test_volume_spike_fires_from_its_first_ticket() -> None:
    rows = usual() + burst(date(2026, 11, 16), 9)
    [s] = await run(rows)
    assert s.key == "volume"
    assert s.observed_at == datetime(2026, 11, 16, 10, tzinfo=UTC)
    ev = s.evidence
    assert ev["recent"] >= 9 and ev["rule"] == "improbable"
    assert ev["log10_p"] <= ev["threshold_log10_p"] == pytest.approx(math.log10(0.05 / 540), 0.01)
    assert s.summary.startswith(
        f"{ev['recent']} support tickets in the last 7 days, against about 1.0 in a usual "
        "7 days: a 1-in-"
    )
    assert s.summary.endswith(" chance at this account's own rate.")
    assert 0.5 <= s.strength < 1.0


async def test_strength_follows_the_improbability() -> None:
    strengths = []
    for count in (9, 12, 20):
        [s] = await run(usual() + burst(date(2026, 11, 16), count))
        assert s.strength == pytest.approx(min(1.0, -s.evidence["log10_p"] / 8), abs=1e-3)
        strengths.append(s.strength)
    assert strengths[0] < strengths[1] < strengths[2] == 1.0


async def test_the_old_false_alarms_stay_quiet() -> None:
    # 5 tickets in a week where about 1.3 are usual: a chance of about 1 in 100, which a
    # steady account meets every few months.
    rows = usual(per_week=1.3, seed=4) + burst(date(2026, 11, 16), 5)
    assert await run(rows) == []
    # One P1 on a large account where P1s are routine (about one a week).
    rows = usual(per_week=20, seed=5, p1_share=0.05) + burst(date(2026, 11, 18), 1, prio="p1")
    assert await run(rows) == []


async def test_busy_account_needs_more_than_its_usual() -> None:
    rows = usual(per_week=4, seed=3) + burst(date(2026, 11, 16), 5)
    assert await run(rows) == []


async def test_escalations_and_a_p1_where_p1s_are_rare() -> None:
    rows = (
        usual()
        + burst(date(2026, 11, 17), 4, escalated=True)
        + burst(date(2026, 11, 18), 1, prio="p1")
    )
    found = {s.key: s for s in await run(rows)}
    assert set(found) == {"escalations", "p1"}
    assert found["escalations"].evidence["rule"] == "improbable"
    p1 = found["p1"]
    assert p1.evidence["rule"] == "rare_p1"
    assert p1.summary == (
        "1 P1 ticket in the last 7 days, on an account with no P1 in the 113 days before."
    )
    assert 0.3 <= p1.strength < 0.5
    # A P1 a month or so apart is not rare any more; rare_p1_chance 0 turns the rule off.
    monthly = [burst(date(2026, 11, 18) - timedelta(days=35 * k), 1, prio="p1") for k in (1, 2)]
    assert "p1" not in {s.key for s in await run(rows + monthly[0] + monthly[1])}
    assert "p1" not in {s.key for s in await run(rows, rare_p1_chance=0)}


async def test_not_enough_history_is_unknown_not_quiet() -> None:
    # The account's tickets began 30 days ago: nothing to compare a busy week with.
    rows = usual(days=30) + burst(date(2026, 11, 16), 9, prio="p1")
    rows.append(ticket(END - timedelta(days=3), answered=False, status="open"))
    signals = await run(rows, accounts=("acme", "quiet"))
    assert [s.key for s in signals] == ["unanswered"]
    [(account, key, reason)] = last_unknowns()
    first = min(cast(datetime, r["opened_at"]) for r in rows).date()
    assert (account, key) == ("acme", "")
    assert reason == f"not enough history: tickets since {first.isoformat()}; 63 days needed"


async def test_clumpy_accounts_need_a_bigger_burst() -> None:
    # Tickets that come in clumps (an outage, eight tickets every four weeks) make a week of
    # fourteen less surprising: the dispersion estimated from the baseline's weeks (about
    # 5) widens the tail, where a Poisson tail would call it a 1-in-100,000 week.
    rows = usual(per_week=0.5, seed=6)
    for month in range(4):
        rows += burst((END - timedelta(days=11 + 28 * month)).date(), 8)
    rows += burst(date(2026, 11, 16), 14)
    assert await run(rows) == []
    [s] = await run(rows, dispersion=1.0)
    assert s.key == "volume" and s.evidence["dispersion"] == 1.0


async def test_book_scope_shares_the_significance_over_the_accounts() -> None:
    rows = usual() + burst(date(2026, 11, 16), 8)
    rows += [r for s in range(30) for r in usual(f"a{s}", seed=10 + s)]
    ids = ("acme", *(f"a{s}" for s in range(30)))
    [s] = await run(rows, accounts=ids)
    assert s.account_id == "acme"
    assert s.evidence["log10_p"] > math.log10(0.05 / 540 / 31)
    assert await run(rows, accounts=ids, significance_scope="book") == []


async def test_clears_when_the_spike_passes() -> None:
    rows = usual() + burst(date(2026, 11, 2), 9)
    assert [s.key for s in await run(rows, "2026-11-06T12:00:00Z", replay=True)] == ["volume"]
    assert await run(rows) == []


async def test_unanswered_tickets_ageing() -> None:
    rows = [
        *usual(),
        ticket(END - timedelta(days=3), answered=False, status="open"),
        ticket(END - timedelta(hours=10), answered=False, status="open"),
        ticket(END - timedelta(days=5), answered=False, status="closed"),
    ]
    [s] = await run(rows)
    assert s.key == "unanswered" and s.evidence["count"] == 1
    assert s.observed_at == END - timedelta(days=1)
    assert "1 ticket has had no first response for over 48 hours" in s.summary


def test_the_tail_is_exact() -> None:
    rng = random.Random(7)
    for _ in range(500):
        mean, ratio = 10 ** rng.uniform(-2, 2.5), 1 + 10 ** rng.uniform(-2, 1)
        count = rng.randint(0, int(3 * mean) + 30)
        q, r = 1 - 1 / ratio, mean / (ratio - 1)
        expected = stats.nbinom.logsf(count - 1, r, 1 - q) / math.log(10)
        if expected > -300:
            assert log10_tail(count, mean, ratio) == pytest.approx(expected, rel=1e-8, abs=1e-10)
    # The predictive: Jeffreys' prior, the rate's uncertainty, the clumping.
    assert predictive(0, 56, 7) == pytest.approx((0.0625, 1.125))
    assert predictive(8, 56, 7, dispersion=2.0) == pytest.approx((1.0625, 2.25))
    assert dispersion_index([1, 1, 1, 1]) == 1.0
    assert dispersion_index([0, 4, 0, 4]) == pytest.approx(16 / 3 / 2)


# --- the book: 300 steady accounts and 30 surges, replayed day by day over 180 days -------

#: The replay starts once every account has a full window and baseline of history.
HISTORY_DAYS = 63
REPLAY_DAYS = 180
BOOK_START = datetime(2026, 1, 5, tzinfo=UTC)
#: Tickets older than this are read by the watcher only for the history's start and the
#: P1 rate (see BookSource).
REACH = timedelta(days=HISTORY_DAYS + 1)


@dataclass
class Book:
    rows: list[dict[str, object]]
    rates: dict[str, float]  # tickets a day
    surges: dict[str, int]  # account -> replay day the 4x surge starts (14 days)


def arrivals(rng: random.Random, rate: float, start: datetime, days: float) -> list[datetime]:
    """A Poisson process of ``rate`` events a day over ``days`` from ``start``."""
    out, t = [], rng.expovariate(rate)
    while t < days:
        out.append(start + timedelta(days=t))
        t += rng.expovariate(rate)
    return out


def make_book(seed: int = 20261120, steady: int = 300, surged: int = 30) -> Book:
    """Steady accounts at 0.05 to 5 tickets a day (log-uniform); surges on accounts of 1.5 to
    5 a day, where four times the rate over two weeks is detectable at the default
    significance (at 1/day a surge is caught about 96% of the time, at 0.5/day 70%).

    Each account's history opens with a ticket on the book's first day (its onboarding),
    just before the first replayed day's baseline: every account is judged from that day.
    10% of tickets are escalated. P1s are 5% of tickets on accounts of at least 1 a day,
    where they are routine (a few in any baseline); none elsewhere, since a single P1 where
    P1s are rare is a signal by design (test_escalations_and_a_p1_where_p1s_are_rare).
    """
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    rates, surges = {}, {}
    days = HISTORY_DAYS + REPLAY_DAYS
    for i in range(steady + surged):
        account = f"acc-{i:03d}"
        low, high = (0.05, 5.0) if i < steady else (1.5, 5.0)
        rate = rates[account] = math.exp(rng.uniform(math.log(low), math.log(high)))
        if i < steady:
            times = arrivals(rng, rate, BOOK_START, days)
        else:
            surge = surges[account] = rng.randrange(7, REPLAY_DAYS - 21)
            begin = HISTORY_DAYS + surge
            times = arrivals(rng, rate, BOOK_START, begin)
            times += arrivals(rng, 4 * rate, BOOK_START + timedelta(days=begin), 14)
            times += arrivals(rng, rate, BOOK_START + timedelta(days=begin + 14), days - begin - 14)
        for opened in [BOOK_START, *times]:
            prio = "p1" if rate >= 1 and rng.random() < 0.05 else rng.choice(["p2", "p3", "p4"])
            rows.append(ticket(opened, account=account, prio=prio, escalated=rng.random() < 0.1))
    rows.sort(key=lambda r: r["opened_at"])  # type: ignore[arg-type,return-value]
    return Book(rows, rates, surges)


class BookSource(Source):
    """The book's tickets up to ``until``, without those the watcher reads nothing from.

    A replay reads every ticket up to each day; this source leaves out the tickets older
    than the watcher's window and baseline (``REACH``), except each account's first ticket
    and every P1 (the history's start and the P1 rate over the whole history, which the
    watcher does read). test_the_book_source_changes_nothing checks that the watcher says
    the same with the full source. It keeps the 180-day replay to seconds.
    """

    name = "book"

    def __init__(self, rows: Sequence[dict[str, object]]) -> None:
        super().__init__("book", SourceOptions())
        self.all = list(rows)
        self.times = [r["opened_at"] for r in self.all]
        firsts: dict[object, int] = {}
        for i, row in enumerate(self.all):
            firsts.setdefault(row["account_id"], i)
        self.kept = sorted(
            set(firsts.values()) | {i for i, r in enumerate(self.all) if r["priority"] == "p1"}
        )
        self.full = False

    async def rows(self, *, until: datetime | None = None) -> AsyncIterator[dict[str, Any]]:
        assert until is not None
        end = bisect.bisect_right(self.times, until)  # type: ignore[type-var]
        if self.full:
            for row in self.all[:end]:
                yield row
            return
        cut = bisect.bisect_right(self.times, until - REACH)  # type: ignore[type-var]
        for i in self.kept[: bisect.bisect_left(self.kept, cut)]:
            yield self.all[i]
        for row in self.all[cut:end]:
            yield row


async def replay_book(
    book: Book, days: Sequence[int], *, full: bool = False
) -> dict[int, list[tuple[str, str]]]:
    """(account, key) of every signal, per replayed day; the watcher runs at noon."""
    source = BookSource(book.rows)
    source.full = full
    accounts = [make_account(a) for a in sorted(book.rates)]
    out = {}
    async with httpx.AsyncClient() as client:
        for day in days:
            now = BOOK_START + timedelta(days=HISTORY_DAYS + day, hours=12)
            signals = await run_watcher(
                "support_spike",
                accounts=accounts,
                now=now,
                sources={"tickets": source},
                replay=True,
                http=client,
            )
            assert last_unknowns() == []
            out[day] = sorted((s.account_id, s.key) for s in signals)
    return out


@pytest.fixture(scope="module")
def book() -> Book:
    return make_book()


async def test_a_steady_book_stays_quiet_and_every_surge_is_caught(book: Book) -> None:
    # Every day of the 180, as the daemon runs: a false signal lasting one day counts.
    signals = await replay_book(book, range(REPLAY_DAYS))
    days: dict[str, set[int]] = {a: set() for a in book.rates}
    for day, found in signals.items():
        for account, _ in found:
            days[account].add(day)
    # A signal outside a surge (and the week its tickets stay in the window) is false.
    false = set()
    for account, seen in days.items():
        start = book.surges.get(account)
        if start is None:
            false |= {account} if seen else set()
            continue
        assert any(start <= d < start + 14 for d in seen), (
            f"{account} ({book.rates[account]:.2f} tickets/day): the surge was missed"
        )
        if any(d < start or d >= start + 14 + 7 for d in seen):
            false.add(account)
    # The claim: at most 5% of the steady accounts (here of all 330, surges' quiet days
    # included) raise any signal in the 180 days.
    assert len(book.rates) - len(book.surges) == 300
    assert len(false) <= 15, sorted(false)


async def test_the_book_source_changes_nothing(book: Book) -> None:
    days = range(0, REPLAY_DAYS, 15)
    assert await replay_book(book, days) == await replay_book(book, days, full=True)
