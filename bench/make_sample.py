"""Generate Swanwatch's sample data (deterministic): the bundled demo set or a big benchmark set.

    python bench/make_sample.py                                   # config/sample/
    python bench/make_sample.py --accounts 100000 --days 90 --out /tmp/big

Writes accounts.csv, contacts.csv, usage.csv, tickets.csv and the contracts as dated snapshots
(contracts-YYYY-MM-DD.csv: the first day, the 1st of each month, the last day). Most accounts are
healthy with ordinary noise: weekly seasonality, multiplicative day-to-day noise, a public
holiday (Labor Day) that dips everyone, the odd one-day dip, a few small accounts. In the
bundled set a handful of accounts carry a planted story (see STORIES); in a big set about 1% of
accounts get a sustained usage drop and 1% a champion departure, for the benchmark to find.
"""

from __future__ import annotations

import argparse
import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

END = date(2026, 11, 20)
HOLIDAYS = (date(2026, 9, 7),)  # Labor Day: everyone's usage dips for one day
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "config" / "sample"

#: The planted stories of the bundled set, by account id (what the demo should find).
STORIES = {
    "acc-007": "champion deactivated 2026-10-27, usage down ~45% over three weeks from "
    "2026-10-28, renewal 2027-01-19 (60 days) with nothing in motion",
    "acc-013": "renewal 2027-01-04 (45 days) with nothing in motion, support spike in the week "
    "to 2026-11-20 (7 tickets, 2 escalated, 1 P1, 1 unanswered since 2026-11-17)",
    "acc-021": "usage flatlined to zero from 2026-11-12, invoice 40 days overdue, payment failed",
    "acc-034": "champion not logged in since 2026-10-06 while colleagues are active, sponsor's "
    "title changed 2026-11-02, renewal 2027-02-08 (80 days) with nothing in motion",
    "acc-027": "a sponsor's e-mail bounced on 2026-11-10 (one weak signal; no alert on its own)",
    "acc-045": "usage dropped ~50% 2026-10-05..2026-10-18, then recovered (cleared by 2026-11-20; "
    "a backtest sees it in October)",
}

FIRST = [
    "Ada",
    "Ben",
    "Chloe",
    "Dev",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jon",
    "Kemi",
    "Lars",
    "Maya",
    "Nico",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sam",
    "Tara",
    "Uma",
    "Vik",
]
LAST = [
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Silva",
    "Novak",
    "Haddad",
    "Kowalski",
    "Reyes",
    "Brennan",
    "Iyer",
    "Fischer",
    "Adeyemi",
    "Costa",
    "Park",
    "Larsen",
]
NAME_A = [
    "North",
    "Blue",
    "Quarry",
    "Lark",
    "Tide",
    "Cedar",
    "Iron",
    "Silver",
    "Maple",
    "Harbor",
    "Summit",
    "Prairie",
    "Copper",
    "Aspen",
    "Beacon",
    "Falcon",
    "Granite",
    "Juniper",
]
NAME_B = ["wind", "fin", "stone", "spur", "water", "field", "gate", "line", "works", "bridge"]
NAME_C = [
    "Logistics",
    "Analytics",
    "Health",
    "Retail",
    "Bank",
    "Labs",
    "Foods",
    "Energy",
    "Media",
    "Systems",
    "Travel",
    "Insurance",
]
METRICS = ["reports", "api_calls", "active_users"]
CSMS = ["dana@swan.example", "eli@swan.example", "fay@swan.example"]
SEGMENTS = ["smb", "mid-market", "enterprise"]
TITLES = [
    "VP Operations",
    "Head of Analytics",
    "Director of IT",
    "Ops Manager",
    "CFO",
    "Data Lead",
    "Product Manager",
    "Engineer",
    "Analyst",
    "Support Lead",
]


@dataclass
class Plan:
    """One account's generated facts and any story it carries."""

    id: str
    name: str
    level: float
    metric: str
    renewal: date
    stage: str
    auto_renew: bool
    small: bool = False
    drop: tuple[date, date, float, bool] | None = None  # start, end of ramp, depth, recovers
    recover_on: date | None = None
    flatline_from: date | None = None
    dips: list[date] = field(default_factory=list)


