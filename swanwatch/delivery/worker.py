"""The outbox worker: lease what is due, send each batch through its channel, record it.

A batch is one notification, or all the leased notifications of one group (a burst under
group_wait, a digest, what quiet hours held back) for one channel, sent as one message.
Each channel is its own notifier, so each outcome is recorded on its own: sent; failed and
retried with exponential backoff; handed to the route's fallback channel after
``fallback_after`` failed tries; or dead-lettered after ``max_attempts``. A sender that
dies mid-send holds its lease until it expires; then another sends it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from swanwatch import plugins
from swanwatch.clock import Clock
from swanwatch.config import Config, format_for_url
from swanwatch.delivery.links import action_links
from swanwatch.delivery.render import Part, Renderer
from swanwatch.delivery.routing import CONSOLE, OWNER_PREFIX, owner_url, route_settings
from swanwatch.errors import PluginError
from swanwatch.interfaces import DeliveryResult, Notifier
from swanwatch.model import Account, Alert, Message, fingerprint
from swanwatch.store import NewNotification, QueuedNotification, Store

if TYPE_CHECKING:
    from swanwatch.metrics import Metrics

log = logging.getLogger("swanwatch.delivery")

#: Apprise body_format by channel format.
BODY_FORMAT = {"chat": "markdown", "text": "text", "email": "html"}


def renderer_for(config: Config) -> Renderer:
    """The renderer with the config's template folder, if any."""
    folder = config.notify.templates_dir
    return Renderer(config.resolve_path(folder) if folder else None)


