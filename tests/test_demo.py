"""`swanwatch demo`: the embedded default prints the planted compound risks and exits 0."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from swanwatch.model import Severity

#: An alert's first line in plain text: "[HIGH] Northwind Logistics: Champion left ...".
HEADLINE = re.compile(r"^\[(CRITICAL|HIGH|WARNING|INFO)\] (.+?): (.+)$", re.MULTILINE)
STAKE = re.compile(r"^At stake: \$([\d,]+) ARR at risk \(of \$([\d,]+) ARR\)", re.MULTILINE)

CONFIG = Path(__file__).resolve().parents[1] / "config"


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory: pytest.TempPathFactory) -> str:
    from conftest import SWANWATCH

    done = subprocess.run(
        [*SWANWATCH, "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path_factory.mktemp("demo"),
    )
    assert done.returncode == 0, done.stderr
    assert "swanwatch run -c config/demo.yaml --once" in done.stderr
    return done.stdout


@pytest.mark.slow
def test_demo_prints_compound_alerts(demo_out: str) -> None:
    out = demo_out
    # The planted story: the champion left and usage fell ahead of the renewal.
    assert "[HIGH] Northwind Logistics: Champion left and usage is falling" in out
    assert "Why now:" in out and "The play:" in out
    # The renewal is said once, by the contract's own line, not again by a second one.
    assert out.count("2027-01-19") == 2  # the contract's line and the stake's renewal date
    # Healthy accounts stay quiet: a handful of alerts, not one per account.
    assert 1 <= len(HEADLINE.findall(out)) <= 8


@pytest.mark.slow
def test_the_demo_shows_each_account_once_with_severity_rising_with_stake(demo_out: str) -> None:
    out = demo_out
    heads = HEADLINE.findall(out)
    accounts = [name for _, name, _ in heads]
    assert len(accounts) == len(set(accounts)) >= 3, accounts
    stakes = [float(arr.replace(",", "")) for _, arr in STAKE.findall(out)]
    assert len(stakes) == len(heads)
    ranks = [Severity(sev.lower()).rank for sev, _, _ in heads]
    # Read top to bottom: the most severe first, and a larger stake is never less severe.
    assert ranks == sorted(ranks, reverse=True)
    by_stake = [rank for _, rank in sorted(zip(stakes, ranks, strict=True), reverse=True)]
    seen = list(zip(accounts, stakes, ranks, strict=True))
    assert by_stake == sorted(by_stake, reverse=True), seen
    assert heads[0][0] == "CRITICAL" and heads[0][1] == "Quarry Health"  # $312k, the largest
    # The catch-all names what it combines; the score is explained; no raw Markdown.
    assert "Quarry Health: Usage falling and payment failed" in out
    assert "Risk 74%: how strongly the signals together point to churn" in out
    assert "**" not in out and "\\_" not in out
    for block in out.split("\n\n"):
        lines = [line for line in block.splitlines() if line.strip()]
        assert len(lines) == len(set(lines)), block


def test_bad_config_exits_2_and_names_the_field(swanwatch_cmd, tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("accounts: {source: nowhere}\nwatchers:\n  - type: usage_drop\n    x: 1\n")
    done = subprocess.run(
        [*swanwatch_cmd, "validate", "-c", str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert f"{path}:4: watchers[0].x: unknown key" in done.stderr
    assert "accounts.source 'nowhere' is not under sources" in done.stderr


@pytest.mark.slow
def test_the_demo_config_run_once_prints_the_demos_alerts(
    demo_out: str, swanwatch_cmd, tmp_path: Path
) -> None:
    """A copy of config/ anywhere, run from another folder: the same alerts as the demo
    (the config's `now` is the demo's clock), the store in the working directory."""
    copy = tmp_path / "copy"
    shutil.copytree(CONFIG, copy, ignore=shutil.ignore_patterns("*.db*", "__pycache__"))
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        [*swanwatch_cmd, "run", "-c", str(copy / "demo.yaml"), "--once"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=work,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == demo_out
    assert "[HIGH] Northwind Logistics" in done.stdout
    assert [p.name for p in work.glob("*.db")] == ["swanwatch-demo.db"]
    assert not list(copy.glob("*.db"))
