"""What a correlation pass compares of an open alert: the facts its candidate gives it, their
digest (kept with each alert), and the light head of an alert on record.

A pass refreshes every open alert that still holds, and writes it only when something
worth a write changed (:func:`worth_saving`). In a steady pass almost nothing has: the
digest of the facts a candidate gives (:func:`facts_digest`), compared with the one saved
with the alert (:func:`alert_digest`), and the alert's lifecycle columns
(:class:`AlertHead`) settle most alerts without reading or copying the alert itself
(:mod:`swanwatch.steady`). Both sides come from :func:`candidate_facts`, the one
definition of what a candidate gives an alert, so the digest and :func:`worth_saving`
cannot drift apart.

Light on purpose: the store imports it to write the digest with every alert.
"""

from __future__ import annotations

import hashlib
import marshal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from math import isfinite
from operator import attrgetter, itemgetter
from typing import Any, Protocol, TypeVar

from swanwatch.model import Alert, AlertState, Contribution, NoticeEvent, Reason, Severity

#: A score that drifted less than this since it was saved is not worth a write on its own.
SCORE_STEP = 0.05

#: Changes every digest when what :func:`candidate_facts` takes changes, so a digest saved
#: before never matches one of now (then the alert takes the full path, and is saved).
_DIGEST_FORM = b"facts/1\n"


