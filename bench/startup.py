"""Start-up time of quick commands, each against ``python -c pass`` in the same run.

    python bench/startup.py                 # 7 rounds of each command, interleaved
    python bench/startup.py --rounds 11

Each round runs ``python -c pass``, ``swanwatch --help``, ``swanwatch validate``,
``swanwatch watchers list`` and ``swanwatch alerts list`` twice (on the demo config's SQLite
store in a temporary folder: empty, migrated by ``swanwatch db upgrade``; and with the
three alerts ``swanwatch run --once`` makes of the demo's data) one after the
other, so a busy machine slows them alike; it prints the median wall seconds of each and
its median ratio to ``python -c pass`` (round by round) as one JSON line, and the same for
the CPU seconds (user and system) each took: on a loaded machine the wall ratio moves with
the load (a short process waits for a core as long as a longer one), the CPU ratio less.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(argv: list[str], cwd: Path) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``argv``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr.decode(errors='replace')}")
    return elapsed, cpu


def summary(times: dict[str, list[float]], base: str) -> dict[str, dict[str, float]]:
    """Each command's median and its median ratio to ``base``, round by round."""
    return {
        name: {
            "median_s": round(statistics.median(runs), 3),
            "ratio_to_python": round(
                statistics.median(r / b for r, b in zip(runs, times[base], strict=True)), 2
            ),
        }
        for name, runs in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swanwatch-startup-") as tmp:
        empty, demo = Path(tmp) / "empty", Path(tmp) / "demo"
        for folder in (empty, demo):
            shutil.copytree(ROOT / "config", folder / "config")
            (folder / "config" / "swanwatch-demo.db").unlink(missing_ok=True)
        config = "config/demo.yaml"  # its store: ./swanwatch-demo.db, in the working folder
        sw = [sys.executable, "-m", "swanwatch"]
        commands = {
            "python -c pass": ([sys.executable, "-c", "pass"], empty),
            "swanwatch --help": ([*sw, "--help"], empty),
            "swanwatch validate": ([*sw, "validate", "-c", config], empty),
            "swanwatch watchers list": ([*sw, "watchers", "list", "--json"], empty),
            "swanwatch alerts list": ([*sw, "alerts", "list", "--json", "-c", config], empty),
            "swanwatch alerts list (3 alerts)": (
                [*sw, "alerts", "list", "--json", "-c", config],
                demo,
            ),
        }
        wall([*sw, "db", "upgrade", "-c", config], empty)  # the store, at the head revision
        wall([*sw, "run", "--once", "-c", config], demo)  # the demo's store: three alerts
        for argv, cwd in commands.values():  # warm-up
            wall(argv, cwd)
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpus: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, (argv, cwd) in commands.items():
                elapsed, cpu = wall(argv, cwd)
                times[name].append(elapsed)
                cpus[name].append(cpu)
    base = "python -c pass"
    result = {"rounds": args.rounds, "commands": summary(times, base), "cpu": summary(cpus, base)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
