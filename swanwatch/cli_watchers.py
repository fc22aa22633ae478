"""`swanwatch watchers`, `signals` and `unknowns`: the watchers, what they found, and what
they could not judge."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from swanwatch.cli_common import (
    config_option,
    emit_json,
    json_option,
    records,
    stamp,
    table,
    tty,
)


@click.group()
def watchers() -> None:
    """Installed watcher plugins and their runs."""


@watchers.command("list")
@json_option
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
@config_option
@click.argument("instance", required=False)
@click.option("--limit", default=20, show_default=True)
@json_option
def watchers_runs(config_path: Path, instance: str | None, limit: int, as_json: bool) -> None:
    """Recent watcher runs, with the error and traceback of failed ones."""
    records(
        config_path,
        lambda store: store.runs(instance, limit),
        as_json,
        "Watcher runs",
        ["instance", "started", "ok", "signals", "unknown", "error"],
        lambda r: (r.instance, stamp(r.started_at), r.ok, r.signals, r.unknowns, r.error),
    )


# --- signals and unknowns ---------------------------------------------------------------


@click.group()
def signals() -> None:
    """Signals the watchers found."""


@signals.command("list")
@config_option
@click.option("--account", "account_id", default=None, help="Only this account.")
@click.option("--all", "include_cleared", is_flag=True, help="Include cleared signals.")
@json_option
def signals_list(
    config_path: Path, account_id: str | None, include_cleared: bool, as_json: bool
) -> None:
    """Active signals (or all with --all)."""
    records(
        config_path,
        lambda store: store.signals(account_id=account_id, active_only=not include_cleared),
        as_json,
        "Signals",
        ["account", "kind", "key", "strength", "since", "summary"],
        lambda s: (
            s.account_id,
            s.kind,
            s.key,
            f"{s.strength:.2f}",
            stamp(s.observed_at),
            s.summary,
        ),
        dump=lambda s: s.model_dump(mode="json") | {"fingerprint": s.fingerprint},
    )


@click.group()
def unknowns() -> None:
    """Accounts a watcher could not judge: never taken for healthy."""


@unknowns.command("list")
@config_option
@click.option("--account", "account_id", default=None, help="Only this account.")
@json_option
def unknowns_list(config_path: Path, account_id: str | None, as_json: bool) -> None:
    """What each watcher could not judge on its last run, and why, and since when."""
    records(
        config_path,
        lambda store: store.unknowns(account_id),
        as_json,
        "Unknowns",
        ["account", "watcher", "key", "since", "reason"],
        lambda u: (u.account_id, u.watcher, u.key, stamp(u.first_seen), u.reason),
    )