def company_name(rng: random.Random, index: int) -> str:
    return f"{rng.choice(NAME_A)}{rng.choice(NAME_B)} {NAME_C[index % len(NAME_C)]}"


def make_plans(rng: random.Random, count: int, days: int) -> list[Plan]:
    """Every account's plan; in the bundled set (count <= 99) the stories are planted."""
    start = END - timedelta(days=days - 1)
    plans = []
    width = max(3, len(str(count)))
    for i in range(1, count + 1):
        segment_level = rng.choice([80.0, 300.0, 1500.0])
        renewal = END + timedelta(days=rng.randint(20, 400))
        stage = rng.choice(["none", "none", "opportunity", "quote", "po", "signed"])
        auto = rng.random() < 0.4
        if (renewal - END).days <= 120 and stage == "none" and not auto:
            stage = rng.choice(["opportunity", "quote"])  # healthy: a near renewal is worked
        plan = Plan(
            id=f"acc-{i:0{width}d}",
            name=company_name(rng, i),
            level=segment_level * rng.uniform(0.6, 1.6),
            metric=rng.choice(METRICS),
            renewal=renewal,
            stage=stage,
            auto_renew=auto,
        )
        if rng.random() < 0.1:
            plan.small, plan.level = True, rng.uniform(1.5, 6.0)
        if rng.random() < 0.15:
            plan.dips.append(start + timedelta(days=rng.randrange(days)))
        plans.append(plan)
    if count <= 99:
        plant_stories({p.id: p for p in plans})
    else:
        for plan in plans:
            if rng.random() < 0.01:
                begin = END - timedelta(days=rng.randint(5, 25))
                plan.drop = (begin, begin + timedelta(days=7), rng.uniform(0.4, 0.7), False)
                plan.small = False
    return plans


def plant_stories(by_id: dict[str, Plan]) -> None:
    a = by_id["acc-007"]
    a.name, a.metric, a.level, a.small = "Northwind Logistics", "reports", 420.0, False
    a.renewal, a.stage, a.auto_renew = date(2027, 1, 19), "none", False
    a.drop = (date(2026, 10, 28), date(2026, 11, 17), 0.45, False)
    b = by_id["acc-013"]
    b.name, b.level, b.small = "Bluefin Analytics", 900.0, False
    b.renewal, b.stage, b.auto_renew = date(2027, 1, 4), "none", False
    c = by_id["acc-021"]
    c.name, c.metric, c.level, c.small = "Quarry Health", "api_calls", 2600.0, False
    c.flatline_from = date(2026, 11, 12)
    c.renewal, c.stage, c.auto_renew = date(2027, 6, 1), "signed", False
    d = by_id["acc-034"]
    d.name, d.level, d.small = "Larkspur Retail", 350.0, False
    d.renewal, d.stage, d.auto_renew = date(2027, 2, 8), "none", False
    e = by_id["acc-027"]
    e.name, e.small = "Cedarline Media", False
    f = by_id["acc-045"]
    f.name, f.metric, f.level, f.small = "Tidewater Bank", "reports", 700.0, False
    f.drop = (date(2026, 10, 5), date(2026, 10, 6), 0.5, True)
    f.recover_on = date(2026, 10, 19)
    for plan in (a, b, c, d, e, f):
        plan.dips = []


def usage_value(rng: random.Random, plan: Plan, day: date, index: int, days: int) -> int:
    weekday = day.weekday()
    base = plan.level * (0.25 if weekday >= 5 else 1.0) * (1 + 0.0008 * (index - days))
    factor = 1.0
    if plan.drop is not None:
        begin, ramp_end, depth, recovers = plan.drop
        if day >= begin and not (recovers and plan.recover_on and day >= plan.recover_on):
            ramp = max(1, (ramp_end - begin).days)
            factor = 1 - depth * min(1.0, ((day - begin).days + 1) / ramp)
    if plan.flatline_from is not None and day >= plan.flatline_from:
        return 0
    if day in HOLIDAYS:
        factor *= 0.35
    if day in plan.dips:
        factor *= 0.5
    mean = base * factor
    if plan.small:
        return poisson(rng, mean)
    return max(0, round(mean * rng.gauss(1.0, 0.07)))


