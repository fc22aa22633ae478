"""The config's JSON Schema accepts our configs and knows each plugin's options."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from swanwatch.schema import config_schema

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def schema() -> dict[str, object]:
    built = config_schema()
    jsonschema.Draft202012Validator.check_schema(built)
    return built


@pytest.mark.parametrize("name", ["demo.yaml", "swanwatch.example.yaml"])
def test_shipped_configs_match_the_schema(schema, name: str) -> None:
    jsonschema.validate(yaml.safe_load((ROOT / "config" / name).read_text()), schema)


def test_plugin_options_are_checked_by_type(schema) -> None:
    config = {
        "accounts": {"source": "a"},
        "sources": {"a": {"type": "csv", "options": {"path": "a.csv", "surprise": 1}}},
        "watchers": [{"type": "usage_drop", "options": {"min_drop_pct": "lots"}}],
    }
    errors = sorted(e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(config))
    assert any("'lots' is not of type 'number'" in e for e in errors)
    assert any("'surprise' was unexpected" in e for e in errors)
