"""The command line: a thin layer over the engine, the store and the config.

Exit codes: 0 ok, 2 bad usage or config, 1 runtime failure. On a terminal lists are
tables; with ``--json`` or off a terminal the output is plain and machine-readable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import click

from swanwatch.cli_common import (
    DURATION,
    INSTANT,
    Failure,
    actor,
    emit_json,
    errors,
    load,
    store_for,
    table,
    tty,
)
from swanwatch.cli_common import config_option as _config_option
from swanwatch.cli_common import json_option as _json_option
from swanwatch.cli_delivery import notify, outbox, routes
from swanwatch.cli_domain import domain
from swanwatch.cli_ops import health
from swanwatch.cli_review import review
from swanwatch.cli_worker import worker


@click.group()
@click.version_option(package_name="swanwatch")
@click.option(
    "--log-level",
    default=lambda: os.environ.get("SWANWATCH_LOG_LEVEL"),
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    help="Logging on standard error (default: INFO for `run`, WARNING otherwise).",
)
@click.pass_context
def main(ctx: click.Context, log_level: str | None) -> None:
    """Swanwatch: weak signals in, compound churn-risk alerts out."""
    if log_level is None:
        log_level = "INFO" if ctx.invoked_subcommand == "run" else "WARNING"
    logging.basicConfig(
        level=log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "httpcore", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


# --- run, validate, demo ---------------------------------------------------------------


@main.command()
@_config_option
@click.option("--once", is_flag=True, help="Run every watcher once, correlate, deliver, exit.")
@click.option("--now", type=INSTANT, default=None, help="Pretend it is this time (with --once).")
def run(config_path: Path, once: bool, now: datetime | None) -> None:
    """Run the daemon (or one cycle with --once)."""
    config = load(config_path)
    if once:
        _run_once(config, now)
        return
    if now is not None:
        raise click.UsageError("--now only goes with --once")
    from swanwatch.clock import SystemClock
    from swanwatch.daemon import Daemon

    with store_for(config) as store:
        asyncio.run(Daemon(config, store, SystemClock()).run())


def _clock(now: datetime | None) -> Any:
    from swanwatch.clock import FrozenClock, SystemClock

    return FrozenClock(now) if now is not None else SystemClock()


def _run_once(config: Any, now: datetime | None, *, show_alerts: bool = False) -> None:

    with store_for(config) as store:
        _cycle_once(config, store, _clock(now), show_alerts=show_alerts)


def _cycle_once(config: Any, store: Any, clock: Any, *, show_alerts: bool) -> None:
    from swanwatch.engine import Engine

    specs = config.active_watchers()

    async def go(progress: Any = None) -> Any:
        async with Engine(config, store, clock, progress=progress) as engine:
            return await engine.cycle()

    if tty() or os.environ.get("SWANWATCH_PROGRESS") == "1":
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.fields[found]} signals"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        ) as bar:
            tasks = {s.instance: bar.add_task(s.instance, total=1, found=0) for s in specs}

            def progress(instance: str, phase: str, count: int) -> None:
                if instance in tasks:
                    bar.update(tasks[instance], found=count, completed=phase == "done")

            outcomes, correlation, delivered = asyncio.run(go(progress))
    else:
        outcomes, correlation, delivered = asyncio.run(go())
    failed = [o.run for o in outcomes if not o.run.ok]
    for o in outcomes:
        click.echo(
            f"watcher {o.run.instance}: {'ok' if o.run.ok else 'FAILED: ' + str(o.run.error)}"
            f", {o.run.signals} signals, {o.run.unknowns} unknown",
            err=True,
        )
    open_alerts = store.alerts(open_only=True)
    muted = sum(1 for a in open_alerts if a.muted_by is not None)
    unknown = sum(o.run.unknowns for o in outcomes)
    click.echo(
        f"{correlation.accounts} accounts with signals, {correlation.open_alerts} open alerts"
        + (f" ({muted} muted: silenced or inhibited)" if muted else "")
        + f", {delivered.sent} notifications sent"
        + (f", {delivered.retried} to retry" if delivered.retried else "")
        + (f", {delivered.dead} dead-lettered" if delivered.dead else "")
        + (f"; {unknown} could not be judged (swanwatch unknowns list)" if unknown else ""),
        err=True,
    )
    if show_alerts:
        shown = [a for a in open_alerts if a.muted_by is None]
        _print_alerts(shown, {a.id: a for a in store.accounts()})
    if failed:
        raise Failure(f"{len(failed)} of {len(outcomes)} watchers failed")


@main.command()
@_config_option
def validate(config_path: Path) -> None:
    """Check a config file: every problem, with file, line and field."""
    config = load(config_path)
    click.echo(
        f"{config_path}: ok ({len(config.sources)} sources, {len(config.watchers)} watchers, "
        f"{len(config.notify.channels)} channels)"
    )


@main.group()
def plugin() -> None:
    """Write your own plugins."""


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the package.",
)
def plugin_new(name: str, parent: Path) -> None:
    """Create a watcher package NAME: code, entry point and tests that pass as they are."""
    from swanwatch.scaffold import new_watcher

    with errors():
        try:
            root = new_watcher(name, parent)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="NAME") from exc
    click.echo(f"created {root}: cd {root} && pip install -e '.[test]' && pytest")


@main.group("config")
def config_group() -> None:
    """The config file's shape."""


