"""Delivery: route notices to channels, pace them, keep them in the outbox, send them.

- ``routing``  the routing tree: which channels (and owners' own channels), and why
- ``pacing``   group_wait, digests and quiet hours in the recipient's time zone
- ``render``   Jinja2 templates: chat markdown, plain text, HTML e-mail
- ``links``    signed, expiring ack/snooze/noise links for the daemon's HTTP endpoint
- ``worker``   the outbox worker: lease, send, retry with backoff, fall back, dead-letter
- ``leaders``  the leaders' weekly digest

Every notification is written to the store, with the alert as it was decided (a typed
notice, see ``swanwatch.model.OutboxEntry``), before it is sent; its body is rendered once,
when it is sent, so action links are fresh and a group becomes one message. The
idempotency key (alert, episode, event, severity, notice count, channel) makes enqueueing
the same decision twice, from a restart or a second replica, a no-op; the key goes along
to webhooks as an ``Idempotency-Key`` header so a receiver can drop the one duplicate a
crash between sending and recording can cause.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from swanwatch.alerts import Notice
from swanwatch.config import Config, NotifyConfig
from swanwatch.delivery.leaders import last_slot, leaders_entries
from swanwatch.delivery.pacing import Pacing, pace
from swanwatch.delivery.render import Part, Renderer, title_of
from swanwatch.delivery.routing import CONSOLE, OWNER_PREFIX, Router, Routing, Target, route
from swanwatch.delivery.worker import DeliveryStats, DeliveryWorker
from swanwatch.model import Account, Alert, AlertNotice, OutboxEntry
from swanwatch.store import Store

__all__ = [
    "CONSOLE",
    "DeliveryStats",
    "DeliveryWorker",
    "Pacing",
    "Routing",
    "Target",
    "channels_for",
    "enqueue_leaders",
    "outbox_entries",
    "render",
    "render_as",
    "route",
]


def channels_for(alert: Alert, config: NotifyConfig, account: Account | None = None) -> list[str]:
    """The channels a notice about ``alert`` goes to."""
    return [t.channel for t in route(alert, account, config).targets]


def render(notice: Notice, account_name: str | None = None) -> tuple[str, str]:
    """A notice as (title, markdown body) with the built-in chat template."""
    return render_as("chat", notice, account_name)


def render_as(fmt: str, notice: Notice, account_name: str | None = None) -> tuple[str, str]:
    """A notice as (title, body) in ``fmt`` (chat, text or email), built-in templates."""
    part = Part(
        notice.alert,
        notice.event,
        account_name or notice.alert.account_id,
        notice.new_signals,
        whats_new=notice.whats_new,
    )
    return _DEFAULT_RENDERER.message(fmt, [part])


_DEFAULT_RENDERER = Renderer()


def idempotency_key(notice: Notice, channel: str) -> str:
    alert = notice.alert
    return ":".join(
        (
            alert.fingerprint,
            f"e{alert.episode}",
            notice.event,
            str(alert.severity),
            f"n{alert.notify_count}",
            channel,
        )
    )


def outbox_entries(
    notices: Iterable[Notice],
    config: Config | NotifyConfig,
    now: datetime,
    accounts: Mapping[str, Account] | Mapping[str, str] | None = None,
) -> list[OutboxEntry]:
    """One outbox entry per notice and chosen channel, keyed for idempotency and paced.
    Nothing is rendered here but the title: the worker renders each when it sends it.

    ``accounts`` maps account ids to Accounts (for owner routing, segments and tags) or,
    as before, to display names.
    """
    notify = config.notify if isinstance(config, Config) else config
    known = accounts or {}
    router = Router(notify)
    out = []
    for notice in notices:
        alert = notice.alert
        found = known.get(alert.account_id)
        account = found if isinstance(found, Account) else None
        label = account.label if account else (found if isinstance(found, str) else None)
        label = label or alert.account_id
        title = title_of(Part(alert, notice.event, label, notice.new_signals))
        for target in router.targets(alert, account):
            if notice.event == "resolved" and not target.settings.send_resolved:
                continue
            pacing = pace(target, alert.severity, now)
            out.append(
                OutboxEntry(
                    idempotency_key=idempotency_key(notice, target.channel),
                    alert_fingerprint=alert.fingerprint,
                    account_id=alert.account_id,
                    channel=target.channel,
                    event=notice.event,
                    severity=alert.severity,
                    title=title,
                    route=target.route,
                    group_kind=pacing.group_kind,
                    group_key=pacing.group_key,
                    fallback=target.settings.fallback,
                    payload=AlertNotice(
                        alert=alert,
                        event=notice.event,
                        label=label,
                        new_signals=notice.new_signals,
                        whats_new=notice.whats_new,
                        who=_who(target),
                    ),
                    created_at=now,
                    due_at=pacing.due_at,
                )
            )
    return out


def _who(target: Target) -> str:
    """Who acts through this channel's links: the owner on their own channel."""
    if target.channel.startswith(OWNER_PREFIX):
        return target.channel.removeprefix(OWNER_PREFIX)
    return f"channel:{target.channel}"


def enqueue_leaders(
    config: Config, store: Store, now: datetime, *, only: str | None = None, force: bool = False
) -> int:
    """Queue the leaders' weekly digests due at ``now``; returns how many were new (a
    digest already queued for its week is not queued again)."""
    if not config.notify.leaders:
        return 0
    since = min(
        last_slot(spec, now) - timedelta(days=7 * spec.weeks) for spec in config.notify.leaders
    )
    entries = leaders_entries(
        config.notify,
        store.alerts(),
        {a.id: a for a in store.accounts()},
        store.notification_events(since, now),
        now,
        only=only,
        force=force,
    )
    return store.save_alerts([], entries) if entries else 0
