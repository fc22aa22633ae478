"""A seeded scenario for end-to-end tests: N accounts over 120 days with planted black swans.

``build(folder, accounts=50)`` writes accounts, contacts, contracts, usage and tickets CSVs
(the formats of ``config/sample``; accounts and contracts as snapshots dated the first day)
plus a config that reads them with the four historical watchers and the default rule pack,
and returns what was planted.

About a fifth of the accounts carry a story that ends in a loss on a planted date:

- ``champion_left_usage``: the champion is deactivated, usage falls ~50% over two weeks;
  churns 30-40 days later (rule ``champion_left_usage_falling``).
- ``silent_renewal_support``: renewal 100-118 days in, nothing in motion, a support spike
  (tickets, escalations, a P1) 15-45 days before it; churns on the renewal date
  (``silent_renewal_with_support_spike``).
- ``renewal_usage``: renewal near with nothing in motion, usage falls 40-60 days before it;
  churns on the renewal date (``renewal_at_risk``).
- ``three_weak``: the sponsor's title changes, a support spike follows, the renewal (idle)
  is under 90 days away; downgrades 35 days later (``three_weak_signals``).
- ``flatline``: usage stops dead; churns two weeks later. One strong signal, no compound:
  not a planted *compound* risk (no rule is expected to fire), but a loss with a lead time.
- ``blind``: churns with nothing visible beforehand: the blind spot a review must report.

The others are clean, with ordinary noise: weekly seasonality, day-to-day noise, a public
holiday, the odd one-day dip, a steady trickle of tickets, and now and then one weak thing on
its own (a sponsor's new title, a burst of routine tickets, a few quiet days of usage, a
renewal left idle that renews anyway). Clean accounts renew (or expand) 70-119 days in, so
every account has an outcome within the replayed period.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from swanwatch.config import bundled

END = date(2026, 11, 20)
DAYS = 120
START = END - timedelta(days=DAYS - 1)
#: The replay starts once four weeks of usage history exist (the usage baseline's minimum).
REPLAY_START = START + timedelta(days=28)
HOLIDAY = date(2026, 9, 7)
#: Days of tickets before START: support_spike judges an account after 63 days of tickets.
TICKET_HISTORY_DAYS = 63

#: Stories whose risk is compound: a rule is expected to alert before the planted loss.
COMPOUND = {
    "champion_left_usage": "champion_left_usage_falling",
    "silent_renewal_support": "silent_renewal_with_support_spike",
    "renewal_usage": "renewal_at_risk",
    "three_weak": "three_weak_signals",
}
#: The share of accounts that carry each story (at least one each).
STORY_SHARE = {
    "champion_left_usage": 0.04,
    "silent_renewal_support": 0.04,
    "renewal_usage": 0.04,
    "three_weak": 0.04,
    "flatline": 0.02,
    "blind": 0.02,
}


@dataclass
class Plan:
    """One account's generated facts and the story it carries, if any."""

    id: str
    level: float
    renewal: date
    stage: str = "signed"
    auto_renew: bool = False
    story: str | None = None
    loss: str | None = None  # churned or downgraded
    loss_date: date | None = None
    drop: tuple[date, int, float] | None = None  # start, ramp days, depth
    flatline_from: date | None = None
    dips: list[date] = field(default_factory=list)
    champion_gone: date | None = None
    sponsor_retitled: date | None = None
    spike: tuple[date, bool] | None = None  # start, severe (escalations and a P1)
    expanded: bool = False


@dataclass(frozen=True)
class Scenario:
    """What ``build`` wrote and planted."""

    config: Path
    folder: Path
    plans: tuple[Plan, ...]
    start: datetime
    end: datetime

    @property
    def losses(self) -> list[Plan]:
        return [p for p in self.plans if p.loss is not None]

    @property
    def compound(self) -> list[Plan]:
        return [p for p in self.plans if p.story in COMPOUND]

    @property
    def clean(self) -> list[Plan]:
        return [p for p in self.plans if p.story is None]

    def outcomes_csv(self, path: Path) -> Path:
        """Outcomes as a CS team records them: the planted losses, renewals for the rest."""
        lines = ["account_id,date,outcome"]
        for p in self.plans:
            if p.loss is not None and p.loss_date is not None:
                lines.append(f"{p.id},{p.loss_date.isoformat()},{p.loss}")
            else:
                lines.append(
                    f"{p.id},{p.renewal.isoformat()},{'expanded' if p.expanded else 'renewed'}"
                )
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path


