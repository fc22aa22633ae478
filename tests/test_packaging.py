"""The wheel ships config/ as swanwatch.bundled: the one copy of the demo config, the default
rule pack, the example config and the sample data, with nothing left behind elsewhere."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "swanwatch", "watchers", "notifiers", "config")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    # Built from a copy, so the build leaves nothing in the working tree.
    tree = tmp_path_factory.mktemp("tree")
    for name in SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("dist")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "--wheel-dir", str(out), str(tree)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("swanwatch-*.whl")
    return zipfile.ZipFile(built)


@pytest.mark.slow
def test_the_wheel_carries_every_bundled_file_once(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    shipped = sorted(
        p.relative_to(ROOT / "config").as_posix()
        for p in (ROOT / "config").rglob("*")
        if p.suffix in (".yaml", ".csv")
    )
    assert {"demo.yaml", "rules/default.yaml", "swanwatch.example.yaml"} <= set(shipped)
    assert "sample/usage.csv" in shipped
    for name in shipped:
        inside = f"swanwatch/bundled/{name}"
        assert inside in names, f"{inside} is missing from the wheel"
        assert wheel.read(inside) == (ROOT / "config" / name).read_bytes(), name
    # One copy: no YAML or CSV anywhere else in the package.
    elsewhere = [
        n for n in names if n.endswith((".yaml", ".csv")) and not n.startswith("swanwatch/bundled/")
    ]
    assert elsewhere == []


@pytest.mark.slow
def test_the_wheel_keeps_the_other_package_data(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert "swanwatch/data/rdap_dns.json" in names
    assert "swanwatch/templates/alert.md.j2" in names
    assert "swanwatch/py.typed" in names
    assert "swanwatch/watchers/domain_expiry.py" in names