@config_group.command("schema")
def config_schema_command() -> None:
    """Print the config's JSON Schema, installed plugins' options included."""
    from swanwatch.schema import config_schema

    emit_json(config_schema())


@main.command()
@click.option(
    "--now",
    type=INSTANT,
    default="2026-11-20T12:00:00Z",
    show_default=True,
    help="The demo's clock: the bundled sample data ends on this day.",
)
def demo(now: datetime) -> None:
    """One full cycle on the bundled sample data, in a temporary SQLite store."""
    from swanwatch.config import StoreConfig

    with tempfile.TemporaryDirectory(prefix="swanwatch-demo-") as tmp, errors():
        demo_file = resources.files("swanwatch") / "data" / "demo.yaml"
        with resources.as_file(demo_file) as path:
            config = load(path)
        config = config.model_copy(update={"store": StoreConfig(url=f"sqlite:///{tmp}/demo.db")})
        _run_once(config, now, show_alerts=True)


def _print_alerts(alerts: Sequence[Any], accounts: dict[str, Any]) -> None:
    from swanwatch.alerts import Notice
    from swanwatch.delivery import render

    if not alerts:
        click.echo("No open alerts.")
        return
    rendered = []
    for alert in alerts:
        account = accounts.get(alert.account_id)
        rendered.append(render(Notice(alert, "firing"), account.label if account else None))
    if tty():
        from rich.console import Console
        from rich.markdown import Markdown
        from rich.panel import Panel

        console = Console()
        for title, body in rendered:
            console.print(Panel(Markdown(body), title=title, title_align="left"))
        return
    for title, body in rendered:
        click.echo(f"{title}\n{body}\n")


# --- watchers ----------------------------------------------------------------------------


@main.group()
def watchers() -> None:
    """Installed watcher plugins and their runs."""


@watchers.command("list")
@_json_option
def watchers_list(as_json: bool) -> None:
    """Installed watchers (built-in and third-party) and their options."""
    from swanwatch import plugins
    from swanwatch.errors import PluginError

    items: list[dict[str, Any]] = []
    for name in sorted(plugins.available(plugins.WATCHERS)):
        try:
            cls = plugins.watcher_class(name)
        except PluginError as exc:
            items.append({"name": name, "error": str(exc)})
            continue
        options = {
            field: {
                "type": str(info.annotation).replace("typing.", ""),
                "default": None if info.is_required() else repr(info.default),
                "description": info.description or "",
            }
            for field, info in cls.Options.model_fields.items()
        }
        items.append(
            {
                "name": name,
                "distribution": plugins.distribution_of(plugins.WATCHERS, name),
                "historical": cls.historical,
                "description": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else "",
                "options": options,
            }
        )
    if as_json or not tty():
        emit_json(items)
        return
    rows = []
    for item in items:
        opts = ", ".join(item.get("options", {})) or item.get("error", "")
        rows.append((item["name"], item.get("distribution", ""), item.get("description", ""), opts))
    table("Watchers", ["name", "from", "what it signals", "options"], rows)


