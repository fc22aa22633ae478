"""The exceptions Swanwatch raises, all under :class:`SwanwatchError`.

    SwanwatchError
    ├── ConfigError          the config file is wrong; carries every problem found
    ├── PluginError          a plugin name is unknown, or its target is not the right class
    ├── SourceError          a source could not be read (missing file, failed query, HTTP error)
    ├── StoreError           the store could not be opened or migrated
    │   └── LeadershipLost   a leader-only write after this replica stopped leading (fenced)
    ├── EndpointError        the ops HTTP endpoint could not start (port in use, ...)
    └── WatcherTimeout       a watcher run passed its timeout

A message says what failed, where (file:line, field path, account, URL) and what to do.
"""

from __future__ import annotations

from dataclasses import dataclass


class SwanwatchError(Exception):
    """Base class of every error Swanwatch raises on purpose."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        field = f"{self.path}: " if self.path else ""
        return f"{where}: {field}{self.message}"


class ConfigError(SwanwatchError):
    """The config is invalid. ``problems`` lists every problem, not just the first."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the configuration:"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))


class PluginError(SwanwatchError):
    """A plugin could not be found or loaded."""


class SourceError(SwanwatchError):
    """A source could not be read."""


class StoreError(SwanwatchError):
    """The store could not be opened, migrated or written."""


class LeadershipLost(StoreError):
    """This replica no longer leads: its leader-only write was refused (the epoch moved on)."""


class EndpointError(SwanwatchError):
    """The daemon's HTTP endpoint could not start (the port is in use, the address is wrong)."""


class WatcherTimeout(SwanwatchError):
    """A watcher run took longer than its ``timeout_s``."""
