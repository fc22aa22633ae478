"""Every command of the README's CLI table, run as written against the demo data in a
temporary folder, in a pipe: each exits 0 (or as the README and its --help say), and each
list prints JSON."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """The first cell of each row of the README's CLI table, as written."""
    section = README.read_text().split("## The CLI", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `swanwatch")]
    return [re.split(r"(?<!\\)\|", row)[1].strip().replace("\\|", "|") for row in rows]


class Demo:
    """A copy of config/ run once: the demo's store in the working directory."""

    def __init__(self, folder: Path, command: list[str]) -> None:
        self.folder = folder
        self.command = command
        self.config = "cfg/demo.yaml"

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SWANWATCH_USER": "ann", "SWANWATCH_PROGRESS": "0"}
        return subprocess.run(
            [*self.command, *args],
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            input=stdin if stdin is not None else "",
            env=env,
        )

    def ok(self, *args: str, code: int = 0, stdin: str | None = None) -> str:
        done = self.run(*args, stdin=stdin)
        assert done.returncode == code, (args, done.stdout[-2000:], done.stderr[-2000:])
        assert "Traceback" not in done.stderr, done.stderr
        return done.stdout

    def listed(self, *args: str, code: int = 0) -> list[Any]:
        found = json.loads(self.ok(*args, code=code))
        assert isinstance(found, list), args
        return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    from conftest import SWANWATCH

    folder = tmp_path_factory.mktemp("readme")
    ignore = shutil.ignore_patterns("*.db*", "__pycache__")
    shutil.copytree(ROOT / "config", folder / "cfg", ignore=ignore)
    made = Demo(folder, list(SWANWATCH))
    assert "Northwind Logistics" in made.ok("run", "-c", made.config, "--once")
    assert (folder / "swanwatch-demo.db").exists()
    return made


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _daemon(d: Demo) -> None:
    """Up as the container runs it (the demo config, $SWANWATCH_LISTEN opening the ops
    endpoint): ready by `swanwatch health`, one pass of every watcher, then SIGTERM: a
    clean stop, exit 0."""
    port = _free_port()
    env = {**os.environ, "SWANWATCH_PROGRESS": "0", "SWANWATCH_LISTEN": f"127.0.0.1:{port}"}
    proc = subprocess.Popen(
        [*d.command, "run", "-c", d.config],
        cwd=d.folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    watchdog = threading.Timer(240, proc.kill)  # a hung daemon fails the test, never hangs it
    watchdog.start()
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "correlation:" in line:
                break
        url = f"http://127.0.0.1:{port}/readyz"
        wait_until(lambda: d.run("health", "--url", url).returncode == 0, "/readyz answers")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        watchdog.cancel()
        proc.kill()
    assert proc.returncode == 0, err[-2000:]


def _alerts(d: Demo) -> None:
    alerts = d.listed("alerts", "list", "-c", d.config)
    assert len(alerts) >= 3
    first, second, third = (a["fingerprint"] for a in alerts[:3])
    assert "Why now:" in d.ok("alerts", "show", "-c", d.config, first[:4])
    assert json.loads(d.ok("alerts", "show", "-c", d.config, first, "--json"))["id"]
    assert "acknowledged by ann" in d.ok("alerts", "ack", "-c", d.config, first)
    snoozed = d.ok("alerts", "snooze", "-c", d.config, second, "--for", "3")
    assert "snoozed for 3 days, until" in snoozed
    assert "marked useful" in d.ok("alerts", "mark", "-c", d.config, first, "useful")
    assert "resolved" in d.ok("alerts", "resolve", "-c", d.config, third)
    said = d.ok("alerts", "silence", "-c", d.config, second, "--reason", "QBR booked")
    assert said.startswith("silence ")
    assert len(d.listed("alerts", "list", "-c", d.config, "--all")) == len(alerts)


def _silences(d: Demo) -> None:
    added = d.ok(
        "silences", "add", "-c", d.config, "--match", "account=acc-007", "--reason", "[b]QBR[/b]"
    )
    assert "for 1 day, until" in added
    found = d.listed("silences", "list", "-c", d.config)
    ours = [s for s in found if s["reason"] == "[b]QBR[/b]"]
    assert len(ours) == 1
    assert "expired" in d.ok("silences", "expire", "-c", d.config, str(ours[0]["id"]))


def _risk(d: Demo) -> None:
    csv_text = d.ok("risk", "report", "-c", d.config)  # in a pipe: CSV
    assert csv_text.splitlines()[0].startswith("account,")
    report = json.loads(d.ok("risk", "report", "-c", d.config, "--json"))
    assert report["accounts"] and report["total_revenue_at_risk"] > 0
    by_owner = json.loads(d.ok("risk", "report", "-c", d.config, "--by", "owner", "--json"))
    assert by_owner["by"] == "owner"
    assert d.ok("risk", "report", "-c", d.config, "--csv").startswith("account,")


def _backtest(d: Demo) -> None:
    d.ok(
        "backtest", "-c", d.config, "--start", "2026-11-18", "--end", "2026-11-20",
        "--step", "1d", "--output", "replay.jsonl",
    )  # fmt: skip
    lines = (d.folder / "replay.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["type"] in ("signal", "alert") for line in lines)
    d.ok(
        "backtest", "-c", d.config, "--start", "2026-11-18", "--end", "2026-11-20",
        "--step", "1d", "--output", "reread.jsonl", "--reread",
    )  # fmt: skip
    assert (d.folder / "reread.jsonl").read_text().splitlines() == lines


def _review(d: Demo) -> None:
    (d.folder / "outcomes.csv").write_text(
        "account_id,date,outcome\nacc-007,2026-11-19,churned\nacc-013,2026-11-19,churned\n"
        "acc-001,2026-11-19,renewed\nacc-002,2026-11-19,renewed\nacc-003,2026-11-19,renewed\n"
    )
    found = json.loads(
        d.ok(
            "review",
            "-c",
            d.config,
            "--outcomes",
            "outcomes.csv",
            "--start",
            "2026-11-10",
            "--end",
            "2026-11-20",
            "--write-weights",
            "weights.yaml",
        )
    )
    assert isinstance(found, dict) and found
    assert (d.folder / "weights.yaml").exists()


def _routes(d: Demo) -> None:
    said = d.ok("routes", "test", "-c", d.config, "--account", "acc-007", "--rule", "risk_score")
    assert "console" in said
    planned = json.loads(
        d.ok(
            "routes",
            "test",
            "-c",
            d.config,
            "--account",
            "acc-007",
            "--rule",
            "champion_left_usage_falling",
            "--json",
        )
    )
    assert [t["channel"] for t in planned["targets"]] == ["console"]
    typo = d.run("routes", "test", "-c", d.config, "--account", "acc-007", "--rule", "risk_scor")
    assert typo.returncode == 2 and "did you mean 'risk_score'?" in typo.stderr


def _domain(d: Demo) -> None:
    # No network here: nothing answers, so no expiry date is found, and that is exit 1.
    out = d.ok(
        "domain", "lookup", "acme.example", "--json", "--rdap-server", "http://127.0.0.1:9",
        "--whois-server", "127.0.0.1:9", code=1,
    )  # fmt: skip
    assert json.loads(out)["expires_at"] is None
    assert d.run("domain", "lookup", "not a domain").returncode == 2


def _users(d: Demo) -> None:
    d.ok("users", "add", "-c", d.config, "dana", "--password-stdin", stdin="a long pass phrase\n")
    assert [u["name"] for u in d.listed("users", "list", "-c", d.config)] == ["dana"]
    d.ok("users", "remove", "-c", d.config, "dana")


def _sources(d: Demo) -> None:
    found = d.listed("sources", "list", "-c", d.config)
    assert {s["source"] for s in found} >= {"accounts", "usage"}
    refused = d.run("sources", "accept", "-c", d.config, "usage")
    assert refused.returncode == 1 and "only a suspect read" in refused.stderr


#: README cell -> what running it as documented looks like.
RUNS: dict[str, Callable[[Demo], object]] = {
    "`swanwatch run -c FILE`": _daemon,
    "`swanwatch run -c FILE --once`": lambda d: d.ok("run", "-c", d.config, "--once"),
    "`swanwatch demo`": lambda d: d.ok("demo"),
    "`swanwatch validate -c FILE` / `config schema`": lambda d: (
        d.ok("validate", "-c", d.config),
        json.loads(d.ok("config", "schema"))["properties"],
    ),
    "`swanwatch watchers list` / `watchers runs -c FILE [NAME]`": lambda d: (
        d.listed("watchers", "list"),
        d.listed("watchers", "runs", "-c", d.config),
        d.listed("watchers", "runs", "-c", d.config, "usage_drop"),
        d.ok("watchers", "runs", "-c", d.config, "usage_dorp", code=2),
    ),
    "`swanwatch signals list -c FILE [--account ID]`": lambda d: (
        d.listed("signals", "list", "-c", d.config),
        d.listed("signals", "list", "-c", d.config, "--account", "acc-007"),
    ),
    "`swanwatch unknowns list -c FILE [--account ID]`": lambda d: (
        d.listed("unknowns", "list", "-c", d.config),
        d.listed("unknowns", "list", "-c", d.config, "--account", "acc-007"),
    ),
    "`swanwatch sources list|accept -c FILE [NAME]`": _sources,
    "`swanwatch alerts list|show|ack|snooze|resolve|mark|silence -c FILE ...`": _alerts,
    "`swanwatch silences add|list|expire -c FILE ...`": _silences,
    "`swanwatch rules stats -c FILE`": lambda d: d.listed("rules", "stats", "-c", d.config),
    "`swanwatch risk report -c FILE [--by owner|segment|rule] [--json|--csv]`": _risk,
    "`swanwatch backtest -c FILE --start D --end D [--step 1d] [--output F] [--reread]`": _backtest,
    "`swanwatch review -c FILE --outcomes F --start D --end D [--write-weights F]`": _review,
    "`swanwatch routes test -c FILE --account ID --rule R`": _routes,
    "`swanwatch notify test -c FILE [--channel NAME]` / `notify leaders -c FILE`": lambda d: (
        d.ok("notify", "test", "-c", d.config),
        d.ok("notify", "leaders", "-c", d.config),
    ),
    "`swanwatch outbox list|retry -c FILE`": lambda d: (
        d.listed("outbox", "list", "-c", d.config),
        d.ok("outbox", "retry", "-c", d.config),
    ),
    "`swanwatch domain lookup DOMAIN [--json]`": _domain,
    "`swanwatch db upgrade -c FILE`": lambda d: d.ok("db", "upgrade", "-c", d.config),
    "`swanwatch db compact -c FILE`": lambda d: d.ok("db", "compact", "-c", d.config),
    # daemon.shards is 1 in the demo: the README says workers need it above 1 (exit 2).
    "`swanwatch worker -c FILE`": lambda d: d.ok("worker", "-c", d.config, code=2),
    "`swanwatch plugin new NAME`": lambda d: d.ok("plugin", "new", "nps_drop", "--dir", "."),
    "`swanwatch users add|list|remove -c FILE`": _users,
    "`swanwatch health [--url URL]` / `reload -c FILE`": lambda d: (
        # Nothing listens: the documented exit 1, and the config has no server.listen (2).
        d.ok("health", "--url", "http://127.0.0.1:9/readyz", "--timeout", "2", code=1),
        d.ok("reload", "-c", d.config, code=2),
    ),
}


def test_the_table_and_these_runs_name_the_same_commands() -> None:
    assert readme_commands() == list(RUNS)


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(RUNS))
def test_each_readme_command_runs_as_documented(demo: Demo, cell: str) -> None:
    RUNS[cell](demo)
