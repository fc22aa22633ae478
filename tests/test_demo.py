"""`swanwatch demo`: the embedded default prints the planted compound risks and exits 0."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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
