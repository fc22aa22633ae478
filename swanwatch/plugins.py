"""Plugin discovery: built-in and third-party plugins alike, through entry points."""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from swanwatch.errors import PluginError
from swanwatch.interfaces import Notifier, Source, Watcher

WATCHERS = "swanwatch.watchers"
SOURCES = "swanwatch.sources"
NOTIFIERS = "swanwatch.notifiers"

_BASES: dict[str, type[Any]] = {WATCHERS: Watcher, SOURCES: Source, NOTIFIERS: Notifier}
_ROLES = {WATCHERS: "watcher", SOURCES: "source", NOTIFIERS: "notifier"}


@cache
def available(group: str) -> dict[str, EntryPoint]:
    """The installed plugins of ``group``, by name (loading none of them)."""
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)
    return found


def refresh() -> None:
    """Forget what was discovered, so that newly installed plugins are seen."""
    available.cache_clear()
    _load.cache_clear()


def load(group: str, name: str) -> type[Any]:
    """The plugin class registered as ``name`` in ``group``; PluginError if there is none."""
    return _load(group, name)


@cache
def _load(group: str, name: str) -> type[Any]:
    role = _ROLES.get(group, "plugin")
    eps = available(group)
    if name not in eps:
        known = ", ".join(sorted(eps)) or "none installed"
        raise PluginError(f"unknown {role} {name!r}; known: {known}")
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
    """The distribution that provides a plugin (``swanwatch`` for built-ins)."""
    ep = available(group).get(name)
    if ep is None or ep.dist is None:
        return "?"
    return f"{ep.dist.name} {ep.dist.version}"
