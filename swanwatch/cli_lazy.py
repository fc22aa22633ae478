"""Lazy subcommands: a command's module is imported only when that command runs.

``swanwatch --help`` lists every command from the one-line help kept here, so it imports
none of them (nor what they import: pydantic, SQLAlchemy, Jinja2, httpx). A test checks that
each line here is the command's own short help, so the two cannot drift apart.
"""

from __future__ import annotations

from importlib import import_module

import click

#: name -> (``module:attribute``, the command's short help, untruncated).
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "alerts": (
        "swanwatch.cli_alerts:alerts",
        (
            "Compound risk alerts: list, explain, act on them (REF: the id, or 4+ characters "
            "of the fingerprint)."
        ),
    ),
    "domain": (
        "swanwatch.cli_domain:domain",
        "Domain registration lookups (the domain_expiry watcher's view).",
    ),
    "health": (
        "swanwatch.cli_ops:health",
        "Exit 0 when the daemon answers ready (HTTP 200), 1 otherwise: for HEALTHCHECK.",
    ),
    "notify": (
        "swanwatch.cli_delivery:notify",
        "Send through the configured channels.",
    ),
    "outbox": (
        "swanwatch.cli_delivery:outbox",
        "The durable outbox: what was sent, what waits, what was dead-lettered.",
    ),
    "reload": (
        "swanwatch.cli_admin:reload",
        "Make the running daemon re-read its config file (the same as SIGHUP).",
    ),
    "review": (
        "swanwatch.cli_review:review",
        (
            "Replay history and hold it against what happened: lead times, blind spots, "
            "precision and recall per signal kind and rule, and weights fitted to the "
            "outcomes."
        ),
    ),
    "risk": (
        "swanwatch.cli_reports:risk",
        "Revenue at risk.",
    ),
    "routes": (
        "swanwatch.cli_delivery:routes",
        "The routing tree.",
    ),
    "rules": (
        "swanwatch.cli_reports:rules",
        "Compound rules.",
    ),
    "signals": (
        "swanwatch.cli_watchers:signals",
        "Signals the watchers found.",
    ),
    "silences": (
        "swanwatch.cli_alerts:silences",
        "Mute alerts by account, rule, kind, owner or segment, for a while, with a reason.",
    ),
    "sources": (
        "swanwatch.cli_watchers:sources",
        "The health of each source: ok, suspect, stale or broken, as its last read left it.",
    ),
    "users": (
        "swanwatch.cli_users:users",
        "The risk board's local users (server.board.users: true lets them sign in).",
    ),
    "unknowns": (
        "swanwatch.cli_watchers:unknowns",
        "Accounts a watcher could not judge: never taken for healthy.",
    ),
    "watchers": (
        "swanwatch.cli_watchers:watchers",
        "Installed watcher plugins and their runs.",
    ),
    "worker": (
        "swanwatch.cli_worker:worker",
        (
            "Run watcher shards from the queue until SIGINT or SIGTERM (start any number, on "
            "any machine that reaches the store's PostgreSQL; the daemon's leader defers "
            "them)."
        ),
    ),
}


def load_lazy(name: str) -> click.Command:
    """The command ``name`` of :data:`LAZY_COMMANDS`, its module imported now."""
    module, _, attribute = LAZY_COMMANDS[name][0].partition(":")
    command = getattr(import_module(module), attribute)
    if not isinstance(command, click.Command):
        raise TypeError(f"{module}:{attribute} is not a click command")
    return command


class LazyGroup(click.Group):
    """A group whose commands in :data:`LAZY_COMMANDS` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            command = load_lazy(cmd_name)
            self.add_command(command, cmd_name)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list, with the lazy ones' help from the table, nothing imported."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is not None:
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append(
                    (
                        name,
                        click.Command(name, help=LAZY_COMMANDS[name][1]).get_short_help_str(limit),
                    )
                )
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
