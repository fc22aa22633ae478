"""Plugin discovery: built-in and third-party plugins alike, through entry points.

Besides installed packages, a drop-in folder (``plugin_dirs`` in the config, or
``$SWANWATCH_PLUGIN_DIRS``) may hold plain ``.py`` files: each Watcher, Source or Notifier
class defined in one is registered under its ``name``, unless an installed plugin already
has that name (the installed one wins, and the drop-in is skipped with a warning).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import os
import sys
from collections.abc import Iterable
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from swanwatch.errors import PluginError, did_you_mean
from swanwatch.interfaces import Notifier, Source, Watcher

WATCHERS = "swanwatch.watchers"
SOURCES = "swanwatch.sources"
NOTIFIERS = "swanwatch.notifiers"

_BASES: dict[str, type[Any]] = {WATCHERS: Watcher, SOURCES: Source, NOTIFIERS: Notifier}
_ROLES = {WATCHERS: "watcher", SOURCES: "source", NOTIFIERS: "notifier"}
DROPIN_ENV = "SWANWATCH_PLUGIN_DIRS"

log = logging.getLogger("swanwatch.plugins")

#: Drop-in plugins by group and name, and the file each came from.
_dropins: dict[str, dict[str, EntryPoint]] = {group: {} for group in _BASES}
_dropin_files: dict[str, Path] = {}


@cache
def available(group: str) -> dict[str, EntryPoint]:
    """The plugins of ``group`` by name: installed ones, then drop-ins (loading none)."""
    if os.environ.get(DROPIN_ENV):
        load_dropins(p for p in os.environ[DROPIN_ENV].split(os.pathsep) if p)
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    for name, ep in _dropins.get(group, {}).items():
        if name in found:
            log.warning(
                "drop-in %s %r (%s) is skipped: an installed plugin has that name",
                _ROLES[group],
                name,
                _dropin_files.get(ep.value.partition(":")[0]),
            )
            continue
        found[name] = ep
    return found


def refresh() -> None:
    """Forget what was discovered, so that newly installed plugins are seen."""
    available.cache_clear()
    _load.cache_clear()


def load_dropins(folders: Iterable[str | Path]) -> list[Path]:
    """Import every ``*.py`` file of ``folders`` and register the plugin classes in them.

    Returns the files read. A file that fails to import raises PluginError naming it.
    """
    read = []
    changed = False
    for folder in folders:
        path = Path(folder).expanduser()
        if not path.is_dir():
            raise PluginError(f"plugin folder {path} does not exist")
        for file in sorted(path.glob("*.py")):
            if file.name.startswith("_"):
                continue
            module_name = f"swanwatch_dropin_{file.stem}"
            read.append(file)
            if _dropin_files.get(module_name) == file.resolve():
                continue  # already loaded
            spec = importlib.util.spec_from_file_location(module_name, file)
            if spec is None or spec.loader is None:
                raise PluginError(f"cannot import plugin file {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:  # a broken drop-in must name itself
                del sys.modules[module_name]
                raise PluginError(f"plugin file {file} failed to import: {exc}") from exc
            _dropin_files[module_name] = file.resolve()
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ != module_name or inspect.isabstract(cls):
                    continue
                name = getattr(cls, "name", None)
                for group, base in _BASES.items():
                    if issubclass(cls, base) and isinstance(name, str):
                        ep = EntryPoint(name, f"{module_name}:{cls.__name__}", group)
                        _dropins[group][name] = ep
                        changed = True
    if changed:
        available.cache_clear()
        _load.cache_clear()
    return read


def load(group: str, name: str) -> type[Any]:
    """The plugin class registered as ``name`` in ``group``; PluginError if there is none."""
    return _load(group, name)


@cache
def _load(group: str, name: str) -> type[Any]:
    role = _ROLES.get(group, "plugin")
    eps = available(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        hint = did_you_mean(name, eps)
        raise PluginError(f"unknown {role} {name!r}{hint}; known: {known}")
    try:
        target = eps[name].load()
    except Exception as exc:  # a broken plugin must name itself, not crash discovery
        raise PluginError(f"{role} {name!r} ({eps[name].value}) failed to import: {exc}") from exc
    base = _BASES[group]
    if not (isinstance(target, type) and issubclass(target, base)):
        raise PluginError(
            f"{role} {name!r} points at {eps[name].value}, which is not a {base.__name__} class"
        )
    if getattr(target, "name", None) != name:
        raise PluginError(
            f"{role} {name!r} ({eps[name].value}) declares name {getattr(target, 'name', None)!r}"
            "; the class name attribute must equal its entry-point name"
        )
    return target


def watcher_class(name: str) -> type[Watcher]:
    cls: type[Watcher] = load(WATCHERS, name)
    return cls


def source_class(name: str) -> type[Source]:
    cls: type[Source] = load(SOURCES, name)
    return cls


def notifier_class(name: str) -> type[Notifier]:
    cls: type[Notifier] = load(NOTIFIERS, name)
    return cls


def distribution_of(group: str, name: str) -> str:
    """The distribution that provides a plugin (``swanwatch`` for built-ins), or the
    drop-in file it came from."""
    ep = available(group).get(name)
    if ep is not None and ep.value.startswith("swanwatch_dropin_"):
        return f"drop-in {_dropin_files.get(ep.value.partition(':')[0])}"
    if ep is None or ep.dist is None:
        return "?"
    return f"{ep.dist.name} {ep.dist.version}"
