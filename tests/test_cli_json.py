"""Each command's JSON (with --json, or off a terminal) matches its schema in
swanwatch.cli_schemas, on the demo data; docs/cli.md shows each command and its keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from swanwatch.cli import main
from swanwatch.cli_schemas import output_schemas

ROOT = Path(__file__).resolve().parents[1]

#: The command as run on the demo for each schema ({c}: the config).
RUNS = {
    "watchers list": ["watchers", "list", "--json"],
    "watchers runs": ["watchers", "runs", "-c", "{c}"],
    "signals list": ["signals", "list", "-c", "{c}", "--all"],
    "unknowns list": ["unknowns", "list", "-c", "{c}"],
    "sources list": ["sources", "list", "-c", "{c}"],
    "alerts list": ["alerts", "list", "-c", "{c}", "--all"],
    "alerts show": ["alerts", "show", "-c", "{c}", "1", "--json"],
    "silences list": ["silences", "list", "-c", "{c}", "--all"],
    "rules stats": ["rules", "stats", "-c", "{c}"],
    "risk report": ["risk", "report", "-c", "{c}", "--by", "owner", "--json"],
    "routes test": ["routes", "test", "-c", "{c}", "--account", "acc-007", "--rule", "risk_score",
        "--json"],
    "outbox list": ["outbox", "list", "-c", "{c}"],
    "domain lookup": [
        "domain", "lookup", "acme.example", "--json",
        "--rdap-server", "http://127.0.0.1:9", "--whois-server", "127.0.0.1:9",
    ],
    "users list": ["users", "list", "-c", "{c}"],
}  # fmt: skip


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("json")
    shutil.copytree(ROOT / "config", folder / "cfg", ignore=shutil.ignore_patterns("*.db*"))
    path = folder / "cfg" / "demo.yaml"
    path.write_text(path.read_text().replace("sqlite:///./swanwatch-demo.db", "sqlite:///sw.db"))
    runner = CliRunner()
    assert runner.invoke(main, ["run", "-c", str(path), "--once"]).exit_code == 0
    args = ["silences", "add", "-c", str(path), "--match", "rule=risk_*", "--reason", "QBR"]
    assert runner.invoke(main, args).exit_code == 0
    args = ["users", "add", "-c", str(path), "dana", "--password-stdin"]
    assert runner.invoke(main, args, input="a long pass phrase\n").exit_code == 0
    return path


def test_every_json_output_has_a_run_here() -> None:
    assert set(RUNS) == set(output_schemas())


@pytest.mark.parametrize("command", sorted(RUNS))
def test_the_output_matches_its_schema(config: Path, command: str) -> None:
    args = [a.replace("{c}", str(config)) for a in RUNS[command]]
    done = CliRunner().invoke(main, args)
    assert done.exit_code in (0, 1), done.output  # domain lookup: no expiry found is 1
    found: Any = json.loads(done.stdout)
    assert found, command  # something to check the schema against
    schema = output_schemas()[command]
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(found, schema)


def test_a_renamed_key_breaks_its_schema(config: Path) -> None:
    done = CliRunner().invoke(main, ["rules", "stats", "-c", str(config)])
    (first, *_) = json.loads(done.stdout)
    first["fired_count"] = first.pop("fired")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate([first], output_schemas()["rules stats"])


def test_docs_cli_shows_each_command_and_its_keys() -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    for command, schema in output_schemas().items():
        assert f"`swanwatch {command}" in text, command
        item = schema.get("items", schema)
        props = item.get("properties") or {}
        section = text.split(f"`swanwatch {command}", 1)[1].split("\n### ", 1)[0]
        missing = [key for key in props if f"`{key}`" not in section]
        assert not missing, f"docs/cli.md, {command}: {missing}"