def _day(index: int) -> date:
    return START + timedelta(days=index)


def _plan_stories(rng: random.Random, plans: list[Plan]) -> None:
    stories: list[str] = []
    for story, share in STORY_SHARE.items():
        stories += [story] * max(1, round(share * len(plans)))
    chosen = rng.sample(plans, len(stories))
    for plan, story in zip(chosen, stories, strict=True):
        plan.story, plan.loss = story, "churned"
        plan.renewal, plan.stage = END + timedelta(days=rng.randint(120, 300)), "signed"
        plan.dips = []
        if story == "champion_left_usage":
            gone = _day(rng.randint(60, 78))
            plan.champion_gone = gone
            plan.drop = (gone + timedelta(days=1), 14, rng.uniform(0.45, 0.6))
            plan.loss_date = gone + timedelta(days=rng.randint(30, 40))
        elif story == "silent_renewal_support":
            plan.renewal, plan.stage = _day(rng.randint(100, 118)), "none"
            plan.spike = (plan.renewal - timedelta(days=rng.randint(20, 45)), True)
            plan.loss_date = plan.renewal
        elif story == "renewal_usage":
            plan.renewal, plan.stage = _day(rng.randint(100, 118)), "none"
            plan.drop = (
                plan.renewal - timedelta(days=rng.randint(40, 60)),
                10,
                rng.uniform(0.45, 0.6),
            )
            plan.loss_date = plan.renewal
        elif story == "three_weak":
            retitled = _day(rng.randint(60, 78))
            plan.sponsor_retitled = retitled
            plan.spike = (retitled + timedelta(days=rng.randint(2, 6)), False)
            plan.renewal = retitled + timedelta(days=rng.randint(70, 85))
            plan.stage = "none"
            plan.loss, plan.loss_date = "downgraded", retitled + timedelta(days=35)
        elif story == "flatline":
            plan.flatline_from = _day(rng.randint(70, 100))
            plan.loss_date = plan.flatline_from + timedelta(days=14)
        else:  # blind
            plan.loss_date = _day(rng.randint(80, 118))


def _add_noise(rng: random.Random, plan: Plan, everyday: float) -> None:
    """One clean account's ordinary life, now and then one weak thing on its own.

    ``everyday`` scales how often the everyday things happen (a sponsor's new title, a burst
    of routine tickets): they tell little about churn, which a fit of weights should learn.
    """
    plan.renewal = _day(rng.randint(70, 119))
    plan.auto_renew = rng.random() < 0.4
    plan.stage = rng.choice(["opportunity", "quote", "po", "signed"])
    plan.expanded = rng.random() < 0.2
    if rng.random() < 0.15:
        plan.dips.append(_day(rng.randrange(28, DAYS)))
    if rng.random() < 0.08 * everyday:
        plan.sponsor_retitled = _day(rng.randint(30, 115))
    if rng.random() < 0.08 * everyday:
        plan.spike = (_day(rng.randint(60, 112)), False)
    if rng.random() < 0.05:
        plan.drop = (_day(rng.randint(40, 110)), 1, 0.45)  # a quiet spell: recovers below
    if rng.random() < 0.08 and not plan.auto_renew:
        plan.stage = "none"  # nobody opened the renewal, yet it renews


