"""The records that flow through Swanwatch: plain, typed, immutable, no I/O."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from swanwatch.clock import ensure_utc

#: A JSON value as stored in evidence and watcher state.
JSON = Any


def _aware_utc(value: datetime) -> datetime:
    return ensure_utc(value)


UTCDateTime = Annotated[datetime, AfterValidator(_aware_utc)]

#: What a NUL byte (0x00) in stored text is kept as: PostgreSQL stores none in text or
#: JSON, so a CRM export, a WHOIS answer or a plugin's text with one would fail its whole
#: write there. The same on every store.
NUL_STANDS_IN = "\ufffd"


def storable(text: str) -> str:
    """``text`` as a store keeps it: a NUL byte as :data:`NUL_STANDS_IN`."""
    return text.replace("\x00", NUL_STANDS_IN) if "\x00" in text else text


def storable_json(value: JSON) -> JSON:
    """A JSON value with every text in it (keys too) :func:`storable`."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, dict):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable_json(v) for v in value]
    return value


#: Text a record keeps as a store can: see :func:`storable`.
StorableText = Annotated[str, AfterValidator(storable)]


def fingerprint(*parts: str) -> str:
    """A stable short hash of ``parts``: the identity that unique constraints key on."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


def alert_fingerprint(account_id: str, rule: str) -> str:
    """The identity of one of Swanwatch's own alerts: one per (ops account, rule)."""
    return fingerprint("alert", account_id, rule)


#: The rule part of an account alert's fingerprint: every rule of an account is one alert.
ACCOUNT_ALERT = "*"


def account_alert_fingerprint(account_id: str) -> str:
    """The identity of an account's alert: one per account, whatever rules hold."""
    return alert_fingerprint(account_id, ACCOUNT_ALERT)


def arr_at_risk(arr: float, score: float) -> float:
    """ARR at risk, the one definition: the account's ARR times its risk score (0..1).

    The board, ``risk report``, the digests and the alerts all use it, with the raw ARR
    shown beside it.
    """
    return round(arr * max(0.0, min(1.0, score)), 2)


class Severity(StrEnum):
    """How urgent an alert is; compare with :meth:`rank`."""

    INFO = "info"
    WARNING = "warning"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Account(_Record):
    """A customer account, as the accounts source describes it."""

    id: str = Field(min_length=1)
    name: str = ""
    domains: tuple[str, ...] = ()
    owner: str | None = Field(None, description="The owning CSM: e-mail address or chat handle.")
    segment: str | None = None
    arr: float = Field(0.0, ge=0, description="Annual recurring revenue.")
    renewal_date: date | None = None
    tags: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.name or self.id

    def days_to_renewal(self, now: datetime) -> int | None:
        if self.renewal_date is None:
            return None
        return (self.renewal_date - now.date()).days


class Signal(_Record):
    """One weak fact about one account, graded 0..1, as a watcher yields it.

    ``key`` tells apart several signals of one kind on one account (one per domain, metric
    or contact). ``observed_at`` is when the underlying fact happened or was seen; the signal's
    weight decays from then with ``half_life_days`` (or the kind's configured half-life).
    """

    account_id: StorableText
    kind: StorableText = Field(min_length=1)
    key: StorableText = ""
    strength: float = Field(ge=0.0, le=1.0)
    observed_at: UTCDateTime
    summary: StorableText = Field(min_length=1, description="One sentence a CSM understands.")
    evidence: Annotated[dict[str, JSON], AfterValidator(storable_json)] = Field(
        default_factory=dict
    )
    half_life_days: float | None = Field(None, gt=0)
    watcher: str = Field("", description="The watcher instance; set by the runner.")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.watcher, self.account_id, self.kind, self.key)


class StoredSignal(Signal):
    """A signal as the store keeps it: with when it was first and last seen, and cleared."""

    first_seen: UTCDateTime
    last_seen: UTCDateTime
    cleared_at: UTCDateTime | None = None

    @property
    def active(self) -> bool:
        return self.cleared_at is None


