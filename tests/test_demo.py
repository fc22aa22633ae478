"""`swanwatch demo`: the embedded default prints the planted compound risks and exits 0."""

from __future__ import annotations

import re
import subprocess

import pytest

from swanwatch.model import Severity

#: An alert's first line in plain text: "HIGH: Northwind Logistics: Champion left ...".
HEADLINE = re.compile(r"^(CRITICAL|HIGH|WARNING|INFO): (.+?): (.+)$", re.MULTILINE)
STAKE = re.compile(r"^At stake: \$([\d,]+) ARR at risk \(of \$([\d,]+) ARR\)", re.MULTILINE)


@pytest.mark.slow
def test_demo_prints_compound_alerts(swanwatch_cmd, tmp_path) -> None:
    done = subprocess.run(
        [*swanwatch_cmd, "demo"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # The planted story: the champion left and usage fell ahead of the renewal.
    assert "HIGH: Northwind Logistics: Champion left and usage is falling" in out
    assert "Why now:" in out and "The play:" in out
    # The renewal is said once, by the contract's own line, not again by a second one.
    assert out.count("2027-01-19") == 2  # the contract's line and the stake's renewal date
    # Healthy accounts stay quiet: a handful of alerts, not one per account.
    assert 1 <= len(HEADLINE.findall(out)) <= 8


@pytest.mark.slow
def test_the_demo_shows_each_account_once_with_severity_rising_with_stake(
    swanwatch_cmd, tmp_path
) -> None:
    done = subprocess.run(
        [*swanwatch_cmd, "demo"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
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
