"""`swanwatch alerts` and `swanwatch silences`: see alerts, act on them, mute them.

Every action goes through :mod:`swanwatch.actions`, as the signed links and the board do;
an alert is named by its id or 4 or more characters of its fingerprint.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from swanwatch.cli_common import (
    DURATION,
    Failure,
    actor,
    config_option,
    emit_json,
    gc_paused,
    json_option,
    load,
    read_part,
    read_store,
    records,
    show,
    stamp,
    store_for,
    tty,
)

if TYPE_CHECKING:
    from swanwatch.actions import Action, AlertActions, Done
    from swanwatch.config import Config
    from swanwatch.model import Account, Alert

_BY = click.option("--by", default=None, help="Who acts (default $SWANWATCH_USER or $USER).")


@contextmanager
def _actions(config_path: Path, *, create: bool = False) -> Iterator[AlertActions]:
    """The actions on the config's store, now; a missing alert or silence says where to
    look, and every action error exits 1. A store that does not exist yet is not made:
    there is nothing in it to act on."""
    from swanwatch.actions import AlertActions
    from swanwatch.clock import SystemClock
    from swanwatch.errors import AlertNotFound, SilenceNotFound

    config = load(config_path)
    with store_for(config) if create else read_store(config) as store:
        if store is None:
            raise Failure("no alerts yet: the store does not exist; see `swanwatch run`")
        try:
            yield AlertActions(store, SystemClock())
        except AlertNotFound as exc:
            raise Failure(f"{exc}; see `swanwatch alerts list`") from exc
        except SilenceNotFound as exc:
            raise Failure(f"{exc}; see `swanwatch silences list`") from exc


def _act(config_path: Path, ref: str, action: Action, by: str | None) -> Done:
    with _actions(config_path) as actions:
        return actions.act(ref, action, by=actor(by))


def print_alerts(alerts: Sequence[Alert], accounts: dict[str, Account]) -> None:
    """Alerts explained, as their first message would tell them."""
    from swanwatch.alerts import Notice
    from swanwatch.delivery import render_as
    from swanwatch.model import NoticeEvent

    if not alerts:
        click.echo("No open alerts.")
        return
    # Markdown for rich on a terminal; plain text anywhere else (no raw ** or \_).
    fmt = "chat" if tty() else "text"
    rendered = []
    for alert in ranked(alerts):
        account = accounts.get(alert.account_id)
        notice = Notice(alert, NoticeEvent.FIRING)
        rendered.append(render_as(fmt, notice, account.label if account else None))
    if tty():
        from rich.console import Console
        from rich.markdown import Markdown
        from rich.panel import Panel

        console = Console()
        for title, body in rendered:
            console.print(Panel(Markdown(body), title=title, title_align="left"))
        return
    for _title, body in rendered:
        click.echo(f"{body}\n")  # the body's first line is the title


def _state(alert: Alert) -> str:
    """The state and, for a person's, who: ``acknowledged by ann@csm.example``."""
    who = (alert.acted_by or "").partition(":")[2]
    if who and str(alert.state) in ("acknowledged", "snoozed"):
        return f"{alert.state} by {who}"
    return str(alert.state)


# --- alerts --------------------------------------------------------------------------------


@click.group()
def alerts() -> None:
    """Compound risk alerts: list, explain, act on them (REF: the id, or 4+ characters of
    the fingerprint)."""


@alerts.command("list")
@config_option
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved alerts.")
@json_option
def alerts_list(config_path: Path, include_resolved: bool, as_json: bool) -> None:
    """Open alerts, one per account, most severe and most ARR at risk first."""
    with gc_paused():
        from swanwatch.store.quick import quick_alerts

        config = load(config_path, check_plugins=False)
        found = quick_alerts(config.store_url, open_only=not include_resolved)
        if found is None:
            # The alerts' part of the store alone: the others' modules (and SQLModel)
            # stay unloaded.
            from swanwatch.store.alerts import AlertsStore

            with read_part(config, AlertsStore) as store:
                found = store.alerts(open_only=not include_resolved) if store else []
        found = ranked(found)
    show(
        found,
        as_json,
        "Alerts",
        ["id", "account", "severity", "risk", "ARR at risk", "state", "since", "title", "also"],
        lambda a: (
            a.id,
            a.at_stake.get("name") or a.account_id,
            a.severity,
            f"{a.score:.0%}",
            _money(a.at_stake.get("revenue_at_risk")),
            _state(a),
            stamp(a.started_at),
            a.title,
            "; ".join(r.title for r in a.reasons[1:]),
        ),
        dump=lambda a: {**a.model_dump(mode="json"), "status": _state(a)},
    )


