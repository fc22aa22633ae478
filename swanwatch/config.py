"""The config file: schema (pydantic), ${ENV} interpolation, and line-numbered errors.

Every problem is reported at once, each with the file, the line and the field path
(``watchers[2].options.warn_days: ...``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)

from swanwatch.errors import ConfigError, ConfigProblem, PluginError
from swanwatch.model import Severity

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, None: 1}


def parse_duration(value: object) -> timedelta:
    """``"90s"``, ``"5m"``, ``"1h"``, ``"2d"``, ``"1w"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 1h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
    raise ValueError(f"{value!r} is not a duration; use e.g. 30s, 5m, 1h or 1d")


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreConfig(_Section):
    """Where Swanwatch keeps signals, alerts and the outbox."""

    url: str = Field(
        "sqlite:///swanwatch.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the config file.",
    )


class PluginConfig(_Section):
    """A plugin instance: its type (entry-point name) and its options."""

    type: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class Schedule(_Section):
    """When a watcher runs: every fixed interval, or on a cron expression."""

    every: Duration | None = None
    cron: str | None = None
    jitter: Duration = timedelta(0)
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_trigger(self) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` or `cron`")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError("`every` must be longer than zero")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone=self.timezone)
            except (ValueError, LookupError) as exc:
                raise ValueError(f"cron {self.cron!r} is not valid: {exc}") from exc
        return self


class WatcherConfig(_Section):
    """One configured watcher instance."""

    type: str = Field(min_length=1, description="The watcher's entry-point name.")
    name: str | None = Field(None, description="Instance name; defaults to the type.")
    enabled: bool = True
    schedule: Schedule = Schedule(every=timedelta(hours=1))
    timeout: Duration = timedelta(minutes=10)
    options: dict[str, Any] = Field(default_factory=dict)

    @property
    def instance(self) -> str:
        return self.name or self.type


class AccountsConfig(_Section):
    """Where the account list comes from: a configured source."""

    source: str = Field(min_length=1)


class Rule(_Section):
    """A compound rule: which signal kinds, together, within a window, make an alert."""

    name: str = Field(min_length=1)
    title: str = Field(min_length=1)
    severity: Severity = Severity.WARNING
    all_of: tuple[str, ...] = ()
    any_of: tuple[str, ...] = ()
    at_least: int | None = Field(None, ge=1, description="At least N distinct kinds.")
    of: tuple[str, ...] = Field((), description="Kinds counted by at_least; empty = any.")
    within: Duration = timedelta(days=30)
    min_score: float = Field(0.0, ge=0, le=1, description="Score of the matched signals.")
    min_strength: float = Field(0.0, ge=0, le=1, description="Ignore weaker signals.")
    renewal_within_days: int | None = Field(None, ge=0)
    arr_at_least: float | None = Field(None, ge=0)
    segments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    play: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_condition(self) -> Rule:
        if not (self.all_of or self.any_of or self.at_least):
            raise ValueError("a rule needs at least one of all_of, any_of or at_least")
        return self


#: How much one full-strength signal of each kind says about churn on its own.
DEFAULT_WEIGHTS = {
    "domain_expiry": 0.9,
    "tls_expiry": 0.8,
    "champion_departure": 0.7,
    "usage_drop": 0.7,
    "renewal_lapse": 0.6,
    "support_spike": 0.5,
}
#: How fast each kind's news goes stale (days to halve its weight).
DEFAULT_HALF_LIVES = {
    "domain_expiry": 365.0,
    "tls_expiry": 365.0,
    "champion_departure": 60.0,
    "usage_drop": 30.0,
    "renewal_lapse": 90.0,
    "support_spike": 14.0,
}


class CorrelationConfig(_Section):
    """How signals combine into a risk score and compound alerts."""

    weights: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="Weight 0..1 per signal kind; kinds not listed get default_weight.",
    )
    default_weight: float = Field(0.5, ge=0, le=1)
    half_life_days: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_HALF_LIVES),
        description="Days for a signal's weight to halve, per kind.",
    )
    default_half_life_days: float = Field(30.0, gt=0)
    min_strength: float = Field(0.05, ge=0, le=1, description="Weaker signals are ignored.")
    rules: list[Rule] = Field(default_factory=list)
    rule_files: list[str] = Field(default_factory=list, description="YAML files of rules.")
    score_threshold: float = Field(
        0.6, ge=0, le=1, description="The catch-all risk-score rule fires at this score."
    )
    score_min_kinds: int = Field(2, ge=1, description="... with at least this many kinds.")
    score_window: Duration = Field(
        timedelta(days=30), description="The catch-all rule counts signals this recent."
    )
    resolve_hold_down: Duration = Field(
        timedelta(days=3), description="Signals must stay clear this long to resolve."
    )
    flap_window: Duration = Field(
        timedelta(days=7),
        description="An alert back within this long of resolving is flapping: its "
        "hold-down doubles.",
    )

    @model_validator(mode="after")
    def _weights_in_range(self) -> CorrelationConfig:
        for kind, weight in self.weights.items():
            if not 0 <= weight <= 1:
                raise ValueError(f"weights.{kind} must be between 0 and 1, not {weight}")
        for kind, days in self.half_life_days.items():
            if days <= 0:
                raise ValueError(f"half_life_days.{kind} must be positive, not {days}")
        return self


def parse_clock_time(value: object) -> dt_time:
    """``"08:30"`` (quote it: YAML 1.1 reads an unquoted ``8:30`` as the number 510, which
    is taken back as 8:30) or a ``datetime.time``."""
    if isinstance(value, dt_time):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return dt_time(value // 60, value % 60)
    if isinstance(value, str):
        try:
            return dt_time.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValueError(f'{value!r} is not a time of day; write it as "08:30"')


def _check_timezone(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from exc
    return value


ClockTime = Annotated[dt_time, BeforeValidator(parse_clock_time)]
TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]

#: The formats a channel renders in.
ChannelFormat = Literal["auto", "chat", "email", "text"]


class ChannelConfig(_Section):
    """A named delivery channel: an Apprise URL, or another notifier by type."""

    url: str | None = Field(None, description="Apprise URL (mailto://, slack://, json://...).")
    type: str | None = Field(None, description="Notifier entry-point name; default apprise.")
    options: dict[str, Any] = Field(default_factory=dict)
    min_severity: Severity = Severity.INFO
    format: ChannelFormat = Field(
        "auto", description="chat (markdown), email (HTML + text) or text; auto: by URL."
    )
    timezone: TimeZoneName | None = Field(
        None, description="The recipients' time zone, for digests and quiet hours."
    )

    @model_validator(mode="after")
    def _has_target(self) -> ChannelConfig:
        if self.url is None and self.type is None:
            raise ValueError("a channel needs a `url` (Apprise) or a `type`")
        return self

    @property
    def notifier_type(self) -> str:
        return self.type or "apprise"

    @property
    def notifier_options(self) -> dict[str, Any]:
        if self.url is not None:
            return {"url": self.url, **self.options}
        return dict(self.options)

    @property
    def render_format(self) -> str:
        """The format messages for this channel are rendered in."""
        if self.format != "auto":
            return self.format
        return format_for_url(self.url)


def format_for_url(url: str | None) -> str:
    """email for mailto:// and mailtos:// URLs, chat for the rest."""
    scheme = (url or "").split(":", 1)[0].lower()
    return "email" if scheme in ("mailto", "mailtos", "email") else "chat"


class QuietHours(_Section):
    """Hours when only critical alerts are sent; the rest wait until the end."""

    start: ClockTime = Field(description='Local time quiet hours begin, e.g. "20:00".')
    end: ClockTime = Field(description='Local time they end, e.g. "08:00" (next day).')
    weekends: bool = Field(False, description="Also quiet all Saturday and Sunday.")
    timezone: TimeZoneName | None = Field(None, description="Default: the recipient's.")


class DigestConfig(_Section):
    """Low-severity alerts collected and sent once a day, at ``at`` local time."""

    at: ClockTime = Field(dt_time(8, 30), description='Local time of the digest, "08:30".')
    max_severity: Severity = Field(
        Severity.WARNING, description="Alerts of this severity or lower go to the digest."
    )
    timezone: TimeZoneName | None = Field(None, description="Default: the recipient's.")

    @model_validator(mode="after")
    def _not_critical(self) -> DigestConfig:
        if self.max_severity == Severity.CRITICAL:
            raise ValueError("critical alerts always bypass digests; use max_severity: high")
        return self


#: What a route can match on.
ROUTE_MATCH_FIELDS = ("severity", "rule", "kind", "segment", "owner", "tags", "account")


class RouteConfig(_Section):
    """One node of the routing tree, in the manner of Alertmanager.

    A notice walks the tree from the root: each child route whose ``match`` holds takes it,
    the first one only unless that child says ``continue: true``. A route no child took
    sends it to its own channels (and the owner's channel with ``owner: true``). Unset pacing
    keys are inherited from the parent.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str | None = Field(None, description="Shown by `routes test`; default its path.")
    match: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Field -> glob or list of globs: severity, rule, kind, segment, owner, "
        "tags, account. Every field given must match (kind and tags: any of them).",
    )
    min_severity: Severity | None = Field(None, description="Match only at or above this.")
    channels: list[str] = Field(default_factory=list, description="Channels to send to.")
    owner: bool = Field(False, description="Also send to the account owner's own channel.")
    continue_: bool = Field(
        False, alias="continue", description="Go on to the next sibling route after a match."
    )
    fallback: str | None = Field(
        None, description="Channel used when a channel of this route keeps failing."
    )
    send_resolved: bool | None = Field(None, description="Send a short resolved follow-up.")
    group_wait: Duration | None = Field(None, description="Wait this long to batch a burst.")
    group_interval: Duration | None = Field(
        None, description="At most one message per channel this often for the route."
    )
    digest: DigestConfig | None = None
    quiet_hours: QuietHours | None = None
    routes: list[RouteConfig] = Field(default_factory=list, description="Child routes.")

    @model_validator(mode="after")
    def _known_fields(self) -> RouteConfig:
        unknown = sorted(set(self.match) - set(ROUTE_MATCH_FIELDS))
        if unknown:
            raise ValueError(
                f"cannot match on {', '.join(unknown)}; use {', '.join(ROUTE_MATCH_FIELDS)}"
            )
        return self


class OwnersConfig(_Section):
    """How an account owner's own channel is found from the account's ``owner`` field."""

    channels: dict[str, str] = Field(
        default_factory=dict,
        description="Owner -> a channel name under notify.channels, or an Apprise URL.",
    )
    url_template: str | None = Field(
        None,
        description="Apprise URL with {owner} (URL-quoted), e.g. "
        "mailtos://user:pass@smtp.example.com?to={owner}; used when not in `channels`.",
    )
    timezones: dict[str, TimeZoneName] = Field(
        default_factory=dict, description="Owner -> time zone, for digests and quiet hours."
    )
    default_timezone: TimeZoneName = Field("UTC", description="Everyone else's time zone.")


class LeadersDigestConfig(_Section):
    """A weekly digest for a team's leaders: ARR at risk, new, escalated and resolved
    risks, the plays in flight, with a chart of the weeks before."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    channels: list[str] = Field(min_length=1)
    segments: list[str] = Field(default_factory=list, description="Only these segments.")
    owners: list[str] = Field(default_factory=list, description="Only these owners (a team).")
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    at: ClockTime = dt_time(8, 0)
    timezone: TimeZoneName = "UTC"
    weeks: int = Field(8, ge=2, le=52, description="Weeks shown in the chart.")


class NotifyConfig(_Section):
    """Where alerts go, and how often."""

    console: bool = Field(True, description="Also print alerts on standard output.")
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    default_channels: list[str] | None = Field(
        None, description="Channels for account alerts; default all. Ignored with `route`."
    )
    ops_channels: list[str] | None = Field(
        None, description="Channels for Swanwatch's own alerts; default all."
    )
    route: RouteConfig | None = Field(None, description="The routing tree's root.")
    owners: OwnersConfig = OwnersConfig()
    repeat_interval: Duration = timedelta(days=7)
    critical_repeat: Duration = Field(
        timedelta(hours=1),
        description="An unacknowledged critical alert repeats after this, doubling each "
        "time up to repeat_interval.",
    )
    send_resolved: bool = True
    group_wait: Duration = Field(timedelta(0), description="Default group_wait of routes.")
    group_interval: Duration = Field(timedelta(0), description="Default group_interval.")
    max_attempts: int = Field(8, ge=1)
    retry_backoff: Duration = timedelta(seconds=30)
    retry_backoff_max: Duration = timedelta(hours=1)
    fallback_after: int = Field(
        3, ge=1, description="Failed tries before a route's fallback channel takes over."
    )
    lease: Duration = Field(
        timedelta(minutes=5),
        description="How long a sender holds a notification; a crashed sender's are retried "
        "after this.",
    )
    base_url: str | None = Field(
        None, description="Public URL of this daemon's HTTP endpoint; enables action links."
    )
    link_secret: SecretStr | None = Field(
        None, description="HMAC key of action links (or $SWANWATCH_LINK_SECRET)."
    )
    link_ttl: Duration = Field(timedelta(days=7), description="How long action links work.")
    templates_dir: str | None = Field(
        None, description="Folder of Jinja2 templates overriding the built-in ones."
    )
    leaders: list[LeadersDigestConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _links_need_a_secret(self) -> NotifyConfig:
        if (
            self.base_url is not None
            and self.link_secret is None
            and not os.environ.get("SWANWATCH_LINK_SECRET")
        ):
            raise ValueError(
                "base_url needs a link_secret (or $SWANWATCH_LINK_SECRET) to sign links"
            )
        return self

    def secret(self) -> bytes | None:
        """The action links' HMAC key, from the config or the environment."""
        if self.link_secret is not None:
            return self.link_secret.get_secret_value().encode("utf-8")
        env = os.environ.get("SWANWATCH_LINK_SECRET")
        return env.encode("utf-8") if env else None


class ServerConfig(_Section):
    """The daemon's HTTP endpoint: action links, the risk board, /healthz, /readyz and
    /metrics."""

    listen: str | None = Field(
        None, description='host:port to serve on, e.g. "0.0.0.0:8080"; off when unset.'
    )
    board_token: SecretStr | None = Field(
        None,
        description="The risk board's access token (at least 16 characters; put it in from "
        "${ENV}), presented once as /board?token=...; the board is off when unset or empty.",
    )
    board_session: Duration = Field(
        timedelta(days=7),
        description="How long the board's sign-in cookie lasts after the token was presented.",
    )

    @model_validator(mode="before")
    @classmethod
    def _empty_token_is_none(cls, data: object) -> object:
        # `${SWANWATCH_BOARD_TOKEN:-}` with the variable unset: the board stays off.
        if isinstance(data, dict) and data.get("board_token") == "":
            return {**data, "board_token": None}
        return data

    @model_validator(mode="after")
    def _host_port(self) -> ServerConfig:
        if self.listen is not None:
            host, _, port = self.listen.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) < 65536:
                raise ValueError(f"listen {self.listen!r} is not host:port")
        if self.board_token is not None and len(self.board_token.get_secret_value()) < 16:
            raise ValueError("board_token is too short: use at least 16 random characters")
        if self.board_session <= timedelta(0):
            raise ValueError("board_session must be positive")
        return self

    @property
    def host_port(self) -> tuple[str, int]:
        assert self.listen is not None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class QueueConfig(_Section):
    """The task queue that carries watcher shards to workers (procrastinate, on the store's
    PostgreSQL); used only when ``daemon.shards`` is above 1."""

    name: str = Field(
        "swanwatch", min_length=1, description="The procrastinate queue the shards go on."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Attempts per shard (the first run and its retries)."
    )
    retry_wait: Duration = Field(
        timedelta(seconds=5), description="How long a failed shard waits before its retry."
    )
    heartbeat: Duration = Field(
        timedelta(seconds=10), description="How often a worker tells the queue it is alive."
    )
    stalled_after: Duration = Field(
        timedelta(seconds=30),
        description="A shard whose worker sent no heartbeat for this long is given to another "
        "worker (a killed or frozen machine).",
    )
    poll: Duration = Field(
        timedelta(seconds=1), description="How often the leader checks a cycle's shards."
    )
    cycle_timeout: Duration = Field(
        timedelta(hours=1),
        description="A shard not finished this long after its cycle began counts as failed "
        "(e.g. no worker is running).",
    )

    @model_validator(mode="after")
    def _positive(self) -> QueueConfig:
        for key in ("heartbeat", "stalled_after", "poll", "cycle_timeout"):
            if getattr(self, key) <= timedelta(0):
                raise ValueError(f"{key} must be positive")
        if self.stalled_after <= self.heartbeat:
            raise ValueError("stalled_after must be longer than heartbeat")
        return self


class DaemonConfig(_Section):
    """How the daemon runs."""

    shards: int = Field(
        1,
        ge=1,
        le=1024,
        description="Split each watcher run over this many shards of the accounts, run by "
        "`swanwatch worker` processes through the queue (PostgreSQL store only); 1 runs "
        "watchers in the daemon itself.",
    )
    queue: QueueConfig = QueueConfig()

    failure_alert_after: int = Field(
        3, ge=1, description="Consecutive failed runs before a watcher raises an ops alert."
    )
    shutdown_grace: Duration = timedelta(seconds=8)
    misfire_grace: Duration = timedelta(minutes=10)
    blocking_workers: int = Field(8, ge=1, description="Threads for blocking calls.")
    http_timeout: Duration = timedelta(seconds=20)
    deliver_every: Duration = timedelta(seconds=30)
    leader_check: Duration = Field(
        timedelta(seconds=5),
        description="How often a replica campaigns for leadership (and the leader checks it "
        "still leads).",
    )
    startup_spread: Duration = Field(
        timedelta(seconds=10),
        description="Overdue watchers start spread over this long after a restart.",
    )
    leader_lease: Duration = Field(
        timedelta(seconds=15),
        description="PostgreSQL: a leader that has not confirmed its lock for this long is "
        "replaced (a standby ends its sessions and takes over); each confirmation must "
        "answer within a third of it.",
    )

    @model_validator(mode="after")
    def _lease_outlasts_checks(self) -> DaemonConfig:
        if self.leader_lease < 2 * self.leader_check:
            raise ValueError("leader_lease must be at least twice leader_check")
        return self


class LoggingConfig(_Section):
    """The daemon's log: one JSON object per line, or readable text lines."""

    format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: JSON unless standard error is a terminal; json; text."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="For `swanwatch run` (--log-level and $SWANWATCH_LOG_LEVEL win)."
    )


class Config(_Section):
    """The whole config file."""

    version: Literal[1] = 1
    plugin_dirs: list[str] = Field(
        default_factory=list,
        description="Folders of drop-in plugin files (*.py), relative to the config file.",
    )
    store: StoreConfig = StoreConfig()
    sources: dict[str, PluginConfig] = Field(default_factory=dict)
    accounts: AccountsConfig
    watchers: list[WatcherConfig] = Field(default_factory=list)
    correlation: CorrelationConfig = CorrelationConfig()
    notify: NotifyConfig = NotifyConfig()
    daemon: DaemonConfig = DaemonConfig()
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()

    #: The folder the config file is in; relative paths resolve against it.
    base_dir: str = Field(".", exclude=True)

    def resolve_path(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def store_url(self) -> str:
        """The store URL, a relative SQLite path made relative to the config file."""
        url = self.store.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            rest = url[len(prefix) :]
            if rest and rest != ":memory:":
                return prefix + str(self.resolve_path(rest))
        return url

    def active_watchers(self) -> list[WatcherConfig]:
        return [w for w in self.watchers if w.enabled]


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


class _Document:
    """A YAML document's data with the line of every node, by path."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lines: dict[PathKey, int] = {}
        self.problems: list[ConfigProblem] = []
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = mark.line + 1 if mark is not None else None
            problem = getattr(exc, "problem", None) or str(exc)
            raise ConfigError(
                [ConfigProblem(file, line, "", f"not valid YAML: {problem}")]
            ) from exc
        self.data = self._build(node, ()) if node is not None else {}

    def _build(self, node: yaml.Node, path: PathKey) -> Any:
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
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
                out[key] = self._build(value_node, (*path, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._build(item, (*path, i)) for i, item in enumerate(node.value)]
        value = yaml.SafeLoader("").construct_object(node)
        if isinstance(value, str):
            return self._interpolate(value, path)
        return value

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
    doc: _Document, error: ValidationError, prefix: PathKey = ()
) -> list[ConfigProblem]:
    problems = []
    for item in error.errors():
        loc: PathKey = tuple(p for p in item["loc"] if isinstance(p, str | int))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling)"
        elif item["type"] == "missing":
            message = "this key is required"
        message = message.removeprefix("Value error, ")
        problems.append(doc.problem((*prefix, *loc), message))
    return problems


def load_config(path: str | Path, *, check_plugins: bool = True) -> Config:
    """Read, interpolate and validate a config file; raise ConfigError with every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        problem = ConfigProblem(str(file), None, "", f"cannot read: {exc.strerror}")
        raise ConfigError([problem]) from exc
    return parse_config(
        text, str(file), base_dir=file.resolve().parent, check_plugins=check_plugins
    )


def parse_config(
    text: str, file: str = "<config>", *, base_dir: str | Path = ".", check_plugins: bool = True
) -> Config:
    """Validate config ``text``; see :func:`load_config`."""
    doc = _Document(text, file)
    problems = list(doc.problems)
    data = doc.data
    if not isinstance(data, dict):
        raise ConfigError([*problems, doc.problem((), "the config must be a mapping of sections")])
    data = _store_url_from_env(data)
    config: Config | None = None
    try:
        config = Config.model_validate({**data, "base_dir": str(base_dir)})
    except ValidationError as exc:
        problems.extend(_pydantic_problems(doc, exc))
    if check_plugins:
        problems.extend(_load_dropins(doc, data, Path(base_dir)))
        problems.extend(_check_plugins(doc, data))
    problems.extend(_check_references(doc, data))
    problems.extend(_check_shards(doc, data))
    problems.extend(_check_rule_files(doc, data, Path(base_dir)))
    if problems:
        raise ConfigError(_unique(problems))
    assert config is not None
    return config


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


def _load_dropins(doc: _Document, data: Mapping[str, Any], base: Path) -> list[ConfigProblem]:
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


def _check_plugins(doc: _Document, data: Mapping[str, Any]) -> list[ConfigProblem]:
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
                problems.extend(_pydantic_problems(doc, exc, (*path, "options")))
    return problems


def _check_references(doc: _Document, data: Mapping[str, Any]) -> list[ConfigProblem]:
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
                f"accounts.source {wanted!r} is not under sources (defined: {known})",
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


def _check_notify_references(doc: _Document, notify: Mapping[str, Any]) -> list[ConfigProblem]:
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


def _check_shards(doc: _Document, data: Mapping[str, Any]) -> list[ConfigProblem]:
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


def _check_rule_files(doc: _Document, data: Mapping[str, Any], base: Path) -> list[ConfigProblem]:
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
    text = path.read_text(encoding="utf-8")
    doc = _Document(text, str(path))
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
            problems.extend(_pydantic_problems(doc, exc, (*prefix, i)))
    if problems:
        raise ConfigError(problems)
    return rules


def all_rules(config: Config) -> list[Rule]:
    """The config's inline rules followed by those of its rule files."""
    rules = list(config.correlation.rules)
    for name in config.correlation.rule_files:
        rules.extend(load_rules(config.resolve_path(name)))
    return rules
