"""Every `swanwatch ...` command line in README.md and docs/ names commands and options that
exist: each is taken from the Markdown (inline code and code blocks), each command's
--help runs, and each option it names is one of that command's."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from swanwatch.cli import main

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: `swanwatch` then a command word: not swanwatch.yaml, swanwatch[review], swanwatch-data.
COMMAND = re.compile(r"(?:^|[\s/(])swanwatch ([a-z][a-z-]*(?: [^`\n]*)?)")


def _snippets(text: str) -> list[str]:
    """Inline code spans and code block lines of ``text``."""
    blocks = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL)
    prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    return [*re.findall(r"`([^`\n]+)`", prose), *(b for block in blocks for b in block.split("\n"))]


def documented() -> list[tuple[str, str]]:
    """(where, the command line after `swanwatch`) for every one in the docs."""
    found = []
    for doc in DOCS:
        for snippet in _snippets(doc.read_text().replace("\\|", "|")):
            for match in COMMAND.finditer(snippet):
                line = re.split(r"\s(?:\||&&|>|#|;)\s", match.group(1))[0].rstrip(" .,:;)")
                found.append((doc.name, line))
    return sorted(set(found))


def _resolve(words: list[str]) -> tuple[list[list[str]], list[str]]:
    """The command paths the leading words name (``list|show``: both), and the rest."""
    paths: list[list[str]] = [[]]
    rest = list(words)
    command: click.Command = main
    while rest and isinstance(command, click.Group):
        names = rest[0].split("|")
        ctx = click.Context(main)
        found = [(name, command.get_command(ctx, name)) for name in names]
        missing = [name for name, sub in found if sub is None]
        assert not missing, f"no command {' '.join([*paths[0], *missing])}"
        paths = [[*p, name] for p in paths for name in names]
        command = found[0][1]  # type: ignore[assignment]
        rest.pop(0)
    return paths, rest


def _command(path: list[str]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(click.Context(main), name)
        assert found is not None
        command = found
    return command


def _options(rest: list[str]) -> list[str]:
    """The options named in the words after the command: --json, --by, -c ..."""
    out = []
    for word in rest:
        for part in word.strip("[](){},'\"").split("|"):
            name = part.strip("[](){},'\"").split("=", 1)[0]
            if re.fullmatch(r"--?[a-z][a-z-]*", name):
                out.append(name)
    return out


DOCUMENTED = documented()


def test_the_docs_name_commands() -> None:
    commands = {line.split()[0] for _, line in DOCUMENTED}
    assert {"run", "validate", "alerts", "routes", "review", "backtest", "worker"} <= commands


@pytest.mark.parametrize(("doc", "line"), DOCUMENTED, ids=[f"{d}: {c}" for d, c in DOCUMENTED])
def test_each_documented_command_and_option_exists(doc: str, line: str) -> None:
    paths, rest = _resolve(line.split())
    wanted = _options(rest)
    for path in paths:
        command = _command(path)
        known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
        known |= {"--help"}
        unknown = [o for o in wanted if o not in known]
        assert not unknown, f"{doc}: `swanwatch {' '.join(path)}` has no option {unknown}"
        shown = CliRunner().invoke(main, [*path, "--help"])
        assert shown.exit_code == 0, shown.output


def test_a_made_up_option_is_caught() -> None:
    paths, rest = _resolve(["alerts", "list", "--colour", "red"])
    command = _command(paths[0])
    known = {opt for param in command.params for opt in param.opts}
    assert "--colour" in _options(rest) and "--colour" not in known
