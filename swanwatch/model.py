"""The records that flow through Swanwatch: plain, typed, immutable, no I/O."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from swanwatch.clock import ensure_utc

#: A JSON value as stored in evidence and watcher state.
JSON = Any


def _aware_utc(value: datetime) -> datetime:
    return ensure_utc(value)


UTCDateTime = Annotated[datetime, AfterValidator(_aware_utc)]


def fingerprint(*parts: str) -> str:
    """A stable short hash of ``parts``: the identity that unique constraints key on."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()
    return digest[:32]


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
    model_config = ConfigDict(frozen=True, extra="forbid")


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

    account_id: str
    kind: str = Field(min_length=1)
    key: str = ""
    strength: float = Field(ge=0.0, le=1.0)
    observed_at: UTCDateTime
    summary: str = Field(min_length=1, description="One sentence a CSM understands.")
    evidence: dict[str, JSON] = Field(default_factory=dict)
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


class Alert(_Record):
    """A compound risk on one account under one rule, with its lifecycle state."""

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
    id: int | None = None

    @property
    def open(self) -> bool:
        return self.state != AlertState.RESOLVED


class Silence(_Record):
    """Mutes the alerts its matchers select until ``ends_at``; matchers are field -> glob
    over account, rule, kind, owner and segment."""

    id: int | None = None
    matchers: dict[str, str]
    starts_at: UTCDateTime
    ends_at: UTCDateTime
    author: str = Field(min_length=1)
    reason: str = Field(min_length=1)
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
    author: str
    note: str = ""
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


class Message(_Record):
    """What a notifier sends: a rendered alert, channel-neutral."""

    title: str
    body: str = Field(description="Markdown text.")
    severity: Severity
    idempotency_key: str
    account_id: str = ""
    alert_fingerprint: str = ""
    event: str = "firing"


class Notification(_Record):
    """One message for one channel, stored in the outbox before it is sent."""

    id: int
    idempotency_key: str
    alert_fingerprint: str
    account_id: str = ""
    channel: str
    event: str
    severity: Severity
    title: str
    body: str
    status: NotificationStatus
    attempts: int
    next_attempt_at: UTCDateTime
    last_error: str | None = None
    created_at: UTCDateTime
    sent_at: UTCDateTime | None = None

    def message(self) -> Message:
        return Message(
            title=self.title,
            body=self.body,
            severity=self.severity,
            idempotency_key=self.idempotency_key,
            account_id=self.account_id,
            alert_fingerprint=self.alert_fingerprint,
            event=self.event,
        )


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


class Unknown(_Record):
    """An account a watcher could not judge, and why: never mistaken for healthy."""

    watcher: str
    account_id: str
    key: str = ""
    reason: str
    first_seen: UTCDateTime
    last_seen: UTCDateTime