def ranked(alerts: Sequence[Alert]) -> list[Alert]:
    """Most severe first, then the most ARR at risk."""

    def at_risk(a: Alert) -> float:
        value = a.at_stake.get("revenue_at_risk")
        return float(value) if isinstance(value, int | float) else 0.0

    return sorted(alerts, key=lambda a: (-a.severity.rank, -at_risk(a), a.account_id))


def _money(value: object) -> str:
    return f"${float(value):,.0f}" if isinstance(value, int | float) else ""


@alerts.command("show")
@config_option
@click.argument("ref")
@json_option
def alerts_show(config_path: Path, ref: str, as_json: bool) -> None:
    """One alert, explained."""
    with _actions(config_path) as actions:
        alert = actions.find(ref)
        accounts = {a.id: a for a in actions.store.accounts([alert.account_id])}
    if as_json:
        emit_json(alert.model_dump(mode="json"))
        return
    print_alerts([alert], accounts)


def _plain(name: str, done_word: str, help_text: str) -> None:
    """An alert command with nothing to say but REF and who acts: ack, resolve."""

    @alerts.command(name, help=help_text)
    @config_option
    @click.argument("ref")
    @_BY
    def command(config_path: Path, ref: str, by: str | None) -> None:
        from swanwatch.actions import Acknowledge, Resolve

        done = _act(config_path, ref, Acknowledge() if name == "ack" else Resolve(), by)
        click.echo(f"alert {done.alert.id} {done_word} by {done.by}")


_plain("ack", "acknowledged", "Acknowledge an alert: someone owns it; no more repeats.")
_plain(
    "resolve",
    "resolved",
    "Resolve an alert by hand; it comes back only on new evidence or higher severity.",
)


@alerts.command("snooze")
@config_option
@click.argument("ref")
@click.option(
    "--for", "delta", type=DURATION, default="1d", show_default=True, help="e.g. 4h, 3d (3: days)."
)
@_BY
def alerts_snooze(config_path: Path, ref: str, delta: timedelta, by: str | None) -> None:
    """Snooze an alert; if still firing when the snooze ends, it reminds."""
    from swanwatch.actions import Snooze
    from swanwatch.durations import describe

    alert = _act(config_path, ref, Snooze(delta), by).alert
    click.echo(
        f"alert {alert.id} snoozed for {describe(delta)}, until "
        f"{alert.snoozed_until:%Y-%m-%d %H:%M} UTC"
    )


@alerts.command("mark")
@config_option
@click.argument("ref")
@click.argument("verdict", type=click.Choice(["useful", "noise", "acted"]))
@click.option("--note", default="", help="Why.")
@_BY
def alerts_mark(config_path: Path, ref: str, verdict: str, note: str, by: str | None) -> None:
    """Tell Swanwatch whether an alert was useful, noise, or acted on."""
    from swanwatch.actions import Mark
    from swanwatch.model import Verdict

    done = _act(config_path, ref, Mark(Verdict(verdict), note), by)
    said = f"marked {verdict}" if done.new else "already marked"
    click.echo(f"alert {done.alert.id} {said}")


@alerts.command("silence")
@config_option
@click.argument("ref")
@click.option(
    "--on",
    "on",
    multiple=True,
    # swanwatch.alerts.SIMILAR_FIELDS, written out so the CLI starts without importing it
    type=click.Choice(["account", "rule", "owner", "segment"]),
    help="What similar alerts share with this one (repeat; default: account and rule).",
)
@click.option("--for", "delta", type=DURATION, default="1d", show_default=True, help="e.g. 7d.")
@click.option("--reason", required=True, help="Why, for the next person.")
@_BY
def alerts_silence(
    config_path: Path, ref: str, on: tuple[str, ...], delta: timedelta, reason: str, by: str | None
) -> None:
    """Silence alerts similar to this one: the same account and rule, or what --on says."""
    from swanwatch.actions import SilenceSimilar

    action = SilenceSimilar(delta, reason, on or ("account", "rule"))
    silence = _act(config_path, ref, action, by).silence
    assert silence is not None  # a SilenceSimilar always adds one
    from swanwatch.durations import describe

    matchers = " ".join(f"{k}={v}" for k, v in silence.matchers.items())
    click.echo(
        f"silence {silence.id} for {describe(delta)}, until "
        f"{silence.ends_at:%Y-%m-%d %H:%M} UTC: {matchers}"
    )


