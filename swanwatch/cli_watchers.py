"""`swanwatch watchers`, `signals`, `unknowns` and `sources`: the watchers, what they found,
what they could not judge, and the health of the sources they judge from."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from swanwatch.cli_common import (
    BadConfig,
    Failure,
    config_option,
    emit_json,
    gc_paused,
    json_option,
    load,
    read_store,
    records,
    stamp,
    store_for,
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
    with gc_paused():
        items = _watcher_items()
    if as_json or not tty():
        emit_json(items)
        return
    rows = []
    for item in items:
        opts = ", ".join(item.get("options", {})) or item.get("error", "")
        rows.append((item["name"], item.get("distribution", ""), item.get("description", ""), opts))
    table("Watchers", ["name", "from", "what it signals", "options"], rows)


def _watcher_items() -> list[dict[str, Any]]:
    """Each installed watcher: where it comes from, what it signals, its options."""
    from swanwatch import plugins
    from swanwatch.errors import PluginError

    items: list[dict[str, Any]] = []
    for name in sorted(plugins.available(plugins.WATCHERS)):
        try:
            cls = plugins.watcher_class(name)
        except PluginError as exc:
            items.append({"name": name, "error": str(exc)})
            continue
        items.append(
            {
                "name": name,
                "distribution": plugins.distribution_of(plugins.WATCHERS, name),
                "historical": cls.historical,
                # The docstring's first paragraph: its first sentence may wrap.
                "description": " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split()),
                "options": option_docs(cls.Options),
            }
        )
    return items


def option_docs(model: Any) -> dict[str, dict[str, Any]]:
    """Each option of a plugin's Options model: its JSON type, its default as JSON (None
    when it is required), whether it is required, and its description."""
    from pydantic_core import to_jsonable_python

    props = model.model_json_schema().get("properties", {})
    out = {}
    for field, info in model.model_fields.items():
        required = info.is_required()
        default = None if required else info.get_default(call_default_factory=True)
        out[field] = {
            "type": _json_type(props.get(field, {})),
            "required": required,
            "default": to_jsonable_python(default, fallback=str),
            "description": info.description or "",
        }
    return out


def _json_type(prop: dict[str, Any]) -> str:
    """A JSON Schema property's type in a few words: ``integer``, ``array of string``."""
    if "anyOf" in prop:
        return " or ".join(dict.fromkeys(_json_type(p) for p in prop["anyOf"]))
    if "enum" in prop:
        return "one of " + ", ".join(map(str, prop["enum"]))
    if "const" in prop:
        return repr(prop["const"])
    kind = prop.get("type")
    if kind == "array" and isinstance(prop.get("items"), dict) and prop["items"]:
        return f"array of {_json_type(prop['items'])}"
    if kind == "object" and isinstance(prop.get("additionalProperties"), dict):
        return f"object of {_json_type(prop['additionalProperties'])}"
    if isinstance(kind, str):
        return kind
    ref = prop.get("$ref")
    return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else "any"


@watchers.command("runs")
@config_option
@click.argument("instance", required=False)
@click.option("--limit", default=20, show_default=True)
@json_option
def watchers_runs(config_path: Path, instance: str | None, limit: int, as_json: bool) -> None:
    """Recent watcher runs, with the error and traceback of failed ones."""
    if instance is not None:
        _known_instance(config_path, instance)
    records(
        config_path,
        lambda store: store.runs(instance, limit),
        as_json,
        "Watcher runs",
        ["instance", "started", "ok", "signals", "unknown", "error"],
        lambda r: (r.instance, stamp(r.started_at), r.ok, r.signals, r.unknowns, r.error),
    )


def _known_instance(config_path: Path, instance: str) -> None:
    """Exit 2 when ``instance`` is neither a configured watcher nor one with stored runs."""
    from swanwatch.errors import did_you_mean

    config = load(config_path)
    names = {w.instance for w in config.watchers}
    if instance in names:
        return
    with read_store(config) as store:
        if store is not None and store.runs(instance, 1):
            return
    raise BadConfig(
        f"no watcher named {instance!r}{did_you_mean(instance, names)}; configured: "
        f"{', '.join(sorted(names)) or 'none'}"
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
        lambda store: store.each_signal(account_id=account_id, active_only=not include_cleared),
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


# --- sources ------------------------------------------------------------------------------


@click.group()
def sources() -> None:
    """The health of each source: ok, suspect, stale or broken, as its last read left it."""


@sources.command("list")
@config_option
@json_option
def sources_list(config_path: Path, as_json: bool) -> None:
    """Each source's last read: its state and why, its rows, and its last good read."""
    records(
        config_path,
        lambda store: list(store.source_health().values()),
        as_json,
        "Sources",
        ["source", "state", "rows", "good rows", "newest", "checked", "reason"],
        lambda h: (
            h.source,
            h.state,
            "" if h.rows is None else h.rows,
            "" if h.good_rows is None else h.good_rows,
            h.newest.isoformat() if h.newest else "",
            stamp(h.checked_at),
            h.reason,
        ),
    )


@sources.command("accept")
@config_option
@click.argument("name")
def sources_accept(config_path: Path, name: str) -> None:
    """Take a source's last read as its last good one: a smaller source that is right.

    Its next read is compared with that one, and the accounts it no longer lists start
    counting towards their retirement. Malformed rows and a stale source are not accepted:
    fix them (or raise the source's `max_bad_rows` or `fresh_within`).
    """
    from swanwatch.clock import SystemClock
    from swanwatch.model import SourceState
    from swanwatch.sources.health import accept

    with store_for(load(config_path)) as store:
        health = store.source_health([name]).get(name)
        if health is None:
            raise Failure(f"source {name!r} has not been read yet: nothing to accept")
        if health.state != SourceState.SUSPECT or health.rows is None or health.malformed:
            raise Failure(
                f"source {name!r} is {health.state}: only a suspect read without malformed "
                f"rows can be accepted ({health.reason or 'nothing to accept'})"
            )
        store.save_source_health(accept(health, SystemClock().now()))
    click.echo(f"source {name}: {health.rows} rows accepted as its last good read")
