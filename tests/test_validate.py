"""`swanwatch validate` catches the mistakes people make, before a run: each broken config
exits 2 with one line naming the file, the line and the fix, and never a traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

#: A good config; each case below changes some of its lines (numbered from 1).
BASE = """\
version: 1
store:
  url: sqlite:///sw.db
sources:
  accounts:
    type: csv
    options: {path: sample/accounts.csv, types: {arr: float, renewal_date: date}}
  usage:
    type: csv
    options: {path: sample/usage.csv, types: {date: date, value: float}, date_field: date}
  tickets:
    type: csv
    options: {path: sample/tickets.csv, types: {opened_at: datetime}, date_field: opened_at}
accounts:
  source: accounts
watchers:
  - type: usage_drop
    schedule: {every: 1d}
    options: {usage_source: usage}
  - type: support_spike
    schedule: {cron: "0 6 * * *"}
    timeout: 5m
correlation:
  rule_files: [rules/default.yaml]
  rules:
    - {name: pair, title: Usage and tickets, severity: high, all_of: [usage_drop, support_spike]}
notify:
  console: false
  channels:
    team: {url: "json://127.0.0.1:9/hook"}
  default_channels: [team]
server:
  listen: 127.0.0.1:8080
daemon:
  shutdown_grace: 8s
"""

BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(8)
)

#: (what went wrong, {line: new text} or the whole text, the line reported, the fix it says)
CASES: list[tuple[str, dict[int, str] | str, int, str]] = [
    ("missing csv file", {7: "    options: {path: sample/acounts.csv}"}, 7, "check `path`"),
    ("watcher source misspelt", {19: "    options: {usage_source: usgae}"}, 19, "'usage'?"),
    ("watcher source undefined", {19: "    options: {}", 8: "  usages:"}, 19, "define it"),
    ("apprise refuses the url", {30: '    team: {url: "slak://T0/B0/xx"}'}, 30, "Apprise does"),
    ("misspelt watcher key", {18: "    schedul: {every: 1d}"}, 18, "did you mean 'schedule'"),
    ("unknown watcher type", {17: "  - type: usage_dorp"}, 17, "did you mean 'usage_drop'"),
    ("every and cron", {21: '    schedule: {cron: "0 6 * * *", every: 1h}'}, 21, "exactly one"),
    ("bad cron", {21: '    schedule: {cron: "0 25 * * *"}'}, 21, "is not valid"),
    ("duration in words", {22: "    timeout: 5 minutes"}, 22, "use e.g. 30s"),
    ("accounts source misspelt", {15: "  source: acounts"}, 15, "did you mean 'accounts'"),
    ("channel misspelt", {31: "  default_channels: [teem]"}, 31, "not defined under notify"),
    ("listen without port", {33: "  listen: localhost"}, 33, "host:port"),
    (
        "rule name twice",
        {27: "    - {name: pair, title: Again, severity: high, any_of: [usage_drop]}\nnotify:"},
        27,
        "rename one",
    ),
    ("rule without condition", {26: "    - {name: pair, title: T, severity: high}"}, 26, "all_of"),
    (
        "severity misspelt",
        {26: "    - {name: pair, title: T, severity: urgent, all_of: [usage_drop]}"},
        26,
        "'critical'",
    ),
    ("weight above one", {25: "  weights: {usage_drop: 2}\n  rules:"}, 25, "between 0 and 1"),
    ("section misspelt", {27: "notfy:"}, 27, "did you mean 'notify'"),
    ("tab indentation", {18: "\tschedule: {every: 1d}"}, 18, "not valid YAML"),
    ("alias bomb", BOMB, 5, "write it out"),
    ("unset variable", {30: '    team: {url: "${SWANWATCH_NO_SUCH_HOOK}"}'}, 30, ":-default"),
    (
        "unknown type name",
        {7: "    options: {path: sample/accounts.csv, types: {arr: money}}"},
        7,
        "'float'",
    ),
    (
        "typed column absent",
        {7: "    options: {path: sample/accounts.csv, types: {ar: float}}"},
        7,
        "the file has",
    ),
    (
        "mapped column absent",
        {10: "    options: {path: sample/usage.csv, columns: {value: amount}}"},
        10,
        "the file has",
    ),
    (
        "wrong file for watcher",
        {10: "    options: {path: sample/contacts.csv}"},
        10,
        "columns: {date",
    ),
    ("two watchers one name", {20: "  - type: usage_drop"}, 20, "give one a `name`"),
    ("shards on sqlite", {35: "  shards: 4"}, 35, "PostgreSQL"),
    ("rule file misspelt", {24: "  rule_files: [rules/defaults.yaml]"}, 24, "cannot read"),
    ("negative duration", {35: "  shutdown_grace: -5s"}, 35, "use e.g. 30s"),
    ("future version", {1: "version: 2"}, 1, "1"),
    (
        "option misspelt",
        {19: "    options: {usage_source: usage, min_drop: 30}"},
        19,
        "'min_drop_pct'",
    ),
    ("option not a number", {19: "    options: {min_drop_pct: lots}"}, 19, "valid number"),
    (
        "weak board token",
        {33: "  listen: 127.0.0.1:8080\n  board_token: secret"},
        34,
        "openssl rand",
    ),
    ("a list, not a mapping", "- version: 1\n- watchers: []\n", 1, "mapping of sections"),
    ("section twice", {32: "store: {url: 'sqlite:///b.db'}\nserver:"}, 32, "appears twice"),
    (
        "time zone misspelt",
        {30: '    team: {url: "json://h/x", timezone: Europe/Pari}'},
        30,
        "IANA",
    ),
    ("flag misspelt", {28: "  console: maybe"}, 28, "valid boolean"),
    ("plugin folder missing", {1: "version: 1\nplugin_dirs: [plugins]"}, 2, "does not exist"),
]


def _text(change: dict[int, str] | str) -> str:
    if isinstance(change, str):
        return change
    lines = BASE.splitlines()
    for number, text in change.items():
        lines[number - 1] = text
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped sample data and rule pack, for the configs to name."""
    root = tmp_path_factory.mktemp("validate")
    shutil.copytree(CONFIG_DIR / "sample", root / "sample")
    shutil.copytree(CONFIG_DIR / "rules", root / "rules")
    return root


def test_the_base_config_is_valid(folder: Path, run_cli) -> None:
    path = folder / "base.yaml"
    path.write_text(BASE)
    done = run_cli("validate", "-c", str(path))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


def test_there_are_30_realistic_mistakes() -> None:
    assert len(CASES) >= 30
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize(
    ("change", "line", "fix"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_mistake_exits_2_with_one_line_naming_file_line_and_fix(
    folder: Path, run_cli, change: dict[int, str] | str, line: int, fix: str, request
) -> None:
    path = folder / f"{request.node.callspec.id.replace(' ', '-')}.yaml"
    path.write_text(_text(change))
    done = run_cli("validate", "-c", str(path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    problems = [p.strip() for p in done.stderr.splitlines()[1:] if p.strip()]
    assert len(problems) == 1, done.stderr
    assert problems[0].startswith(f"{path}:{line}: "), done.stderr
    assert fix in problems[0], done.stderr
