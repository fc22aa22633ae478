"""The config file: YAML, ${ENV} interpolation, line-numbered errors, plugin options.

Every problem is reported at once, each with the file, the line and the field path
(``watchers[2].options.warn_days: ...``). The sections' types live in ``swanwatch.settings``
(re-exported here); ``swanwatch.schema`` prints their JSON Schema.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ValidationError

from swanwatch.durations import Duration, parse_duration
from swanwatch.errors import ConfigError, ConfigProblem, PluginError, did_you_mean
from swanwatch.settings import (
    DEFAULT_HALF_LIVES,
    DEFAULT_WEIGHTS,
    ROUTE_MATCH_FIELDS,
    UNSCHEDULED,
    AccountsConfig,
    ChannelConfig,
    ChannelFormat,
    ClockTime,
    Config,
    CorrelationConfig,
    DaemonConfig,
    DigestConfig,
    LeadersDigestConfig,
    LoggingConfig,
    NotifyConfig,
    OwnersConfig,
    PluginConfig,
    QueueConfig,
    QuietHours,
    RouteConfig,
    Rule,
    Schedule,
    ServerConfig,
    SourceConfig,
    StoreConfig,
    TimeZoneName,
    WatcherConfig,
    format_for_url,
    parse_clock_time,
)

__all__ = [
    "DEFAULT_HALF_LIVES",
    "DEFAULT_WEIGHTS",
    "MAX_VALUES",
    "ROUTE_MATCH_FIELDS",
    "AccountsConfig",
    "ChannelConfig",
    "ChannelFormat",
    "ClockTime",
    "Config",
    "CorrelationConfig",
    "DaemonConfig",
    "DigestConfig",
    "Document",
    "Duration",
    "LeadersDigestConfig",
    "LoggingConfig",
    "NotifyConfig",
    "OwnersConfig",
    "PathKey",
    "PluginConfig",
    "QueueConfig",
    "QuietHours",
    "RouteConfig",
    "Rule",
    "Schedule",
    "ServerConfig",
    "SourceConfig",
    "StoreConfig",
    "TimeZoneName",
    "WatcherConfig",
    "all_rules",
    "bundled",
    "fields_at",
    "format_for_url",
    "format_path",
    "load_checked",
    "load_config",
    "load_rules",
    "parse_clock_time",
    "parse_config",
    "parse_duration",
    "resolve",
]

if TYPE_CHECKING:
    from swanwatch.config_checks import Findings

# --- loading -------------------------------------------------------------------------------

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

PathKey = tuple[str | int, ...]


def format_path(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


#: libyaml's parser where PyYAML was built with it: the same nodes and marks, a tenth of
#: the pure-Python parser's time (17 ms of every command's start on the demo config).
_COMPOSER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: The most values a config may expand to: YAML aliases (``*name``) repeat what their
#: anchor holds, and a few lines of nested aliases can stand for billions of values.
MAX_VALUES = 100_000


class Document:
    """A YAML document's data with the line of every node, by path.

    Aliases are expanded, within :data:`MAX_VALUES` values in all; an alias to a node that
    holds it (a loop) is refused."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lines: dict[PathKey, int] = {}
        self.problems: list[ConfigProblem] = []
        self._values = 0
        self._open: set[int] = set()
        try:
            node = yaml.compose(text, Loader=_COMPOSER)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                [ConfigProblem(file, line, "", f"not valid YAML: {problem}")]
            ) from exc
        except RecursionError as exc:
            raise ConfigError(
                [ConfigProblem(file, None, "", "nested too deeply to be a config")]
            ) from exc
        self.data = self._build(node, ()) if node is not None else {}

    def _build(self, node: yaml.Node, path: PathKey) -> Any:
        line = node.start_mark.line + 1
        self.lines.setdefault(path, line)
        self._values += 1
        if self._values > MAX_VALUES or id(node) in self._open or len(path) > 50:
            if id(node) in self._open:
                why = "refers to itself through an alias"
            else:  # named at its top-level key: the section that grew too big
                why = f"expands to more than {MAX_VALUES:,} values (YAML aliases?)"
                path = path[:1]
                line = self.lines.get(path, line)
            raise ConfigError(
                [ConfigProblem(self.file, line, format_path(path), f"{why}; write it out")]
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            self._open.add(id(node))
            try:
                return self._build_collection(node, path)
            finally:
                self._open.discard(id(node))
        value = yaml.SafeLoader("").construct_object(node)
        if isinstance(value, str):
            if "\x00" in value:  # YAML's "\0": it would reach a title or a message
                why = "holds a NUL byte (0x00), which PostgreSQL stores nowhere: remove it"
                self.problems.append(ConfigProblem(self.file, line, format_path(path), why))
            return self._interpolate(value, path)
        return value

    def _build_collection(self, node: yaml.Node, path: PathKey) -> Any:
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, (*path, i)) for i, item in enumerate(node.value)]
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in out:
                self.problems.append(
                    ConfigProblem(
                        self.file,
                        key_node.start_mark.line + 1,
                        format_path((*path, key)),
                        "this key appears twice",
                    )
                )
            # The key's own line: a value on the next lines (a nested mapping) is reported
            # where its key is written.
            self.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = self._build(value_node, (*path, key))
        return out

    def _interpolate(self, value: str, path: PathKey) -> str:
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            self.problems.append(
                ConfigProblem(
                    self.file,
                    self.lines.get(path),
                    format_path(path),
                    f"environment variable {name} is not set (write ${{{name}:-default}} "
                    "for a default)",
                )
            )
            return ""

        return _ENV.sub(replace, value)

    def line_of(self, path: PathKey) -> int | None:
        # The deepest known ancestor: a missing key is reported at its parent's line.
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def problem(self, path: PathKey, message: str) -> ConfigProblem:
        return ConfigProblem(self.file, self.line_of(path), format_path(path), message)


