"""Judge the usage_drop watcher on labelled daily series through `swanwatch backtest`.

An adapter for a scorer that calls ``detect(dates, values)`` with one series' consecutive
daily totals (e.g. the NAB evaluation: ``python evaluate.py bench/usage_nab.py:detect
--kind drop --strict --batch``). Each call writes the series in the out-of-the-box usage
CSV format (account_id, date, metric, value) to a temporary folder with a minimal config
(the usage_drop watcher with its default options, plus any given in
``$SWANWATCH_NAB_OPTIONS`` as JSON), replays it day by day with `swanwatch backtest`, and
returns the days on which a usage_drop signal was raised. The backtest cuts the source at
each simulated day, so the whole-series (``--batch``) call is as causal as the daemon.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path


def _swanwatch() -> list[str]:
    found = shutil.which("swanwatch", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "swanwatch"]


def config_text(options: dict[str, object]) -> str:
    return (
        "version: 1\n"
        "store: {url: 'sqlite:///unused.db'}\n"
        "sources:\n"
        "  accounts: {type: csv, options: {path: accounts.csv}}\n"
        "  usage:\n"
        "    type: csv\n"
        "    options: {path: usage.csv, types: {date: date, value: float}, date_field: date}\n"
        "accounts: {source: accounts}\n"
        "watchers:\n"
        "  - type: usage_drop\n"
        "    schedule: {cron: '0 6 * * *'}\n"
        f"    options: {json.dumps(options)}\n"
        "notify: {console: false}\n"
    )


def detect(dates: Sequence[date], values: Sequence[float]) -> list[date]:
    """The days a usage_drop signal is raised on this series, replayed day by day."""
    if not dates:
        return []
    options = json.loads(os.environ.get("SWANWATCH_NAB_OPTIONS", "{}"))
    with tempfile.TemporaryDirectory(prefix="swanwatch-nab-") as tmp:
        folder = Path(tmp)
        (folder / "accounts.csv").write_text("id,name\nseries,Series\n")
        with open(folder / "usage.csv", "w", encoding="utf-8") as f:
            f.write("account_id,date,metric,value\n")
            f.writelines(
                f"series,{d.isoformat()},usage,{v!r}\n" for d, v in zip(dates, values, strict=True)
            )
        (folder / "swanwatch.yaml").write_text(config_text(options))
        out = folder / "events.jsonl"
        subprocess.run(
            [
                *_swanwatch(),
                "backtest",
                "-c",
                str(folder / "swanwatch.yaml"),
                "--start",
                dates[0].isoformat(),
                "--end",
                dates[-1].isoformat(),
                "--step",
                "1d",
                "--output",
                str(out),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            cwd=folder,
        )
        days = []
        for line in out.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "signal" and event.get("kind") == "usage_drop":
                days.append(date.fromisoformat(event["at"][:10]))
        return sorted(set(days))
