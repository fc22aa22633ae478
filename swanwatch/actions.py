"""A person acting on an alert: acknowledge, snooze, resolve, mark, silence similar ones.

The one home of these actions; the CLI, the signed links and the risk board are thin faces
over :class:`AlertActions`. An action names its alert by reference (:func:`find_alert`: the
id, or 4 or more characters of the fingerprint) and, where the face knows it, by the episode
the person saw: an alert that came back as a new episode since is not acted on
(:class:`~swanwatch.errors.StaleEpisode`). Every action records who acted. What can go wrong
is an :class:`~swanwatch.errors.ActionError`, and nothing is changed then.

The lifecycle policy itself (what acknowledging does, when a snooze may end) is pure, in
:mod:`swanwatch.alerts`; here it is loaded, checked, applied and saved, in one place.

An action is never lost to a concurrent correlation pass, nor a pass's change to an action.
Every write of an alert is made over the version its writer read (compare-and-set, in the
store): a pass that read the alert before the action is refused for that alert, and decides
again on its next pass from the alert as the person left it; an action that read the alert
before a pass wrote it is applied again to the alert as it is now (:data:`TRIES` times at
most), and a change that no longer applies is refused as it would be had the person looked
a moment later (resolved meanwhile: AlertClosed; a new episode they did not see:
StaleEpisode). Marks and silences are rows of their own, never overwritten.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import assert_never

from swanwatch.alerts import (
    SILENCE_FIELDS,
    acknowledge,
    resolve,
    similar_matchers,
    snooze,
)
from swanwatch.clock import Clock
from swanwatch.errors import (
    AlertBusy,
    AlertNotFound,
    AmbiguousAlert,
    InvalidAction,
    SilenceNotFound,
    StaleEpisode,
)
from swanwatch.model import Alert, Feedback, Silence, Verdict, storable
from swanwatch.store import LoggedAction, Store

log = logging.getLogger("swanwatch.actions")

#: A fingerprint prefix names an alert from this many characters on.
MIN_PREFIX = 4
#: How many alerts an ambiguous reference lists.
SHOWN_MATCHES = 3
#: How many times an action is applied again to an alert written meanwhile before it
#: gives up (AlertBusy): a correlation pass writes an alert once, so two tries suffice.
TRIES = 5

#: A change of state a person makes: the alert as it is, who, and now -> the alert after.
Change = Callable[[Alert, str, datetime], Alert]

_HEX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class Acknowledge:
    """Someone owns it: no more repeats (an escalation is still told)."""


@dataclass(frozen=True)
class Snooze:
    """Quiet for ``length``; then, if still firing, a reminder."""

    length: timedelta


@dataclass(frozen=True)
class Resolve:
    """Closed by hand: it comes back only on new evidence or a higher severity."""


@dataclass(frozen=True)
class Mark:
    """Feedback on this episode: useful, noise, or acted on."""

    verdict: Verdict
    note: str = ""


@dataclass(frozen=True)
class SilenceSimilar:
    """Mute the alerts that share this one's ``on`` fields (account, rule, owner, segment)
    for ``length``, from the next correlation pass."""

    length: timedelta
    reason: str
    on: tuple[str, ...] = ("account", "rule")


#: What a person can do to an alert.
Action = Acknowledge | Snooze | Resolve | Mark | SilenceSimilar


@dataclass(frozen=True)
class Done:
    """What an action did: the alert as it is now, who acted, and whether it was news."""

    action: Action
    alert: Alert
    by: str
    #: False when it was so already (the same person gave the same verdict before).
    new: bool = True
    #: The silence a :class:`SilenceSimilar` added.
    silence: Silence | None = None


def find_alert(store: Store, ref: str) -> Alert:
    """The one alert ``ref`` names: its id (``12`` or ``#12``), its fingerprint, or the
    start of its fingerprint (4 characters or more, as short as is unique).

    Raises AlertNotFound, or AmbiguousAlert when the reference fits several alerts (an id
    that is also the start of another alert's fingerprint among them: ``#12`` is the id).
    """
    text = ref.strip().lower()
    if text.startswith("#") and text[1:].isdigit():
        found = store.alerts_by_ref(text[1:], prefix=False)
    elif text.isdigit() or (len(text) >= MIN_PREFIX and _HEX.fullmatch(text)):
        found = store.alerts_by_ref(text, prefix=len(text) >= MIN_PREFIX, limit=SHOWN_MATCHES)
    else:
        raise AlertNotFound(
            f"{ref!r} names no alert: give its id or {MIN_PREFIX} or more characters of its "
            "fingerprint"
        )
    if not found:
        raise AlertNotFound(f"no alert has the id or a fingerprint starting with {ref!r}")
    if len(found) == 1 or found[0].fingerprint == text:
        return found[0]
    listed = ", ".join(f"id {a.id} ({a.fingerprint[:12]}...)" for a in found)
    raise AmbiguousAlert(
        f"{ref!r} fits more than one alert: {listed}; give more characters of the "
        "fingerprint, or the id as #ID",
        tuple(a.fingerprint for a in found),
    )


class AlertActions:
    """A person's actions on the alerts of one store, at the time of one clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def find(self, ref: str, *, episode: int | None = None) -> Alert:
        """The one alert ``ref`` names (:func:`find_alert`); with ``episode``, only while it
        is still the episode the person saw (else StaleEpisode)."""
        alert = find_alert(self.store, ref)
        if episode is not None and alert.episode != episode:
            raise StaleEpisode(
                f"this is for another episode of alert {alert.id} ({alert.title} on "
                f"{alert.account_id}): it has come back as a new episode since it was shown "
                f"(episode {alert.episode}, not {episode}); look at it again before acting"
            )
        return alert

    def act(self, ref: str, action: Action, *, by: str, episode: int | None = None) -> Done:
        """Do ``action`` to the alert ``ref`` names, as ``by``.

        ``episode`` is the episode the person saw (a link's, a board page's): when the
        alert has come back as another one since, nothing is done (StaleEpisode).
        """
        who = _who(by)
        alert = self.find(ref, episode=episode)
        now = self.clock.now()
        match action:
            case Acknowledge():
                return self._change(action, alert, acknowledge, who, now)
            case Snooze(length=length):
                until = _after(now, length, "snooze")
                return self._change(
                    action, alert, lambda a, by, at: snooze(a, until, by, at), who, now
                )
            case Resolve():
                return self._change(action, alert, resolve, who, now)
            case Mark():
                return self._mark(action, alert, who, now)
            case SilenceSimilar():
                matchers = similar_matchers(alert, action.on)
                added = self.silence(matchers, action.length, reason=action.reason, by=who)
                self._log(alert, "silenced similar alerts", who, action.reason)
                return Done(action, alert, who, silence=added)
            case _:
                assert_never(action)

    def silence(
        self, matchers: Mapping[str, str], length: timedelta, *, reason: str, by: str
    ) -> Silence:
        """Mute the alerts ``matchers`` select (field -> glob) for ``length``, from now and
        from the next correlation pass on."""
        who = _who(by)
        unknown = sorted(set(matchers) - set(SILENCE_FIELDS))
        if unknown or not matchers:
            raise InvalidAction(
                f"a silence matches on one or more of {', '.join(SILENCE_FIELDS)}"
                + (f", not {', '.join(unknown)}" if unknown else "")
            )
        if not reason.strip():
            raise InvalidAction("say why you silence, for the next person: give a reason")
        if length <= timedelta(0):
            raise InvalidAction(f"a silence must last a while, not {length}")
        now = self.clock.now()
        silence = self.store.add_silence(
            Silence(
                matchers=dict(matchers),
                starts_at=now,
                ends_at=_after(now, length, "silence"),
                author=who,
                reason=reason.strip(),
                created_at=now,
            )
        )
        log.info("silence %s added by %s: %s", silence.id, who, silence.matchers)
        return silence

    def expire_silence(self, silence_id: int, *, by: str) -> None:
        """End an active silence now."""
        who = _who(by)
        if not self.store.expire_silence(silence_id, self.clock.now()):
            raise SilenceNotFound(f"no active silence has the id {silence_id}")
        log.info("silence %s expired by %s", silence_id, who)

    def _change(self, action: Action, alert: Alert, change: Change, by: str, now: datetime) -> Done:
        """Save ``change`` made to ``alert``, over the version it was read at; when it was
        written meanwhile, make the change again to the alert as it is now."""
        seen = alert.episode
        for _ in range(TRIES):
            saved = self.store.replace_alert(change(alert, by, now), alert.version)
            if saved is not None:
                log.info("alert %s (%s): %s by %s", saved.id, saved.fingerprint, saved.state, by)
                self._log(saved, _what(action, saved), by)
                return Done(action, saved, by)
            log.info("alert %s changed while %s acted on it: acting again", alert.id, by)
            alert = self.find(alert.fingerprint, episode=seen)
        raise AlertBusy(
            f"alert {alert.id} ({alert.title} on {alert.account_id}) was changed by someone "
            f"else each of {TRIES} times this was about to be saved; nothing was done: try again"
        )

    def _log(self, alert: Alert, what: str, by: str, detail: str = "") -> None:
        """Keep who did what for the account's timeline (the action log)."""
        self.store.log_action(
            LoggedAction(
                alert_fingerprint=alert.fingerprint,
                account_id=alert.account_id,
                episode=alert.episode,
                action=what,
                person=by,
                at=self.clock.now(),
                detail=storable(detail),
            )
        )

    def _mark(self, action: Mark, alert: Alert, by: str, now: datetime) -> Done:
        added = self.store.add_feedback(
            Feedback(
                alert_fingerprint=alert.fingerprint,
                rule=alert.rule,
                episode=alert.episode,
                verdict=action.verdict,
                author=by,
                note=action.note,
                created_at=now,
            )
        )
        log.info("alert %s (%s): marked %s by %s", alert.id, alert.fingerprint, action.verdict, by)
        if added:
            self._log(alert, f"marked {action.verdict}", by, action.note)
        return Done(action, alert, by, new=added)


def _what(action: Action, after: Alert) -> str:
    """An action as the timeline says it: acknowledged, snoozed until ..., resolved."""
    match action:
        case Snooze() if after.snoozed_until is not None:
            return f"snoozed until {after.snoozed_until:%Y-%m-%d %H:%M} UTC"
        case Resolve():
            return "resolved"
        case Acknowledge():
            return "acknowledged"
    return str(after.state)


def _after(now: datetime, length: timedelta, what: str) -> datetime:
    """When a snooze or silence of ``length`` from ``now`` ends; refused (InvalidAction)
    when that is past the last date there is, rather than an OverflowError."""
    try:
        return now + length
    except OverflowError:
        raise InvalidAction(
            f"a {what} of {length.days} days would end after the year 9999: give a shorter one"
        ) from None


def _who(by: str) -> str:
    who = storable(by.strip())  # on record with the alert: a NUL byte as U+FFFD
    if not who:
        raise InvalidAction("say who acts: every action on an alert records its person")
    return who