def poisson(rng: random.Random, mean: float) -> int:
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def write(out: Path, plans: list[Plan], days: int, rng: random.Random) -> None:
    out.mkdir(parents=True, exist_ok=True)
    start = END - timedelta(days=days - 1)
    all_days = [start + timedelta(days=i) for i in range(days)]
    with open(out / "accounts.csv", "w", encoding="utf-8", newline="") as f:
        f.write("id,name,domains,owner,segment,arr,renewal_date,tags\n")
        for i, p in enumerate(plans):
            slug = p.name.split()[0].lower()
            segment = "smb" if p.small else SEGMENTS[1 if p.level < 1000 else 2]
            arr = round(p.level * 120, -2) if not p.small else 6000
            tags = "strategic" if arr > 150_000 else ("self-serve" if p.small else "")
            f.write(
                f"{p.id},{p.name},{slug}.example www.{slug}.example,{CSMS[i % 3]},"
                f"{segment},{arr:.0f},{p.renewal.isoformat()},{tags}\n"
            )
    write_contracts(out, plans, start, rng)
    with open(out / "contacts.csv", "w", encoding="utf-8", newline="") as f:
        f.write("account_id,email,name,title,role,status,last_login,changed_at\n")
        for p in plans:
            write_contacts(f, p, rng, bundled=len(plans) <= 99)
    with open(out / "usage.csv", "w", encoding="utf-8", newline="") as f:
        f.write("account_id,date,metric,value\n")
        for p in plans:
            lines = [
                f"{p.id},{day.isoformat()},{p.metric},{usage_value(rng, p, day, i, days)}\n"
                for i, day in enumerate(all_days)
            ]
            f.writelines(lines)
    with open(out / "tickets.csv", "w", encoding="utf-8", newline="") as f:
        f.write("account_id,ticket_id,opened_at,priority,escalated,status,first_response_at\n")
        counter = 0
        for p in plans:
            for row in tickets_for(p, all_days, rng, bundled=len(plans) <= 99):
                counter += 1
                f.write(f"{p.id},T-{counter:06d},{row}\n")


