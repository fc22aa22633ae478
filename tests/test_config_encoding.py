"""A config or rule file saved in another encoding than UTF-8 (a Latin-1 "é" typed on
another machine) is refused with its file and line, never with a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

from swanwatch.config import load_config
from swanwatch.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"


def test_a_config_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "sw.yaml"
    path.write_bytes(b'store: {url: "sqlite:///sw.db"}\n# caf\xe9\nnotify: {console: false}\n')
    try:
        load_config(path)
    except ConfigError as exc:
        problems = [str(p) for p in exc.problems]
    assert len(problems) == 1 and problems[0].startswith(f"{path}:2: not UTF-8"), problems
    assert "byte 0xe9 at column 6" in problems[0]


def test_a_rule_file_that_is_not_utf8_is_a_config_error_naming_it(tmp_path: Path, run_cli) -> None:
    shutil.copytree(CONFIG_DIR / "sample", tmp_path / "sample")
    shutil.copytree(CONFIG_DIR / "rules", tmp_path / "rules")
    rules = tmp_path / "rules" / "default.yaml"
    rules.write_bytes(b"# r\xe8gles maison\n" + rules.read_bytes())
    config = tmp_path / "demo.yaml"
    demo = (CONFIG_DIR / "demo.yaml").read_text()
    config.write_text(demo.replace("sqlite:///./swanwatch-demo.db", f"sqlite:///{tmp_path}/s.db"))
    for command in ("validate", "run"):
        done = run_cli(command, "-c", str(config), *(["--once"] if command == "run" else []))
        assert done.returncode == 2, done.stderr
        assert "Traceback" not in done.stderr
        assert f"{rules}:1: not UTF-8 text (byte 0xe8 at column 4)" in done.stderr, done.stderr
