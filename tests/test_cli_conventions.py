"""The CLI's conventions, each as a user meets it: read-only commands make no store, user
text in tables is shown as written, a silence for no known account is warned about, and
`validate --connect` opens SQL sources and the store, read-only."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch import cli_common

READ_ONLY = [
    ("alerts", "list"),
    ("signals", "list"),
    ("unknowns", "list"),
    ("sources", "list"),
    ("watchers", "runs"),
    ("silences", "list"),
    ("rules", "stats"),
    ("outbox", "list"),
    ("users", "list"),
]


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_on_a_config_never_run_makes_no_store(
    make_config, run_cli, tmp_path: Path, command: tuple[str, str]
) -> None:
    path = make_config("watchers: []\n")
    done = run_cli(*command, "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # in a pipe: JSON, and nothing recorded
    assert "no store yet" in done.stderr
    assert not list(tmp_path.glob("sw.db*"))


def test_risk_report_and_acting_on_nothing_make_no_store(
    make_config, run_cli, tmp_path: Path
) -> None:
    path = make_config("watchers: []\n")
    report = run_cli("risk", "report", "-c", str(path), "--json")
    assert report.returncode == 0 and json.loads(report.stdout)["accounts"] == []
    ack = run_cli("alerts", "ack", "-c", str(path), "abcd")
    assert ack.returncode == 1 and "no alerts yet" in ack.stderr
    assert not list(tmp_path.glob("sw.db*"))


def test_user_text_in_a_table_is_shown_as_written(
    make_config, run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = make_config("watchers: []\n")
    reason = "[bold]QBR[/bold] booked [ticket-42]"
    added = run_cli("silences", "add", "-c", str(path), "--match", "rule=*", "--reason", reason)
    assert added.returncode == 0, added.stderr
    monkeypatch.setattr(cli_common, "tty", lambda: True)  # a terminal: the Rich table
    shown = run_cli("silences", "list", "-c", str(path), env={"COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert reason in shown.stdout


def test_a_silence_for_an_unknown_account_is_warned_about(make_config, run_cli) -> None:
    path = make_config("watchers: []\n")
    typo = run_cli("silences", "add", "-c", str(path), "--match", "account=acmee", "--reason", "x")
    assert typo.returncode == 0  # added all the same: it may be for an account to come
    assert "account=acmee matches no known account (did you mean 'acme'?)" in typo.stderr
    glob = run_cli("silences", "add", "-c", str(path), "--match", "account=glob*", "--reason", "x")
    assert glob.returncode == 0 and "warning" not in glob.stderr


def test_a_watcher_name_that_does_not_exist_exits_2_with_a_suggestion(make_config, run_cli) -> None:
    path = make_config("watchers:\n  - type: static\n    name: usage\n")
    done = run_cli("watchers", "runs", "-c", str(path), "usgae")
    assert done.returncode == 2 and "did you mean 'usage'?" in done.stderr


def _crm(tmp_path: Path) -> Path:
    crm = tmp_path / "crm.db"
    with sqlite3.connect(crm) as conn:
        conn.execute("CREATE TABLE usage (account_id TEXT, date TEXT, value REAL)")
        conn.execute("INSERT INTO usage VALUES ('acme', '2026-11-01', 3.0)")
    return crm


def test_validate_connect_reads_a_sql_source_and_opens_the_store_read_only(
    make_config, run_cli, tmp_path: Path
) -> None:
    crm = _crm(tmp_path)
    path = make_config("watchers: []\n")
    path.write_text(
        path.read_text().replace(
            "accounts:\n  source",
            f'  usage:\n    type: sql\n    options: {{url: "sqlite:///{crm}", '
            'query: "SELECT * FROM usage"}\naccounts:\n  source',
        )
    )
    done = run_cli("validate", "--connect", "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert "source usage: read" in done.stdout
    assert "none yet (the first run creates it)" in done.stdout
    assert not list(tmp_path.glob("sw.db*"))  # opened read-only: nothing made

    broken = path.read_text().replace("FROM usage", "FROM usages")
    path.write_text(broken)
    line = broken.splitlines().index(next(x for x in broken.splitlines() if "usages" in x)) + 1
    failed = run_cli("validate", "--connect", "-c", str(path))
    assert failed.returncode == 2
    assert f"{path}:{line}: sources.usage.options.url" in failed.stderr
    assert "usages" in failed.stderr and "Traceback" not in failed.stderr
    assert run_cli("validate", "-c", str(path)).returncode == 0  # no query without --connect


def test_validate_connect_names_a_store_it_cannot_reach(make_config, run_cli) -> None:
    path = make_config("watchers: []\n", store_url="postgresql+psycopg://nobody@127.0.0.1:9/none")
    done = run_cli("validate", "--connect", "-c", str(path))
    assert done.returncode == 2
    assert f"{path}:2: store.url: cannot open the store at" in done.stderr


def test_the_alias_bomb_is_refused_quickly(swanwatch_cmd, tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 10)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    # A billion values if expanded: refused within the test's generous deadline.
    done = subprocess.run(
        [*swanwatch_cmd, "validate", "-c", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "write it out" in done.stderr


_JSON_LEAF = st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False)
_JSON = st.recursive(
    _JSON_LEAF,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def _no_floats(value: object) -> bool:
    if isinstance(value, float):
        return False
    if isinstance(value, list):
        return all(map(_no_floats, value))
    if isinstance(value, dict):
        return all(map(_no_floats, value.values()))
    return True


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(_JSON, max_size=6))
def test_a_list_in_json_reads_back_as_the_whole_list(capsys, items: list[object]) -> None:
    """A list command's JSON is written item by item; it reads back as the list, and
    but for how some floats are spelled it is the text of the whole list."""
    capsys.readouterr()
    cli_common.emit_json_list(iter(items))
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(json.dumps(items))
    if _no_floats(items):
        assert out == json.dumps(items, indent=2, ensure_ascii=False) + "\n"


def test_a_long_list_in_json_is_written_before_it_is_all_read(capsys) -> None:
    """Thousands of alerts are printed as they are read, never held as one text: the
    first items are out before the last one is made."""
    seen: list[str] = []

    def items():
        for n in range(400):
            if n == 300:
                seen.append(capsys.readouterr().out)
            yield {"n": n, "text": "x" * 1000}

    cli_common.emit_json_list(items())
    written = seen[0] + capsys.readouterr().out
    assert len(seen[0]) > 100_000  # 300 items of 1 kB: out already
    assert [item["n"] for item in json.loads(written)] == list(range(400))
