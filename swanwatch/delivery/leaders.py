"""The leaders' weekly digest: per team or segment, ARR at risk and how it moved, the new,
escalated and resolved risks, and the plays in flight; HTML e-mail with a bar chart of the
weeks before, or chat markdown with a sparkline.

It goes through the outbox like any notification, keyed by (digest, week, channel), so the
daemon's job can run as often as it likes and a restart never sends a week twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from swanwatch.alerts import OPS_ACCOUNT
from swanwatch.config import LeadersDigestConfig, NotifyConfig
from swanwatch.delivery.pacing import next_local
from swanwatch.delivery.render import Renderer
from swanwatch.model import Account, Alert, AlertState, Severity
from swanwatch.store import NewNotification

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPARK = "▁▂▃▄▅▆▇█"
#: A digest whose slot passed longer ago than this (the daemon was down) is skipped.
CATCH_UP = timedelta(days=1)


@dataclass(frozen=True)
class Week:
    """One bar of the chart: ARR at risk at the end of a week."""

    label: str
    arr: float
    top: float

    def bar(self, height: int) -> int:
        return max(1, round(height * self.arr / self.top)) if self.top > 0 else 1


@dataclass(frozen=True)
class Item:
    """One alert in the digest."""

    label: str
    title: str
    severity: str
    arr: float


@dataclass(frozen=True)
class Play:
    """An acknowledged alert with its play: someone is on it."""

    label: str
    play: str
    by: str


@dataclass
class LeadersReport:
    """What the leaders' digest says for one week."""

    title: str
    weekday: str
    arr_at_risk: float
    previous_arr: float
    accounts_at_risk: int
    weeks: list[Week] = field(default_factory=list)
    new: list[Item] = field(default_factory=list)
    escalated: list[Item] = field(default_factory=list)
    resolved: list[Item] = field(default_factory=list)
    plays: list[Play] = field(default_factory=list)

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


def last_slot(spec: LeadersDigestConfig, now: datetime) -> datetime:
    """The latest scheduled instant of the digest at or before ``now``."""
    zone = ZoneInfo(spec.timezone)
    target = _WEEKDAYS.index(spec.weekday)
    probe = now - timedelta(days=8)
    latest = probe
    while True:
        candidate = next_local(spec.at, zone, probe)
        if candidate > now:
            return latest
        if candidate.astimezone(zone).weekday() == target:
            latest = candidate
        probe = candidate


def _in_scope(spec: LeadersDigestConfig, alert: Alert, account: Account | None) -> bool:
    if alert.account_id == OPS_ACCOUNT:
        return False
    segment = (account.segment if account else None) or alert.at_stake.get("segment")
    owner = (account.owner if account else None) or alert.at_stake.get("owner")
    if spec.segments and segment not in spec.segments:
        return False
    return not (spec.owners and owner not in spec.owners)


def _arr(alert: Alert, account: Account | None) -> float:
    if account is not None:
        return account.arr
    value = alert.at_stake.get("arr")
    return float(value) if isinstance(value, int | float) else 0.0


def _open_at(alert: Alert, when: datetime) -> bool:
    return alert.started_at <= when and (alert.resolved_at is None or alert.resolved_at > when)


def leaders_report(
    spec: LeadersDigestConfig,
    alerts: Sequence[Alert],
    accounts: Mapping[str, Account],
    events: Iterable[tuple[str, str, datetime]],
    slot: datetime,
) -> LeadersReport:
    """The digest for the week ending at ``slot`` (pure)."""
    scoped = [a for a in alerts if _in_scope(spec, a, accounts.get(a.account_id))]

    def label(a: Alert) -> str:
        account = accounts.get(a.account_id)
        return account.label if account else a.account_id

    def arr_at(when: datetime) -> tuple[float, int]:
        at_risk: dict[str, float] = {}
        for a in scoped:
            if _open_at(a, when):
                at_risk[a.account_id] = _arr(a, accounts.get(a.account_id))
        return sum(at_risk.values()), len(at_risk)

    def item(a: Alert) -> Item:
        return Item(label(a), a.title, str(a.severity), _arr(a, accounts.get(a.account_id)))

    start = slot - timedelta(days=7)
    values = [(slot - timedelta(days=7 * k)) for k in range(spec.weeks - 1, -1, -1)]
    series = [arr_at(t)[0] for t in values]
    top = max(series, default=0.0)
    zone = ZoneInfo(spec.timezone)
    weeks = [
        Week(f"{t.astimezone(zone):%d %b}", arr, top) for t, arr in zip(values, series, strict=True)
    ]
    now_arr, now_accounts = arr_at(slot)
    by_fp = {a.fingerprint: a for a in scoped}
    escalated_fps = {fp for fp, event, _at in events if event == "escalated" and fp in by_fp}
    order = sorted(scoped, key=lambda a: (-a.severity.rank, -_arr(a, accounts.get(a.account_id))))
    scope = ", ".join([*spec.segments, *spec.owners]) or "all accounts"
    return LeadersReport(
        title=f"Swanwatch weekly: {spec.name} ({scope}), week to {slot.astimezone(zone):%d %b %Y}",
        weekday=spec.weekday.capitalize(),
        arr_at_risk=now_arr,
        previous_arr=arr_at(start)[0],
        accounts_at_risk=now_accounts,
        weeks=weeks,
        new=[item(a) for a in order if start <= a.started_at < slot],
        escalated=[item(a) for a in order if a.fingerprint in escalated_fps],
        resolved=[
            item(a)
            for a in order
            if a.resolved_at is not None
            and start <= a.resolved_at < slot
            and not (a.acted_by or "").startswith("retired:")
        ],
        plays=[
            Play(label(a), a.play[0] if a.play else a.title, (a.acted_by or "").partition(":")[2])
            for a in order
            if a.state == AlertState.ACKNOWLEDGED and _open_at(a, slot)
        ],
    )


def leaders_entries(
    config: NotifyConfig,
    renderer: Renderer,
    alerts: Sequence[Alert],
    accounts: Mapping[str, Account],
    events: Iterable[tuple[str, str, datetime]],
    now: datetime,
    *,
    only: str | None = None,
    force: bool = False,
) -> list[NewNotification]:
    """The outbox entries of the leaders' digests due now (all, or ``only`` one by name).

    ``force`` sends the latest week even when its slot is older than the catch-up window.
    """
    out = []
    events = list(events)
    for spec in config.leaders:
        if only is not None and spec.name != only:
            continue
        slot = last_slot(spec, now)
        if not force and now - slot > CATCH_UP:
            continue
        report = leaders_report(spec, alerts, accounts, events, slot)
        for channel in spec.channels:
            channel_spec = config.channels.get(channel)
            fmt = channel_spec.render_format if channel_spec else "chat"
            suffix = {"chat": "md", "text": "txt", "email": "html"}[fmt]
            body = renderer.page(f"leaders.{suffix}.j2", r=report, chart_height=80)
            out.append(
                NewNotification(
                    idempotency_key=f"leaders:{spec.name}:{slot.astimezone(UTC):%Y-%m-%d}:{channel}",
                    alert_fingerprint=f"leaders:{spec.name}",
                    account_id="",
                    channel=channel,
                    event="digest",
                    severity=Severity.INFO,
                    title=report.title,
                    body=body,
                    due_at=now,
                    route=f"leaders:{spec.name}",
                    payload={"kind": "leaders", "format": fmt},
                )
            )
    return out