class Facts(Protocol):
    """What an alert takes from a candidate on every pass (an Alert or a Candidate)."""

    @property
    def rule(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def severity(self) -> Severity: ...

    @property
    def reasons(self) -> Sequence[Reason]: ...

    @property
    def why_now(self) -> Sequence[str]: ...

    @property
    def play(self) -> Sequence[str]: ...

    @property
    def contributions(self) -> Sequence[Contribution]: ...

    @property
    def at_stake(self) -> Mapping[str, Any]: ...


#: What :func:`candidate_facts` gives: rule, title, severity, reasons, why now, play,
#: signals, stake.
CandidateFacts = tuple[
    str,
    str,
    Severity,
    tuple[tuple[str, str, Severity], ...],
    Sequence[str],
    Sequence[str],
    tuple[tuple[str, float, str, float], ...],
    dict[str, Any],
]


_REASON = attrgetter("rule", "title", "severity")
_SIGNAL = attrgetter("fingerprint", "strength", "summary", "weight")


def candidate_facts(a: Facts) -> CandidateFacts:
    """The facts a pass compares of what a candidate gives an alert: its rule, title and
    severity, its reasons (rule, title, severity; when each joined is the alert's own), why
    now, the play, the signals it rests on as their watchers grade them, and what is at
    stake but the revenue at risk (it follows the score, compared on its own)."""
    reasons = tuple(map(_REASON, a.reasons))
    signals = tuple(map(_SIGNAL, a.contributions))
    stake = dict(a.at_stake)
    stake.pop("revenue_at_risk", None)
    return (a.rule, a.title, a.severity, reasons, a.why_now, a.play, signals, stake)


def worth_saving(before: Alert, after: Alert) -> bool:
    """Whether a pass's refresh of an open alert changed it: its state, severity, muting,
    reasons (the rules that hold; the signals it rests on, as their watchers grade them; why
    now; the play) or what is at stake. Signals ageing (decay) and the score and revenue at
    risk that follow from it are not, until the score has moved :data:`SCORE_STEP`."""

    def facts(a: Alert) -> tuple[object, ...]:
        told = (a.last_notified_at, a.notify_count, a.notified_signals)
        lifecycle = (a.state, a.muted_by, a.clear_since, a.snoozed_until, a.acted_by)
        joined = tuple(r.since for r in a.reasons)
        return (*lifecycle, told, joined, *candidate_facts(a))

    return facts(before) != facts(after) or abs(after.score - before.score) >= SCORE_STEP


def facts_digest(a: Facts) -> str | None:
    """A digest of :func:`candidate_facts`: equal digests mean equal facts. None when a
    value is not plain (strings, finite numbers, tuples of strings, JSON in what is at
    stake): such a value may read back from the store as another (a tuple as a list, a
    NaN is not even equal to itself), and then an equal digest would not mean equal
    facts."""
    rule, title, severity, reasons, why_now, play, signals, stake = candidate_facts(a)
    if not (_strings(why_now) and _strings(play) and _finite(signals) and _plain_json(stake)):
        return None
    named = [(r, t, _SEVERITY.get(s, s)) for r, t, s in reasons]
    try:
        # marshal's format 2 writes each value by its exact type and nothing else (no
        # references, no interning), and reads back as the same values: equal bytes,
        # equal facts. A type it does not know (a str subclass, an object) raises.
        plain: Any = (rule, title, _SEVERITY.get(severity, severity), named, why_now, play)
        plain += (signals, stake)
        data = marshal.dumps(plain, 2)
    except ValueError:
        return None
    return hashlib.sha256(_DIGEST_FORM + data).hexdigest()[:32]


def alert_digest(alert: Alert) -> str | None:
    """The digest saved with an alert: that of its facts, when a candidate with the same
    facts leaves its reasons as they are (each rule once, each with when it joined);
    None (unknown: a pass takes the full path) otherwise."""
    rules = [r.rule for r in alert.reasons]
    if len(set(rules)) != len(rules) or any(r.since is None for r in alert.reasons):
        return None
    return facts_digest(alert)


def _strings(value: object) -> bool:
    """A tuple of strings (of str itself: marshal refuses a subclass)."""
    return type(value) is tuple and all(map(_IS_STR, value))


_IS_STR = str.__instancecheck__


_STRENGTH = itemgetter(1)
_WEIGHT = itemgetter(3)


def _finite(signals: Sequence[tuple[str, float, str, float]]) -> bool:
    """Each signal's strength and weight a finite number."""
    try:
        return all(map(isfinite, map(_STRENGTH, signals))) and all(
            map(isfinite, map(_WEIGHT, signals))
        )
    except TypeError:  # not a number
        return False


#: A severity as marshal writes it: its value (a member of a str subclass is not).
_SEVERITY: dict[object, object] = {s: s.value for s in Severity}
#: The types of JSON's scalars, as they read back.
_SCALARS = frozenset({str, int, bool, float, type(None)})
_IS_FLOAT = float.__instancecheck__


def _plain_json(value: object) -> bool:
    """JSON that reads back as it is: no tuple, no other type, no NaN or infinity, keys
    strings (the scalars of a dict, the common case, checked at C speed)."""
    if type(value) is dict:
        if not all(map(_IS_STR, value)):
            return False
        values = value.values()
        if _SCALARS.issuperset(map(type, values)):
            return all(map(isfinite, filter(_IS_FLOAT, values)))
        return all(map(_plain_json, values))
    if type(value) is list:
        return all(map(_plain_json, value))
    if type(value) is float:
        return isfinite(value)
    return type(value) in _SCALARS


# --- an alert's head ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AlertHead:
    """An alert on record as a steady pass first reads it: its lifecycle columns and the
    digest of its facts, not the facts themselves."""

    fingerprint: str
    account_id: str
    state: AlertState
    severity: Severity
    score: float
    clear_since: datetime | None
    snoozed_until: datetime | None
    last_notified_at: datetime | None
    last_notified_severity: Severity | None
    notify_count: int
    muted_by: str | None
    version: int
    #: :func:`alert_digest` as saved; None when unknown.
    digest: str | None

    @property
    def open(self) -> bool:
        return self.state != AlertState.RESOLVED

    @classmethod
    def of(cls, alert: Alert, digest: str | None) -> AlertHead:
        """The head of an alert, with the digest saved with it."""
        return cls(
            alert.fingerprint, alert.account_id, alert.state, alert.severity, alert.score,
            alert.clear_since, alert.snoozed_until, alert.last_notified_at,
            alert.last_notified_severity, alert.notify_count, alert.muted_by, alert.version,
            digest,
        )  # fmt: skip


class Told(Protocol):
    """What deciding a notice reads of an alert (an Alert or its head)."""

    @property
    def state(self) -> AlertState: ...

    @property
    def severity(self) -> Severity: ...

    @property
    def notify_count(self) -> int: ...

    @property
    def last_notified_at(self) -> datetime | None: ...

    @property
    def last_notified_severity(self) -> Severity | None: ...


_T = TypeVar("_T", bound=Told)


def notice_due(
    before: Told, after: _T, woke: bool, now: datetime, wait: Callable[[_T], timedelta]
) -> NoticeEvent | None:
    """What an unmuted open alert refreshed on a pass (``before`` -> ``after``) has to
    tell, if anything: an escalation (through an acknowledgement or a snooze), a first
    notice when it was muted until now, a reminder when it woke from a snooze, or a repeat
    when ``wait`` (per alert) has passed since it was last told and it is still firing."""
    last = before.last_notified_severity
    if last is not None and after.severity.rank > last.rank:
        return NoticeEvent.ESCALATED  # through an acknowledgement or a snooze
    if after.state == AlertState.SNOOZED:
        return None
    if last is None:
        # Never told yet (it was muted until now): tell it, unless someone owns it.
        return NoticeEvent.FIRING if after.state == AlertState.FIRING else None
    if woke:
        return NoticeEvent.REMINDER
    due = before.last_notified_at is not None and now - before.last_notified_at >= wait(after)
    return NoticeEvent.REPEAT if after.state == AlertState.FIRING and due else None
