"""The usage_drop watcher on real, labelled NAB series, next to the evaluation's baselines.

    python bench/usage_nab.py                      # the table in BENCHMARKS.md ("NAB")
    python bench/usage_nab.py --options '{"min_drop_pct": 25}'   # the watcher, other options
    python bench/usage_nab.py --details            # caught and missed windows, false alarms

The evaluation (data, labels, scorer and baselines) is not part of this repository: it is
looked for in ``$SWANWATCH_NAB_DIR``, else in ``shared/eval/nab`` beside the repository or
one of its parents (``../shared/eval/nab`` from a checkout in /work/main); without it the
script says so and exits 2. Nothing is copied from it.

Three detectors are scored with ``evaluate.py --kind drop --strict`` (the four labelled
drops are targets; an alert anywhere else, spikes included, is a false alarm):
``naive_drop`` and ``robust_drop`` from the evaluation's ``baselines.py``, day by day
(causal), and the usage_drop watcher through :func:`detect`.

:func:`detect` is also an adapter for ``evaluate.py`` by itself (``python evaluate.py
bench/usage_nab.py:detect --kind drop --strict --batch``). Each call writes the series in
the out-of-the-box usage CSV format (account_id, date, metric, value) to a temporary folder
with a minimal config (the usage_drop watcher with its default options, plus any given in
``$SWANWATCH_NAB_OPTIONS`` as JSON), replays it day by day with `swanwatch backtest`, and
returns the days on which a usage_drop signal was raised. The backtest cuts the source at
each simulated day, so the whole-series (``--batch``) call is as causal as the daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _swanwatch() -> list[str]:
    found = shutil.which("swanwatch", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "swanwatch"]


def config_text(options: dict[str, object]) -> str:
    return (
        "version: 1\n"
        "store: {url: 'sqlite:///unused.db'}\n"
        "sources:\n"
        # One account that never changes: read as it is on every replayed day.
        "  accounts: {type: csv, static: true, options: {path: accounts.csv}}\n"
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
        done = subprocess.run(
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
            capture_output=True,
            text=True,
            cwd=folder,
        )
        if done.returncode:
            raise RuntimeError(f"swanwatch backtest failed on the series:\n{done.stderr}")
        days = []
        for line in out.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "signal" and event.get("kind") == "usage_drop":
                days.append(date.fromisoformat(event["at"][:10]))
        return sorted(set(days))


def find_nab() -> Path | None:
    """The NAB evaluation's folder, or None."""
    given = os.environ.get("SWANWATCH_NAB_DIR")
    if given:
        return Path(given) if (Path(given) / "evaluate.py").is_file() else None
    for parent in ROOT.parents:
        candidate = parent / "shared" / "eval" / "nab"
        if (candidate / "evaluate.py").is_file():
            return candidate
    return None


def score(nab: Path, detector: str, batch: bool, env: dict[str, str]) -> dict[str, object]:
    """One detector through evaluate.py (drop windows, strict): its JSON results."""
    with tempfile.TemporaryDirectory(prefix="swanwatch-nab-score-") as tmp:
        out = Path(tmp) / "result.json"
        command = [sys.executable, str(nab / "evaluate.py"), detector, "--kind", "drop"]
        command += ["--strict", "--json", str(out), *(["--batch"] if batch else [])]
        subprocess.run(command, check=True, cwd=nab, env=env, stdout=subprocess.DEVNULL)
        result: dict[str, object] = json.loads(out.read_text())
        return result


def _row(name: str, result: dict[str, object]) -> str:
    total = result["total"]
    assert isinstance(total, dict)
    lag = total["mean_lag_days"]
    lag_text = "-" if lag is None else f"{lag:+.2f}"
    return (
        f"| {name} | {total['caught']} of {total['windows']} | {total['alerts']} | "
        f"{total['false_alarms']} | {total['fa_per_100_days']:.2f} | {lag_text} |"
    )


def _details(name: str, result: dict[str, object]) -> list[str]:
    lines = [f"{name}:"]
    series = result["series"]
    assert isinstance(series, list)
    for r in series:
        for c in r["caught_detail"]:
            lines.append(
                f"  caught {c['window']} first alert {c['first_alert']} lag {c['lag_days']:+d}d"
            )
        lines.extend(f"  missed {m}" for m in r["missed"])
        false = r["false_alarm_days"]
        lines.extend(f"  false alarm {r['series']} {d}" for d in false[:3])
        if len(false) > 3:
            lines.append(f"  ... and {len(false) - 3} more false alarms on {r['series']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--options", default="{}", help="usage_drop options, as JSON")
    ap.add_argument("--details", action="store_true", help="windows caught and missed")
    args = ap.parse_args(argv)
    nab = find_nab()
    if nab is None:
        print(
            "The NAB evaluation was not found: set SWANWATCH_NAB_DIR, or put it in "
            f"shared/eval/nab beside {ROOT} or one of its parents. Nothing to score.",
            file=sys.stderr,
        )
        return 2
    env = {**os.environ, "SWANWATCH_NAB_OPTIONS": json.dumps(json.loads(args.options))}
    detectors = [
        ("naive_drop (baseline)", "baselines:naive_drop", False),
        ("robust_drop (baseline)", "baselines:robust_drop", False),
        (f"usage_drop {args.options}", f"{Path(__file__).resolve()}:detect", True),
    ]
    print(f"NAB evaluation: {nab}; drop windows, strict, causal")
    print("| detector | drops caught | alerts | false alarms | FA / 100 days | mean lag (d) |")
    print("| --- | --- | --- | --- | --- | --- |")
    details = []
    for name, detector, batch in detectors:
        result = score(nab, detector, batch, env)
        print(_row(name, result), flush=True)
        details += _details(name, result)
    if args.details:
        print("\n".join(details))
    return 0


if __name__ == "__main__":
    sys.exit(main())
