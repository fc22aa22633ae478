"""Delivery commands: `outbox list|retry`, `routes test`, `notify test|leaders`.

Exit codes as everywhere: 0 ok, 2 bad usage or config, 1 runtime failure (a channel that
did not take the test message).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from swanwatch.cli_common import (
    INSTANT,
    BadConfig,
    Failure,
    config_option,
    emit_json,
    json_option,
    load,
    read_store,
    store_for,
    table,
    tty,
)
from swanwatch.errors import SwanwatchError, did_you_mean

if TYPE_CHECKING:
    from swanwatch.config import Config, Rule
    from swanwatch.delivery.routing import Routing
    from swanwatch.model import Account, Alert, Severity


def _now() -> Any:
    from swanwatch.clock import SystemClock

    return SystemClock()


# --- outbox ------------------------------------------------------------------------------


@click.group()
def outbox() -> None:
    """The durable outbox: what was sent, what waits, what was dead-lettered."""


@outbox.command("list")
@config_option
@click.option(
    "--status",
    type=click.Choice(["pending", "sent", "dead", "withdrawn"]),
    default=None,
    help="Only notifications in this state.",
)
@click.option("--limit", default=50, show_default=True, help="Newest first, at most this many.")
@json_option
def outbox_list(config_path: Path, status: str | None, limit: int, as_json: bool) -> None:
    """Notifications in the outbox, newest first; dead-lettered ones with their last error."""
    from swanwatch.model import NotificationStatus

    config = load(config_path)
    with read_store(config) as store:
        notes = (
            store.notifications(NotificationStatus(status) if status else None, limit)
            if store is not None
            else []
        )
        counts = store.outbox_counts() if store is not None else {}
    if as_json or not tty():
        emit_json([n.model_dump(mode="json") for n in notes])
        return
    rows = [
        (
            n.id,
            n.status,
            n.channel,
            n.event,
            n.severity,
            n.attempts,
            f"{n.next_attempt_at:%Y-%m-%d %H:%M}" if n.status == "pending" else "",
            f"{n.sent_at:%Y-%m-%d %H:%M}" if n.sent_at else "",
            n.title[:60],
            (n.last_error or "")[:80],
        )
        for n in notes
    ]
    summary = ", ".join(f"{v} {k}" for k, v in counts.items())
    table(
        f"Outbox ({summary})",
        [
            "id",
            "status",
            "channel",
            "event",
            "severity",
            "tries",
            "next try",
            "sent",
            "title",
            "last error",
        ],
        rows,
    )


@outbox.command("retry")
@config_option
@click.argument("ids", nargs=-1, type=int)
def outbox_retry(config_path: Path, ids: tuple[int, ...]) -> None:
    """Put dead-lettered notifications back in the queue (all of them without IDS)."""
    config = load(config_path)
    with store_for(config) as store:
        count = store.retry_dead(_now().now(), list(ids) if ids else None)
    if ids and count < len(ids):
        click.echo(f"{len(ids) - count} of the given ids are not dead-lettered", err=True)
    click.echo(f"{count} notifications are back in the queue")


# --- routes ------------------------------------------------------------------------------


@click.group()
def routes() -> None:
    """The routing tree."""


async def _read_accounts(config: Config) -> dict[str, Account]:
    from swanwatch.accounts import build_source, read_accounts

    source = build_source(config.accounts.source, config)
    try:
        return (await read_accounts(source)).accounts
    finally:
        await source.aclose()


def read_accounts_quietly(config: Config) -> dict[str, Account]:
    """The accounts source's accounts; {} when it cannot be read."""
    try:
        return asyncio.run(_read_accounts(config))
    except SwanwatchError:
        return {}


def _find_account(config: Config, account_id: str) -> Account:
    with read_store(config) as store:
        stored = store.accounts([account_id]) if store is not None else []
    if stored:
        return stored[0]
    try:
        accounts = asyncio.run(_read_accounts(config))
    except SwanwatchError as exc:
        raise Failure(str(exc)) from exc
    if account_id not in accounts:
        raise BadConfig(
            f"account {account_id!r}{did_you_mean(account_id, accounts)} is in neither the "
            f"store nor the accounts source {config.accounts.source!r}"
        )
    return accounts[account_id]


def sample_account() -> Account:
    """The account of `swanwatch notify test`."""
    from swanwatch.model import Account

    return Account(
        id="sample",
        name="Sample Customer Inc.",
        owner="csm@example.com",
        segment="enterprise",
        arr=120000.0,
        tags=("sample",),
    )


