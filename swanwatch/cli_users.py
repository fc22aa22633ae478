"""`swanwatch users`: the risk board's local users (argon2 password hashes in the store)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from swanwatch.cli_common import (
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

#: The shortest password taken.
MIN_PASSWORD = 10


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        raise Failure(f"the password is too short: use at least {MIN_PASSWORD} characters")
    return password


@click.group()
def users() -> None:
    """The risk board's local users (server.board.users: true lets them sign in)."""


@users.command("add")
@config_option
@click.argument("name")
@click.option(
    "--owner",
    default=None,
    help="Their owner identity as the accounts source spells it (default: NAME); "
    '"Mine" on the board shows the accounts it owns.',
)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_add(config_path: Path, name: str, owner: str | None, password_stdin: bool) -> None:
    """Add a user, or give an existing one a new password (which ends their sessions)."""
    from swanwatch.board_auth import hash_password
    from swanwatch.clock import SystemClock
    from swanwatch.store import BoardUser

    name = name.strip()
    if not name or len(name) > 200 or any(c.isspace() for c in name):
        raise Failure(f"user name {name!r}: one word of at most 200 characters, no spaces")
    config = load(config_path)
    password = _password(password_stdin)
    with store_for(config) as store:
        existed = store.user(name) is not None
        store.save_user(
            BoardUser(
                name=name,
                password_hash=hash_password(password),
                owner=(owner or name).strip(),
                created_at=SystemClock().now(),
            )
        )
    if not config.server.board.users:
        click.echo("note: set server.board.users: true for local users to sign in", err=True)
    click.echo(f"{'Updated' if existed else 'Added'} user {name} (owner {owner or name}).")


@users.command("list")
@config_option
@json_option
def users_list(config_path: Path, as_json: bool) -> None:
    """The local users and their owner identities (never their hashes)."""
    with read_store(load(config_path)) as store:
        found = store.users() if store is not None else []
    if as_json or not tty():
        emit_json([{"name": u.name, "owner": u.owner, "created_at": u.created_at} for u in found])
        return
    if not found:
        click.echo("No local users: add one with `swanwatch users add NAME`.")
    table(
        "Users",
        ["name", "owner", "added"],
        [(u.name, u.owner, f"{u.created_at:%Y-%m-%d}") for u in found],
    )


@users.command("remove")
@config_option
@click.argument("name")
def users_remove(config_path: Path, name: str) -> None:
    """Remove a user: they can no longer sign in, and their sessions end."""
    with store_for(load(config_path)) as store:
        if not store.remove_user(name):
            raise Failure(f"no local user is called {name!r}; see `swanwatch users list`")
    click.echo(f"Removed user {name}.")