class ActiveSignal:
    """An active signal as a correlation pass reads it from the store: plain slots, not a
    validated record (the row was validated when it was stored), so that a pass over a
    large book stays light. Its evidence is parsed from its JSON text when first asked for
    (only rules with ``where`` look at it)."""

    __slots__ = (
        "account_id",
        "fingerprint",
        "half_life_days",
        "key",
        "kind",
        "observed_at",
        "raw_evidence",
        "strength",
        "summary",
        "watcher",
    )

    def __init__(
        self,
        fingerprint: str,
        watcher: str,
        account_id: str,
        kind: str,
        key: str,
        strength: float,
        observed_at: datetime,
        summary: str,
        raw_evidence: str | dict[str, JSON] | None,
        half_life_days: float | None,
    ) -> None:
        self.fingerprint = fingerprint
        self.watcher = watcher
        self.account_id = account_id
        self.kind = kind
        self.key = key
        self.strength = strength
        self.observed_at = observed_at
        self.summary = summary
        self.raw_evidence = raw_evidence
        self.half_life_days = half_life_days

    @property
    def evidence(self) -> dict[str, JSON]:
        raw = self.raw_evidence
        if raw is None or isinstance(raw, dict):
            return raw or {}
        if raw == "{}":  # most signals: no need to parse
            self.raw_evidence = {}
            return self.raw_evidence
        parsed = json.loads(raw)
        value: dict[str, JSON] = parsed if isinstance(parsed, dict) else {}
        self.raw_evidence = value
        return value


class AlertState(StrEnum):
    """Where an alert is in its lifecycle."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    SNOOZED = "snoozed"
    RESOLVED = "resolved"


class Contribution(_Record):
    """One signal's share in an alert: what it is and how much it weighed."""

    fingerprint: str
    kind: str
    key: str = ""
    summary: str
    strength: float
    weight: float
    decay: float
    age_days: float
    observed_at: UTCDateTime

    @property
    def effective(self) -> float:
        return self.weight * self.strength * self.decay


class Reason(_Record):
    """A rule that holds for an account's alert: the most severe names the alert, the
    others are its further reasons."""

    rule: str
    title: str
    severity: Severity
    #: When the rule joined the alert (set by the lifecycle; None on a candidate).
    since: UTCDateTime | None = None


class Alert(_Record):
    """An account's compound risk, with its lifecycle state: one open alert per account.

    ``rule`` and ``title`` are those of its most severe reason; ``reasons`` lists every rule
    that holds, most severe first.
    """

    fingerprint: str
    account_id: str
    rule: str
    title: str
    severity: Severity
    score: float = Field(ge=0.0, le=1.0)
    state: AlertState = AlertState.FIRING
    contributions: tuple[Contribution, ...] = ()
    why_now: tuple[str, ...] = ()
    play: tuple[str, ...] = ()
    at_stake: dict[str, JSON] = Field(default_factory=dict)
    episode: int = 1
    started_at: UTCDateTime
    updated_at: UTCDateTime
    resolved_at: UTCDateTime | None = None
    clear_since: UTCDateTime | None = None
    snoozed_until: UTCDateTime | None = None
    last_notified_at: UTCDateTime | None = None
    last_notified_severity: Severity | None = None
    notify_count: int = 0
    notified_signals: tuple[str, ...] = ()
    #: Why notices are held back: "silence 3", "inhibited by <rule>"; None when not muted.
    muted_by: str | None = None
    #: Who acknowledged, snoozed or resolved it by hand.
    acted_by: str | None = None
    #: How often it came back soon after resolving (flapping).
    flaps: int = 0
    #: How many times it was written: a write is made only over the version it was read
    #: at, so a correlation pass never overwrites a person's action (nor one the other).
    version: int = 0
    #: Every rule that holds, most severe first (the first names the alert).
    reasons: tuple[Reason, ...] = ()
    id: int | None = None

    @field_validator("reasons", mode="before")
    @classmethod
    def _no_reasons(cls, value: object) -> object:
        return () if value is None else value  # rows from before reasons were kept

    @property
    def open(self) -> bool:
        return self.state != AlertState.RESOLVED


class Silence(_Record):
    """Mutes the alerts its matchers select until ``ends_at``; matchers are field -> glob
    over account, rule, kind, owner and segment."""

    id: int | None = None
    matchers: Annotated[dict[str, str], AfterValidator(storable_json)]
    starts_at: UTCDateTime
    ends_at: UTCDateTime
    author: StorableText = Field(min_length=1)
    reason: StorableText = Field(min_length=1)
    created_at: UTCDateTime

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


