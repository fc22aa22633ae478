"""The outbox worker: lease what is due, render and send each batch through its channel,
record it.

A batch is one notification, or all the leased notifications of one group (a burst under
group_wait, a digest, what quiet hours held back) for one channel, sent as one message,
rendered here and only here. Each channel is its own notifier, so each outcome is recorded
on its own: sent; failed and retried with exponential backoff; handed to the route's
fallback channel after ``fallback_after`` failed tries; or dead-lettered after
``max_attempts``. A sender that dies mid-send holds its lease until it expires; then
another sends it, and an outcome the first one reports afterwards is refused (``lost``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import jinja2
from pydantic import SecretStr

from swanwatch import plugins
from swanwatch.clock import Clock
from swanwatch.config import Config, format_for_url
from swanwatch.delivery.links import action_links
from swanwatch.delivery.render import Part, Renderer
from swanwatch.delivery.routing import CONSOLE, OWNER_PREFIX, owner_url, route_settings
from swanwatch.errors import PluginError
from swanwatch.interfaces import DeliveryResult, Notifier
from swanwatch.model import (
    AlertNotice,
    GroupKind,
    LeadersNotice,
    Message,
    NoticeEvent,
    Notification,
    OutboxEntry,
    RenderedNotice,
    fingerprint,
)
from swanwatch.redact import scrub, secret_parts
from swanwatch.store import Store

if TYPE_CHECKING:
    from swanwatch.metrics import Metrics

log = logging.getLogger("swanwatch.delivery")

#: Apprise body_format by channel format.
BODY_FORMAT = {"chat": "markdown", "text": "text", "email": "html"}
#: The heading of a message that carries several alerts, by why they were held together.
_HEADING = {
    GroupKind.DIGEST: "Digest: {n} alerts",
    GroupKind.QUIET: "{n} alerts held over quiet hours",
}

#: What a notification handed to its fallback channel keeps.
_KEPT_ON_FALLBACK = {"alert_fingerprint", "account_id", "event", "severity", "title", "route"}
#: What became of one notification in a pass.
Outcome = Literal["sent", "retried", "dead", "failed_over", "lost"]


def _secrets_of(notifier: Notifier) -> list[str]:
    """The notifier's secret options (an Apprise URL, a token), and their parts."""
    return [
        part
        for value in notifier.options.__dict__.values()
        if isinstance(value, SecretStr)
        for part in secret_parts(value.get_secret_value())
    ]


def renderer_for(config: Config) -> Renderer:
    """The renderer with the config's template folder, if any."""
    folder = config.notify.templates_dir
    return Renderer(config.resolve_path(folder) if folder else None)


