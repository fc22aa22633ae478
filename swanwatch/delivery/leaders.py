"""The leaders' weekly digest: per team or segment, ARR at risk and how it moved, the new,
escalated and resolved risks, and the plays in flight; HTML e-mail with a bar chart of the
weeks before, or chat markdown with a sparkline.

It goes through the outbox like any notification, keyed by (digest, week, channel), so the
daemon's job can run as often as it likes and a restart never sends a week twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from swanwatch.alerts import OPS_ACCOUNT
from swanwatch.config import LeadersDigestConfig, NotifyConfig
from swanwatch.delivery.pacing import next_local
from swanwatch.model import (
    Account,
    Alert,
    AlertState,
    DigestItem,
    DigestPlay,
    DigestWeek,
    LeadersNotice,
    LeadersReport,
    NoticeEvent,
    OutboxEntry,
    Severity,
    arr_at_risk,
)

#: Resolved without a word: the account left the list, or merged into its account's alert.
_QUIET = ("retired:", "merged into ")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
#: A digest whose slot passed longer ago than this (the daemon was down) is skipped.
CATCH_UP = timedelta(days=1)


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


@dataclass(frozen=True)
class _Scope:
    """The alerts a digest covers, with the accounts they are on."""

    alerts: list[Alert]
    accounts: Mapping[str, Account]

    def label(self, a: Alert) -> str:
        account = self.accounts.get(a.account_id)
        return account.label if account else a.account_id

    def arr(self, a: Alert) -> float:
        return _arr(a, self.accounts.get(a.account_id))

    def at_risk(self, when: datetime) -> tuple[float, int, float]:
        """ARR at risk at ``when`` (ARR x score, each account once, at its riskiest open
        alert), on how many accounts, and their whole ARR."""
        by_account: dict[str, tuple[float, float]] = {}
        for a in self.alerts:
            if _open_at(a, when):
                arr = self.arr(a)
                risk = arr_at_risk(arr, a.score)
                if risk >= by_account.get(a.account_id, (-1.0, 0.0))[0]:
                    by_account[a.account_id] = (risk, arr)
        risks = by_account.values()
        return sum(r for r, _ in risks), len(by_account), sum(arr for _, arr in risks)

    def item(self, a: Alert) -> DigestItem:
        arr = self.arr(a)
        return DigestItem(
            label=self.label(a),
            title=a.title,
            severity=str(a.severity),
            arr=arr,
            at_risk=arr_at_risk(arr, a.score),
        )

    def items(self, alerts: Iterable[Alert]) -> tuple[DigestItem, ...]:
        """Each account once (its first alert in ``alerts``)."""
        seen: dict[str, DigestItem] = {}
        for a in alerts:
            if a.account_id not in seen:
                seen[a.account_id] = self.item(a)
        return tuple(seen.values())

    def play(self, a: Alert) -> DigestPlay:
        play = a.play[0] if a.play else a.title
        return DigestPlay(label=self.label(a), play=play, by=(a.acted_by or "").partition(":")[2])

    def weeks(self, count: int, slot: datetime, zone: ZoneInfo) -> list[DigestWeek]:
        ends = [slot - timedelta(days=7 * k) for k in range(count - 1, -1, -1)]
        series = [self.at_risk(t)[0] for t in ends]
        top = max(series, default=0.0)
        return [
            DigestWeek(label=f"{t.astimezone(zone):%d %b}", arr=arr, top=top)
            for t, arr in zip(ends, series, strict=True)
        ]


def leaders_report(
    spec: LeadersDigestConfig,
    alerts: Sequence[Alert],
    accounts: Mapping[str, Account],
    events: Iterable[tuple[str, str, datetime]],
    slot: datetime,
) -> LeadersReport:
    """The digest for the week ending at ``slot`` (pure)."""
    scope = _Scope([a for a in alerts if _in_scope(spec, a, accounts.get(a.account_id))], accounts)
    start = slot - timedelta(days=7)
    zone = ZoneInfo(spec.timezone)
    now_arr, now_accounts, now_total = scope.at_risk(slot)
    fps = {a.fingerprint for a in scope.alerts}
    escalated = {fp for fp, event, _at in events if event == NoticeEvent.ESCALATED and fp in fps}
    order = sorted(scope.alerts, key=lambda a: (-a.severity.rank, -scope.arr(a)))
    covers = ", ".join([*spec.segments, *spec.owners]) or "all accounts"
    return LeadersReport(
        title=f"Swanwatch weekly: {spec.name} ({covers}), week to {slot.astimezone(zone):%d %b %Y}",
        weekday=spec.weekday.capitalize(),
        arr_at_risk=now_arr,
        arr_of_accounts=now_total,
        previous_arr=scope.at_risk(start)[0],
        accounts_at_risk=now_accounts,
        weeks=tuple(scope.weeks(spec.weeks, slot, zone)),
        new=scope.items(a for a in order if start <= a.started_at < slot),
        escalated=scope.items(a for a in order if a.fingerprint in escalated),
        resolved=scope.items(
            a
            for a in order
            if a.resolved_at is not None
            and start <= a.resolved_at < slot
            and not (a.acted_by or "").startswith(_QUIET)
        ),
        plays=tuple(
            scope.play(a) for a in order if a.state == AlertState.ACKNOWLEDGED and _open_at(a, slot)
        ),
    )


def leaders_entries(
    config: NotifyConfig,
    alerts: Sequence[Alert],
    accounts: Mapping[str, Account],
    events: Iterable[tuple[str, str, datetime]],
    now: datetime,
    *,
    only: str | None = None,
    force: bool = False,
) -> list[OutboxEntry]:
    """The outbox entries of the leaders' digests due now (all, or ``only`` one by name),
    one per digest and channel; each is rendered when it is sent, for its channel.

    ``force`` sends the latest week even when its slot is older than the catch-up window.
    """
    out: list[OutboxEntry] = []
    events = list(events)
    for spec in config.leaders:
        if only is not None and spec.name != only:
            continue
        slot = last_slot(spec, now)
        if not force and now - slot > CATCH_UP:
            continue
        report = leaders_report(spec, alerts, accounts, events, slot)
        week = f"{slot.astimezone(UTC):%Y-%m-%d}"
        out.extend(
            OutboxEntry(
                idempotency_key=f"leaders:{spec.name}:{week}:{channel}",
                alert_fingerprint=f"leaders:{spec.name}",
                channel=channel,
                event=NoticeEvent.DIGEST,
                severity=Severity.INFO,
                title=report.title,
                route=f"leaders:{spec.name}",
                payload=LeadersNotice(report=report),
                created_at=now,
                due_at=now,
            )
            for channel in spec.channels
        )
    return out
