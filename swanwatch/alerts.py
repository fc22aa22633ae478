"""The alert lifecycle, pure: reconcile what correlation calls for with the alerts on record.

One open alert per account (its fingerprint is the account's): every rule that holds on
the account is one of its reasons, and the most severe names it. States: firing ->
acknowledged or snoozed -> resolved. An alert resolves once its signals have stayed clear
for the hold-down, which doubles each time the alert comes back soon after resolving
(flapping is damped). New evidence, or a rule joining or leaving, updates the open alert
without a word; a notice is due when an alert starts (or starts again), when its severity
rises above what was last told (an escalation, which also ends an acknowledgement or a
snooze: the account got worse than what its owner took on), when it repeats
(:func:`repeat_after`) while still firing and unacknowledged, wakes from a snooze, or
resolves; never while a silence mutes it. An update that is told carries "what's new" at
its top. An alert resolved by hand comes back only on new evidence or a higher severity.
Swanwatch's own alerts (a watcher failing run after run, a source suspect, stale or broken)
live on :data:`OPS_ACCOUNT`, one per watcher or source. An alert whose account left the
account list is retired (resolved without a word); if the account comes back while the
alert would still be alive (within the flap window), the alert resumes its episode: its
state, acknowledgement and notification count, so nothing is told again (:func:`resume`).

:func:`decide` is one correlation pass's whole lifecycle: candidates from the assessments,
silences, the account and ops alerts reconciled, the notices due. The person's side
(acknowledge, snooze, resolve) is here as pure functions; :mod:`swanwatch.actions` loads,
checks and saves them. The store saves the result, alerts and notices, in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from swanwatch.correlate import Assessment, Candidate, alert_fingerprint, candidates
from swanwatch.errors import AlertClosed, InvalidAction
from swanwatch.facts import SCORE_STEP as SCORE_STEP  # public here too, as before
from swanwatch.facts import Told, notice_due
from swanwatch.facts import worth_saving as worth_saving
from swanwatch.model import (
    JSON,
    Alert,
    AlertState,
    NoticeEvent,
    Reason,
    Severity,
    Silence,
    SourceHealth,
    SourceState,
)
from swanwatch.muting import SILENCE_FIELDS as SILENCE_FIELDS  # public here too, as before
from swanwatch.muting import SIMILAR_FIELDS as SIMILAR_FIELDS
from swanwatch.muting import Muter
from swanwatch.muting import muter as muter
from swanwatch.muting import silence_matches as silence_matches
from swanwatch.muting import similar_matchers as similar_matchers
from swanwatch.settings import Config, NotifyConfig

#: The account Swanwatch's own alerts (a watcher failing) are filed under.
OPS_ACCOUNT = "@swanwatch"

#: The hold-down doubles with each flap, up to this many doublings.
MAX_FLAP_DOUBLINGS = 5


@dataclass(frozen=True)
class Notice:
    """Something to tell about an alert: firing, escalated, repeat, reminder or resolved."""

    alert: Alert
    event: NoticeEvent
    #: Contribution fingerprints that are new since the last notice.
    new_signals: tuple[str, ...] = ()
    #: What changed since the last notice (an update), told first.
    whats_new: tuple[str, ...] = ()


@dataclass
class Reconciliation:
    """The alerts that changed, and the notices due."""

    changed: list[Alert] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)


class WatcherHealth(Protocol):
    """How a watcher instance has been doing, as the ops alerts need it."""

    @property
    def consecutive_failures(self) -> int: ...

    @property
    def last_success_at(self) -> datetime | None: ...

    @property
    def last_error(self) -> str | None: ...


# --- one pass ---------------------------------------------------------------------------


def decide(
    assessments: Iterable[Assessment],
    on_record: Iterable[Alert],
    *,
    listed: Iterable[str],
    silences: Sequence[Silence],
    watchers: Mapping[str, WatcherHealth],
    now: datetime,
    config: Config,
    sources: Mapping[str, SourceHealth] | None = None,
) -> Reconciliation:
    """One correlation pass's lifecycle: from the assessments and the alerts on record to
    the alerts that changed and the notices due.

    ``listed`` is every account id in the account list now: an open alert of an account no
    longer listed is retired quietly, and resumes if its account comes back in time.
    ``watchers`` (instance -> health) raises an ops alert for each watcher that failed
    ``daemon.failure_alert_after`` runs in a row; ``sources`` (name -> health) one for each
    source that is suspect or stale, or broken that many reads in a row.
    """
    accounts: list[Alert] = []
    ops: list[Alert] = []
    for alert in on_record:
        (ops if alert.account_id == OPS_ACCOUNT else accounts).append(alert)
    muted = muter(silences, now)
    told = decide_accounts(
        assessments, accounts, listed=listed, muted=muted, now=now, config=config
    )
    ops_told = decide_ops(
        ops, watchers=watchers, sources=sources or {}, muted=muted, now=now, config=config
    )
    return Reconciliation(
        changed=[*told.changed, *ops_told.changed],
        notices=telling_order([*told.notices, *ops_told.notices]),
    )


def decide_accounts(
    assessments: Iterable[Assessment],
    on_record: Iterable[Alert],
    *,
    listed: Iterable[str],
    muted: Muter,
    now: datetime,
    config: Config,
) -> Reconciliation:
    """:func:`decide` for the accounts' alerts alone (not the ops ones), its notices in no
    particular order: ``on_record`` and ``listed`` may be one batch of the book (the
    alerts and listed ids of a range of accounts), the other batches left as they are."""
    wanted = candidates(assessments, now, config.correlation.phrases)
    return reconcile_accounts(wanted, on_record, listed=listed, muted=muted, now=now, config=config)


def reconcile_accounts(
    wanted: Sequence[Candidate],
    on_record: Iterable[Alert],
    *,
    listed: Iterable[str],
    muted: Muter,
    now: datetime,
    config: Config,
) -> Reconciliation:
    """:func:`decide_accounts` from the candidates (``wanted``) the assessments give."""
    accounts = {alert.fingerprint: alert for alert in on_record}
    in_list = set(listed)
    gone = [retire(a, now) for a in accounts.values() if a.open and a.account_id not in in_list]
    resumed = resumptions(accounts, wanted, in_list, now, config.correlation.flap_window)
    accounts.update(resumed)
    told = reconcile(
        accounts,
        wanted,
        now,
        hold_down=config.correlation.resolve_hold_down,
        repeat_interval=config.notify.repeat_interval,
        repeat_after=repeat_after(config.notify),
        flap_window=config.correlation.flap_window,
        muted=muted,
        scope=in_list,
    )
    return Reconciliation(
        changed=[*gone, *_and_resumed(told.changed, resumed)], notices=told.notices
    )


def decide_ops(
    on_record: Iterable[Alert],
    *,
    watchers: Mapping[str, WatcherHealth],
    sources: Mapping[str, SourceHealth],
    muted: Muter,
    now: datetime,
    config: Config,
) -> Reconciliation:
    """:func:`decide` for Swanwatch's own alerts alone (``on_record``: those of
    :data:`OPS_ACCOUNT`), its notices in no particular order."""
    failing = config.daemon.failure_alert_after
    return reconcile(
        {alert.fingerprint: alert for alert in on_record},
        [*ops_candidates(watchers, failing), *source_candidates(sources, failing)],
        now,
        hold_down=timedelta(0),
        repeat_interval=config.notify.repeat_interval,
        repeat_after=repeat_after(config.notify),
        muted=muted,
    )


def telling_order(notices: Iterable[Notice]) -> list[Notice]:
    """Notices in the order a reader should meet them: most severe first, then the most
    ARR at risk (stable: an account's notices keep their order)."""
    return sorted(notices, key=_telling_order)


def _telling_order(notice: Notice) -> tuple[int, float, str]:
    """Most severe first, then the most ARR at risk: what a reader meets first."""
    alert = notice.alert
    at_risk = alert.at_stake.get("revenue_at_risk")
    money = float(at_risk) if isinstance(at_risk, int | float) else 0.0
    return (-alert.severity.rank, -money, alert.account_id)


def _and_resumed(changed: list[Alert], resumed: Mapping[str, Alert]) -> list[Alert]:
    """The changed alerts, and the resumed ones the pass left as they were (saved too)."""
    seen = {a.fingerprint for a in changed}
    return [*changed, *(a for fp, a in resumed.items() if fp not in seen)]


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
    given, says per alert how long a repeat waits (a backoff for criticals) instead of
    ``repeat_interval``.
    """
    wanted = {c.fingerprint: c for c in candidates}
    step = _Pass(
        now=now,
        hold_down=hold_down,
        flap_window=flap_window,
        repeat_wait=repeat_after or (lambda _alert: repeat_interval),
        muted=muted,
    )
    for fp, cand in wanted.items():
        step.apply(existing.get(fp), cand)
    in_scope = set(scope) if scope is not None else None
    for fp, alert in existing.items():
        if fp in wanted or not alert.open:
            continue
        if in_scope is not None and alert.account_id not in in_scope:
            continue
        step.clear(alert)
    return step.out


def repeat_after(config: NotifyConfig) -> Callable[[Told], timedelta]:
    """How long a still-firing, unacknowledged alert waits before it is told again: a
    critical one on a backoff (critical_repeat, doubling, up to repeat_interval), the rest
    after repeat_interval."""

    def wait(alert: Told) -> timedelta:
        if alert.severity != Severity.CRITICAL:
            return config.repeat_interval
        told = max(alert.notify_count, 1)
        backoff: timedelta = config.critical_repeat * (2 ** min(told - 1, 16))
        return min(backoff, config.repeat_interval)

    return wait


def _resolved_by_hand(alert: Alert) -> bool:
    return alert.state == AlertState.RESOLVED and (alert.acted_by or "").startswith("resolve:")


def _news(alert: Alert, cand: Candidate) -> bool:
    """New evidence, or more severe than last told: what reopens an alert closed by hand."""
    known = set(alert.notified_signals) | {c.fingerprint for c in alert.contributions}
    new_evidence = any(c.fingerprint not in known for c in cand.contributions)
    last = alert.last_notified_severity
    return new_evidence or last is None or cand.severity.rank > last.rank


def _reasons(cand: Candidate, before: Alert | None, now: datetime) -> tuple[Reason, ...]:
    """The candidate's reasons, each with when it joined this episode of the alert."""
    joined = {r.rule: r.since for r in before.reasons} if before and before.open else {}
    return tuple(r.model_copy(update={"since": joined.get(r.rule) or now}) for r in cand.reasons)


def _facts(
    cand: Candidate, now: datetime, mute: str | None, before: Alert | None = None
) -> dict[str, object]:
    """What an alert takes from its candidate on every pass."""
    return {
        "rule": cand.rule,
        "reasons": _reasons(cand, before, now),
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


@dataclass
class _Pass:
    """One reconciliation: its settings, and the changes and notices it collects."""

    now: datetime
    hold_down: timedelta
    flap_window: timedelta
    repeat_wait: Callable[[Alert], timedelta]
    muted: Muter
    out: Reconciliation = field(default_factory=Reconciliation)

    def apply(self, alert: Alert | None, cand: Candidate) -> None:
        """Bring the alert on record (if any) in line with a candidate that holds now."""
        mute = self.muted(cand)
        if alert is not None and _resolved_by_hand(alert) and not _news(alert, cand):
            return  # the CSM closed it; the same evidence does not reopen it
        if alert is None or not alert.open:
            self.open(alert, cand, mute)
        else:
            self.refresh(alert, cand, mute)

    def open(self, alert: Alert | None, cand: Candidate, mute: str | None) -> None:
        """A new alert, or a new episode of a resolved one."""
        now = self.now
        flapped = (
            alert is not None
            and alert.resolved_at is not None
            and now - alert.resolved_at < self.flap_window
        )
        fresh = Alert(
            fingerprint=cand.fingerprint,
            account_id=cand.account_id,
            state=AlertState.FIRING,
            episode=1 if alert is None else alert.episode + 1,
            started_at=now,
            flaps=(alert.flaps + 1) if (alert is not None and flapped) else 0,
            id=None if alert is None else alert.id,
            **_facts(cand, now, mute),
        )
        if alert is not None and _resolved_unheard(alert, cand, now, self.repeat_wait(alert)):
            # Its resolution was never told (it was muted then): for the people told it
            # was firing, it never stopped. Carry the last notice over; tell nothing new.
            carried = {
                "last_notified_at": alert.last_notified_at,
                "last_notified_severity": alert.last_notified_severity,
                "notify_count": alert.notify_count,
                "notified_signals": alert.notified_signals,
            }
            self.out.changed.append(fresh.model_copy(update=carried))
        elif mute is None:
            self.notify(fresh, NoticeEvent.FIRING)
        else:
            self.out.changed.append(fresh)

    def refresh(self, alert: Alert, cand: Candidate, mute: str | None) -> None:
        """An open alert that still holds: new facts, and a notice when one is due."""
        woke = alert.state == AlertState.SNOOZED and (
            alert.snoozed_until is None or alert.snoozed_until <= self.now
        )
        state = AlertState.FIRING if woke else alert.state
        updated = alert.model_copy(update={**_facts(cand, self.now, mute, alert), "state": state})
        event = None if mute is not None else self.news(alert, updated, woke)
        if event == NoticeEvent.ESCALATED and updated.state != AlertState.FIRING:
            # Worse than what its owner took on: the acknowledgement or snooze ends.
            lifted = {"state": AlertState.FIRING, "snoozed_until": None, "acted_by": None}
            updated = updated.model_copy(update=lifted)
        if event is not None:
            self.notify(updated, event)
        elif worth_saving(alert, updated):
            self.out.changed.append(updated)

    def news(self, before: Alert, after: Alert, woke: bool) -> NoticeEvent | None:
        """What an unmuted, still-open alert has to tell on this pass, if anything."""
        return notice_due(before, after, woke, self.now, self.repeat_wait)

    def clear(self, alert: Alert) -> None:
        """An open alert that no candidate holds now: resolve it after the hold-down."""
        now = self.now
        if alert.clear_since is None:
            self.out.changed.append(
                alert.model_copy(update={"clear_since": now, "updated_at": now})
            )
            return
        damped = self.hold_down * (2 ** min(alert.flaps, MAX_FLAP_DOUBLINGS))
        if now - alert.clear_since < damped:
            return
        resolved = alert.model_copy(
            update={"state": AlertState.RESOLVED, "resolved_at": now, "updated_at": now}
        )
        self.out.changed.append(resolved)
        if alert.last_notified_at is not None and alert.muted_by is None:
            self.out.notices.append(Notice(alert=resolved, event=NoticeEvent.RESOLVED))

    def notify(self, alert: Alert, event: NoticeEvent) -> None:
        current = tuple(c.fingerprint for c in alert.contributions)
        heard = set(alert.notified_signals)  # made once: per signal, a whale's took 26 s
        new = tuple(fp for fp in current if fp not in heard)
        whats_new = () if event == NoticeEvent.FIRING else whats_new_since(alert, event, new)
        told = alert.model_copy(
            update={
                "last_notified_at": self.now,
                "last_notified_severity": alert.severity,
                "notify_count": alert.notify_count + 1,
                "notified_signals": current,
            }
        )
        self.out.changed.append(told)
        self.out.notices.append(
            Notice(alert=told, event=event, new_signals=new, whats_new=whats_new)
        )


def whats_new_since(alert: Alert, event: NoticeEvent, new: Sequence[str]) -> tuple[str, ...]:
    """What an update tells first: the severity's rise, the reasons that joined and the
    signals that are new since the last notice (``alert`` is as it stands, not yet told)."""
    lines = []
    last = alert.last_notified_severity
    if event == NoticeEvent.ESCALATED and last is not None:
        lines.append(f"Severity rose to {alert.severity.upper()} (was {last.upper()}).")
    told_at = alert.last_notified_at
    for r in alert.reasons:
        if told_at is not None and r.since is not None and r.since > told_at:
            lines.append(f"New reason: {r.title} ({r.severity}).")
    fresh = set(new)
    lines.extend(f"New signal: {c.summary}" for c in alert.contributions if c.fingerprint in fresh)
    return tuple(dict.fromkeys(lines))


# --- ops alerts ---------------------------------------------------------------------------


def ops_candidates(watchers: Mapping[str, WatcherHealth], failing_after: int) -> list[Candidate]:
    """An ops alert for each watcher instance that has failed ``failing_after`` runs in a
    row, filed under :data:`OPS_ACCOUNT`."""
    out = []
    for name, status in watchers.items():
        if status.consecutive_failures < failing_after:
            continue
        last_ok = status.last_success_at.isoformat() if status.last_success_at else "never"
        out.append(
            ops_candidate(
                f"watcher_failing:{name}",
                f"Watcher {name} is failing",
                Severity.HIGH,
                why_now=(
                    f"{status.consecutive_failures} runs in a row failed; last success: {last_ok}.",
                    f"Last error: {status.last_error}",
                ),
                play=f"Ops: run `swanwatch watchers runs {name}` for the tracebacks and fix "
                "the cause; until then its signals are not refreshed.",
                at_stake={"watcher": name},
            )
        )
    return out


def ops_candidate(
    rule: str,
    title: str,
    severity: Severity,
    *,
    why_now: tuple[str, ...],
    play: str,
    at_stake: dict[str, JSON],
) -> Candidate:
    """One of Swanwatch's own alerts, filed under :data:`OPS_ACCOUNT`."""
    return Candidate(
        fingerprint=alert_fingerprint(OPS_ACCOUNT, rule),
        account_id=OPS_ACCOUNT,
        rule=rule,
        title=title,
        severity=severity,
        score=1.0,
        contributions=(),
        why_now=why_now,
        play=(play,),
        at_stake=at_stake,
    )


#: An ops alert's severity by the state of its source.
_SOURCE_SEVERITY = {
    SourceState.SUSPECT: Severity.HIGH,
    SourceState.BROKEN: Severity.HIGH,
    SourceState.STALE: Severity.WARNING,
}
_SOURCE_PLAY = {
    SourceState.SUSPECT: "Ops: check the export or query behind source {name}. If the "
    "smaller read is right, `swanwatch sources accept {name}` makes it the last good read.",
    SourceState.STALE: "Ops: find out why source {name} stopped receiving data (an export "
    "job, a sync, a feed); its watchers judge nothing until it is fresh again.",
    SourceState.BROKEN: "Ops: fix what the reason names (the file and line, the query, the "
    "URL); its watchers judge nothing until a read succeeds.",
}


def source_candidates(sources: Mapping[str, SourceHealth], failing_after: int) -> list[Candidate]:
    """One ops alert per unhealthy source, filed under :data:`OPS_ACCOUNT`: at once for a
    suspect or stale one, after ``failing_after`` reads in a row for a broken one (a
    network blip is not worth waking anyone)."""
    out = []
    for name, health in sorted(sources.items()):
        if health.ok or (health.state == SourceState.BROKEN and health.bad_reads < failing_after):
            continue
        good = (
            f"Last good read: {health.good_rows} rows, {health.good_at:%Y-%m-%d %H:%M} UTC."
            if health.good_at is not None
            else "No good read on record."
        )
        out.append(
            ops_candidate(
                f"source:{name}",
                f"Source {name} is {health.state}",
                _SOURCE_SEVERITY[health.state],
                why_now=(
                    f"Since {health.since:%Y-%m-%d %H:%M} UTC ({health.bad_reads} reads): "
                    f"{health.reason}.",
                    good,
                    "Its accounts are held: not retired, not judged healthy; the watchers "
                    "that read it report them unknown and keep their signals.",
                ),
                play=_SOURCE_PLAY[health.state].format(name=name),
                at_stake={"source": name, "rows": health.rows, "good_rows": health.good_rows},
            )
        )
    return out


# --- a person's actions -------------------------------------------------------------------


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
        raise InvalidAction(
            f"a snooze must end in the future: {until:%Y-%m-%d %H:%M} UTC is not after now"
        )
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


#: ``acted_by`` of a retired alert; what it was before follows (see :func:`resume`).
RETIRED = "retired:account removed"
_WAS = ";was="


def retire(alert: Alert, now: datetime) -> Alert:
    """Resolved without a word: its account is no longer in the account list. The state
    and ``acted_by`` it had are kept in ``acted_by``, for :func:`resume`."""
    return alert.model_copy(
        update={
            "state": AlertState.RESOLVED,
            "resolved_at": now,
            "acted_by": f"{RETIRED}{_WAS}{alert.state}:{alert.acted_by or ''}",
            "updated_at": now,
        }
    )


def resume(alert: Alert, now: datetime) -> Alert:
    """A retired alert whose account came back: its episode goes on as it was (state,
    acknowledgement, snooze, what was told), as if it had never been retired."""
    _, _, was = (alert.acted_by or "").partition(_WAS)
    state, _, acted_by = was.partition(":")
    try:
        before = AlertState(state)
    except ValueError:
        before = AlertState.FIRING
    return alert.model_copy(
        update={
            "state": before,
            "resolved_at": None,
            "acted_by": acted_by or None,
            "updated_at": now,
        }
    )


def resumptions(
    on_record: Mapping[str, Alert],
    wanted: Iterable[Candidate],
    listed: set[str],
    now: datetime,
    within: timedelta,
) -> dict[str, Alert]:
    """The retired alerts to resume: their account is listed again, they still hold, and
    they were retired less than ``within`` ago (the alert's life; after that, a return is
    a new episode)."""
    held = {c.fingerprint for c in wanted}
    return {
        fp: resume(alert, now)
        for fp, alert in on_record.items()
        if fp in held
        and alert.account_id in listed
        and (alert.acted_by or "").startswith(RETIRED)
        and alert.resolved_at is not None
        and now - alert.resolved_at < within
    }


def _require_open(alert: Alert) -> None:
    if not alert.open:
        when = f" on {alert.resolved_at:%Y-%m-%d %H:%M} UTC" if alert.resolved_at else ""
        raise AlertClosed(
            f"alert {alert.id} ({alert.title} on {alert.account_id}) is already resolved"
            f"{when}: there is nothing to act on until it fires again"
        )
