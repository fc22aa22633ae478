"""Muting, pure: which silences hold an alert's notices back.

A silence matches an alert when every one of its matchers (a glob) matches: the account,
any of the alert's rules (the one that names it and its further reasons), any of its
signal kinds, its owner, its segment. There is no inhibition between an account's alerts
any more: an account has one alert, its rules are its reasons.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from datetime import datetime

from swanwatch.correlate import Candidate
from swanwatch.errors import InvalidAction
from swanwatch.model import JSON, Alert, Silence

#: Returns why a candidate is muted ("silence 4 by ..."), or None.
Muter = Callable[[Candidate], str | None]

#: The fields a silence can match on.
SILENCE_FIELDS = ("account", "rule", "kind", "owner", "segment")
#: The fields a silence made from an alert ("silence similar") can take from it.
SIMILAR_FIELDS = ("account", "rule", "owner", "segment")


def silence_matches(silence: Silence, candidate: Candidate) -> bool:
    """True when every matcher of ``silence`` matches the candidate (globs allowed)."""
    rules = (candidate.rule, *(r.rule for r in candidate.reasons))
    values: dict[str, Sequence[str]] = {
        "account": (candidate.account_id,),
        "rule": rules,
        "kind": tuple(c.kind for c in candidate.contributions),
        "owner": (str(candidate.at_stake.get("owner") or ""),),
        "segment": (str(candidate.at_stake.get("segment") or ""),),
    }
    for name, pattern in silence.matchers.items():
        if not any(fnmatch.fnmatchcase(v, pattern) for v in values.get(name, ())):
            return False
    return True


def similar_matchers(alert: Alert, fields: Sequence[str]) -> dict[str, str]:
    """The matchers of a silence for alerts like ``alert`` on ``fields`` (its account, its
    rule, its owner, its segment), each matching the alert's own value exactly.

    Raises InvalidAction for an unknown field, no field, or a field the alert has no value
    for (an alert without an owner cannot lend its owner).
    """
    if not fields:
        raise InvalidAction(f"say what is similar: one or more of {', '.join(SIMILAR_FIELDS)}")
    values: dict[str, JSON] = {
        "account": alert.account_id,
        "rule": alert.rule,
        "owner": alert.at_stake.get("owner"),
        "segment": alert.at_stake.get("segment"),
    }
    out = {}
    for name in fields:
        if name not in values:
            raise InvalidAction(
                f"cannot silence alerts similar by {name!r}: use {', '.join(SIMILAR_FIELDS)}"
            )
        value = str(values[name] or "")
        if not value:
            raise InvalidAction(f"alert {alert.id} has no {name} to silence by")
        # The value is matched as it is: a literal [, * or ? in it is escaped for fnmatch.
        out[name] = "".join(f"[{ch}]" if ch in "[*?" else ch for ch in value)
    return out


def muter(silences: Sequence[Silence], now: datetime) -> Muter:
    """A Muter from the silences active at ``now``."""
    active = [s for s in silences if s.active(now)]

    def why(candidate: Candidate) -> str | None:
        for s in active:
            if silence_matches(s, candidate):
                return f"silence {s.id} by {s.author} until {s.ends_at:%Y-%m-%d %H:%M} UTC"
        return None

    return why
