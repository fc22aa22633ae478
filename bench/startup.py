"""Start-up time of quick commands, each against ``python -c pass`` in the same run.

    python bench/startup.py                 # 7 rounds of each command, interleaved
    python bench/startup.py --rounds 11

Each round runs ``python -c pass``, ``swanwatch --help``, ``swanwatch validate``,
``swanwatch watchers list`` and ``swanwatch alerts list`` (on the demo config's SQLite
store, migrated by ``swanwatch db upgrade`` first, in a temporary folder) one after the
other, so a busy machine slows them alike; it prints the median wall seconds of each and
its median ratio to ``python -c pass`` (round by round) as one JSON line.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def wall(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="swanwatch-startup-") as tmp:
        folder = Path(tmp)
        shutil.copytree(ROOT / "config", folder / "config")
        (folder / "config" / "swanwatch-demo.db").unlink(missing_ok=True)
        config = str(folder / "config" / "demo.yaml")
        sw = [sys.executable, "-m", "swanwatch"]
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "swanwatch --help": [*sw, "--help"],
            "swanwatch validate": [*sw, "validate", "-c", config],
            "swanwatch watchers list": [*sw, "watchers", "list", "--json"],
            "swanwatch alerts list": [*sw, "alerts", "list", "--json", "-c", config],
        }
        wall([*sw, "db", "upgrade", "-c", config], folder)  # the store, at the head revision
        for argv in commands.values():  # warm-up
            wall(argv, folder)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, argv in commands.items():
                times[name].append(wall(argv, folder))
    base = times["python -c pass"]
    result = {
        name: {
            "median_s": round(statistics.median(runs), 3),
            "ratio_to_python": round(
                statistics.median(r / b for r, b in zip(runs, base, strict=True)), 2
            ),
        }
        for name, runs in times.items()
    }
    print(json.dumps({"rounds": args.rounds, "commands": result}))


if __name__ == "__main__":
    main()