def known_rules(config: Config) -> dict[str, Rule]:
    """The config's rules by name, the catch-all score rule among them."""
    from swanwatch.config import all_rules
    from swanwatch.correlate import score_rule

    rules = {r.name: r for r in all_rules(config)}
    catch_all = score_rule(config.correlation)
    return {catch_all.name: catch_all, **rules}


def sample_alert(
    account: Account,
    rule: str,
    config: Config | None,
    severity: str | None,
    kinds: Sequence[str],
    now: Any,
) -> Alert:
    """An alert as correlation would raise it for ``account`` under ``rule``."""
    from swanwatch.model import Alert, Contribution, Severity, alert_fingerprint

    known = known_rules(config).get(rule) if config is not None else None
    chosen = Severity(severity) if severity else (known.severity if known else Severity.HIGH)
    wanted = list(kinds) or list(known.all_of or known.any_of or known.of if known else ())
    wanted = wanted or ["sample"]
    contributions = tuple(
        Contribution(
            fingerprint=f"sample-{k}",
            kind=k,
            summary=f"{k} on {account.label} (a sample).",
            strength=0.8,
            weight=1.0,
            decay=1.0,
            age_days=0.0,
            observed_at=now,
        )
        for k in wanted
    )
    days = account.days_to_renewal(now)
    return Alert(
        fingerprint=alert_fingerprint(account.id, rule),
        account_id=account.id,
        rule=rule,
        title=known.title if known else f"Sample alert ({rule})",
        severity=chosen,
        score=0.8,
        contributions=contributions,
        why_now=tuple(c.summary for c in contributions),
        play=known.play if known and known.play else ("CSM: call the sponsor this week.",),
        at_stake={
            "arr": account.arr,
            "revenue_at_risk": round(account.arr * 0.8, 2),
            "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
            "days_to_renewal": days,
            "owner": account.owner,
            "segment": account.segment,
        },
        started_at=now,
        updated_at=now,
    )


@routes.command("test")
@config_option
@click.option("--account", "account_id", required=True, help="The account id.")
@click.option("--rule", required=True, help="The rule name (its severity and kinds are used).")
@click.option(
    "--severity",
    type=click.Choice(["info", "warning", "high", "critical"]),
    default=None,
    help="Override the rule's severity.",
)
@click.option("--kind", "kinds", multiple=True, help="Signal kinds (default: the rule's).")
@click.option("--at", "at", type=INSTANT, default=None, help="Pretend it is this time (ISO 8601).")
@json_option
def routes_test(
    config_path: Path,
    account_id: str,
    rule: str,
    severity: str | None,
    kinds: tuple[str, ...],
    at: datetime | None,
    as_json: bool,
) -> None:
    """Where an alert on ACCOUNT under RULE would go, when, and why."""
    from swanwatch.delivery.routing import Facts, route

    config = load(config_path)
    _check_rule(config, rule, kinds)
    now = at if at is not None else _now().now()
    account = _find_account(config, account_id)
    alert = sample_alert(account, rule, config, severity, kinds, now)
    routing = route(alert, account, config.notify)
    facts = Facts.of(alert, account)
    planned = _plan(routing, alert.severity, now)
    if as_json:
        emit_json(
            {
                "alert": {
                    "account": account.id,
                    "rule": rule,
                    "severity": str(alert.severity),
                    "kinds": list(facts.kinds),
                    "owner": facts.owner,
                    "segment": facts.segment,
                    "tags": list(facts.tags),
                },
                "targets": planned,
                "trace": routing.trace,
            }
        )
        return
    click.echo(
        f"{account.label} ({account.id}), rule {rule}, severity {alert.severity}, kinds "
        f"{', '.join(facts.kinds)}, owner {facts.owner or '-'}, segment {facts.segment or '-'}, "
        f"tags {', '.join(facts.tags) or '-'}"
    )
    _echo_plan(routing.trace, planned, now)


def _check_rule(config: Config, rule: str, kinds: Sequence[str]) -> None:
    """Exit 2 for a rule the config does not have; a note for kinds no watcher emits."""
    from swanwatch import plugins

    rules = known_rules(config)
    if rule not in rules:
        raise BadConfig(
            f"no rule named {rule!r}{did_you_mean(rule, rules)}; the rules: "
            f"{', '.join(sorted(rules))}"
        )
    unknown = sorted(set(kinds) - set(plugins.available(plugins.WATCHERS)) - {"ops"})
    if unknown:
        click.echo(f"note: no installed watcher emits {', '.join(unknown)}", err=True)


