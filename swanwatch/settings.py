"""The config's types: pydantic models of every section, for pure code to import.

Rules, correlation, routes, channels, notify, daemon and the whole :class:`Config`, with
their validation (durations, times of day, time zones). No YAML, no ``${ENV}``, no plugin
discovery: ``swanwatch.config`` reads the file and checks plugin options.
"""

from __future__ import annotations

import os
from datetime import time as dt_time
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from swanwatch.durations import Duration
from swanwatch.model import Severity
from swanwatch.rules import DEFAULT_PHRASES, DEFAULT_SCORE_RAISE, RaiseStep, Section
from swanwatch.rules import Rule as Rule  # re-exported: where it lived before
from swanwatch.settings_board import BoardConfig
from swanwatch.signing import weak_secret


class _Section(Section):
    """A section of the config (the rule language's base, shared)."""

    # Built when first used, as part of Config's schema: a command builds what it validates.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class StoreConfig(_Section):
    """Where Swanwatch keeps signals, alerts and the outbox."""

    url: str = Field(
        "sqlite:///swanwatch.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to the config file, "
        "one written ./name.db to the working directory.",
    )


class PluginConfig(_Section):
    """A plugin instance: its type (entry-point name) and its options."""

    type: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class SourceConfig(PluginConfig):
    """A source: its plugin and options, and what a healthy read of it looks like.

    A read that fails is broken; one with more malformed rows than ``max_bad_rows``, or
    more than ``max_shrink_pct`` fewer rows than the last good read, is suspect; one whose
    newest dated row is older than ``fresh_within`` is stale. An unhealthy read is not the
    truth: the watchers that read it report their accounts unknown and keep their signals.
    """

    fresh_within: Duration | None = Field(
        None,
        description="How recent the newest dated row must be (e.g. 3d); unset: the default "
        "of each watcher that reads it; 0s: never stale.",
    )
    date_field: str | None = Field(
        None,
        description="The field whose newest value tells how fresh the source is; unset: the "
        "one the reading watcher names, or the source's own `date_field` option.",
    )
    static: bool = Field(
        False,
        description="The source's rows never change (a fixed lookup table): a replay "
        "(backtest, review) may read them as they are today. Without it, a replay refuses a "
        "source that keeps no history (no date_field, no snapshots).",
    )
    max_shrink_pct: float = Field(
        20.0,
        ge=0,
        le=100,
        description="A read with more than this many percent fewer rows than the last good "
        "read is suspect; 100: never.",
    )
    max_bad_rows: int = Field(
        0, ge=0, description="Malformed rows a read may skip and still be good."
    )


#: The validation context of a command that only reads the store: it schedules nothing, so
#: cron expressions are not parsed (that imports the scheduler); every other check is made.
UNSCHEDULED: dict[str, bool] = {"schedules": False}