def _pydantic_problems(
    doc: Document,
    error: ValidationError,
    prefix: PathKey = (),
    model: type[BaseModel] | None = None,
) -> list[ConfigProblem]:
    """Pydantic's errors as problems at the offending key's line: an unknown key with the
    closest known one, a section's own check at the key its message names."""
    problems = []
    for item in error.errors():
        loc: PathKey = tuple(p for p in item["loc"] if isinstance(p, str | int))
        message = item["msg"].removeprefix("Value error, ")
        path = (*prefix, *loc)
        if item["type"] == "extra_forbidden":
            known = fields_at(model, loc[:-1]) if model is not None else []
            hint = did_you_mean(str(loc[-1]), known) if loc else ""
            message = f"unknown key{hint or ' (check its spelling)'}"
        elif item["type"] == "missing":
            message = "this key is required"
        else:
            path = _named_key(doc, path, message)
        problems.append(doc.problem(path, message))
    return problems


def _named_key(doc: Document, path: PathKey, message: str) -> PathKey:
    """A section's check names the key it is about (`every`, weights.crm, listen): the
    path of the first key under ``path`` that the message names, else ``path``."""
    best: tuple[int, int, PathKey] | None = None
    for known in doc.lines:
        if len(known) <= len(path) or known[: len(path)] != path:
            continue
        rest = format_path(known[len(path) :]).lstrip(".")
        found = re.search(rf"(?<![\w.]){re.escape(rest)}(?![\w])", message)
        # The earliest named, and of those the longest: weights.crm over weights.
        if found and (best is None or (found.start(), -len(rest)) < best[:2]):
            best = (found.start(), -len(rest), known)
    return best[2] if best else path