def _plan(routing: Routing, severity: Severity, now: datetime) -> list[dict[str, Any]]:
    """Each target of ``routing``: its channel, route, format, when it is due and why."""
    from swanwatch.delivery.pacing import pace
    from swanwatch.model import GroupKind

    planned = []
    for target in routing.targets:
        pacing = pace(target, severity, now)
        grouped = pacing.group_kind != GroupKind.NONE
        planned.append(
            {
                "channel": target.channel,
                "route": target.route,
                "format": target.format,
                "timezone": target.timezone,
                "due_at": pacing.due_at.isoformat(),
                "held": pacing.held or None,
                "group": {"kind": pacing.group_kind, "key": pacing.group_key} if grouped else None,
                "fallback": target.settings.fallback,
                "send_resolved": target.settings.send_resolved,
            }
        )
    return planned


def _echo_plan(trace: Sequence[str], planned: Sequence[dict[str, Any]], now: datetime) -> None:
    click.echo("")
    click.echo("Why:")
    for line in trace:
        click.echo(f"  {line}")
    click.echo("")
    if not planned:
        click.echo("Goes nowhere: no route sends it to a channel.")
        return
    click.echo("Goes to:")
    for p in planned:
        when = "now" if p["due_at"] == now.isoformat() else p["due_at"]
        extra = f" ({p['held']})" if p["held"] else ""
        fb = f", fallback {p['fallback']}" if p["fallback"] else ""
        click.echo(f"  {p['channel']} [{p['format']}] via {p['route']}: {when}{extra}{fb}")


# --- notify ------------------------------------------------------------------------------


@click.group()
def notify() -> None:
    """Send through the configured channels."""


@notify.command("test")
@config_option
@click.option("--channel", "channels", multiple=True, help="Only this channel (repeatable).")
def notify_test(config_path: Path, channels: tuple[str, ...]) -> None:
    """Send a sample alert through each channel (or --channel NAME) now, bypassing the
    outbox; report each channel's outcome."""
    from swanwatch.delivery import DeliveryWorker
    from swanwatch.delivery.render import Part
    from swanwatch.delivery.routing import CONSOLE
    from swanwatch.model import Message

    config = load(config_path)
    configured = [*config.notify.channels, *([CONSOLE] if config.notify.console else [])]
    names = list(channels) or configured
    unknown = [n for n in names if n not in configured]
    if unknown:
        hint = did_you_mean(unknown[0], configured)
        known = ", ".join(sorted(configured)) or "none"
        raise BadConfig(f"no channel named {', '.join(unknown)}{hint} (configured: {known})")
    if not names:
        raise BadConfig("notify.channels is empty and notify.console is off: nothing to test")
    clock = _now()
    now = clock.now()
    account = sample_account()
    alert = sample_alert(account, "swanwatch_test", None, "high", ["usage_drop"], now)

    async def send_all() -> list[tuple[str, bool, str]]:
        with store_for(config) as store:
            worker = DeliveryWorker(config, store, clock)
            out = []
            for name in names:
                part = Part(alert, "firing", account.label)
                title, body = worker.renderer.message(worker.channel_format(name), [part])
                message = Message(
                    title=f"[test] {title}",
                    body=body,
                    severity=alert.severity,
                    idempotency_key=f"test:{name}:{now.isoformat()}",
                    account_id=account.id,
                    alert_fingerprint=alert.fingerprint,
                )
                result = await worker.send_now(name, message)
                out.append((name, result.ok, result.reason))
            return out

    results = asyncio.run(send_all())
    for name, ok, reason in results:
        click.echo(f"{name}: {'sent' if ok else 'FAILED: ' + reason}")
    failed = [r for r in results if not r[1]]
    if failed:
        raise Failure(f"{len(failed)} of {len(results)} channels failed")


@notify.command("leaders")
@config_option
@click.option("--name", default=None, help="Only this leaders' digest.")
@click.option("--now", "send_now", is_flag=True, help="Queue this week's even if not due yet.")
def notify_leaders(config_path: Path, name: str | None, send_now: bool) -> None:
    """Queue the leaders' weekly digests that are due (and send what is due)."""
    from swanwatch.delivery import DeliveryWorker, enqueue_leaders

    config = load(config_path)
    if name is not None and name not in {d.name for d in config.notify.leaders}:
        raise BadConfig(f"no leaders' digest named {name!r} under notify.leaders")
    clock = _now()

    async def go() -> tuple[int, int]:
        with store_for(config) as store:
            queued = await asyncio.to_thread(
                enqueue_leaders, config, store, clock.now(), only=name, force=send_now
            )
            stats = await DeliveryWorker(config, store, clock).drain()
            return queued, stats.sent

    try:
        queued, sent = asyncio.run(go())
    except SwanwatchError as exc:
        raise Failure(str(exc)) from exc
    click.echo(f"{queued} digests queued, {sent} notifications sent")
