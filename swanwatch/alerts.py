"""The alert lifecycle: reconcile what correlation calls for with the alerts on record.

One alert per fingerprint (account, rule). States: firing -> acknowledged or snoozed ->
resolved. An alert resolves once its signals have stayed clear for the hold-down, which
doubles each time the alert comes back soon after resolving (flapping is damped). A notice is
due when an alert starts (or starts again), escalates, repeats after ``repeat_interval``
while still firing and unacknowledged, wakes from a snooze, or resolves; never while it is
muted by a silence or inhibited. An alert resolved by hand comes back only on new evidence
or a higher severity. Pure: the store saves the result, alerts and notices, in one transaction.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from swanwatch.correlate import Candidate
from swanwatch.model import Alert, AlertState, Silence

#: Returns why a candidate is muted ("silence 4", "inhibited by <rule>"), or None.
Muter = Callable[[Candidate], str | None]

#: The hold-down doubles with each flap, up to this many doublings.
MAX_FLAP_DOUBLINGS = 5


@dataclass(frozen=True)
class Notice:
    """Something to tell about an alert: firing, escalated, repeat, reminder or resolved."""

    alert: Alert
    event: str
    #: Contribution fingerprints that are new since the last notice.
    new_signals: tuple[str, ...] = ()


@dataclass
class Reconciliation:
    """The alerts that changed, and the notices due."""

    changed: list[Alert] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def _never_muted(_candidate: Candidate) -> str | None:
    return None


def reconcile(
    existing: Mapping[str, Alert],
    candidates: Iterable[Candidate],
    now: datetime,
    *,
    hold_down: timedelta,
    repeat_interval: timedelta,
    flap_window: timedelta = timedelta(days=1),
    muted: Muter = _never_muted,
    scope: Iterable[str] | None = None,
    repeat_after: Callable[[Alert], timedelta] | None = None,
) -> Reconciliation:
    """Compare the alerts on record (by fingerprint) with the candidates now.

    ``scope`` limits which account ids the candidates speak for (all of ``existing`` when
    None): an open alert outside it is left alone, not resolved. ``repeat_after``, when
    given, says per alert how long a repeat waits (delivery's backoff for criticals)
    instead of ``repeat_interval``.
    """
    out = Reconciliation()
    wanted = {c.fingerprint: c for c in candidates}
    wait = repeat_after or (lambda _alert: repeat_interval)
    for fp, cand in wanted.items():
        _apply_candidate(out, existing.get(fp), cand, now, wait, flap_window, muted)
    in_scope = set(scope) if scope is not None else None
    for fp, alert in existing.items():
        if fp in wanted or not alert.open:
            continue
        if in_scope is not None and alert.account_id not in in_scope:
            continue
        _clear(out, alert, now, hold_down)
    return out


def _resolved_by_hand(alert: Alert) -> bool:
    return alert.state == AlertState.RESOLVED and (alert.acted_by or "").startswith("resolve:")


def _apply_candidate(
    out: Reconciliation,
    alert: Alert | None,
    cand: Candidate,
    now: datetime,
    repeat_wait: Callable[[Alert], timedelta],
    flap_window: timedelta,
    muted: Muter,
) -> None:
    mute = muted(cand)
    facts = {
        "title": cand.title,
        "severity": cand.severity,
        "score": cand.score,
        "contributions": cand.contributions,
        "why_now": cand.why_now,
        "play": cand.play,
        "at_stake": dict(cand.at_stake),
        "updated_at": now,
        "clear_since": None,
        "muted_by": mute,
    }
    if alert is not None and _resolved_by_hand(alert):
        known = set(alert.notified_signals) | {c.fingerprint for c in alert.contributions}
        new_evidence = any(c.fingerprint not in known for c in cand.contributions)
        worse = alert.last_notified_severity is None or (
            cand.severity.rank > alert.last_notified_severity.rank
        )
        if not (new_evidence or worse):
            return  # the CSM closed it; the same evidence does not reopen it
    if alert is None or not alert.open:
        flapped = (
            alert is not None
            and alert.resolved_at is not None
            and now - alert.resolved_at < flap_window
        )
        fresh = Alert(
            fingerprint=cand.fingerprint,
            account_id=cand.account_id,
            rule=cand.rule,
            state=AlertState.FIRING,
            episode=1 if alert is None else alert.episode + 1,
            started_at=now,
            flaps=(alert.flaps + 1) if (alert is not None and flapped) else 0,
            id=None if alert is None else alert.id,
            **facts,
        )
        if alert is not None and _resolved_unheard(alert, cand, now, repeat_wait(alert)):
            # Its resolution was never told (it was muted then): for the people told it
            # was firing, it never stopped. Carry the last notice over; tell nothing new.
            fresh = fresh.model_copy(
                update={
                    "last_notified_at": alert.last_notified_at,
                    "last_notified_severity": alert.last_notified_severity,
                    "notify_count": alert.notify_count,
                    "notified_signals": alert.notified_signals,
                }
            )
            out.changed.append(fresh)
        elif mute is None:
            _notify(out, fresh, "firing", now)
        else:
            out.changed.append(fresh)
        return
    state = alert.state
    woke = state == AlertState.SNOOZED and (
        alert.snoozed_until is None or alert.snoozed_until <= now
    )
    if woke:
        state = AlertState.FIRING
    updated = alert.model_copy(update={**facts, "state": state})
    last = alert.last_notified_severity
    event: str | None = None
    if mute is not None or state == AlertState.SNOOZED:
        event = None
    elif last is None:
        # Never told yet (it was muted until now): tell it, unless someone already owns it.
        event = "firing" if state == AlertState.FIRING else None
    elif cand.severity.rank > last.rank:
        event = "escalated"
    elif woke:
        event = "reminder"
    elif (
        state == AlertState.FIRING
        and alert.last_notified_at is not None
        and now - alert.last_notified_at >= repeat_wait(updated)
    ):
        event = "repeat"
    if event is not None:
        _notify(out, updated, event, now)
    elif updated != alert.model_copy(update={"updated_at": now}):
        out.changed.append(updated)


def _resolved_unheard(alert: Alert, cand: Candidate, now: datetime, wait: timedelta) -> bool:
    """Resolved while muted, after being told as firing, back within its repeat wait and
    no more severe: the return is no news to those who heard it fire."""
    last = alert.last_notified_severity
    return (
        alert.muted_by is not None
        and alert.last_notified_at is not None
        and last is not None
        and now - alert.last_notified_at < wait
        and cand.severity.rank <= last.rank
    )


def _clear(out: Reconciliation, alert: Alert, now: datetime, hold_down: timedelta) -> None:
    if alert.clear_since is None:
        out.changed.append(alert.model_copy(update={"clear_since": now, "updated_at": now}))
        return
    damped = hold_down * (2 ** min(alert.flaps, MAX_FLAP_DOUBLINGS))
    if now - alert.clear_since < damped:
        return
    resolved = alert.model_copy(
        update={"state": AlertState.RESOLVED, "resolved_at": now, "updated_at": now}
    )
    out.changed.append(resolved)
    if alert.last_notified_at is not None and alert.muted_by is None:
        out.notices.append(Notice(alert=resolved, event="resolved"))


def _notify(out: Reconciliation, alert: Alert, event: str, now: datetime) -> None:
    current = tuple(c.fingerprint for c in alert.contributions)
    new = tuple(fp for fp in current if fp not in set(alert.notified_signals))
    told = alert.model_copy(
        update={
            "last_notified_at": now,
            "last_notified_severity": alert.severity,
            "notify_count": alert.notify_count + 1,
            "notified_signals": current,
        }
    )
    out.changed.append(told)
    out.notices.append(Notice(alert=told, event=event, new_signals=new))


# --- silences -------------------------------------------------------------------------------

#: The fields a silence can match on.
SILENCE_FIELDS = ("account", "rule", "kind", "owner", "segment")


def silence_matches(silence: Silence, candidate: Candidate) -> bool:
    """True when every matcher of ``silence`` matches the candidate (globs allowed)."""
    values: dict[str, Sequence[str]] = {
        "account": (candidate.account_id,),
        "rule": (candidate.rule,),
        "kind": tuple(c.kind for c in candidate.contributions),
        "owner": (str(candidate.at_stake.get("owner") or ""),),
        "segment": (str(candidate.at_stake.get("segment") or ""),),
    }
    for name, pattern in silence.matchers.items():
        if not any(fnmatch.fnmatchcase(v, pattern) for v in values.get(name, ())):
            return False
    return True


def muter(silences: Sequence[Silence], inhibited: Mapping[str, str], now: datetime) -> Muter:
    """A Muter from the active silences and the inhibited fingerprints (fp -> by rule)."""
    active = [s for s in silences if s.active(now)]

    def why(candidate: Candidate) -> str | None:
        for s in active:
            if silence_matches(s, candidate):
                return f"silence {s.id} by {s.author} until {s.ends_at:%Y-%m-%d %H:%M} UTC"
        rule = inhibited.get(candidate.fingerprint)
        return f"inhibited by {rule}" if rule else None

    return why


# --- manual actions -------------------------------------------------------------------------


def acknowledge(alert: Alert, by: str, now: datetime) -> Alert:
    """Someone owns it: no more repeats (an escalation is still told)."""
    _require_open(alert)
    return alert.model_copy(
        update={"state": AlertState.ACKNOWLEDGED, "acted_by": f"ack:{by}", "updated_at": now}
    )


def snooze(alert: Alert, until: datetime, by: str, now: datetime) -> Alert:
    """Quiet until ``until``; then, if still firing, a reminder."""
    _require_open(alert)
    if until <= now:
        raise ValueError("a snooze must end in the future")
    return alert.model_copy(
        update={
            "state": AlertState.SNOOZED,
            "snoozed_until": until,
            "acted_by": f"snooze:{by}",
            "updated_at": now,
        }
    )


def resolve(alert: Alert, by: str, now: datetime) -> Alert:
    """Closed by hand: it comes back only on new evidence or a higher severity."""
    _require_open(alert)
    return alert.model_copy(
        update={
            "state": AlertState.RESOLVED,
            "resolved_at": now,
            "acted_by": f"resolve:{by}",
            "updated_at": now,
        }
    )


def retire(alert: Alert, now: datetime) -> Alert:
    """Resolved without a word: its account is no longer in the account list."""
    return alert.model_copy(
        update={
            "state": AlertState.RESOLVED,
            "resolved_at": now,
            "acted_by": "retired:account removed",
            "updated_at": now,
        }
    )


def _require_open(alert: Alert) -> None:
    if not alert.open:
        raise ValueError(f"alert {alert.id} is already resolved")
