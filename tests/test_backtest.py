"""`swanwatch backtest`: JSON Lines of what the daemon would have said, with no look-ahead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from conftest import CliRun

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.yaml"


def _backtest(run_cli: CliRun, tmp_path: Path, start: str, end: str) -> list[dict[str, object]]:
    out = tmp_path / f"{start}-{end}.jsonl"
    done = run_cli(
        "backtest", "-c", str(DEMO), "--start", start, "--end", end, "--output", str(out)
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.slow
def test_backtest_replays_the_sample_without_look_ahead(run_cli: CliRun, tmp_path: Path) -> None:
    full = _backtest(run_cli, tmp_path, "2026-10-20", "2026-11-20")
    for event in full:
        key = "kind" if event["type"] == "signal" else "rule"
        assert set(event) == {"type", "at", "account", key, "severity", "score", "summary"}
        assert "2026-10-20" <= str(event["at"]) <= "2026-11-20T23:59:59Z"
    alerts = [(e["account"], e["rule"]) for e in full if e["type"] == "alert"]
    assert ("acc-007", "champion_left_usage_falling") in alerts
    assert ("acc-013", "silent_renewal_with_support_spike") in alerts
    assert len(alerts) == len(set(alerts)), "an alert was told twice"
    # No look-ahead: a replay that stops early says exactly what the long one said up to then.
    prefix = _backtest(run_cli, tmp_path, "2026-10-20", "2026-11-05")
    assert prefix == [e for e in full if str(e["at"]) <= "2026-11-05T23:59:59Z"]


def test_backtest_rejects_an_inverted_range(run_cli: CliRun) -> None:
    done = run_cli("backtest", "-c", str(DEMO), "--start", "2026-11-20", "--end", "2026-11-01")
    assert done.returncode == 1
    assert "is before --start" in done.stderr