class Verdict(StrEnum):
    """A CSM's feedback on an alert."""

    USEFUL = "useful"
    NOISE = "noise"
    ACTED = "acted"


class Feedback(_Record):
    """One person's verdict on one episode of an alert."""

    alert_fingerprint: str
    rule: str
    episode: int
    verdict: Verdict
    author: StorableText
    note: StorableText = ""
    created_at: UTCDateTime


class NoticeEvent(StrEnum):
    """Why a notification is sent: an alert's news, or a leaders' digest."""

    FIRING = "firing"
    ESCALATED = "escalated"
    REPEAT = "repeat"
    REMINDER = "reminder"
    RESOLVED = "resolved"
    DIGEST = "digest"


class NotificationStatus(StrEnum):
    """Where a notification is in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    DEAD = "dead"
    #: Not sent: before it went out, a person took its alert in hand (resolved,
    #: acknowledged, snoozed), a silence muted it, or a later episode began.
    WITHDRAWN = "withdrawn"


class GroupKind(StrEnum):
    """Why a notification goes out together with the others of its group key."""

    #: On its own.
    NONE = "none"
    #: A route's group_wait and group_interval: a burst becomes one message.
    GROUP = "group"
    #: A route's daily digest of low severities.
    DIGEST = "digest"
    #: Held back over quiet hours.
    QUIET = "quiet"


class Message(_Record):
    """What a notifier sends: a rendered alert, channel-neutral."""

    title: str
    body: str = Field(description="Markdown text.")
    severity: Severity
    idempotency_key: str
    account_id: str = ""
    alert_fingerprint: str = ""
    event: str = "firing"


class AlertNotice(_Record):
    """An alert's news for one channel, as it was decided; rendered when it is sent, so
    that its action links are fresh and a group becomes one message."""

    kind: Literal["alert"] = "alert"
    alert: Alert
    event: NoticeEvent
    label: str = Field(description="The account's display name.")
    new_signals: tuple[str, ...] = Field(
        (), description="Contribution fingerprints that are new since the last notice."
    )
    whats_new: tuple[str, ...] = Field(
        (), description="What changed since the last notice, told first (an update)."
    )
    who: str = Field(description="Who acts through the links: an owner, or channel:<name>.")


class DigestWeek(_Record):
    """One bar of the leaders' chart: ARR at risk at the end of a week."""

    label: str
    arr: float
    top: float

    def bar(self, height: int) -> int:
        return max(1, round(height * self.arr / self.top)) if self.top > 0 else 1


class DigestItem(_Record):
    """One alert in the leaders' digest."""

    label: str
    title: str
    severity: str
    arr: float
    #: ARR x score (:func:`arr_at_risk`); the raw ARR is shown beside it.
    at_risk: float = 0.0


class DigestPlay(_Record):
    """An acknowledged alert with its play: someone is on it."""

    label: str
    play: str
    by: str


_SPARK = "▁▂▃▄▅▆▇█"


class LeadersReport(_Record):
    """What the leaders' weekly digest says for one week."""

    title: str
    weekday: str
    #: ARR x score summed over the accounts at risk (:func:`arr_at_risk`).
    arr_at_risk: float
    previous_arr: float
    accounts_at_risk: int
    #: The whole ARR of the accounts at risk, shown beside ARR at risk.
    arr_of_accounts: float = 0.0
    weeks: tuple[DigestWeek, ...] = ()
    new: tuple[DigestItem, ...] = ()
    escalated: tuple[DigestItem, ...] = ()
    resolved: tuple[DigestItem, ...] = ()
    plays: tuple[DigestPlay, ...] = ()

    @property
    def change_text(self) -> str:
        delta = self.arr_at_risk - self.previous_arr
        if abs(delta) < 0.5:
            return "unchanged"
        return f"{'up' if delta > 0 else 'down'} ${abs(delta):,.0f}"

    @property
    def sparkline(self) -> str:
        top = max((w.arr for w in self.weeks), default=0.0)
        if top <= 0:
            return _SPARK[0] * len(self.weeks)
        return "".join(_SPARK[min(7, int(w.arr / top * 7.999))] for w in self.weeks)