@dataclass
class DeliveryStats:
    """What one delivery pass did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    failed_over: int = 0

    def add(self, other: DeliveryStats) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.deferred += other.deferred
        self.failed_over += other.failed_over

    @property
    def tried(self) -> int:
        """Notifications a send was attempted for (deferred ones were not)."""
        return self.sent + self.retried + self.dead + self.failed_over


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
            return "chat"
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

    def _part(self, item: QueuedNotification, now: datetime) -> Part | None:
        payload = item.payload or {}
        if payload.get("kind") != "alert" or not isinstance(payload.get("alert"), dict):
            return None
        alert = Alert.model_validate(payload["alert"])
        notify = self.config.notify
        secret = notify.secret()
        links = None
        if notify.base_url and secret and item.notification.event != "resolved":
            links = action_links(
                notify.base_url,
                secret,
                fingerprint=alert.fingerprint,
                episode=alert.episode,
                who=str(payload.get("who") or item.notification.channel),
                now=now,
                ttl=notify.link_ttl,
            )
        return Part(
            alert=alert,
            event=str(payload.get("event") or item.notification.event),
            label=str(payload.get("label") or alert.account_id),
            new_signals=tuple(payload.get("new_signals") or ()),
            links=links,
        )

    def compose(self, channel: str, items: Sequence[QueuedNotification], now: datetime) -> Message:
        """One message for a batch, rendered for the channel's format."""
        first = items[0].notification
        key = first.idempotency_key
        if len(items) > 1:
            key = "batch:" + fingerprint(*sorted(i.notification.idempotency_key for i in items))
        parts = [self._part(i, now) for i in items]
        top = max((i.notification.severity for i in items), key=lambda s: s.rank)
        if any(p is None for p in parts):
            # Stored before rendering moved to send time, or a leaders' digest: as stored.
            title = first.title if len(items) == 1 else f"{len(items)} notifications"
            body = "\n\n---\n\n".join(i.notification.body for i in items)
        else:
            heading = ""
            group = items[0].group_key
            if len(items) > 1 and group.startswith("digest|"):
                heading = f"Digest: {len(items)} alerts"
            elif len(items) > 1 and group.startswith("quiet|"):
                heading = f"{len(items)} alerts held over quiet hours"
            title, body = self.renderer.message(
                self.channel_format(channel), [p for p in parts if p is not None], heading
            )
        return Message(
            title=title,
            body=body,
            severity=top,
            idempotency_key=key,
            account_id=first.account_id if len(items) == 1 else "",
            alert_fingerprint=first.alert_fingerprint if len(items) == 1 else "",
            event=first.event if len(items) == 1 else "batch",
        )

    # --- the pass -------------------------------------------------------------------

    async def run_once(self, limit: int = 200, lease: timedelta | None = None) -> DeliveryStats:
        """Send what is due now; returns what happened."""
        stats = DeliveryStats()
        now = self.clock.now()
        held = lease if lease is not None else self.config.notify.lease
        batch = await asyncio.to_thread(self.store.claim_outbox, now, self.owner, held, limit)
        groups: dict[tuple[str, str], list[QueuedNotification]] = {}
        for item in batch:
            note = item.notification
            key = item.group_key or f"#{note.id}"
            groups.setdefault((note.channel, key), []).append(item)
        for (channel, key), items in groups.items():
            if await self._defer(key, items, now, stats):
                continue
            message = self.compose(channel, items, now)
            result = await self._send(channel, message)
            if self.metrics is not None:
                self.metrics.observe_delivery(channel, result.ok, len(items))
            await self._record(items, result, stats)
        return stats

    async def _defer(
        self, key: str, items: list[QueuedNotification], now: datetime, stats: DeliveryStats
    ) -> bool:
        """Hold a group back until group_interval has passed since its last message."""
        if not key.startswith("group|"):
            return False
        settings = self.settings.get(items[0].route)
        interval = settings.group_interval if settings is not None else timedelta(0)
        if not interval:
            return False
        last = await asyncio.to_thread(self.store.group_last_sent, key)
        if last is None or last + interval <= now:
            return False
        ids = [i.notification.id for i in items]
        await asyncio.to_thread(self.store.defer_notifications, ids, last + interval)
        stats.deferred += len(ids)
        return True

    async def _send(self, channel: str, message: Message) -> DeliveryResult:
        try:
            notifier = self.notifier(channel)
            return await notifier.send(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a notifier bug is this notification's failure, not the daemon's
            log.exception("channel %s failed on %s", channel, message.idempotency_key)
            return DeliveryResult(ok=False, reason=f"{type(exc).__name__}: {exc}")

    async def _record(
        self, items: Sequence[QueuedNotification], result: DeliveryResult, stats: DeliveryStats
    ) -> None:
        now = self.clock.now()
        notify = self.config.notify
        if result.ok:
            for item in items:
                await asyncio.to_thread(self.store.mark_sent, item.notification.id, now)
                stats.sent += 1
            return
        for item in items:
            note = item.notification
            attempts = note.attempts + 1
            fallback = item.fallback
            if fallback and fallback != note.channel and attempts >= notify.fallback_after:
                reason = f"failed over to {fallback} after {attempts} tries: {result.reason}"
                await asyncio.to_thread(
                    self.store.fail_over, note.id, reason, self._replacement(item, now)
                )
                stats.failed_over += 1
                log.error("notification %s to %s %s", note.id, note.channel, reason)
                continue
            if attempts >= notify.max_attempts:
                await asyncio.to_thread(self.store.mark_failed, note.id, result.reason, None)
                stats.dead += 1
                if self.metrics is not None:
                    self.metrics.dead_letter(note.channel)
                log.error(
                    "notification %s to %s dead-lettered after %d tries: %s",
                    note.id,
                    note.channel,
                    attempts,
                    result.reason,
                )
                continue
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

    def _replacement(self, item: QueuedNotification, now: datetime) -> NewNotification:
        note = item.notification
        assert item.fallback is not None
        payload = dict(item.payload or {})
        if payload.get("kind") == "alert":
            payload["who"] = f"channel:{item.fallback}"
        return NewNotification(
            idempotency_key=f"{note.idempotency_key}>{item.fallback}",
            alert_fingerprint=note.alert_fingerprint,
            account_id=note.account_id,
            channel=item.fallback,
            event=note.event,
            severity=note.severity,
            title=note.title,
            body=note.body,
            due_at=now,
            route=item.route,
            payload=payload,
        )


def sample_account() -> Account:
    """The account of `swanwatch notify test`."""
    return Account(
        id="sample",
        name="Sample Customer Inc.",
        owner="csm@example.com",
        segment="enterprise",
        arr=120000.0,
        tags=("sample",),
    )
