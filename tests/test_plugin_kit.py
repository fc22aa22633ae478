"""The plugin kit: a scaffolded package passes its own tests; drop-in files are plugins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

DROPIN = '''
from collections.abc import AsyncIterator

from pydantic import Field

from swanwatch import Signal, WatchContext, Watcher, WatcherOptions


class VipWatcher(Watcher):
    """Key accounts get a reminder signal."""

    name = "vip"

    class Options(WatcherOptions):
        strength: float = Field(0.4, ge=0, le=1, description="The signal's strength.")

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        for account in ctx.accounts:
            if "key" in account.tags:
                yield Signal(account_id=account.id, kind="vip", strength=self.options.strength,
                             observed_at=ctx.clock.now(), summary=f"{account.label} is key.")
'''


@pytest.mark.slow
def test_a_scaffolded_watcher_installs_registers_and_passes_its_tests(
    swanwatch_cmd, run_cli, tmp_path: Path, install_package
) -> None:
    made = run_cli("plugin", "new", "nps_drop", "--dir", str(tmp_path))
    assert made.returncode == 0, made.stderr
    root = tmp_path / "swanwatch-nps-drop"
    assert str(root) in made.stdout
    env = install_package(root)
    listed = subprocess.run(
        [*swanwatch_cmd, "watchers", "list", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert "nps_drop" in {w["name"] for w in json.loads(listed.stdout)}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests")],
        env=env,
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout
    assert "warning" not in tests.stdout.lower()  # no deprecation from pytest-asyncio


def test_scaffold_refuses_a_bad_name_and_an_existing_folder(run_cli, tmp_path) -> None:
    bad = run_cli("plugin", "new", "Bad Name", "--dir", str(tmp_path))
    assert bad.returncode == 2 and "not a watcher name" in bad.stderr
    args = ("plugin", "new", "twice", "--dir", str(tmp_path))
    assert run_cli(*args).returncode == 0
    again = run_cli(*args)
    assert again.returncode == 1 and "already exists" in again.stderr
    clash = run_cli("plugin", "new", "usage_drop", "--dir", str(tmp_path))
    assert clash.returncode == 2 and "already installed" in clash.stderr


@pytest.mark.slow
def test_a_drop_in_file_is_a_plugin(make_config, swanwatch_cmd, subprocess_env, tmp_path) -> None:
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "vip.py").write_text(DROPIN)
    config = make_config("plugin_dirs: [plugins]\nwatchers:\n  - type: vip\n")
    run = [*swanwatch_cmd, "run", "-c", str(config), "--once", "--now", "2026-11-20"]
    subprocess.run(run, check=True, capture_output=True, env=subprocess_env, cwd=tmp_path)
    shown = subprocess.run(
        [*swanwatch_cmd, "signals", "list", "-c", str(config), "--json"],
        capture_output=True,
        text=True,
        check=True,
        env=subprocess_env,
        cwd=tmp_path,
    )
    assert [s["kind"] for s in json.loads(shown.stdout)] == ["vip"]
    listed = subprocess.run(
        [*swanwatch_cmd, "watchers", "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={**subprocess_env, "SWANWATCH_PLUGIN_DIRS": str(folder)},
    )
    vip = next(w for w in json.loads(listed.stdout) if w["name"] == "vip")
    assert vip["distribution"] == f"drop-in {folder / 'vip.py'}"


def test_a_broken_drop_in_is_a_config_error_naming_the_file(make_config, tmp_path) -> None:
    from swanwatch.config import load_config
    from swanwatch.errors import ConfigError

    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "broken.py").write_text("import no_such_module\n")
    config = make_config("plugin_dirs: [plugins]\n")
    with pytest.raises(ConfigError) as info:
        load_config(config)
    (problem,) = info.value.problems
    assert problem.path == "plugin_dirs[0]"
    assert "broken.py failed to import: No module named 'no_such_module'" in problem.message
