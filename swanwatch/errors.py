"""The exceptions Swanwatch raises, all under :class:`SwanwatchError`.

    SwanwatchError
    ├── ConfigError          the config file is wrong; carries every problem found
    ├── PluginError          a plugin name is unknown, or its target is not the right class
    ├── SourceError          a source could not be read (missing file, failed query, HTTP error)
    ├── LookAheadError       a replay would read a source that keeps no history (today's rows)
    ├── StoreError           the store could not be opened or migrated
    │   └── LeadershipLost   a leader-only write after this replica stopped leading (fenced)
    ├── EndpointError        the ops HTTP endpoint could not start (port in use, ...)
    └── ActionError          a person's action on an alert could not be carried out
        ├── AlertNotFound    no alert has this id or fingerprint (prefix)
        ├── AmbiguousAlert   the reference fits several alerts: give more of the fingerprint
        ├── StaleEpisode     the alert came back as a new episode since the person looked
        ├── InvalidAction    the action does not apply (a snooze into the past, no reason)
        │   └── AlertClosed  the alert is already resolved
        ├── AlertBusy        the alert kept changing under the action: try again
        └── SilenceNotFound  no active silence has this id

A message says what failed, where (file:line, field path, account, URL) and what to do.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'usage'?)`` for the closest of ``choices`` to a misspelt ``word``;
    empty when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


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


class LookAheadError(SwanwatchError):
    """A replay (backtest, review) would read a source that keeps no history: it can only
    say how things stand today, which a replay of a past day must not see. A configuration
    problem of the replay, not a failed read: it is never held or retried."""


class StoreError(SwanwatchError):
    """The store could not be opened, migrated or written."""


class LeadershipLost(StoreError):
    """This replica no longer leads: its leader-only write was refused (the epoch moved on)."""


class EndpointError(SwanwatchError):
    """The daemon's HTTP endpoint could not start (the port is in use, the address is wrong)."""


class ActionError(SwanwatchError):
    """A person's action on an alert (acknowledge, snooze, resolve, mark, silence) could
    not be carried out; nothing was changed."""


class AlertNotFound(ActionError):
    """No alert has this id, or a fingerprint that starts with this reference."""


class AmbiguousAlert(ActionError):
    """The reference fits several alerts; ``matches`` holds their fingerprints."""

    def __init__(self, message: str, matches: tuple[str, ...]) -> None:
        super().__init__(message)
        self.matches = matches


class StaleEpisode(ActionError):
    """The alert came back as a new episode since the person saw it: they act on a risk
    they have not seen, so nothing is done."""


class InvalidAction(ActionError):
    """The action does not apply to this alert as it is (a snooze that ends in the past,
    a silence without a reason, ...)."""


class AlertClosed(InvalidAction):
    """The alert is already resolved: there is nothing to acknowledge, snooze or resolve."""


class AlertBusy(ActionError):
    """The alert was written by someone else each time the action was about to be saved
    (compare-and-set lost every try); nothing was changed, and acting again is safe."""


class SilenceNotFound(ActionError):
    """No active silence has this id (it never existed, or it has ended)."""