class Schedule(_Section):
    """When a watcher runs: every fixed interval, or on a cron expression."""

    every: Duration | None = None
    cron: str | None = None
    jitter: Duration = timedelta(0)
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _one_trigger(self, info: ValidationInfo) -> Schedule:
        if (self.every is None) == (self.cron is None):
            raise ValueError("give exactly one of `every` or `cron`")
        if self.every is not None and self.every <= timedelta(0):
            raise ValueError("`every` must be longer than zero")
        if self.cron is not None and (info.context or {}).get("schedules", True):
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
    """Where the account list comes from: a configured source; and when an account it stops
    listing is retired (its open alerts resolved without a word)."""

    source: str = Field(min_length=1)
    retire_after_reads: int = Field(
        3,
        ge=1,
        description="Good reads in a row that must leave an account out before it is "
        "retired; until then it is reported unknown and its alerts live on.",
    )
    retire_after: Duration = Field(
        timedelta(days=1),
        description="... the first of them at least this long ago (each watcher run reads "
        "the accounts again, so reads can come close together).",
    )


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
        description="Weight 0..1 per signal kind, merged over the built-in weights kind by "
        "kind (a kind not listed keeps its built-in weight); other kinds get default_weight.",
    )
    default_weight: float = Field(0.5, ge=0, le=1)
    half_life_days: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_HALF_LIVES),
        description="Days for a signal's weight to halve, per kind, merged over the built-in "
        "half-lives kind by kind; other kinds get default_half_life_days.",
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
    score_raise: tuple[RaiseStep, ...] = Field(
        DEFAULT_SCORE_RAISE, description="The catch-all rule's steps up in severity."
    )
    phrases: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_PHRASES),
        description="A few words per signal kind (or kind:topic) for the catch-all title; "
        "merged over the built-in ones.",
    )
    resolve_hold_down: Duration = Field(
        timedelta(days=3), description="Signals must stay clear this long to resolve."
    )
    flap_window: Duration = Field(
        timedelta(days=7),
        description="An alert back within this long of resolving is flapping: its "
        "hold-down doubles.",
    )

    @field_validator("phrases", mode="before")
    @classmethod
    def _merge_phrases(cls, value: object) -> object:
        return {**DEFAULT_PHRASES, **value} if isinstance(value, dict) else value

    @field_validator("weights", "half_life_days", mode="after")
    @classmethod
    def _over_the_defaults(cls, given: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        # Setting one kind's weight must not send every other kind to default_weight: the
        # configured kinds override the built-in ones, kind by kind.
        defaults = DEFAULT_WEIGHTS if info.field_name == "weights" else DEFAULT_HALF_LIVES
        return {**defaults, **given}

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

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, defer_build=True)

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
        description="How long a sender's claim on a notification lasts unless renewed (it "
        "renews while it works); a crashed sender's are retried after this.",
    )
    send_concurrency: int = Field(
        1, ge=1, le=64, description="Messages in flight at once per sender (a kill -9 may "
        "repeat that many, same Idempotency-Key); an alert's stay in order.",
    )  # fmt: skip
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
        env = os.environ.get("SWANWATCH_LINK_SECRET")
        if self.base_url is not None and self.link_secret is None and not env:
            raise ValueError(
                "base_url needs a link_secret (or $SWANWATCH_LINK_SECRET) to sign links"
            )
        if self.link_secret is not None:
            weak = weak_secret("link_secret", self.link_secret.get_secret_value())
        else:
            weak = weak_secret("$SWANWATCH_LINK_SECRET", env) if env else None
        if weak:
            raise ValueError(weak)
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
    board: BoardConfig = Field(default_factory=BoardConfig, description=BoardConfig.__doc__)

    @model_validator(mode="before")
    @classmethod
    def _empty_token_is_none(cls, data: object) -> object:
        # `${SWANWATCH_BOARD_TOKEN:-}` (or `${SWANWATCH_LISTEN:-}`) with the variable unset:
        # the board (or the endpoint) stays off.
        if isinstance(data, dict):
            data = {**data, **{k: None for k in ("board_token", "listen") if data.get(k) == ""}}
        return data

    @model_validator(mode="after")
    def _host_port(self) -> ServerConfig:
        if self.listen is not None:
            host, _, port = self.listen.rpartition(":")
            if not host or not port.isdigit() or not 0 <= int(port) < 65536:
                raise ValueError(f"listen {self.listen!r} is not host:port")
        if self.board_token is not None:
            weak = weak_secret("board_token", self.board_token.get_secret_value())
            if weak:
                raise ValueError(weak)
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
    watcher_processes: int | None = Field(
        None,
        ge=0,
        le=64,
        description="Worker processes for the watchers that only read sources (they then run "
        "on every core); unset: one a core but the daemon's own from 20,000 accounts on, on 4 "
        "cores or more; 0: never.",
    )
    correlation_worker: bool | None = Field(
        None,
        description="Decide half of each correlation pass in a second process (two cores); "
        "unset: from 50,000 active signals on, on 2 cores or more, with a file or server store.",
    )
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
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    accounts: AccountsConfig
    watchers: list[WatcherConfig] = Field(default_factory=list)
    correlation: CorrelationConfig = CorrelationConfig()
    notify: NotifyConfig = NotifyConfig()
    daemon: DaemonConfig = DaemonConfig()
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()
    now: AwareDatetime | None = Field(
        None,
        description="A fixed clock for demos: `run --once` and `swanwatch demo` pretend it "
        "is this time unless --now says otherwise; the daemon ignores it.",
    )

    #: The folder the config file is in; relative paths resolve against it.
    base_dir: str = Field(".", exclude=True)

    def resolve_path(self, path: str) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def store_url(self) -> str:
        """The store URL, a relative SQLite path made relative to the config file (one
        written ``./name.db``: to the working directory)."""
        url, prefix = self.store.url, "sqlite:///"
        rest = url[len(prefix) :] if url.startswith(prefix) else "/"
        if rest.startswith("./"):
            return prefix + str(Path.cwd() / rest[2:])
        if rest and not rest.startswith("/") and rest != ":memory:":
            return prefix + str(self.resolve_path(rest))
        return url

    def active_watchers(self) -> list[WatcherConfig]:
        return [w for w in self.watchers if w.enabled]
