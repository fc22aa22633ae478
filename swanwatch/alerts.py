"""The alert lifecycle: reconcile what correlation calls for with the alerts on record.

One alert per fingerprint (account, rule). States: firing -> acknowledged or snoozed ->
resolved, resolved once its signals have stayed clear for the hold-down. A notice is due when
an alert starts (or starts again), escalates, repeats after ``repeat_interval`` while still
firing, or resolves. Pure: the store saves the result, alerts and notices in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from swanwatch.correlate import Candidate
from swanwatch.model import Alert, AlertState


@dataclass(frozen=True)
class Notice:
    """Something to tell about an alert: ``firing``, ``escalated``, ``repeat`` or ``resolved``."""

    alert: Alert
    event: str
    #: Contribution fingerprints that are new since the last notice.
    new_signals: tuple[str, ...] = ()


@dataclass
class Reconciliation:
    """The alerts that changed, and the notices due."""

    changed: list[Alert] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


def reconcile(
    existing: Mapping[str, Alert],
    candidates: Iterable[Candidate],
    now: datetime,
    *,
    hold_down: timedelta,
    repeat_interval: timedelta,
    scope: Iterable[str] | None = None,
) -> Reconciliation:
    """Compare the alerts on record (by fingerprint) with the candidates now.

    ``scope`` limits which account ids the candidates speak for (all of ``existing`` when
    None): an open alert outside it is left alone, not resolved.
    """
    out = Reconciliation()
    wanted = {c.fingerprint: c for c in candidates}
    for fp, cand in wanted.items():
        _apply_candidate(out, existing.get(fp), cand, now, repeat_interval)
    in_scope = set(scope) if scope is not None else None
    for fp, alert in existing.items():
        if fp in wanted or not alert.open:
            continue
        if in_scope is not None and alert.account_id not in in_scope:
            continue
        _clear(out, alert, now, hold_down)
    return out


def _apply_candidate(
    out: Reconciliation,
    alert: Alert | None,
    cand: Candidate,
    now: datetime,
    repeat_interval: timedelta,
) -> None:
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
    }
    if alert is None or not alert.open:
        fresh = Alert(
            fingerprint=cand.fingerprint,
            account_id=cand.account_id,
            rule=cand.rule,
            state=AlertState.FIRING,
            episode=1 if alert is None else alert.episode + 1,
            started_at=now,
            id=None if alert is None else alert.id,
            **facts,
        )
        _notify(out, fresh, "firing", now)
        return
    state = alert.state
    if state == AlertState.SNOOZED and (alert.snoozed_until is None or alert.snoozed_until <= now):
        state = AlertState.FIRING
    updated = alert.model_copy(update={**facts, "state": state})
    last = alert.last_notified_severity
    if last is None and state == AlertState.FIRING:
        _notify(out, updated, "firing", now)
    elif last is not None and cand.severity.rank > last.rank and state != AlertState.SNOOZED:
        _notify(out, updated, "escalated", now)
    elif (
        state == AlertState.FIRING
        and alert.last_notified_at is not None
        and now - alert.last_notified_at >= repeat_interval
    ):
        _notify(out, updated, "repeat", now)
    elif updated != alert.model_copy(update={"updated_at": now}):
        out.changed.append(updated)


def _clear(out: Reconciliation, alert: Alert, now: datetime, hold_down: timedelta) -> None:
    if alert.clear_since is None:
        out.changed.append(alert.model_copy(update={"clear_since": now, "updated_at": now}))
        return
    if now - alert.clear_since < hold_down:
        return
    resolved = alert.model_copy(
        update={"state": AlertState.RESOLVED, "resolved_at": now, "updated_at": now}
    )
    out.changed.append(resolved)
    if alert.last_notified_at is not None:
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