def fields_at(model: type[BaseModel], loc: PathKey) -> list[str]:
    """The keys allowed at ``loc`` inside ``model``, following list items, mapping values
    and optional types through the annotations; [] when the path leaves the models."""
    current: object = model
    for part in loc:
        current = _plain(current)
        origin = typing.get_origin(current)
        args = typing.get_args(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            if not isinstance(part, str) or part not in current.model_fields:
                return []
            current = current.model_fields[part].annotation
        elif origin in (list, tuple, dict) or (origin is not None and args):
            current = args[0] if isinstance(part, int) else args[-1]
        else:
            return []
    current = _plain(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _plain(annotation: object) -> object:
    """The annotation without Annotated and without None in an optional."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    args = typing.get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        models = [a for a in rest if isinstance(a, type) and issubclass(a, BaseModel)]
        return _plain((models or rest)[0])
    return annotation


def load_config(path: str | Path, *, check_plugins: bool = True) -> Config:
    """Read, interpolate and validate a config file; raise ConfigError with every problem.

    ``check_plugins=False`` (a command that only reads the store) leaves the plugins'
    options unchecked and the watchers' cron expressions unparsed."""
    return _load(path, check_plugins)[0]


def load_checked(path: str | Path, *, connect: bool = False) -> tuple[Config, Findings]:
    """:func:`load_config`, then every check that needs no side effect (files, sources,
    channel addresses, rules; see ``swanwatch.config_checks``), and with ``connect`` the
    sources and the store opened read-only. ConfigError with every problem; the findings'
    warnings and what was reached are returned."""
    from swanwatch.config_checks import check, sorted_problems

    config, doc = _load(path, True)
    found = check(doc, config, connect=connect)
    if found.errors:
        raise ConfigError(sorted_problems(found.errors))
    found.warnings = sorted_problems(found.warnings)
    return config, found


def _load(path: str | Path, check_plugins: bool) -> tuple[Config, Document]:
    file = Path(path)
    try:
        text = read_utf8(file)
    except OSError as exc:
        problem = ConfigProblem(str(file), None, "", f"cannot read: {exc.strerror}")
        raise ConfigError([problem]) from exc
    return _parse(text, str(file), file.resolve().parent, check_plugins)


def read_utf8(path: Path) -> str:
    """The text of a config or rule file, line ends made ``\n``; ConfigError naming the line
    and column of a byte that is not UTF-8 (OSError as it comes)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - data.rfind(b"\n", 0, exc.start)
        problem = ConfigProblem(
            str(path),
            line,
            "",
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
            "save the file as UTF-8",
        )
        raise ConfigError([problem]) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_config(
    text: str, file: str = "<config>", *, base_dir: str | Path = ".", check_plugins: bool = True
) -> Config:
    """Validate config ``text``; see :func:`load_config`."""
    return _parse(text, file, base_dir, check_plugins)[0]


def _parse(
    text: str, file: str, base_dir: str | Path, check_plugins: bool
) -> tuple[Config, Document]:
    doc = Document(text, file)
    problems = list(doc.problems)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError([*problems, doc.problem((), "the config must be a mapping of sections")])
    data = _store_url_from_env(data)
    config: Config | None = None
    try:
        context = None if check_plugins else UNSCHEDULED
        config = Config.model_validate({**data, "base_dir": str(base_dir)}, context=context)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(doc, exc, model=Config))
    if check_plugins:
        problems.extend(_load_dropins(doc, data, Path(base_dir)))
        problems.extend(_check_plugins(doc, data))
    problems.extend(_check_references(doc, data))
    problems.extend(_check_shards(doc, data))
    problems.extend(_check_rule_files(doc, data, Path(base_dir)))
    if problems:
        raise ConfigError(_unique(problems))
    assert config is not None
    return config, doc


#: When set (and not empty), replaces the file's ``store.url``: a container gets its
#: database from its environment, whatever config is mounted.
STORE_URL_ENV = "SWANWATCH_STORE_URL"


def _store_url_from_env(data: dict[str, Any]) -> dict[str, Any]:
    url = os.environ.get(STORE_URL_ENV)
    store = data.get("store")
    if not url or not (store is None or isinstance(store, dict)):
        return data  # unset; or a malformed `store`, which validation reports
    return {**data, "store": {**(store or {}), "url": url}}


def _unique(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    seen: set[ConfigProblem] = set()
    out = []
    for problem in problems:
        if problem not in seen:
            seen.add(problem)
            out.append(problem)
    return sorted(out, key=lambda p: (p.line or 0, p.path))


def _load_dropins(doc: Document, data: Mapping[str, Any], base: Path) -> list[ConfigProblem]:
    """Register the drop-in plugins of ``plugin_dirs`` before the plugins are checked."""
    from swanwatch import plugins

    folders = data.get("plugin_dirs")
    problems = []
    for i, folder in enumerate(folders if isinstance(folders, list) else []):
        if not isinstance(folder, str):
            continue
        try:
            plugins.load_dropins([resolve(base, folder)])
        except PluginError as exc:
            problems.append(doc.problem(("plugin_dirs", i), str(exc)))
    return problems


def _check_plugins(doc: Document, data: Mapping[str, Any]) -> list[ConfigProblem]:
    """Validate each plugin's options against its own Options model."""
    from swanwatch import plugins  # here to keep config importable without plugin discovery

    problems: list[ConfigProblem] = []
    sections: list[tuple[str, str, list[tuple[PathKey, Any]]]] = [
        ("watchers", plugins.WATCHERS, []),
        ("sources", plugins.SOURCES, []),
    ]
    watchers = data.get("watchers")
    if isinstance(watchers, list):
        sections[0][2].extend((("watchers", i), w) for i, w in enumerate(watchers))
    sources = data.get("sources")
    if isinstance(sources, dict):
        sections[1][2].extend((("sources", name), s) for name, s in sources.items())
    notify = data.get("notify")
    channels = notify.get("channels") if isinstance(notify, dict) else None
    channel_items: list[tuple[PathKey, Any]] = []
    if isinstance(channels, dict):
        for name, channel in channels.items():
            if isinstance(channel, dict):
                options = dict(channel.get("options") or {})
                if "url" in channel:
                    options["url"] = channel["url"]
                entry = {"type": channel.get("type") or "apprise", "options": options}
                channel_items.append((("notify", "channels", name), entry))
    sections.append(("notify.channels", plugins.NOTIFIERS, channel_items))

    for _section, group, items in sections:
        for path, entry in items:
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                continue
            try:
                cls = plugins.load(group, entry["type"])
            except PluginError as exc:
                problems.append(doc.problem((*path, "type"), str(exc)))
                continue
            options = entry.get("options") or {}
            if not isinstance(options, dict):
                continue
            try:
                cls.Options.model_validate(options)
            except ValidationError as exc:
                problems.extend(_pydantic_problems(doc, exc, (*path, "options"), model=cls.Options))
    return problems


def _check_references(doc: Document, data: Mapping[str, Any]) -> list[ConfigProblem]:
    """Names that must point at something defined elsewhere in the file."""
    problems = []
    sources = data.get("sources")
    source_names = set(sources) if isinstance(sources, dict) else set()
    accounts = data.get("accounts")
    wanted = accounts.get("source") if isinstance(accounts, dict) else None
    if isinstance(wanted, str) and wanted not in source_names:
        known = ", ".join(sorted(source_names)) or "none"
        problems.append(
            doc.problem(
                ("accounts", "source"),
                f"accounts.source {wanted!r}{did_you_mean(wanted, source_names)} is not "
                f"under sources (defined: {known})",
            )
        )
    watchers = data.get("watchers")
    seen: set[str] = set()
    for i, watcher in enumerate(watchers if isinstance(watchers, list) else []):
        if not isinstance(watcher, dict):
            continue
        name = watcher.get("name") or watcher.get("type")
        if isinstance(name, str) and name in seen:
            problems.append(
                doc.problem(("watchers", i), f"two watchers are named {name!r}; give one a `name`")
            )
        if isinstance(name, str):
            seen.add(name)
    notify = data.get("notify")
    if isinstance(notify, dict):
        problems.extend(_check_notify_references(doc, notify))
    return problems


def _check_notify_references(doc: Document, notify: Mapping[str, Any]) -> list[ConfigProblem]:
    """Channel names in lists, the routing tree, owners and leaders' digests must exist."""
    channels = notify.get("channels")
    names = set(channels) if isinstance(channels, dict) else set()
    problems: list[ConfigProblem] = []

    def check(path: PathKey, name: object) -> None:
        if isinstance(name, str) and name not in names:
            known = ", ".join(sorted(names)) or "none"
            problems.append(
                doc.problem(
                    path, f"channel {name!r} is not defined under notify.channels ({known})"
                )
            )

    def check_list(path: PathKey, listed: object) -> None:
        for i, name in enumerate(listed if isinstance(listed, list) else []):
            check((*path, i), name)

    for key in ("default_channels", "ops_channels"):
        check_list(("notify", key), notify.get(key))

    def walk(route: object, path: PathKey) -> None:
        if not isinstance(route, dict):
            return
        check_list((*path, "channels"), route.get("channels"))
        if route.get("fallback") is not None:
            check((*path, "fallback"), route.get("fallback"))
        children = route.get("routes")
        for i, child in enumerate(children if isinstance(children, list) else []):
            walk(child, (*path, "routes", i))

    walk(notify.get("route"), ("notify", "route"))
    owners = notify.get("owners")
    owner_channels = owners.get("channels") if isinstance(owners, dict) else None
    if isinstance(owner_channels, dict):
        for owner, target in owner_channels.items():
            if isinstance(target, str) and "://" not in target:
                check(("notify", "owners", "channels", owner), target)
    leaders = notify.get("leaders")
    for i, digest in enumerate(leaders if isinstance(leaders, list) else []):
        if isinstance(digest, dict):
            check_list(("notify", "leaders", i, "channels"), digest.get("channels"))
    return problems


def _check_shards(doc: Document, data: Mapping[str, Any]) -> list[ConfigProblem]:
    """Shards travel through a PostgreSQL queue: a SQLite store cannot shard."""
    daemon = data.get("daemon")
    shards = daemon.get("shards") if isinstance(daemon, dict) else None
    if not isinstance(shards, int) or isinstance(shards, bool) or shards <= 1:
        return []
    store = data.get("store")
    url = store.get("url") if isinstance(store, dict) else None
    url = url if isinstance(url, str) else StoreConfig().url
    if url.startswith("postgresql"):
        return []
    return [
        doc.problem(
            ("daemon", "shards"),
            f"daemon.shards is {shards}, but sharding needs a PostgreSQL store (store.url is "
            f"{url.split(':', 1)[0]}:...); set shards to 1 or move the store to PostgreSQL",
        )
    ]


def _check_rule_files(doc: Document, data: Mapping[str, Any], base: Path) -> list[ConfigProblem]:
    correlation = data.get("correlation")
    files = correlation.get("rule_files") if isinstance(correlation, dict) else None
    if not isinstance(files, list):
        return []
    problems = []
    for i, name in enumerate(files):
        if not isinstance(name, str):
            continue
        try:
            load_rules(resolve(base, name))
        except ConfigError as exc:
            problems.extend(exc.problems)
        except OSError as exc:
            problems.append(
                doc.problem(("correlation", "rule_files", i), f"cannot read {name}: {exc}")
            )
    return problems


def resolve(base: Path, name: str) -> Path:
    path = Path(name).expanduser()
    return path if path.is_absolute() else base / path


def load_rules(path: Path) -> list[Rule]:
    """Read a rule file: a YAML list of rules (or a mapping with a `rules` list)."""
    doc = Document(read_utf8(path), str(path))
    data = doc.data
    prefix: PathKey = ()
    if isinstance(data, dict) and "rules" in data:
        data, prefix = data["rules"], ("rules",)
    if not isinstance(data, list):
        raise ConfigError([doc.problem(prefix, "a rule file holds a list of rules")])
    rules, problems = [], list(doc.problems)
    for i, item in enumerate(data):
        try:
            rules.append(Rule.model_validate(item))
        except ValidationError as exc:
            problems.extend(_pydantic_problems(doc, exc, (*prefix, i), model=Rule))
    if problems:
        raise ConfigError(problems)
    return rules


def all_rules(config: Config) -> list[Rule]:
    """The config's inline rules followed by those of its rule files."""
    rules = list(config.correlation.rules)
    for name in config.correlation.rule_files:
        rules.extend(load_rules(config.resolve_path(name)))
    return rules


def bundled(*parts: str) -> Traversable:
    """A file shipped inside Swanwatch: the repository's ``config/`` folder, installed as
    ``swanwatch.bundled`` (``demo.yaml``, ``rules/default.yaml``,
    ``swanwatch.example.yaml``, ``sample/*.csv``)."""
    return resources.files("swanwatch.bundled").joinpath(*parts)
