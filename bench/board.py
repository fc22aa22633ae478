"""The risk board with 10,000 open risks: the first page, a sorted and filtered page, an
account page with 180 days of history, and the CSV export, timed in-process.

    python bench/board.py prepare /tmp/swanwatch-board      # the store and sources, once
    python bench/board.py run /tmp/swanwatch-board          # median of 20 of each page
    python bench/board.py run /tmp/swanwatch-board --store postgresql+psycopg://...

`prepare` writes a store with 10,000 accounts, each with an open alert (one in five with
two), 180 days of daily risk score for every account (1.8M rows), and CSV sources: 180 days
of daily usage and the tickets and contacts of the first 1,000 accounts. `run` serves the
board's ASGI app (the same app the daemon serves), signs in with the shared token, and times
each request from the client's side: the query, the rendering and the response.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.model import Account, Alert, AlertState, Severity, fingerprint
from swanwatch.server import create_app
from swanwatch.store import Store

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TOKEN = "bench-board-token-0123456789abcdef"
ACCOUNTS = 10_000
HISTORY_DAYS = 180
USAGE_ACCOUNTS = 1_000
OWNERS = [f"csm{i:02d}@swan.example" for i in range(25)]
SEGMENTS = ["enterprise", "mid-market", "smb"]
CONFIG = """
sources:
  accounts: {{type: csv, options: {{path: accounts.csv}}}}
  usage:
    type: csv
    options: {{path: usage.csv, types: {{date: date, value: float}}, date_field: date}}
  tickets:
    type: csv
    options: {{path: tickets.csv, types: {{opened_at: datetime}}, date_field: opened_at}}
  contacts:
    type: csv
    options: {{path: contacts.csv, types: {{last_login: date}}}}
accounts: {{source: accounts}}
store: {{url: "{store}"}}
notify: {{console: false}}
server:
  board_token: {token}
