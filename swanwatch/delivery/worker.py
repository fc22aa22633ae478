"""The outbox worker: claim what is due, render and send each batch through its channel,
record it.

A batch is one notification, or all the claimed notifications of one group (a burst under
group_wait, a digest, what quiet hours held back) for one channel, sent as one message,
rendered here and only here. Each channel is its own notifier, so each outcome is recorded
on its own: sent; failed and retried with exponential backoff; handed to the route's
fallback channel after ``fallback_after`` failed tries; or dead-lettered after
``max_attempts``.

Once per idempotency key, by construction rather than by timing:

- a pass claims a few notifications per send slot with a fencing token (owner and
  ``lease_token``), renews the claims every third of ``notify.lease`` while it works, and
  renews and checks them again just before each send: what another sender took over is
  not sent, and an outcome reported for a claim that was lost is refused (``lost``);
- one pass at a time per worker (and the daemon runs one delivery loop);
- the outcome of a send is recorded however long the store takes to come back;
- :meth:`DeliveryWorker.stop` gives back at once what a pass has not started.

What is left: a sender killed mid-send (kill -9, a crash) holds its claims until they run
out; another then sends them, and the requests it had in flight (at most
``notify.send_concurrency``) may arrive twice, with the same Idempotency-Key. So may a
request the receiver took but answered only after the client gave up (a read timeout,
the notifier's ``timeout_s``): a failed try, retried.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

import jinja2
from pydantic import SecretStr
from sqlalchemy.exc import InterfaceError, OperationalError

from swanwatch import plugins
from swanwatch.clock import Clock
from swanwatch.config import Config, format_for_url
from swanwatch.delivery.links import action_links
from swanwatch.delivery.render import Part, Renderer
from swanwatch.delivery.routing import CONSOLE, OWNER_PREFIX, owner_url, route_settings
from swanwatch.delivery.withdraw import stale
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
from swanwatch.store.health import first_line

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

#: Notifications claimed per pass for each send slot (notify.send_concurrency): a pass is
#: short next to its lease, and replicas share a burst between them.
CLAIM_PER_SLOT = 8
#: The store cannot be reached (down, restarting, locked): retried, never a lost outcome.
STORE_DOWN = (OperationalError, InterfaceError)
#: Longest wait between tries to record a send's outcome while the store is down.
RECORD_RETRY_MAX_S = 5.0

#: What a notification handed to its fallback channel keeps.
_KEPT_ON_FALLBACK = {"alert_fingerprint", "account_id", "event", "severity", "title", "route"}
#: What became of one notification in a pass.
Outcome = Literal["sent", "retried", "dead", "failed_over", "lost", "withdrawn"]


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
    """What one delivery pass did. ``lost``: another sender took the notification over
    after this one's claim ran out (found before the send: not sent; after: the outcome
    is theirs to record)."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    deferred: int = 0
    failed_over: int = 0
    lost: int = 0
    #: Claimed, then given back untried: the worker was stopping.
    released: int = 0
    #: Not sent: stale by the time of its send (:mod:`swanwatch.delivery.withdraw`).
    withdrawn: int = 0

    def add(self, other: DeliveryStats) -> None:
        for name in ("sent", "retried", "dead", "deferred", "failed_over", "lost", "released",
                     "withdrawn"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))

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
        # The fencing token's owner part: unique to this worker, even beside another
        # process of the same host name and pid (containers on the host's network).
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.renderer = renderer_for(config)
        self.settings = route_settings(config.notify)
        self._notifiers: dict[str, Notifier] = {}
        self._busy = False  # a pass is under way
        self._again = False  # a pass was asked for meanwhile
        self._stopping = False

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

    def stop(self) -> None:
        """Stop taking work: a pass under way sends no new batch (what it has not started
        is given back at once, for any sender to take), finishes the sends in flight and
        returns; later passes do nothing."""
        self._stopping = True

    async def run_once(
        self, limit: int | None = None, lease: timedelta | None = None
    ) -> DeliveryStats:
        """Claim what is due now (up to ``limit``, by default a few per send slot) and send
        it; returns what happened. One pass at a time: called while one runs, it does
        nothing and returns at once (the running :meth:`drain` takes one more look)."""
        if self._busy or self._stopping:
            self._again = self._again or self._busy
            return DeliveryStats()
        self._busy = True
        try:
            slots = self.config.notify.send_concurrency
            return await self._pass(
                limit if limit is not None else CLAIM_PER_SLOT * slots,
                lease if lease is not None else self.config.notify.lease,
            )
        finally:
            self._busy = False

    async def drain(self) -> DeliveryStats:
        """Send until a pass finds nothing due to try (or the worker stops); what all the
        passes did. Called while a pass runs, it returns at once with nothing done."""
        total = DeliveryStats()
        if self._busy:
            self._again = True
            return total
        while not self._stopping:
            self._again = False
            stats = await self.run_once()
            total.add(stats)
            if stats.tried == 0 and not self._again:
                break
        return total

    async def _pass(self, limit: int, lease: timedelta) -> DeliveryStats:
        stats = DeliveryStats()
        claimed = await asyncio.to_thread(
            self.store.claim_outbox, self.clock.now(), self.owner, lease, limit
        )
        if not claimed:
            return stats
        claims = _Claims(lease, {n.id: n for n in claimed})
        heartbeat = asyncio.create_task(self._heartbeat(claims))
        try:
            await self._send_all(batches(claimed), claims, stats)
        except asyncio.CancelledError:
            self._give_back(list(claims.held.values()))
            raise
        finally:
            heartbeat.cancel()
            await asyncio.wait([heartbeat])
        return stats

    def _give_back(self, notes: list[Notification]) -> None:
        """A pass cut off (a stop past its grace): give back what it has not settled, in a
        thread of its own that a cancelled task need not wait for (the process waits for
        it at exit). The next sender takes it at once, not a lease later; a request that
        was cut off mid-send may have got through, and then goes again with its
        Idempotency-Key, as after a crash."""
        if notes:
            threading.Thread(
                target=self._release_now, args=(notes,), name="swanwatch-give-back"
            ).start()

    def _release_now(self, notes: list[Notification]) -> None:
        try:
            given = self.store.release(notes)
        except STORE_DOWN as exc:
            log.warning("delivery: cannot give back %d claims: %s", len(notes), first_line(exc))
        else:
            log.info("delivery: cut off, gave back %d of %d claims", given, len(notes))

    async def _heartbeat(self, claims: _Claims) -> None:
        """Renew the pass's claims every third of the lease while it sends: a batch slower
        than the lease keeps what it has not sent yet (a renewal that fails is retried at
        the next beat; the claims stand until their lease runs out)."""
        every = max(claims.lease.total_seconds() / 3, 0.05)
        while True:
            await asyncio.sleep(every)
            try:
                await self._renew(claims)
            except STORE_DOWN as exc:
                log.warning("delivery: cannot renew claims: %s", first_line(exc))

    async def _renew(self, claims: _Claims) -> None:
        """Renew the claims not settled yet; those another sender took over are lost."""
        notes = list(claims.held.values())
        if not notes:
            return
        kept = await asyncio.to_thread(
            self.store.renew_claims, notes, self.clock.now(), claims.lease
        )
        claims.lost.update(n.id for n in notes if n.id not in kept)

    async def _send_all(
        self, todo: Sequence[list[Notification]], claims: _Claims, stats: DeliveryStats
    ) -> None:
        """Send the batches, ``notify.send_concurrency`` at a time; a batch that shares an
        alert and channel with an earlier one waits for it (an alert's messages stay in
        order)."""
        slots = asyncio.Semaphore(self.config.notify.send_concurrency)
        last: dict[tuple[str, str], asyncio.Task[None]] = {}
        tasks: list[asyncio.Task[None]] = []
        for batch in todo:
            lanes = {(n.channel, n.alert_fingerprint) for n in batch}
            before = [last[lane] for lane in lanes if lane in last]
            task = asyncio.create_task(self._one_batch(batch, before, slots, claims, stats))
            last.update(dict.fromkeys(lanes, task))
            tasks.append(task)
        try:
            # Every batch to its end, whatever another's fails with: cancelling a send in
            # flight could send it twice.
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _one_batch(
        self,
        batch: list[Notification],
        before: list[asyncio.Task[None]],
        slots: asyncio.Semaphore,
        claims: _Claims,
        stats: DeliveryStats,
    ) -> None:
        if before:
            await asyncio.wait(before)
        async with slots:
            try:
                batch = await self._still_held(batch, claims, stats)
            except STORE_DOWN as exc:  # not sent: the claims stand, the next pass takes them
                log.warning("delivery: the store failed before a send: %s", first_line(exc))
                return
            if batch:
                await self._send_batch(batch, claims, stats)

    async def _still_held(
        self, batch: list[Notification], claims: _Claims, stats: DeliveryStats
    ) -> list[Notification]:
        """What of ``batch`` to send now: nothing when stopping (given back untried) or
        held back by group_interval; never what another sender took over. The claims are
        renewed (and checked) just before a send."""
        if self._stopping:
            given = await asyncio.to_thread(self.store.release, batch)
            stats.released += given
            claims.settled(batch)
            return []
        if await self._defer(batch, self.clock.now(), stats):
            claims.settled(batch)
            return []
        await self._renew(claims)
        taken = [n for n in batch if n.id in claims.lost]
        for note in taken:
            stats.count(_lost(note))
        claims.settled(taken)
        return await self._not_stale([n for n in batch if n.id not in claims.lost], claims, stats)

    async def _not_stale(
        self, batch: list[Notification], claims: _Claims, stats: DeliveryStats
    ) -> list[Notification]:
        """``batch`` less the alert notices its alerts, as they stand now, make stale (a
        person resolved, acknowledged or snoozed one since it was queued): withdrawn, each
        with why."""
        told = sorted({n.alert_fingerprint for n in batch if isinstance(n.payload, AlertNotice)})
        if not told:
            return batch
        now = {a.fingerprint: a for a in await asyncio.to_thread(self.store.alerts_of, told)}
        keep: list[Notification] = []
        for note in batch:
            payload = note.payload
            why = stale(payload, now.get(note.alert_fingerprint)) if isinstance(
                payload, AlertNotice) else None  # fmt: skip
            if why is None:
                keep.append(note)
                continue
            done = await asyncio.to_thread(self.store.mark_withdrawn, note, why)
            claims.settled([note])
            stats.count("withdrawn" if done else _lost(note))
            log.info("notification %s to %s %s", note.id, note.channel, why)
        return keep

    async def _send_batch(
        self, batch: list[Notification], claims: _Claims, stats: DeliveryStats
    ) -> None:
        now = self.clock.now()
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
            outcome = await self._record(note, result)
            claims.settled([note])
            if outcome == "dead" and self.metrics is not None:
                self.metrics.dead_letter(note.channel)
            stats.count(outcome)

    async def _record(self, note: Notification, result: DeliveryResult) -> Outcome:
        """Record what became of a send, however long the store takes to come back: the
        message went out, and an outcome left unrecorded would send it again."""
        wait = 0.5
        while True:
            try:
                return await asyncio.to_thread(self._settle, note, result)
            except STORE_DOWN as exc:
                log.warning(
                    "notification %s: cannot record its outcome yet, retrying in %g s: %s",
                    note.id,
                    wait,
                    first_line(exc),
                )
            await asyncio.sleep(wait)
            wait = min(wait * 2, RECORD_RETRY_MAX_S)

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


@dataclass
class _Claims:
    """A pass's claims: the ones not settled yet (renewed by the heartbeat) and those found
    taken over by another sender."""

    lease: timedelta
    held: dict[int, Notification]
    lost: set[int] = field(default_factory=set)

    def settled(self, notes: Iterable[Notification]) -> None:
        for note in notes:
            self.held.pop(note.id, None)


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