# --- silences ------------------------------------------------------------------------------


@click.group()
def silences() -> None:
    """Mute alerts by account, rule, kind, owner or segment, for a while, with a reason."""


def _matchers(values: Sequence[str]) -> dict[str, str]:
    from swanwatch.alerts import SILENCE_FIELDS

    out = {}
    for item in values:
        name, sep, pattern = item.partition("=")
        if not sep or name not in SILENCE_FIELDS or not pattern:
            raise click.BadParameter(
                f"{item!r}: use FIELD=GLOB with FIELD one of {', '.join(SILENCE_FIELDS)}",
                param_hint="--match",
            )
        out[name] = pattern
    if not out:
        raise click.BadParameter("give at least one --match", param_hint="--match")
    return out


@silences.command("add")
@config_option
@click.option("--match", "match", multiple=True, help="FIELD=GLOB, e.g. account=acme, rule=*.")
@click.option(
    "--for", "delta", type=DURATION, default="1d", show_default=True, help="How long: 4h, 7d."
)
@click.option("--reason", required=True, help="Why, for the next person.")
@click.option("--author", default=None, help="Who (default $SWANWATCH_USER or $USER).")
def silences_add(
    config_path: Path, match: tuple[str, ...], delta: timedelta, reason: str, author: str | None
) -> None:
    """Add a silence (a warning when it names no known account or rule)."""
    from swanwatch.durations import describe

    matchers = _matchers(match)
    with _actions(config_path, create=True) as actions:
        for warning in _unmatched(load(config_path), actions, matchers):
            click.echo(f"warning: {warning}", err=True)
        silence = actions.silence(matchers, delta, reason=reason, by=actor(author))
    click.echo(
        f"silence {silence.id} for {describe(delta)}, until {silence.ends_at:%Y-%m-%d %H:%M} UTC"
    )


def _unmatched(config: Config, actions: AlertActions, matchers: dict[str, str]) -> list[str]:
    """What in ``matchers`` fits no known account (of the store, else of the accounts
    source) or rule: most likely a typo, since it would silence nothing."""
    from fnmatch import fnmatchcase

    from swanwatch.cli_delivery import known_rules, read_accounts_quietly
    from swanwatch.errors import did_you_mean

    known: dict[str, set[str]] = {}
    if "account" in matchers:
        stored = {a.id for a in actions.store.accounts()}
        known["account"] = stored or set(read_accounts_quietly(config))
    if "rule" in matchers:
        known["rule"] = set(known_rules(config))
    out = []
    for field, names in known.items():
        pattern = matchers[field]
        if names and not any(fnmatchcase(name, pattern) for name in names):
            out.append(
                f"{field}={pattern} matches no known {field}{did_you_mean(pattern, names)}: "
                "the silence is added, but it mutes nothing yet"
            )
    return out


@silences.command("list")
@config_option
@click.option("--all", "include_expired", is_flag=True, help="Include expired silences.")
@json_option
def silences_list(config_path: Path, include_expired: bool, as_json: bool) -> None:
    """Active silences (or all)."""
    from swanwatch.clock import SystemClock

    now = SystemClock().now()
    records(
        config_path,
        lambda store: store.silences(active_at=None if include_expired else now),
        as_json,
        "Silences",
        ["id", "matchers", "until", "author", "reason"],
        lambda s: (
            s.id,
            " ".join(f"{k}={v}" for k, v in s.matchers.items()),
            stamp(s.ends_at),
            s.author,
            s.reason,
        ),
    )


@silences.command("expire")
@config_option
@click.argument("silence_id", type=int)
@_BY
def silences_expire(config_path: Path, silence_id: int, by: str | None) -> None:
    """End a silence now."""
    with _actions(config_path) as actions:
        actions.expire_silence(silence_id, by=actor(by))
    click.echo(f"silence {silence_id} expired")