"""


def _accounts(rng: random.Random) -> list[Account]:
    return [
        Account(
            id=f"acc-{i:05d}",
            name=f"Account {i:05d} {rng.choice(['Analytics', 'Health', 'Logistics', 'Retail'])}",
            owner=OWNERS[i % len(OWNERS)],
            segment=SEGMENTS[i % len(SEGMENTS)],
            arr=float(rng.randrange(5_000, 400_000, 100)),
            renewal_date=NOW.date() + timedelta(days=rng.randrange(-30, 400)),
        )
        for i in range(ACCOUNTS)
    ]


def _alert(account: Account, rule: str, rng: random.Random) -> Alert:
    started = NOW - timedelta(days=rng.randrange(0, 60), hours=rng.randrange(24))
    return Alert(
        fingerprint=fingerprint("bench", account.id, rule),
        account_id=account.id,
        rule=rule,
        title=f"Rule {rule} holds",
        severity=rng.choice(list(Severity)),
        score=round(rng.uniform(0.2, 0.95), 3),
        state=rng.choice([AlertState.FIRING] * 4 + [AlertState.ACKNOWLEDGED]),
        why_now=("Usage fell 40% below its 8-week baseline.", "The champion left."),
        play=("Call the economic buyer.",),
        started_at=started,
        updated_at=started,
    )


def _sources(folder: Path, accounts: list[Account], rng: random.Random) -> None:
    with (folder / "accounts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "owner", "segment", "arr", "renewal_date"])
        for a in accounts:
            w.writerow([a.id, a.name, a.owner, a.segment, a.arr, a.renewal_date])
    first = NOW.date() - timedelta(days=HISTORY_DAYS - 1)
    with (folder / "usage.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "date", "metric", "value"])
        for a in accounts[:USAGE_ACCOUNTS]:
            level = rng.uniform(100, 5000)
            for d in range(HISTORY_DAYS):
                day = first + timedelta(days=d)
                weekday = 0.3 if day.weekday() >= 5 else 1.0
                w.writerow([a.id, day, "api_calls", round(level * weekday * rng.uniform(0.8, 1.2))])
    with (folder / "tickets.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "ticket_id", "opened_at"])
        for a in accounts[:USAGE_ACCOUNTS]:
            for t in range(rng.randrange(0, 30)):
                opened = NOW - timedelta(days=rng.uniform(0, HISTORY_DAYS))
                w.writerow([a.id, f"{a.id}-T{t}", opened.isoformat()])
    with (folder / "contacts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "email", "name", "role", "status", "last_login"])
        for a in accounts[:USAGE_ACCOUNTS]:
            for role in ("champion", "sponsor", "user"):
                w.writerow(
                    [a.id, f"{role}@{a.id}.example", role.title(), role, "active", "2026-11-18"]
                )


def prepare(folder: Path, store_url: str | None) -> None:
    rng = random.Random(15)
    folder.mkdir(parents=True, exist_ok=True)
    url = store_url or f"sqlite:///{folder / 'board.db'}"
    (folder / "board.yaml").write_text(CONFIG.format(store=url, token=TOKEN))
    accounts = _accounts(rng)
    _sources(folder, accounts, rng)
    store = Store(url)
    store.upsert_accounts(accounts, NOW)
    alerts = [_alert(a, "pair", rng) for a in accounts]
    alerts += [_alert(a, "tickets", rng) for a in accounts[::5]]
    for start in range(0, len(alerts), 2000):
        store.save_alerts(alerts[start : start + 2000], [])
    first = NOW.date() - timedelta(days=HISTORY_DAYS - 1)
    for d in range(HISTORY_DAYS):
        day = first + timedelta(days=d)
        scores = {a.id: round(rng.uniform(0, 1), 3) for a in accounts}
        store.record_scores(scores, day, keep_from=first)
    store.close()
    print(
        f"prepared {folder}: {len(accounts)} accounts, {len(alerts)} open alerts, "
        f"{HISTORY_DAYS} days of scores each ({url.split(':')[0]})"
    )


async def _time(client: httpx.AsyncClient, url: str, runs: int) -> dict[str, float]:
    """Wall time from the client's side, and the process's CPU time (the board's threads
    included), per request."""
    times, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        response = await client.get(url)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "cpu_median_ms": round(statistics.median(cpu), 1),
    }


async def run(folder: Path, runs: int) -> dict[str, object]:
    config = load_config(folder / "board.yaml")
    store = Store(config.store_url)
    app = create_app(config, store, FrozenClock(NOW))
    transport = httpx.ASGITransport(app=app)
    pages = {
        "first page": "/board",
        "sorted, filtered page": (
            "/board?segment=enterprise&q=account+0&sort=renewal&dir=asc&page=2"
        ),
        "mine, sorted by score": "/board?owner=csm03%40swan.example&sort=score",
        "account page (180 days)": "/board/accounts/acc-00042",
        "CSV export (all 10,000)": "/board/export.csv",
    }
    out: dict[str, object] = {
        "store": store.dialect,
        "runs": runs,
        "load average before": [round(x, 1) for x in os.getloadavg()],
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        assert (await client.get("/board", params={"token": TOKEN})).status_code == 200
        t0 = time.perf_counter()
        await client.get(pages["account page (180 days)"])  # reads the sources once
        out["account page, first (sources read)"] = round((time.perf_counter() - t0) * 1000, 1)
        for name, url in pages.items():
            await client.get(url)  # warm
            out[name] = await _time(client, url, runs)
    out["load average after"] = [round(x, 1) for x in os.getloadavg()]
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("folder", type=Path)
    p.add_argument("--store", default=None, help="a store URL (default: SQLite in the folder)")
    r = sub.add_parser("run")
    r.add_argument("folder", type=Path)
    r.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.command == "prepare":
        prepare(args.folder, args.store)
    else:
        print(json.dumps(asyncio.run(run(args.folder, args.runs)), indent=2))


if __name__ == "__main__":
    main()
