"""Config errors name the file, the line and the field path, all at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from swanwatch.config import load_config, parse_duration
from swanwatch.errors import ConfigError


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return [str(p) for p in info.value.problems]


def test_valid_config_loads_with_defaults(make_config) -> None:
    path = make_config(
        """
        watchers:
          - type: counting
            schedule: {every: 2h, jitter: 5m}
            timeout: 30s
        """
    )
    config = load_config(path)
    (watcher,) = config.watchers
    assert watcher.instance == "counting"
    assert watcher.schedule.every is not None and watcher.schedule.every.total_seconds() == 7200
    assert watcher.timeout.total_seconds() == 30
    assert config.store_url.endswith("sw.db")


def test_every_problem_is_reported_with_line_and_field_path(make_config) -> None:
    path = make_config(
        """
        watchers:
          - type: counting
            options:
              sleep_s: soon
          - type: no_such_watcher
          - type: static
            options:
              signals: [{account: acme, kind: x, strength: 3}]
              surprise: 1
        daemon:
          failure_alert_after: 0
        """
    )
    problems = _problems(path)
    text = "\n".join(problems)
    assert f"{path}:13: watchers[0].options.sleep_s:" in text
    assert "watchers[1].type: unknown watcher 'no_such_watcher'" in text and "; known:" in text
    assert "counting" in text.split("watchers[1].type")[1]  # the known names are listed
    assert "watchers[2].options.signals[0].strength:" in text
    assert "watchers[2].options.surprise: unknown key" in text
    assert "daemon.failure_alert_after:" in text
    assert len(problems) == 5


def test_env_interpolation_and_missing_variable(make_config, monkeypatch) -> None:
    monkeypatch.setenv("SW_HOOK", "json://127.0.0.1:9/hook")
    path = make_config(
        """
        notify:
          channels:
            team: {url: "${SW_HOOK}"}
            other: {url: "${SW_MISSING}"}
            third: {url: "${SW_MISSING_TOO:-json://127.0.0.1:9/x}"}
        """
    )
    problems = _problems(path)
    assert len(problems) == 1
    assert "notify.channels.other.url: environment variable SW_MISSING is not set" in problems[0]
    assert ":13:" in problems[0]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("store:\n  url: [unclosed\naccounts: {source: x}\n")
    (problem,) = _problems(path)
    assert problem.startswith(f"{path}:") and "not valid YAML" in problem


def test_a_config_nested_past_any_sense_is_refused_with_its_file(tmp_path: Path) -> None:
    for name, text in {
        "flow.yaml": "store: " + "[" * 20_000 + "]" * 20_000 + "\n",
        "block.yaml": "".join(" " * i + "k:\n" for i in range(5_000)) + " " * 5_000 + "v\n",
    }.items():
        path = tmp_path / name
        path.write_text(text)
        (problem,) = _problems(path)
        assert problem.startswith(f"{path}:"), problem
        assert "not valid YAML" in problem or "nested too deeply" in problem, problem


def test_a_nul_byte_in_the_config_is_refused_with_its_line(tmp_path: Path) -> None:
    """A NUL (YAML's "\\0") in a rule's title would reach every alert it raises, and
    PostgreSQL stores none: refused where it is written, in the config or a rule pack."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        'rules:\n  - name: sag\n    title: "Usage\\0 fell"\n    any_of: [usage_drop]\n'
    )
    path = tmp_path / "sw.yaml"
    path.write_text(
        'store: {url: "sqlite:///sw.db"}\nnotify: {console: false}\n'
        'correlation:\n  rule_files: [rules.yaml]\n  phrases: {x: "a\\0b"}\n'
    )
    problems = _problems(path)
    assert any(p.startswith(f"{path}:5:") and "NUL" in p for p in problems), problems
    assert any(p.startswith(f"{rules}:3:") and "NUL" in p for p in problems), problems


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].glob("config/**/*.yaml")))
def test_libyaml_and_pure_python_read_each_shipped_config_alike(path: Path) -> None:
    """The config is read with libyaml's parser where PyYAML has it: the same data and
    the same line for every field as PyYAML's own parser gives (the lines name errors)."""
    import yaml

    from swanwatch import config

    text = path.read_text(encoding="utf-8")
    read = {}
    for loader in (yaml.SafeLoader, yaml.CSafeLoader):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(config, "_COMPOSER", loader)
            doc = config.Document(text, str(path))
        read[loader] = (doc.data, doc.lines, [str(p) for p in doc.problems])
    assert read[yaml.SafeLoader] == read[yaml.CSafeLoader]


def test_duplicate_keys_and_instances_are_errors(make_config) -> None:
    path = make_config(
        """
        watchers:
          - type: counting
          - type: counting
        daemon: {}
        daemon: {}
        """
    )
    text = "\n".join(_problems(path))
    assert "this key appears twice" in text
    assert "two watchers are named 'counting'" in text


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path / "nope.yaml")
    assert "nope.yaml" in problem and "cannot read" in problem


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("1h", 3600), ("2d", 172800), (15, 15)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_bad_duration_is_explained() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")


def test_the_documented_example_config_is_valid(monkeypatch) -> None:
    root = Path(__file__).resolve().parents[1]
    for name in ("SLACK_TOKEN_A", "SLACK_TOKEN_B", "SLACK_TOKEN_C", "SMTP_USER", "SMTP_PASSWORD"):
        monkeypatch.setenv(name, "x")
    config = load_config(root / "config" / "swanwatch.example.yaml")
    assert config.notify.default_channels == ["cs-team"]
    assert [w.instance for w in config.watchers] == ["usage", "domain_expiry"]


def test_the_demo_config_is_valid() -> None:
    root = Path(__file__).resolve().parents[1]
    config = load_config(root / "config" / "demo.yaml")
    assert {w.type for w in config.watchers} >= {"usage_drop", "champion_departure"}


def test_the_config_types_load_without_yaml_or_plugins() -> None:
    # Pure code (correlation, routing) imports the types from swanwatch.settings alone.
    code = (
        "import sys, swanwatch.settings, swanwatch.correlate\n"
        "print(sorted(m for m in ('yaml', 'swanwatch.config', 'swanwatch.plugins') "
        "if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_the_loader_still_offers_the_config_types() -> None:
    import swanwatch.config as loader
    import swanwatch.settings as settings

    assert loader.NotifyConfig is settings.NotifyConfig and loader.Rule is settings.Rule
    assert loader.parse_duration("2h") == timedelta(hours=2)


def test_configured_weights_override_the_built_in_ones_kind_by_kind(make_config) -> None:
    from swanwatch.settings import DEFAULT_HALF_LIVES, DEFAULT_WEIGHTS

    path = make_config(
        """
        correlation:
          weights: {usage_drop: 0.6, my_plugin_kind: 0.3}
          half_life_days: {support_spike: 10}
        """
    )
    correlation = load_config(path).correlation
    # One kind set: that kind changes, the others keep their built-in weight (not 0.5).
    assert correlation.weights == {**DEFAULT_WEIGHTS, "usage_drop": 0.6, "my_plugin_kind": 0.3}
    assert correlation.weights["champion_departure"] == DEFAULT_WEIGHTS["champion_departure"]
    assert correlation.half_life_days == {**DEFAULT_HALF_LIVES, "support_spike": 10}
    # The example config sets a few kinds; it leaves the others as they were.
    root = Path(__file__).resolve().parents[1]
    text = (root / "config" / "swanwatch.example.yaml").read_text()
    assert "override the built-in ones kind by kind" in text
