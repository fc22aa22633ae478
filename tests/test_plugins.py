"""Plugins are found by entry point, built-in and third-party alike; the API stays public."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import swanwatch
from swanwatch import plugins
from swanwatch.errors import PluginError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "swanwatch-example-watcher"


def test_public_api_is_sorted_and_importable() -> None:
    assert swanwatch.__all__ == sorted(swanwatch.__all__)
    for name in swanwatch.__all__:
        assert hasattr(swanwatch, name), name


def test_unknown_and_wrong_plugins_fail_with_the_known_names() -> None:
    with pytest.raises(PluginError, match=r"unknown watcher 'nope'; known: .*counting"):
        plugins.watcher_class("nope")
    with pytest.raises(PluginError, match="not a Watcher class"):
        plugins.watcher_class("not_a_watcher")


@pytest.mark.parametrize("folder", ["watchers", "notifiers"])
def test_built_in_plugins_import_only_the_public_api(folder: str) -> None:
    allowed = {"swanwatch", "swanwatch.testing", "swanwatch.values"}
    for path in sorted((ROOT / folder).glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                module = node.module
            elif isinstance(node, ast.Import):
                module = node.names[0].name
            else:
                continue
            if module.split(".")[0] == "swanwatch":
                inside = module.startswith(f"swanwatch.{folder}")
                assert module in allowed or inside, f"{path.name} imports {module}"


@pytest.mark.slow
def test_the_example_package_passes_its_own_tests(tmp_path: Path, install_package) -> None:
    """examples/swanwatch-example-watcher is "a complete package": its tests run here, as a
    plugin author would run them (installed, its own pytest settings, warnings as errors)."""
    copy = tmp_path / EXAMPLE.name
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    env = install_package(copy)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        env=env,
        capture_output=True,
        text=True,
        cwd=copy,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout and "warning" not in done.stdout.lower()


@pytest.mark.slow
def test_third_party_package_is_discovered_and_runs(
    tmp_path: Path, make_config, swanwatch_cmd, install_package
) -> None:
    env = install_package(EXAMPLE)
    listed = subprocess.run(
        [*swanwatch_cmd, "watchers", "list", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    entries = {w["name"]: w for w in json.loads(listed.stdout)}
    assert entries["tag_flag"]["distribution"] == "swanwatch-example-watcher 0.1.0"
    assert "tag" in entries["tag_flag"]["options"]
    assert "usage_drop" in entries  # built-ins are listed the same way

    config = make_config(
        """
watchers:
  - type: tag_flag
    options: {tag: key, strength: 0.7}
"""
    )
    subprocess.run(
        [*swanwatch_cmd, "run", "-c", str(config), "--once", "--now", "2026-11-20T00:00:00Z"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    shown = subprocess.run(
        [*swanwatch_cmd, "signals", "list", "-c", str(config), "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    (signal,) = json.loads(shown.stdout)
    assert (signal["account_id"], signal["kind"], signal["watcher"]) == (
        "acme",
        "tag_flag",
        "tag_flag",
    )
    assert signal["summary"] == "Acme Corp is tagged 'key' in the CRM."
