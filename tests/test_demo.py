"""`swanwatch demo`: the embedded default prints the planted compound risks and exits 0."""

from __future__ import annotations

import subprocess

import pytest


@pytest.mark.slow
def test_demo_prints_compound_alerts(swanwatch_cmd, tmp_path) -> None:
    done = subprocess.run(
        [*swanwatch_cmd, "demo"], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # The planted story: the champion left and usage fell ahead of the renewal.
    assert "[HIGH] Northwind Logistics: Champion left and usage is falling" in out
    assert "Why now:" in out and "The play:" in out
    assert "Renewal on 2027-01-19 is 60 days away." in out
    # Healthy accounts stay quiet: a handful of alerts, not one per account.
    assert 1 <= out.count("\n[") + out.startswith("[") <= 8


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
