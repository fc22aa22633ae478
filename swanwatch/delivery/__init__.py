"""Delivery: route notices to channels, render them, keep them in the outbox, send them.

Every notification is written to the store before it is sent. The worker leases due
notifications, sends each through its channel's notifier, and marks it sent, or schedules a
retry with exponential backoff, or dead-letters it after ``max_attempts``. The idempotency
key (alert, episode, event, severity, repeat, channel) makes enqueueing the same decision
twice, from a restart or a second replica, a no-op.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from swanwatch import plugins
from swanwatch.alerts import Notice
from swanwatch.clock import Clock
from swanwatch.config import Config, NotifyConfig
from swanwatch.errors import PluginError
from swanwatch.interfaces import DeliveryResult, Notifier
from swanwatch.model import Alert, Notification, Severity
from swanwatch.store import NewNotification, Store

log = logging.getLogger("swanwatch.delivery")

#: The account id of Swanwatch's own (ops) alerts.
OPS_ACCOUNT = "@swanwatch"
#: The built-in channel that prints to standard output when ``notify.console`` is on.
CONSOLE = "console"


def channels_for(alert: Alert, config: NotifyConfig) -> list[str]:
    """The channels a notice about ``alert`` goes to."""
    listed = config.ops_channels if alert.account_id == OPS_ACCOUNT else config.default_channels
    names = list(config.channels) if listed is None else list(listed)
    chosen = [n for n in names if alert.severity.rank >= config.channels[n].min_severity.rank]
    if config.console:
        chosen.insert(0, CONSOLE)
    return chosen


_EVENT_WORD = {
    "firing": "",
    "escalated": "escalated: ",
    "repeat": "still open: ",
    "resolved": "resolved: ",
}
_SEVERITY_MARK = {
    Severity.INFO: "INFO",
    Severity.WARNING: "WARNING",
    Severity.HIGH: "HIGH",
    Severity.CRITICAL: "CRITICAL",
}


def render(notice: Notice, account_name: str | None = None) -> tuple[str, str]:
    """A notice as (title, markdown body): severity, account, stake, why now, the play."""
    alert = notice.alert
    who = account_name or alert.account_id
    event = _EVENT_WORD.get(notice.event, "")
    title = f"[{_SEVERITY_MARK[alert.severity]}] {event}{who}: {alert.title}"
    if notice.event == "resolved":
        return title, f"The signals behind **{alert.title}** for **{who}** have cleared."
    stake = alert.at_stake
    lines = [f"**{who}**: {alert.title} (risk {alert.score:.0%})"]
    facts = []
    if stake.get("arr"):
        facts.append(f"ARR ${float(stake['arr']):,.0f}")
    if stake.get("renewal_date"):
        facts.append(f"renewal {stake['renewal_date']} ({stake.get('days_to_renewal')} days)")
    if stake.get("owner"):
        facts.append(f"owner {stake['owner']}")
    if facts:
        lines.append("At stake: " + ", ".join(facts))
    lines.append("")
    lines.append("Why now:")
    new = set(notice.new_signals)
    for contribution, why in zip(alert.contributions, alert.why_now, strict=False):
        mark = " (new)" if contribution.fingerprint in new and notice.event != "firing" else ""
        lines.append(f"- {why}{mark}")
    lines.extend(f"- {why}" for why in alert.why_now[len(alert.contributions) :])
    if alert.play:
        lines.append("")
        lines.append("The play:")
        lines.extend(f"- {step}" for step in alert.play)
    return title, "\n".join(lines)


def outbox_entries(
    notices: Iterable[Notice],
    config: NotifyConfig,
    now: datetime,
    account_names: Mapping[str, str] | None = None,
) -> list[NewNotification]:
    """One outbox entry per notice and channel, keyed for idempotency."""
    names = account_names or {}
    out = []
    for notice in notices:
        alert = notice.alert
        if notice.event == "resolved" and not config.send_resolved:
            continue
        title, body = render(notice, names.get(alert.account_id))
        for channel in channels_for(alert, config):
            key = ":".join(
                (
                    alert.fingerprint,
                    f"e{alert.episode}",
                    notice.event,
                    str(alert.severity),
                    f"n{alert.notify_count}",
                    channel,
                )
            )
            out.append(
                NewNotification(
                    idempotency_key=key,
                    alert_fingerprint=alert.fingerprint,
                    account_id=alert.account_id,
                    channel=channel,
                    event=notice.event,
                    severity=alert.severity,
                    title=title,
                    body=body,
                    due_at=now,
                )
            )
    return out


@dataclass
class DeliveryStats:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0


class DeliveryWorker:
    """Sends due notifications from the outbox through their channels' notifiers."""

    def __init__(self, config: Config, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self._notifiers: dict[str, Notifier] = {}

    def notifier(self, channel: str) -> Notifier:
        if channel not in self._notifiers:
            if channel == CONSOLE:
                cls = plugins.notifier_class("console")
                options = cls.Options.model_validate({})
            else:
                spec = self.config.notify.channels.get(channel)
                if spec is None:
                    raise PluginError(f"channel {channel!r} is no longer in notify.channels")
                cls = plugins.notifier_class(spec.notifier_type)
                options = cls.Options.model_validate(spec.notifier_options)
            self._notifiers[channel] = cls(channel, options)
        return self._notifiers[channel]

    async def run_once(
        self, limit: int = 200, lease: timedelta = timedelta(minutes=5)
    ) -> DeliveryStats:
        """Send what is due now; returns what happened."""
        stats = DeliveryStats()
        now = self.clock.now()
        batch = await asyncio.to_thread(
            self.store.claim_notifications, now, self.owner, lease, limit
        )
        for note in batch:
            result = await self._send(note)
            await self._record(note, result, stats)
        return stats

    async def _send(self, note: Notification) -> DeliveryResult:
        try:
            notifier = self.notifier(note.channel)
            return await notifier.send(note.message())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a notifier bug is this notification's failure, not the daemon's
            log.exception("channel %s failed on notification %s", note.channel, note.id)
            return DeliveryResult(ok=False, reason=f"{type(exc).__name__}: {exc}")

    async def _record(
        self, note: Notification, result: DeliveryResult, stats: DeliveryStats
    ) -> None:
        now = self.clock.now()
        notify = self.config.notify
        if result.ok:
            await asyncio.to_thread(self.store.mark_sent, note.id, now)
            stats.sent += 1
            return
        attempts = note.attempts + 1
        if attempts >= notify.max_attempts:
            await asyncio.to_thread(self.store.mark_failed, note.id, result.reason, None)
            stats.dead += 1
            log.error(
                "notification %s to %s dead-lettered after %d tries: %s",
                note.id,
                note.channel,
                attempts,
                result.reason,
            )
            return
        backoff = min(notify.retry_backoff * (2 ** (attempts - 1)), notify.retry_backoff_max)
        if result.retry_after_s is not None:
            backoff = max(backoff, timedelta(seconds=result.retry_after_s))
        await asyncio.to_thread(self.store.mark_failed, note.id, result.reason, now + backoff)
        stats.retried += 1
        log.warning(
            "notification %s to %s failed (try %d of %d), retry in %s: %s",
            note.id,
            note.channel,
            attempts,
            notify.max_attempts,
            backoff,
            result.reason,
        )