def _usage(rng: random.Random, plan: Plan, day: date, index: int) -> int:
    if plan.flatline_from is not None and day >= plan.flatline_from:
        return 0
    weekend = day.weekday() >= 5
    mean = plan.level * (0.3 if weekend else 1.0) * (1 + 0.0005 * (index - DAYS))
    if plan.drop is not None:
        begin, ramp, depth = plan.drop
        if day >= begin:
            elapsed = (day - begin).days
            if plan.story is None and elapsed >= 5:
                pass  # a quiet spell ends after five days
            else:
                mean *= 1 - depth * min(1.0, (elapsed + 1) / ramp)
    if day == HOLIDAY:
        mean *= 0.35
    if day in plan.dips:
        mean *= 0.5
    return max(0, round(mean * rng.gauss(1.0, 0.07)))


def _ticket(rng: random.Random, day: date, prio: str, escalated: bool) -> str:
    hour = rng.randint(8, 16)
    opened = datetime(day.year, day.month, day.day, hour, rng.randint(0, 59), tzinfo=UTC)
    answered = opened + timedelta(hours=rng.randint(1, 6), minutes=rng.randint(0, 59))
    status = "closed" if (END - day).days > 5 else "open"
    stamp = "%Y-%m-%dT%H:%M:00Z"
    return (
        f"{opened.strftime(stamp)},{prio},{'true' if escalated else 'false'},{status},"
        f"{answered.strftime(stamp)}"
    )


def _tickets(rng: random.Random, plan: Plan) -> list[str]:
    # The help desk's history goes back further than the usage: every account is a customer
    # with a ticket (its onboarding) on the first day of it, and a full support baseline.
    first = _day(-TICKET_HISTORY_DAYS)
    rows = [f"{first.isoformat()}T09:00:00Z,p3,false,closed,{first.isoformat()}T11:00:00Z"]
    for i in range(-TICKET_HISTORY_DAYS, DAYS):
        day = _day(i)
        if day.weekday() < 5 and rng.random() < 0.06:
            rows.append(_ticket(rng, day, rng.choice(["p3", "p3", "p4", "p2"]), False))
    if plan.spike is not None:
        begin, severe = plan.spike
        count = rng.randint(8, 10) if severe else 7
        for n in range(count):
            day = begin + timedelta(days=n % 5)
            prio = "p1" if severe and n == 2 else rng.choice(["p2", "p3"])
            rows.append(_ticket(rng, day, prio, severe and n in (1, 3)))
    return rows


FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jon"]
LAST = ["Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad", "Reyes"]


def _contacts(rng: random.Random, plan: Plan) -> list[str]:
    created = (START - timedelta(days=rng.randint(200, 700))).isoformat()
    login = (END - timedelta(days=rng.randint(0, 5))).isoformat()
    rows = []
    for n, role in enumerate(["champion", "sponsor", "user", "user"]):
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        email = f"{name.lower().replace(' ', '.')}{n}@{plan.id}.example"
        title = "Head of Analytics" if role != "user" else "Analyst"
        head = f"{plan.id},{email},{name}"
        if role == "champion" and plan.champion_gone is not None:
            gone = plan.champion_gone
            rows.append(f"{head},{title},{role},active,{gone - timedelta(days=1)},{created}")
            rows.append(f"{head},{title},{role},deactivated,{gone - timedelta(days=1)},{gone}")
        elif role == "sponsor" and plan.sponsor_retitled is not None:
            rows.append(f"{head},{title},{role},active,{login},{created}")
            rows.append(f"{head},Advisor,{role},active,{login},{plan.sponsor_retitled}")
        else:
            rows.append(f"{head},{title},{role},active,{login},{created}")
    return rows