def snapshot_days(start: date) -> list[date]:
    """The days the contracts are exported: the first day, the 1st of each month, the last."""
    days = [start]
    month = date(start.year, start.month, 1)
    while month < END:
        month = date(month.year + month.month // 12, month.month % 12 + 1, 1)
        if start < month < END:
            days.append(month)
    return [*days, END]


def write_contracts(out: Path, plans: list[Plan], start: date, rng: random.Random) -> None:
    """Contracts as dated snapshots, ``contracts-YYYY-MM-DD.csv``: how they stood on each
    export day (a replay reads the one of its day, never a later one). Overdue invoices come
    and go; acc-021's invoice fell due 40 days before the end and its payment failed then."""
    bundled = len(plans) <= 99
    last = [40 if p.id == "acc-021" and bundled else rng.choice([0] * 12 + [5]) for p in plans]
    due = END - timedelta(days=40)
    for old in out.glob("contracts*.csv"):
        old.unlink()
    for day in snapshot_days(start):
        with open(out / f"contracts-{day.isoformat()}.csv", "w", encoding="utf-8") as f:
            f.write(
                "account_id,contract_id,end_date,auto_renew,renewal_stage,"
                "invoice_overdue_days,payment_failed\n"
            )
            for i, p in enumerate(plans):
                failed = p.id == "acc-021" and bundled and day >= due
                if p.id == "acc-021" and bundled:
                    overdue = max(0, (day - due).days)
                elif day == END:
                    overdue = last[i]
                else:  # an earlier export: its own short delays, paid since
                    overdue = random.Random(f"{p.id}/{day}").choice([0] * 12 + [5])
                f.write(
                    f"{p.id},C-{i + 1:05d},{p.renewal.isoformat()},"
                    f"{'true' if p.auto_renew else 'false'},{p.stage},{overdue},"
                    f"{'true' if failed else 'false'}\n"
                )


def person(rng: random.Random, slug: str) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return f"{first} {last}", f"{first.lower()}.{last.lower()}@{slug}.example"


def write_contacts(f: object, p: Plan, rng: random.Random, *, bundled: bool) -> None:
    slug = p.name.split()[0].lower()
    rows: list[tuple[str, str, str, str, str, str]] = []  # email, name, title, role, status, login
    roles = ["champion", "sponsor"] + ["user"] * rng.randint(1, 3)
    created = (END - timedelta(days=rng.randint(200, 700))).isoformat()
    seen: set[str] = set()
    for role in roles:
        name, email = person(rng, slug)
        while email in seen:
            name, email = person(rng, slug)
        seen.add(email)
        title = TITLES[:3][rng.randrange(3)] if role != "user" else rng.choice(TITLES[3:])
        login = (END - timedelta(days=rng.randint(0, 6))).isoformat()
        rows.append((email, name, title, role, "active", login))
    out = []
    for email, name, title, role, status, login in rows:
        changed = created
        if bundled and p.id == "acc-007" and role == "champion":
            out.append(f"{p.id},{email},{name},{title},{role},{status},2026-10-01,{created}\n")
            status, login, changed = "deactivated", "2026-10-26", "2026-10-27"
        if bundled and p.id == "acc-034" and role == "champion":
            login = "2026-10-06"
        if bundled and p.id == "acc-034" and role == "sponsor":
            out.append(f"{p.id},{email},{name},{title},{role},{status},{login},{created}\n")
            title, changed = "Advisor", "2026-11-02"
        if bundled and p.id == "acc-027" and role == "sponsor":
            out.append(f"{p.id},{email},{name},{title},{role},{status},2026-11-01,{created}\n")
            status, changed = "bounced", "2026-11-10"
        if not bundled and rng.random() < 0.01 and role == "champion":
            out.append(f"{p.id},{email},{name},{title},{role},{status},{login},{created}\n")
            status, changed = "deactivated", (END - timedelta(days=rng.randint(1, 30))).isoformat()
        out.append(f"{p.id},{email},{name},{title},{role},{status},{login},{changed}\n")
    f.writelines(out)  # type: ignore[attr-defined]


def tickets_for(p: Plan, all_days: list[date], rng: random.Random, *, bundled: bool) -> list[str]:
    rows = []
    rate = 0.02 if p.small else 0.06
    for day in all_days:
        if day.weekday() < 5 and rng.random() < rate:
            rows.append(
                ticket(rng, day, rng.choice(["p3", "p3", "p4", "p2"]), False, answered=True)
            )
    if bundled and p.id == "acc-013":
        spike = [
            (date(2026, 11, 14), "p2", False),
            (date(2026, 11, 16), "p3", False),
            (date(2026, 11, 16), "p2", True),
            (date(2026, 11, 17), "p1", True),
            (date(2026, 11, 18), "p3", False),
            (date(2026, 11, 19), "p2", False),
        ]
        rows += [ticket(rng, d, prio, esc, answered=True) for d, prio, esc in spike]
        rows.append(ticket(rng, date(2026, 11, 17), "p2", False, answered=False))
    return rows


def ticket(rng: random.Random, day: date, prio: str, escalated: bool, *, answered: bool) -> str:
    hour = rng.randint(8, 17)
    opened = f"{day.isoformat()}T{hour:02d}:{rng.randint(0, 59):02d}:00Z"
    if not answered:
        return f"{opened},{prio},{'true' if escalated else 'false'},open,"
    resp_h = hour + rng.randint(1, 6)
    resp_day = day + timedelta(days=resp_h // 24)
    response = f"{resp_day.isoformat()}T{resp_h % 24:02d}:{rng.randint(0, 59):02d}:00Z"
    status = "closed" if (END - day).days > 5 else rng.choice(["open", "closed"])
    return f"{opened},{prio},{'true' if escalated else 'false'},{status},{response}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=50, help="how many accounts (default 50)")
    ap.add_argument("--days", type=int, default=120, help="days of usage ending 2026-11-20")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    ap.add_argument("--seed", type=int, default=20261120, help="random seed")
    args = ap.parse_args(argv)
    if args.accounts < 50 and args.accounts <= 99:
        ap.error("--accounts must be at least 50 (the planted stories need acc-001..acc-045)")
    rng = random.Random(args.seed)
    plans = make_plans(rng, args.accounts, args.days)
    write(args.out, plans, args.days, rng)
    print(f"wrote {args.accounts} accounts x {args.days} days to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