@dataclass
class DeliveryStats:
    """What one delivery pass did. ``lost``: sent, but the claim ran out and another
    sender took the notification over before the outcome was recorded (it is theirs)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    failed_over: int = 0
    lost: int = 0

    def add(self, other: DeliveryStats) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.deferred += other.deferred
        self.failed_over += other.failed_over
        self.lost += other.lost

    def count(self, outcome: Outcome) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def tried(self) -> int:
        """Notifications a send was attempted for (deferred ones were not)."""
        return self.sent + self.retried + self.dead + self.failed_over + self.lost


class DeliveryWorker:
    """Sends due notifications from the outbox through their channels' notifiers."""

    def __init__(
        self, config: Config, store: Store, clock: Clock, metrics: Metrics | None = None
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.metrics = metrics  # told of each send and dead letter (the daemon's /metrics)
        self.owner = f"{socket.gethostname()}:{os.getpid()}"
        self.renderer = renderer_for(config)
        self.settings = route_settings(config.notify)
        self._notifiers: dict[str, Notifier] = {}

    # --- channels -------------------------------------------------------------------

    def channel_format(self, channel: str) -> str:
        if channel == CONSOLE:
            return "text"  # a terminal or a log shows Markdown raw
        if channel.startswith(OWNER_PREFIX):
            return format_for_url(owner_url(channel[len(OWNER_PREFIX) :], self.config.notify))
        spec = self.config.notify.channels.get(channel)
        return spec.render_format if spec is not None else "chat"

    def notifier(self, channel: str) -> Notifier:
        """The notifier of a channel: configured, an owner's own, or the console."""
        if channel not in self._notifiers:
            notify = self.config.notify
            if channel == CONSOLE:
                cls = plugins.notifier_class("console")
                options = cls.Options.model_validate({})
            elif channel.startswith(OWNER_PREFIX):
                url = owner_url(channel[len(OWNER_PREFIX) :], notify)
                if url is None:
                    raise PluginError(
                        f"channel {channel!r}: the owner has no channel in notify.owners"
                    )
                cls = plugins.notifier_class("apprise")
                options = cls.Options.model_validate(
                    {"url": url, "body_format": BODY_FORMAT[format_for_url(url)]}
                )
            else:
                spec = notify.channels.get(channel)
                if spec is None:
                    raise PluginError(f"channel {channel!r} is no longer in notify.channels")
                cls = plugins.notifier_class(spec.notifier_type)
                values = dict(spec.notifier_options)
                if spec.notifier_type == "apprise" and "body_format" not in values:
                    values["body_format"] = BODY_FORMAT[spec.render_format]
                options = cls.Options.model_validate(values)
            self._notifiers[channel] = cls(channel, options)
        return self._notifiers[channel]

    # --- rendering ------------------------------------------------------------------

    def render(self, channel: str, batch: Sequence[Notification], now: datetime) -> tuple[str, str]:
        """(title, body) of one message for ``batch``, in the channel's format: the one
        place a notification's body is rendered, when it is sent."""
        fmt = self.channel_format(channel)
        payload = batch[0].payload
        if len(batch) == 1 and isinstance(payload, LeadersNotice):
            return self.renderer.leaders(fmt, payload.report)
        if len(batch) == 1 and isinstance(payload, RenderedNotice):
            return batch[0].title, payload.body
        notices = [n.payload for n in batch if isinstance(n.payload, AlertNotice)]
        if len(notices) < len(batch):
            raise ValueError("only alert notices are sent together in one message")
        heading = _HEADING.get(batch[0].group_kind, "") if len(batch) > 1 else ""
        parts = [self._part(n, now) for n in notices]
        return self.renderer.message(fmt, parts, heading.format(n=len(batch)))

    def _part(self, notice: AlertNotice, now: datetime) -> Part:
        notify = self.config.notify
        secret = notify.secret()
        links = None
        if notify.base_url and secret and notice.event != NoticeEvent.RESOLVED:
            links = action_links(
                notify.base_url,
                secret,
                fingerprint=notice.alert.fingerprint,
                episode=notice.alert.episode,
                who=notice.who,
                now=now,
                ttl=notify.link_ttl,
            )
        return Part(
            notice.alert,
            notice.event,
            notice.label,
            notice.new_signals,
            links,
            whats_new=notice.whats_new,
        )

    def compose(self, channel: str, batch: Sequence[Notification], now: datetime) -> Message:
        """One message for a batch (one notification, or a group's), for the channel."""
        title, body = self.render(channel, batch, now)
        first = batch[0]
        single = len(batch) == 1
        key = first.idempotency_key
        if not single:
            key = "batch:" + fingerprint(*sorted(n.idempotency_key for n in batch))
        return Message(
            title=title,
            body=body,
            severity=max((n.severity for n in batch), key=lambda s: s.rank),
            idempotency_key=key,
            account_id=first.account_id if single else "",
            alert_fingerprint=first.alert_fingerprint if single else "",
            event=str(first.event) if single else "batch",
        )

    # --- the pass -------------------------------------------------------------------

    async def run_once(self, limit: int = 200, lease: timedelta | None = None) -> DeliveryStats:
        """Send what is due now; returns what happened."""
        stats = DeliveryStats()
        now = self.clock.now()
        held = lease if lease is not None else self.config.notify.lease
        claimed = await asyncio.to_thread(self.store.claim_outbox, now, self.owner, held, limit)
        for batch in batches(claimed):
            if await self._defer(batch, now, stats):
                continue
            channel = batch[0].channel
            try:
                message = self.compose(channel, batch, now)
            except jinja2.TemplateError as exc:  # a broken template: retried, then dead
                result = DeliveryResult(ok=False, reason=f"cannot render: {exc!r}")
            else:
                result = await self.send_now(channel, message)
            if self.metrics is not None:
                self.metrics.observe_delivery(channel, result.ok, len(batch))
            for note in batch:
                outcome = await asyncio.to_thread(self._settle, note, result)
                if outcome == "dead" and self.metrics is not None:
                    self.metrics.dead_letter(note.channel)
                stats.count(outcome)
        return stats

    async def drain(self) -> DeliveryStats:
        """Send until a pass finds nothing due to try; what all the passes did."""
        total = DeliveryStats()
        while True:
            stats = await self.run_once()
            total.add(stats)
            if stats.tried == 0:
                return total

    async def send_now(self, channel: str, message: Message) -> DeliveryResult:
        """Send ``message`` through ``channel`` now, past the outbox: the outcome, a
        notifier's error included (as a failed result)."""
        secrets: list[str] = []
        try:
            notifier = self.notifier(channel)
            secrets = _secrets_of(notifier)
            result = await notifier.send(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a notifier bug is this notification's failure, not the daemon's
            log.error(
                "channel %s failed on %s: %s",
                channel,
                message.idempotency_key,
                scrub(f"{type(exc).__name__}: {exc}", secrets),
            )
            log.debug("channel %s: the notifier's traceback", channel, exc_info=exc)
            result = DeliveryResult(ok=False, reason=f"{type(exc).__name__}: {exc}")
        if result.ok:
            return result
        # What a receiver answered may echo the request, credentials and all: cut, masked.
        return replace(result, reason=scrub(result.reason, secrets))

    async def _defer(
        self, batch: Sequence[Notification], now: datetime, stats: DeliveryStats
    ) -> bool:
        """Hold a group back until group_interval has passed since its last message."""
        first = batch[0]
        if first.group_kind != GroupKind.GROUP:
            return False
        settings = self.settings.get(first.route)
        interval = settings.group_interval if settings is not None else timedelta(0)
        if not interval:
            return False
        last = await asyncio.to_thread(
            self.store.group_last_sent, first.group_kind, first.group_key
        )
        if last is None or last + interval <= now:
            return False
        await asyncio.to_thread(self.store.release, batch, last + interval)
        stats.deferred += len(batch)
        return True

    def _settle(self, note: Notification, result: DeliveryResult) -> Outcome:
        """Record what became of ``note`` (blocking: run in a thread)."""
        now = self.clock.now()
        notify = self.config.notify
        attempts = note.attempts + 1
        fallback = note.fallback
        if result.ok:
            done = self.store.mark_sent(note, now)
            return "sent" if done else _lost(note)
        if fallback and fallback != note.channel and attempts >= notify.fallback_after:
            reason = f"failed over to {fallback} after {attempts} tries: {result.reason}"
            if not self.store.fail_over(note, reason, _replacement(note, fallback, now)):
                return _lost(note)
            log.error("notification %s to %s %s", note.id, note.channel, reason)
            return "failed_over"
        if attempts >= notify.max_attempts:
            if not self.store.mark_failed(note, result.reason, None):
                return _lost(note)
            log.error(
                "notification %s to %s dead-lettered after %d tries: %s",
                note.id,
                note.channel,
                attempts,
                result.reason,
            )
            return "dead"
        backoff = min(notify.retry_backoff * (2 ** (attempts - 1)), notify.retry_backoff_max)
        if result.retry_after_s is not None:
            backoff = max(backoff, timedelta(seconds=result.retry_after_s))
        if not self.store.mark_failed(note, result.reason, now + backoff):
            return _lost(note)
        log.warning(
            "notification %s to %s failed (try %d of %d), retry in %s: %s",
            note.id,
            note.channel,
            attempts,
            notify.max_attempts,
            backoff,
            result.reason,
        )
        return "retried"


def batches(claimed: Sequence[Notification]) -> list[list[Notification]]:
    """Claimed notifications as messages: the alert notices of one group (kind and key)
    for one channel together, everything else on its own."""
    out: dict[tuple[str, str, str], list[Notification]] = {}
    for note in claimed:
        alone = note.group_kind == GroupKind.NONE or not isinstance(note.payload, AlertNotice)
        key = (f"#{note.id}", "", "") if alone else (note.channel, note.group_kind, note.group_key)
        out.setdefault(key, []).append(note)
    return list(out.values())


def _lost(note: Notification) -> Outcome:
    log.warning(
        "notification %s to %s: the lease ran out and another sender took it over; "
        "this outcome is not recorded",
        note.id,
        note.channel,
    )
    return "lost"


def _replacement(note: Notification, fallback: str, now: datetime) -> OutboxEntry:
    """``note`` for its fallback channel, due now, its links acted on as by that channel."""
    payload = note.payload
    if isinstance(payload, AlertNotice):
        payload = payload.model_copy(update={"who": f"channel:{fallback}"})
    kept = note.model_dump(include=_KEPT_ON_FALLBACK)
    return OutboxEntry(
        **kept,
        idempotency_key=f"{note.idempotency_key}>{fallback}",
        channel=fallback,
        payload=payload,
        created_at=now,
        due_at=now,
    )