class LeadersNotice(_Record):
    """The leaders' weekly digest for one channel; rendered when it is sent."""

    kind: Literal["leaders"] = "leaders"
    report: LeadersReport


class RenderedNotice(_Record):
    """A notification queued as finished text, before rendering moved to send time (the
    store's migration 0005 keeps those this way): sent as it is."""

    kind: Literal["rendered"] = "rendered"
    body: str


#: What a notification tells, stored with it as JSON and validated back when it is sent.
NoticePayload = Annotated[AlertNotice | LeadersNotice | RenderedNotice, Field(discriminator="kind")]


class _Outgoing(_Record):
    """What the outbox knows of a notification from the moment it is queued."""

    idempotency_key: str = Field(
        description="Unique in the outbox: queueing the same decision twice is a no-op; "
        "sent along as an Idempotency-Key header to webhooks."
    )
    alert_fingerprint: str
    account_id: str = ""
    channel: str
    event: NoticeEvent
    severity: Severity
    title: str = Field(
        description="The message's title, for listing; the body is rendered "
        "when the notification is sent."
    )
    route: str = Field("", description="The route that chose the channel (pacing, fallback).")
    group_kind: GroupKind = GroupKind.NONE
    group_key: str = Field("", description="Sent together: the same group kind and key.")
    fallback: str | None = Field(
        None, description="The channel to hand it to when its own keeps failing."
    )
    payload: NoticePayload
    created_at: UTCDateTime


class OutboxEntry(_Outgoing):
    """A notification to put in the outbox, due at ``due_at`` (the store gives it an id)."""

    due_at: UTCDateTime


class Notification(_Outgoing):
    """One notification in the outbox: what was queued, where it is, and who holds it.

    A sender holds a claim (``lease_owner`` and ``lease_token``, which counts the claims)
    until ``lease_until``; the store records an outcome only for the claim's current
    holder, so a sender whose lease ran out and was taken over cannot overwrite it.
    """

    id: int
    status: NotificationStatus
    attempts: int
    next_attempt_at: UTCDateTime
    last_error: str | None = None
    sent_at: UTCDateTime | None = None
    lease_owner: str | None = None
    lease_token: int = 0
    lease_until: UTCDateTime | None = None


class WatcherRun(_Record):
    """The outcome of one run of one watcher instance."""

    instance: str
    started_at: UTCDateTime
    finished_at: UTCDateTime
    ok: bool
    signals: int = 0
    unknowns: int = 0
    error: str | None = None
    traceback: str | None = None
    #: Why an ok run judged nothing: a source it needs is suspect, stale or broken (its
    #: accounts are then unknown, and its signals are kept, not cleared).
    held: str | None = None


class SourceState(StrEnum):
    """How a source's last read went: one health for every source, whatever reads it."""

    #: Read whole, as many rows as before (give or take), fresh enough.
    OK = "ok"
    #: Read, but with malformed rows, or far fewer rows than the last good read.
    SUSPECT = "suspect"
    #: Read, but its newest dated row is older than its watchers expect.
    STALE = "stale"
    #: Not read: unreadable, an unclosed quote, a bad encoding, a failed query or request.
    BROKEN = "broken"


class SourceHealth(_Record):
    """A source as its last read left it. Only an ok read becomes the new last good read,
    the one a later read's row count is compared with."""

    source: str
    state: SourceState = SourceState.OK
    #: What is wrong, in one line, naming the file and line or the counts; "" when ok.
    reason: StorableText = ""
    #: Rows the last read gave (None when it failed).
    rows: int | None = None
    #: Malformed rows the last read skipped.
    malformed: int = 0
    #: The newest date among the rows of the last read (for a dated source).
    newest: date | None = None
    #: Rows of the last good read, and when it was.
    good_rows: int | None = None
    good_at: UTCDateTime | None = None
    #: Reads in a row that were not ok.
    bad_reads: int = 0
    #: When the source entered its present state.
    since: UTCDateTime
    checked_at: UTCDateTime

    @property
    def ok(self) -> bool:
        return self.state == SourceState.OK


class Unknown(_Record):
    """An account a watcher could not judge, and why: never mistaken for healthy."""

    watcher: str
    account_id: str
    key: str = ""
    reason: str
    first_seen: UTCDateTime
    last_seen: UTCDateTime
