"""Benchmark correlation: N accounts with M active signals assessed in one pass.

    python bench/correlate.py                                  # 100,000 accounts, 1,000,000 signals
    python bench/correlate.py --accounts 10000 --signals 100000
    python bench/correlate.py --profile                        # cProfile of the pass, top 25

One pass is what the engine's correlation step does with the store's active signals:
``assess_all`` (score and rules per account), ``candidates`` (one per account), silences and
``reconcile`` against an empty store (every candidate is a new alert). The signals are
made (seeded) before the clock starts: building a million Signal records is the store's
cost, not correlation's. Prints one JSON line: wall seconds per phase, the pass in total
(wall and CPU: on a shared machine the CPU seconds are the steadier figure), and the
process's peak resident memory (ru_maxrss) before and after the pass.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import pstats
import random
import resource
import sys
import time
from datetime import UTC, date, datetime, timedelta

import yaml

from swanwatch.alerts import muter, reconcile
from swanwatch.config import CorrelationConfig, Rule, bundled
from swanwatch.correlate import assess_all, candidates
from swanwatch.model import Account, Signal

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
KINDS = (
    "usage_drop",
    "champion_departure",
    "renewal_lapse",
    "support_spike",
    "domain_expiry",
    "tls_expiry",
)


def make(accounts: int, signals: int, seed: int) -> tuple[list[Account], list[Signal]]:
    """Seeded accounts and signals spread over them (a few accounts carry many)."""
    rng = random.Random(seed)
    made = [
        Account(
            id=f"acc-{i:07d}",
            name=f"Account {i}",
            owner=f"csm{i % 40}@example.com",
            segment=rng.choice(["smb", "mid-market", "enterprise"]),
            arr=float(rng.randrange(5_000, 500_000, 100)),
            renewal_date=date(2026, 11, 20) + timedelta(days=rng.randint(-20, 400)),
        )
        for i in range(accounts)
    ]
    out = []
    for n in range(signals):
        account = (
            made[min(accounts - 1, int(rng.paretovariate(1.2)) - 1)]
            if n % 10 == 0
            else made[rng.randrange(accounts)]
        )
        kind = rng.choice(KINDS)
        # model_construct: the store hands correlation validated rows; validating a million
        # records here would time pydantic, not correlation.
        out.append(
            Signal.model_construct(
                account_id=account.id,
                kind=kind,
                key=f"k{n}",
                strength=rng.random(),
                observed_at=NOW - timedelta(hours=rng.randint(0, 24 * 90)),
                summary=f"{kind} signal {n}",
                evidence={},
                half_life_days=None,
                watcher=kind,
            )
        )
    return made, out


def rules() -> list[Rule]:
    text = bundled("rules", "default.yaml").read_text()
    return [Rule.model_validate(r) for r in yaml.safe_load(text)["rules"]]


def one_pass(accounts: list[Account], signals: list[Signal]) -> dict[str, float | int]:
    """Time each phase of one correlation pass."""
    config = CorrelationConfig()
    rule_list = rules()
    c0 = time.process_time()
    t0 = time.perf_counter()
    assessments = assess_all(accounts, signals, NOW, config, rule_list)
    t1 = time.perf_counter()
    wanted = candidates(assessments, NOW)
    t2 = time.perf_counter()
    t3 = time.perf_counter()
    result = reconcile(
        {},
        wanted,
        NOW,
        hold_down=config.resolve_hold_down,
        repeat_interval=timedelta(days=7),
        muted=muter([], NOW),
        scope=[a.id for a in accounts],
    )
    t4 = time.perf_counter()
    c4 = time.process_time()
    return {
        "assessed": len(assessments),
        "candidates": len(wanted),
        "notices": len(result.notices),
        "assess_all_s": round(t1 - t0, 3),
        "candidates_s": round(t2 - t1, 3),
        "reconcile_s": round(t4 - t3, 3),
        "pass_s": round(t4 - t0, 3),
        "pass_cpu_s": round(c4 - c0, 3),
    }


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(rss / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--accounts", type=int, default=100_000)
    ap.add_argument("--signals", type=int, default=None, help="default: 10 per account")
    ap.add_argument("--seed", type=int, default=20261120)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the pass")
    ap.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() the made records before the pass (as a daemon could after "
        "loading signals): the collector then skips them",
    )
    args = ap.parse_args(argv)
    signals = args.signals if args.signals is not None else 10 * args.accounts
    t = time.perf_counter()
    accounts, made = make(args.accounts, signals, args.seed)
    built_s = round(time.perf_counter() - t, 3)
    before = _maxrss_mib()
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    if args.profile:
        profiler = cProfile.Profile()
        figures = profiler.runcall(one_pass, accounts, made)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    else:
        figures = one_pass(accounts, made)
    print(
        json.dumps(
            {
                "accounts": args.accounts,
                "signals": signals,
                "build_s": built_s,
                **figures,
                "gc_freeze": args.gc_freeze,
                "maxrss_before_mib": before,
                "maxrss_mib": _maxrss_mib(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