CONFIG = """\
version: 1
store:
  url: sqlite:///unused.db
sources:
  accounts:
    type: csv
    options:
      path: accounts-*.csv
      snapshots: true
      types: {{arr: float, renewal_date: date}}
  usage:
    type: csv
    options: {{path: usage.csv, types: {{date: date, value: float}}, date_field: date}}
  contacts:
    type: csv
    options:
      path: contacts.csv
      types: {{last_login: date, changed_at: date}}
      date_field: changed_at
  contracts:
    type: csv
    options:
      path: contracts-*.csv
      snapshots: true
      types: {{end_date: date, auto_renew: bool, invoice_overdue_days: int,
              payment_failed: bool}}
  tickets:
    type: csv
    options:
      path: tickets.csv
      types: {{opened_at: datetime, escalated: bool, first_response_at: datetime}}
      date_field: opened_at
accounts:
  source: accounts
watchers:
  - type: usage_drop
    options: {{ignore_dates: [{holiday}]}}
  - type: champion_departure
  - type: renewal_lapse
  - type: support_spike
correlation:
  rule_files: [{rules}]
notify:
  console: false
"""


def build(
    folder: Path, *, accounts: int = 50, seed: int = 20261120, everyday_noise: float = 1.0
) -> Scenario:
    """Write a scenario of ``accounts`` accounts into ``folder``; deterministic per seed.

    ``everyday_noise`` scales how often clean accounts see a sponsor retitled or a burst of
    routine tickets (1.0: about one in twelve each over the 120 days).
    """
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    plans = [
        Plan(
            id=f"acc-{i:04d}",
            level=rng.choice([80.0, 300.0, 1500.0]) * rng.uniform(0.6, 1.6),
            renewal=END,
        )
        for i in range(1, accounts + 1)
    ]
    _plan_stories(rng, plans)
    for plan in plans:
        if plan.story is None:
            _add_noise(rng, plan, everyday_noise)
    # Accounts and contracts have no dates of their own: one snapshot each, as they stood on
    # the first day (a replay refuses a source that keeps no history).
    snapshot = START.isoformat()
    with open(folder / f"accounts-{snapshot}.csv", "w", encoding="utf-8") as f:
        f.write("id,name,domains,owner,segment,arr,renewal_date,tags\n")
        for i, p in enumerate(plans):
            segment = "enterprise" if p.level > 1000 else "mid-market"
            f.write(
                f"{p.id},Account {p.id[4:]},{p.id}.example,csm{i % 3}@swan.example,"
                f"{segment},{round(p.level * 120, -2):.0f},{p.renewal.isoformat()},\n"
            )
    with open(folder / f"contracts-{snapshot}.csv", "w", encoding="utf-8") as f:
        f.write(
            "account_id,contract_id,end_date,auto_renew,renewal_stage,"
            "invoice_overdue_days,payment_failed\n"
        )
        for i, p in enumerate(plans):
            f.write(
                f"{p.id},C-{i + 1:05d},{p.renewal.isoformat()},"
                f"{'true' if p.auto_renew else 'false'},{p.stage},0,false\n"
            )
    with open(folder / "contacts.csv", "w", encoding="utf-8") as f:
        f.write("account_id,email,name,title,role,status,last_login,changed_at\n")
        for p in plans:
            f.writelines(row + "\n" for row in _contacts(rng, p))
    with open(folder / "usage.csv", "w", encoding="utf-8") as f:
        f.write("account_id,date,metric,value\n")
        for p in plans:
            f.writelines(
                f"{p.id},{_day(i).isoformat()},reports,{_usage(rng, p, _day(i), i)}\n"
                for i in range(DAYS)
            )
    with open(folder / "tickets.csv", "w", encoding="utf-8") as f:
        f.write("account_id,ticket_id,opened_at,priority,escalated,status,first_response_at\n")
        counter = 0
        for p in plans:
            for row in sorted(_tickets(rng, p)):
                counter += 1
                f.write(f"{p.id},T-{counter:06d},{row}\n")
    rules = bundled("rules", "default.yaml")
    config = folder / "swanwatch.yaml"
    config.write_text(
        CONFIG.format(holiday=HOLIDAY.isoformat(), rules=str(rules)), encoding="utf-8"
    )
    return Scenario(
        config=config,
        folder=folder,
        plans=tuple(plans),
        start=datetime(REPLAY_START.year, REPLAY_START.month, REPLAY_START.day, tzinfo=UTC),
        end=datetime(END.year, END.month, END.day, tzinfo=UTC),
    )
