"""What `swanwatch validate` checks beyond the file's shape, each without side effects.

The files a source names exist and are readable, their header lines carry the fields each
watcher reads; each watcher's sources are configured; each channel's address is one its
notifier accepts; rule names are unique, and rule kinds are ones an installed watcher
emits (a warning: a plugin may emit others). With ``connect``, SQL and HTTP sources are
opened and their first row read, and the store is opened read-only. ``run`` makes the same
checks (without ``connect``) before it starts, so what they catch exits 2 before a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from pydantic import ValidationError

from swanwatch import plugins
from swanwatch.config import Document, PathKey, all_rules, read_utf8
from swanwatch.errors import (
    ConfigError,
    ConfigProblem,
    PluginError,
    SourceError,
    StoreError,
    did_you_mean,
)
from swanwatch.settings import Config

#: How long `validate --connect` waits for a source's first row.
CONNECT_TIMEOUT_S = 20.0
#: Kinds Swanwatch raises itself, beside those of the installed watchers.
OWN_KINDS = frozenset({"ops"})


@dataclass
class Findings:
    """The problems found (each fails validation) and the warnings (each is only said)."""

    errors: list[ConfigProblem] = field(default_factory=list)
    warnings: list[ConfigProblem] = field(default_factory=list)
    #: What --connect reached, one line each.
    reached: list[str] = field(default_factory=list)


def check(doc: Document, config: Config, *, connect: bool = False) -> Findings:
    """Every check of this module on ``config`` (read from ``doc``)."""
    found = Findings()
    fields = _source_fields(doc, config, found, connect)
    _check_accounts(doc, config, fields, found)
    _check_watchers(doc, config, fields, found)
    _check_channels(doc, config, found)
    _check_rules(doc, config, found)
    if connect:
        _check_store(doc, config, found)
    return found


# --- sources -------------------------------------------------------------------------------


def _source_path(doc: Document, name: str) -> PathKey:
    for key in ("path", "url", "query"):
        if ("sources", name, "options", key) in doc.lines:
            return ("sources", name, "options", key)
    return ("sources", name)


def _source_fields(
    doc: Document, config: Config, found: Findings, connect: bool
) -> dict[str, list[str] | None]:
    """Each source's fields as far as known; a source that cannot be opened is a problem."""
    from swanwatch.accounts import build_source

    out: dict[str, list[str] | None] = {}
    for name in config.sources:
        try:
            source = build_source(name, config)
        except (PluginError, ValidationError):
            continue  # reported with the plugin's options
        try:
            known = source.fields()
            if connect:
                known = _first_row_fields(source) or known
                found.reached.append(f"source {name}: read")
        except SourceError as exc:
            found.errors.append(doc.problem(_source_path(doc, name), _with_fix(str(exc))))
            continue
        out[name] = list(known) if known is not None else None
    return out


def _with_fix(message: str) -> str:
    if "not found" in message or "no file matches" in message:
        return message if "check `path`" in message else f"{message}; check `path`"
    return message


def _first_row_fields(source: Any) -> list[str] | None:
    async def first() -> list[str] | None:
        try:
            async for row in source.rows():
                return list(row)
            return None
        finally:
            await source.aclose()

    try:
        return asyncio.run(asyncio.wait_for(first(), CONNECT_TIMEOUT_S))
    except TimeoutError as exc:
        raise SourceError(
            f"source {source.instance!r}: no first row within {CONNECT_TIMEOUT_S:g} s"
        ) from exc


def _check_accounts(
    doc: Document, config: Config, fields: Mapping[str, list[str] | None], found: Findings
) -> None:
    known = fields.get(config.accounts.source)
    if known is not None and "id" not in known and "account_id" not in known:
        found.errors.append(
            doc.problem(
                _source_path(doc, config.accounts.source),
                f"source {config.accounts.source!r} is the accounts source, but its rows have "
                f"no `id` (nor `account_id`) field; it has: {', '.join(known)}; map one with "
                "`columns: {id: YOUR_ID_COLUMN}`",
            )
        )


# --- watchers ------------------------------------------------------------------------------


def _option_naming(
    doc: Document, index: int, options: Mapping[str, Any], value: str
) -> tuple[PathKey, str | None]:
    """Where the option that names source ``value`` is written (or would be), and its key."""
    for key, given in options.items():
        if given == value:
            path: PathKey = ("watchers", index, "options", key)
            if path in doc.lines:
                return path, key
            if ("watchers", index, "options") in doc.lines:
                return ("watchers", index, "options"), key
            return ("watchers", index, "type"), key
    return ("watchers", index, "type"), None


