"""`swanwatch backtest` over a generated book, against a columnar reference in the same run.

    python bench/cycle.py prepare --accounts 400 --days 180 --out /tmp/bt-400
    python bench/backtest.py /tmp/bt-400 --start 2026-05-25 --end 2026-11-20 --runs 3
    python bench/backtest.py /tmp/bt-400 --start 2026-05-25 --end 2026-11-20 --runs 3 --reread

Each round runs, one after the other, as separate processes:

- ``replay``: ``swanwatch backtest -c FOLDER/cycle.yaml --start .. --end .. --output ..``
  (each source read once, usage carried day to day: the default);
- ``reread`` (with ``--reread``): the same with ``--reread``, every source read again every
  simulated day (the replay as it was), and its output compared with the replay's;
- ``reference``: ``python bench/cycle.py reference FOLDER``: Arrow reads every CSV file of
  the book and numpy sums the usage per account, metric and day, once. No replay can cost
  less: it must read the book at least once.

Per process: CPU seconds (user + system, the kernel's accounting of that child), wall
seconds and peak RSS. Printed: every run, then the median of each, and the replay's median
CPU as a multiple of the reference's. Quote the load (``uptime``) beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def timed(command: list[str]) -> dict[str, float]:
    """Run ``command``; its CPU seconds, wall seconds and peak RSS (MiB), from wait4."""
    t0 = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert child.stderr is not None
    err = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{err.decode(errors='replace')}")
    return {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "wall_s": round(wall, 2),
        "peak_mib": round(usage.ru_maxrss / 1024, 1),
    }


def backtest(folder: Path, start: str, end: str, out: Path, reread: bool) -> list[str]:
    command = [
        sys.executable, "-m", "swanwatch", "backtest", "-c", str(folder / "cycle.yaml"),
        "--start", f"{start}T12:00:00Z", "--end", f"{end}T12:00:00Z", "--output", str(out),
    ]  # fmt: skip
    return [*command, "--reread"] if reread else command


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", type=Path, help="a book made by bench/cycle.py prepare")
    ap.add_argument("--start", required=True, help="first simulated day, YYYY-MM-DD")
    ap.add_argument("--end", required=True, help="last simulated day, YYYY-MM-DD")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reread", action="store_true", help="time the old replay as well")
    args = ap.parse_args()
    found: dict[str, list[dict[str, float]]] = {"replay": [], "reread": [], "reference": []}
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        new, old = Path(tmp) / "replay.jsonl", Path(tmp) / "reread.jsonl"
        for run in range(args.runs):
            rows = {"replay": timed(backtest(args.folder, args.start, args.end, new, False))}
            if args.reread:
                rows["reread"] = timed(backtest(args.folder, args.start, args.end, old, True))
                if old.read_bytes() != new.read_bytes():
                    raise SystemExit("the replay and the rereading replay told different events")
            reference = [sys.executable, str(HERE / "cycle.py"), "reference", str(args.folder)]
            rows["reference"] = timed(reference)
            for name, row in rows.items():
                found[name].append(row)
                print(json.dumps({"run": run + 1, "what": name, **row}), flush=True)
        events = sum(1 for _ in new.open())
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in found.items()
        if runs
    }
    ratio = medians["replay"]["cpu_s"] / medians["reference"]["cpu_s"]
    print(
        json.dumps(
            {"medians": medians, "events": events, "replay_cpu_x_reference": round(ratio, 1)}
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
