"""The house rules of shared/STYLE.md that a machine can check: module and function sizes,
and no private name imported across modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("swanwatch", "watchers", "notifiers")
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 60
#: A comment on a module's or function's first lines that says why it may be longer.
WAIVER = "house-rules: long"


def _sources() -> list[Path]:
    out: list[Path] = []
    for package in PACKAGES:
        out.extend(p for p in sorted((ROOT / package).rglob("*.py")) if "migrations" not in p.parts)
    return out


def _waived(lines: list[str], first: int) -> bool:
    """A waiver comment within the two lines above ``first`` (1-based) or on it."""
    window = lines[max(0, first - 3) : first]
    return any(WAIVER in line for line in window)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    text = path.read_text()
    lines = text.splitlines()
    problems = []
    if len(lines) > MAX_MODULE_LINES and WAIVER not in "\n".join(lines[:5]):
        problems.append(f"{len(lines)} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        length = (node.end_lineno or node.lineno) - first + 1
        if length > MAX_FUNCTION_LINES and not _waived(lines, first):
            problems.append(f"{node.name}() at line {node.lineno}: {length} lines")
    assert not problems, f"{path.relative_to(ROOT)}: " + "; ".join(problems)


def _package_of(path: Path) -> str:
    """The dotted package a source file belongs to (watchers/ ships as swanwatch.watchers)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if parts and parts[0] in ("watchers", "notifiers"):
        parts = ["swanwatch", *parts]
    return ".".join(parts)


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _private_imports(path: Path) -> list[str]:
    """Private names, or private modules of another package, imported by ``path``."""
    here = _package_of(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            parent, _, last = node.module.rpartition(".")
            if _is_private(last) and parent != here:
                found.append(f"line {node.lineno}: from {node.module} (private to {parent})")
            found.extend(
                f"line {node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if _is_private(alias.name)
            )
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parent, _, last = alias.name.rpartition(".")
                if _is_private(last) and parent != here:
                    found.append(f"line {node.lineno}: import {alias.name}")
    for node in ast.walk(ast.parse(path.read_text())):
        # obj._private on anything but self or cls reaches into another object's insides
        # (namedtuple's public _asdict and friends aside).
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and node.attr not in _NAMEDTUPLE_API
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


_NAMEDTUPLE_API = frozenset({"_asdict", "_replace", "_fields", "_make", "_mapping"})


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_name_is_imported_across_modules(path: Path) -> None:
    found = _private_imports(path)
    assert not found, f"{path.relative_to(ROOT)}: " + "; ".join(found)