@watchers.command("runs")
@_config_option
@click.argument("instance", required=False)
@click.option("--limit", default=20, show_default=True)
@_json_option
def watchers_runs(config_path: Path, instance: str | None, limit: int, as_json: bool) -> None:
    """Recent watcher runs, with the error and traceback of failed ones."""
    config = load(config_path)
    with store_for(config) as store:
        runs = store.runs(instance, limit)
    if as_json or not tty():
        emit_json([r.model_dump(mode="json") for r in runs])
        return
    table(
        "Watcher runs",
        ["instance", "started", "ok", "signals", "unknown", "error"],
        [(r.instance, _ts(r.started_at), r.ok, r.signals, r.unknowns, r.error) for r in runs],
    )


# --- signals and alerts ------------------------------------------------------------------


def _ts(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


@main.group()
def signals() -> None:
    """Signals the watchers found."""


@signals.command("list")
@_config_option
@click.option("--account", "account_id", default=None, help="Only this account.")
@click.option("--all", "include_cleared", is_flag=True, help="Include cleared signals.")
@_json_option
def signals_list(
    config_path: Path, account_id: str | None, include_cleared: bool, as_json: bool
) -> None:
    """Active signals (or all with --all)."""
    config = load(config_path)
    with store_for(config) as store:
        found = store.signals(account_id=account_id, active_only=not include_cleared)
    if as_json or not tty():
        emit_json([s.model_dump(mode="json") | {"fingerprint": s.fingerprint} for s in found])
        return
    table(
        "Signals",
        ["account", "kind", "key", "strength", "since", "summary"],
        [
            (s.account_id, s.kind, s.key, f"{s.strength:.2f}", _ts(s.observed_at), s.summary)
            for s in found
        ],
    )


@main.group()
def unknowns() -> None:
    """Accounts a watcher could not judge: never taken for healthy."""


@unknowns.command("list")
@_config_option
@click.option("--account", "account_id", default=None, help="Only this account.")
@_json_option
def unknowns_list(config_path: Path, account_id: str | None, as_json: bool) -> None:
    """What each watcher could not judge on its last run, and why, and since when."""
    config = load(config_path)
    with store_for(config) as store:
        found = store.unknowns(account_id)
    if as_json or not tty():
        emit_json([u.model_dump(mode="json") for u in found])
        return
    table(
        "Unknowns",
        ["account", "watcher", "key", "since", "reason"],
        [(u.account_id, u.watcher, u.key, _ts(u.first_seen), u.reason) for u in found],
    )


@main.group()
def alerts() -> None:
    """Compound risk alerts."""


@alerts.command("list")
@_config_option
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved alerts.")
@_json_option
def alerts_list(config_path: Path, include_resolved: bool, as_json: bool) -> None:
    """Open alerts, riskiest first."""
    config = load(config_path)
    with store_for(config) as store:
        found = store.alerts(open_only=not include_resolved)
    if as_json or not tty():
        emit_json([a.model_dump(mode="json") for a in found])
        return
    table(
        "Alerts",
        ["id", "account", "rule", "severity", "score", "state", "since", "title"],
        [
            (
                a.id,
                a.account_id,
                a.rule,
                a.severity,
                f"{a.score:.2f}",
                a.state,
                _ts(a.started_at),
                a.title,
            )
            for a in found
        ],
    )


@alerts.command("show")
@_config_option
@click.argument("ref")
@_json_option
def alerts_show(config_path: Path, ref: str, as_json: bool) -> None:
    """One alert, explained: by id or fingerprint prefix."""
    config = load(config_path)
    with store_for(config) as store:
        alert = store.alert(ref)
        accounts = {a.id: a for a in store.accounts([alert.account_id])} if alert else {}
    if alert is None:
        raise Failure(f"no single alert matches {ref!r}; see `swanwatch alerts list`")
    if as_json:
        emit_json(alert.model_dump(mode="json"))
        return
    _print_alerts([alert], accounts)


def _change_alert(config_path: Path, ref: str, change: Callable[[Any, Any], Any]) -> Any:
    """Load one alert, apply ``change(alert, now)``, save it; returns the new alert."""
    from swanwatch.clock import SystemClock

    config = load(config_path)
    with store_for(config) as store:
        alert = store.alert(ref)
        if alert is None:
            raise Failure(f"no single alert matches {ref!r}; see `swanwatch alerts list`")
        try:
            updated = change(alert, SystemClock().now())
        except ValueError as exc:
            raise Failure(str(exc)) from exc
        store.save_alerts([updated], [])
        return updated


_BY = click.option("--by", default=None, help="Who acts (default $SWANWATCH_USER or $USER).")


@alerts.command("ack")
@_config_option
@click.argument("ref")
@_BY
def alerts_ack(config_path: Path, ref: str, by: str | None) -> None:
    """Acknowledge an alert: someone owns it; no more repeats."""
    from swanwatch.alerts import acknowledge

    alert = _change_alert(config_path, ref, lambda a, now: acknowledge(a, actor(by), now))
    click.echo(f"alert {alert.id} acknowledged by {actor(by)}")


@alerts.command("snooze")
@_config_option
@click.argument("ref")
@click.option("--for", "delta", type=DURATION, default="1d", show_default=True, help="e.g. 4h, 3d.")
@_BY
def alerts_snooze(config_path: Path, ref: str, delta: timedelta, by: str | None) -> None:
    """Snooze an alert; if still firing when the snooze ends, it reminds."""
    from swanwatch.alerts import snooze

    alert = _change_alert(config_path, ref, lambda a, now: snooze(a, now + delta, actor(by), now))
    click.echo(f"alert {alert.id} snoozed until {alert.snoozed_until:%Y-%m-%d %H:%M} UTC")


@alerts.command("resolve")
@_config_option
@click.argument("ref")
@_BY
def alerts_resolve(config_path: Path, ref: str, by: str | None) -> None:
    """Resolve an alert by hand; it comes back only on new evidence or higher severity."""
    from swanwatch.alerts import resolve

    alert = _change_alert(config_path, ref, lambda a, now: resolve(a, actor(by), now))
    click.echo(f"alert {alert.id} resolved by {actor(by)}")


@alerts.command("mark")
@_config_option
@click.argument("ref")
@click.argument("verdict", type=click.Choice(["useful", "noise", "acted"]))
@click.option("--note", default="", help="Why.")
@_BY
def alerts_mark(config_path: Path, ref: str, verdict: str, note: str, by: str | None) -> None:
    """Tell Swanwatch whether an alert was useful, noise, or acted on."""
    from swanwatch.clock import SystemClock
    from swanwatch.model import Feedback, Verdict

    config = load(config_path)
    with store_for(config) as store:
        alert = store.alert(ref)
        if alert is None:
            raise Failure(f"no single alert matches {ref!r}; see `swanwatch alerts list`")
        added = store.add_feedback(
            Feedback(
                alert_fingerprint=alert.fingerprint,
                rule=alert.rule,
                episode=alert.episode,
                verdict=Verdict(verdict),
                author=actor(by),
                note=note,
                created_at=SystemClock().now(),
            )
        )
    click.echo(
        f"alert {alert.id} marked {verdict}" if added else f"alert {alert.id} already marked"
    )


@main.group()
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
@_config_option
@click.option("--match", "match", multiple=True, help="FIELD=GLOB, e.g. account=acme, rule=*.")
@click.option(
    "--for", "delta", type=DURATION, default="1d", show_default=True, help="How long: 4h, 7d."
)
@click.option("--reason", required=True, help="Why, for the next person.")
@click.option("--author", default=None, help="Who (default $SWANWATCH_USER or $USER).")
def silences_add(
    config_path: Path, match: tuple[str, ...], delta: timedelta, reason: str, author: str | None
) -> None:
    """Add a silence."""
    from swanwatch.clock import SystemClock
    from swanwatch.model import Silence

    matchers = _matchers(match)
    config = load(config_path)
    now = SystemClock().now()
    with store_for(config) as store:
        silence = store.add_silence(
            Silence(
                matchers=matchers,
                starts_at=now,
                ends_at=now + delta,
                author=actor(author),
                reason=reason,
                created_at=now,
            )
        )
    click.echo(f"silence {silence.id} until {silence.ends_at:%Y-%m-%d %H:%M} UTC")


@silences.command("list")
@_config_option
@click.option("--all", "include_expired", is_flag=True, help="Include expired silences.")
@_json_option
def silences_list(config_path: Path, include_expired: bool, as_json: bool) -> None:
    """Active silences (or all)."""
    from swanwatch.clock import SystemClock

    config = load(config_path)
    with store_for(config) as store:
        found = store.silences(active_at=None if include_expired else SystemClock().now())
    if as_json or not tty():
        emit_json([s.model_dump(mode="json") for s in found])
        return
    table(
        "Silences",
        ["id", "matchers", "until", "author", "reason"],
        [
            (
                s.id,
                " ".join(f"{k}={v}" for k, v in s.matchers.items()),
                _ts(s.ends_at),
                s.author,
                s.reason,
            )
            for s in found
        ],
    )


@silences.command("expire")
@_config_option
@click.argument("silence_id", type=int)
def silences_expire(config_path: Path, silence_id: int) -> None:
    """End a silence now."""
    from swanwatch.clock import SystemClock

    config = load(config_path)
    with store_for(config) as store:
        ok = store.expire_silence(silence_id, SystemClock().now())
    if not ok:
        raise Failure(f"no active silence {silence_id}; see `swanwatch silences list`")
    click.echo(f"silence {silence_id} expired")


@main.group()
def rules() -> None:
    """Compound rules."""


@rules.command("stats")
@_config_option
@_json_option
def rules_stats(config_path: Path, as_json: bool) -> None:
    """Per rule: alerts fired, acted on, marked noise, median lead time before renewal."""
    from swanwatch.reports import rule_stats

    config = load(config_path)
    with store_for(config) as store:
        stats = rule_stats(store.alerts(), store.feedback(), {a.id: a for a in store.accounts()})
    if as_json or not tty():
        emit_json(
            [
                {
                    "rule": r.rule,
                    "fired": r.fired,
                    "acted_on": r.acted_on,
                    "useful": r.useful,
                    "noise": r.noise,
                    "median_lead_days": r.median_lead_days,
                }
                for r in stats
            ]
        )
        return
    table(
        "Rules",
        ["rule", "fired", "acted on", "useful", "noise", "median lead (days)"],
        [(r.rule, r.fired, r.acted_on, r.useful, r.noise, r.median_lead_days) for r in stats],
    )


@main.group()
def risk() -> None:
    """Revenue at risk."""


@risk.command("report")
@_config_option
@click.option(
    "--by",
    "by",
    type=click.Choice(["owner", "segment", "rule"]),
    default=None,
    help="Group and total by this.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV.")
def risk_report(config_path: Path, by: str | None, as_json: bool, as_csv: bool) -> None:
    """Open risks ranked by ARR at risk, with totals per group."""
    import csv as csv_module

    from swanwatch.reports import risk_lines, totals

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    config = load(config_path)
    with store_for(config) as store:
        lines = risk_lines(
            [a for a in store.alerts(open_only=True) if a.muted_by is None],
            {a.id: a for a in store.accounts()},
        )
    group = by or "all"
    sums = totals(lines, group)
    rows = [
        {
            "account": line.account.id,
            "name": line.account.name,
            "group": line.group(group),
            "owner": line.account.owner,
            "segment": line.account.segment,
            "arr": line.account.arr,
            "score": round(line.score, 4),
            "revenue_at_risk": line.revenue_at_risk,
            "severity": line.severity,
            "renewal_date": line.account.renewal_date,
            "rules": " ".join(line.rules),
        }
        for line in lines
    ]
    if as_json:
        emit_json(
            {
                "by": group,
                "accounts": rows,
                "totals": [
                    {"group": g, "accounts": n, "arr": arr, "revenue_at_risk": risk}
                    for g, n, arr, risk in sums
                ],
                "total_revenue_at_risk": round(sum(line.revenue_at_risk for line in lines), 2),
            }
        )
        return
    if as_csv or not tty():
        writer = csv_module.DictWriter(
            sys.stdout, fieldnames=list(rows[0]) if rows else ["account"]
        )
        writer.writeheader()
        writer.writerows(rows)
        return
    table(
        "Revenue at risk",
        ["account", group, "ARR", "score", "at risk", "severity", "renewal", "rules"],
        [
            (
                r["name"] or r["account"],
                r["group"],
                f"{r['arr']:,.0f}",
                f"{r['score']:.2f}",
                f"{r['revenue_at_risk']:,.0f}",
                r["severity"],
                r["renewal_date"],
                r["rules"],
            )
            for r in rows
        ],
    )
    table(
        f"Totals by {group}",
        [group, "accounts", "ARR", "at risk"],
        [(g, n, f"{arr:,.0f}", f"{risk:,.0f}") for g, n, arr, risk in sums],
    )


# --- backtest ------------------------------------------------------------------------------


@main.command()
@_config_option
@click.option("--start", type=INSTANT, required=True, help="First simulated day (ISO 8601).")
@click.option("--end", type=INSTANT, required=True, help="Last simulated day (ISO 8601).")
@click.option("--step", type=DURATION, default="1d", show_default=True, help="e.g. 1d, 6h.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="JSON Lines file (default: standard output).",
)
def backtest(
    config_path: Path, start: datetime, end: datetime, step: timedelta, output: Path | None
) -> None:
    """Replay history on a simulated clock; write the signals and alerts as JSON Lines."""
    from swanwatch.backtest import replay

    config = load(config_path)
    with errors():
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        counts = {"signal": 0, "alert": 0}

        async def go() -> None:
            async for event in replay(config, start, end, step):
                counts[event.type] += 1
                out.write(json.dumps(event.as_json(), ensure_ascii=False) + "\n")

        try:
            asyncio.run(go())
        finally:
            if output:
                out.close()
    click.echo(f"{counts['signal']} signals, {counts['alert']} alerts", err=True)


# --- store -------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """The store's schema."""


@db.command("upgrade")
@_config_option
@click.option("--revision", default="head", show_default=True)
def db_upgrade(config_path: Path, revision: str) -> None:
    """Apply the schema migrations."""
    config = load(config_path)
    with errors():
        from swanwatch.store import Store

        store = Store(config.store_url, migrate=False)
        try:
            store.upgrade(revision)
            click.echo(f"{store.safe_url}: schema at revision {store.revision()}")
        finally:
            store.close()


# --- commands defined in their own modules -------------------------------------------------

main.add_command(domain)
main.add_command(outbox)
main.add_command(routes)
main.add_command(notify)
main.add_command(review)
main.add_command(worker)
main.add_command(health)