def _check_watchers(
    doc: Document, config: Config, fields: Mapping[str, list[str] | None], found: Findings
) -> None:
    defined = sorted(config.sources)
    for i, spec in enumerate(config.watchers):
        try:
            cls = plugins.watcher_class(spec.type)
            options = cls.Options.model_validate(spec.options)
            uses = cls(spec.instance, options).uses()
        except (PluginError, ValidationError):  # reported with the plugin's options
            continue
        for use in uses:
            if use.source not in config.sources:
                where, key = _option_naming(doc, i, options.model_dump(), use.source)
                hint = did_you_mean(use.source, defined)
                given = f"options.{key}" if key else "its options"
                found.errors.append(
                    doc.problem(
                        where,
                        f"watcher {spec.instance!r} reads source {use.source!r}{hint}, which is "
                        f"not under sources (defined: {', '.join(defined) or 'none'}); "
                        f"define it, or set {given} to one of them",
                    )
                )
                continue
            known = fields.get(use.source)
            missing = [f for f in use.fields if known is not None and f not in known]
            if missing:
                found.errors.append(
                    doc.problem(
                        _source_path(doc, use.source),
                        f"source {use.source!r} has no field {', '.join(map(repr, missing))}, "
                        f"which watcher {spec.instance!r} reads; it has: "
                        f"{', '.join(known or [])}; map one with "
                        f"`columns: {{{missing[0]}: YOUR_COLUMN}}`",
                    )
                )


# --- channels ------------------------------------------------------------------------------


def _check_channels(doc: Document, config: Config, found: Findings) -> None:
    for name, spec in config.notify.channels.items():
        try:
            cls = plugins.notifier_class(spec.notifier_type)
            notifier = cls(name, cls.Options.model_validate(dict(spec.notifier_options)))
        except (PluginError, ValidationError):  # reported with the plugin's options
            continue
        problem = notifier.check()
        if problem:
            path: PathKey = ("notify", "channels", name)
            if (*path, "url") in doc.lines:
                path = (*path, "url")
            found.errors.append(doc.problem(path, f"channel {name!r}: {problem}"))
    owners = config.notify.owners.channels
    for owner, target in owners.items():
        if "://" not in target:
            continue
        cls = plugins.notifier_class("apprise")
        problem = cls(owner, cls.Options.model_validate({"url": target})).check()
        if problem:
            path = ("notify", "owners", "channels", owner)
            found.errors.append(doc.problem(path, f"owner {owner!r}'s channel: {problem}"))


# --- rules ---------------------------------------------------------------------------------


def _rule_places(doc: Document, config: Config) -> Iterator[tuple[Document, PathKey, Any]]:
    """Each rule's document, path and raw data: the inline ones, then each rule file's."""
    inline = doc.data.get("correlation", {}).get("rules") if isinstance(doc.data, dict) else []
    for i, item in enumerate(inline if isinstance(inline, list) else []):
        yield doc, ("correlation", "rules", i), item
    for name in config.correlation.rule_files:
        path = config.resolve_path(name)
        try:
            file_doc = Document(read_utf8(path), str(path))
        except (OSError, ConfigError):
            continue  # reported when the config was read
        data, prefix = file_doc.data, cast(PathKey, ())
        if isinstance(data, dict) and "rules" in data:
            data, prefix = data["rules"], ("rules",)
        for i, item in enumerate(data if isinstance(data, list) else []):
            yield file_doc, (*prefix, i), item


def _check_rules(doc: Document, config: Config, found: Findings) -> None:
    from swanwatch.correlate import SCORE_RULE

    kinds = set(plugins.available(plugins.WATCHERS)) | OWN_KINDS
    try:
        all_rules(config)
    except (OSError, ConfigError):
        return  # reported when the config was read
    seen: dict[str, str] = {SCORE_RULE: "the built-in catch-all"}
    for where, path, item in _rule_places(doc, config):
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if isinstance(name, str):
            if name in seen:
                found.errors.append(
                    where.problem(
                        (*path, "name"),
                        f"a rule named {name!r} is already defined ({seen[name]}); "
                        "rule names must be unique: rename one",
                    )
                )
            else:
                seen[name] = f"{where.file}:{where.line_of((*path, 'name'))}"
        for key in ("all_of", "any_of", "of"):
            listed = item.get(key)
            for j, kind in enumerate(listed if isinstance(listed, list) else []):
                if isinstance(kind, str) and kind not in kinds:
                    found.warnings.append(
                        where.problem(
                            (*path, key, j),
                            f"no installed watcher emits signals of kind {kind!r}"
                            f"{did_you_mean(kind, kinds)}; the rule cannot match on it",
                        )
                    )


# --- the store -----------------------------------------------------------------------------


def _check_store(doc: Document, config: Config, found: Findings) -> None:
    from sqlalchemy.engine import make_url

    from swanwatch.store.health import existing_revision

    safe = make_url(config.store_url).render_as_string(hide_password=True)
    try:
        revision = existing_revision(config.store_url)
    except StoreError as exc:
        found.errors.append(doc.problem(("store", "url"), str(exc)))
        return
    except Exception as exc:  # a URL SQLAlchemy cannot use (a missing driver, a typo)
        found.errors.append(doc.problem(("store", "url"), f"cannot open {safe}: {exc}"))
        return
    if revision is None:
        found.reached.append(f"store {safe}: none yet (the first run creates it)")
    else:
        found.reached.append(f"store {safe}: schema revision {revision}")


def sorted_problems(problems: Sequence[ConfigProblem]) -> list[ConfigProblem]:
    """Problems in file order, each once."""
    return sorted(dict.fromkeys(problems), key=lambda p: (p.file, p.line or 0, p.path))
