"""What every CLI module shares: exit codes, the -c and --json options, the store, output.

Exit codes: 0 ok, 2 bad usage or config (BadConfig), 1 runtime failure (Failure). Kept light:
nothing heavy is imported here, so quick commands start quickly.
"""

from __future__ import annotations

import gc
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from swanwatch import collector
from swanwatch.errors import ConfigError, SwanwatchError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from swanwatch.config import Config
    from swanwatch.store import Store
    from swanwatch.store.base import StoreBase

F = TypeVar("F", bound=Callable[..., Any])
R = TypeVar("R", bound="BaseModel")
S = TypeVar("S", bound="StoreBase")

CONFIG_ENV = "SWANWATCH_CONFIG"


class Failure(click.ClickException):
    """A runtime failure: exit code 1."""

    exit_code = 1


class BadConfig(click.ClickException):
    """A config or usage problem: exit code 2; the message is printed as it is."""

    exit_code = 2

    def format_message(self) -> str:
        return self.message


def config_option(f: F) -> F:
    """The ``-c/--config FILE`` option (or ``$SWANWATCH_CONFIG``)."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=CONFIG_ENV,
        required=True,
        help=f"The config file (or ${CONFIG_ENV}).",
    )(f)


def json_option(f: F) -> F:
    """The ``--json`` flag."""
    return click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON.")(f)


def load(config_path: Path, *, check_plugins: bool = True) -> Config:
    """The config, or exit 2 with every problem in it.

    ``check_plugins=False`` (commands that only read the store) leaves the plugins'
    options unchecked and the cron expressions unparsed, so those commands import no
    plugin and no scheduler, and start quickly.
    """
    from swanwatch.config import load_config

    try:
        return load_config(config_path, check_plugins=check_plugins)
    except ConfigError as exc:
        raise BadConfig(str(exc)) from exc


def load_checked(config_path: Path, *, connect: bool = False) -> tuple[Config, list[str]]:
    """The config after every check `validate` makes, or exit 2 with every problem; the
    warnings are printed on standard error, what --connect reached is returned."""
    from swanwatch.config import load_checked as check

    try:
        config, found = check(config_path, connect=connect)
    except ConfigError as exc:
        raise BadConfig(str(exc)) from exc
    for warning in found.warnings:
        click.echo(f"warning: {warning}", err=True)
    return config, found.reached


@contextmanager
def errors() -> Iterator[None]:
    """Turn Swanwatch's errors into the CLI's exit codes."""
    try:
        yield
    except ConfigError as exc:
        raise BadConfig(str(exc)) from exc
    except SwanwatchError as exc:
        raise Failure(str(exc)) from exc


@contextmanager
def store_for(config: Config) -> Iterator[Store]:
    """The config's store, open for the block, closed after it; errors exit 1."""
    from swanwatch.store import Store

    with errors():
        store = Store(config.store_url)
        try:
            yield store
        finally:
            store.close()


@contextmanager
def read_store(config: Config) -> Iterator[Store | None]:
    """The config's store for a command that only reads, or None when there is none yet
    (it is never created: a SQLite file not there, a database without the schema); a
    note on standard error says so. Errors exit 1."""
    from swanwatch.store import Store

    with read_part(config, Store) as store:
        yield store


@contextmanager
def read_part(config: Config, part: type[S]) -> Iterator[S | None]:
    """:func:`read_store` as one aggregate's ``part`` of the store (``AlertsStore``): a
    command that reads only that imports only that, and starts quickly."""
    from swanwatch.store.health import existing_revision

    with errors():
        if existing_revision(config.store_url) is None:
            click.echo("note: no store yet (swanwatch run creates it): nothing recorded", err=True)
            yield None
            return
        store = part(config.store_url)
        try:
            yield store
        finally:
            store.close()


def tty() -> bool:
    return sys.stdout.isatty()


def actor(by: str | None) -> str:
    """Who is acting: ``--by``, else ``$SWANWATCH_USER``, else ``$USER``."""
    return by or os.environ.get("SWANWATCH_USER") or os.environ.get("USER") or "cli"


def stamp(value: datetime | None) -> str:
    """A time as the CLI's tables show it: ``2026-11-20 12:00`` (UTC); empty for None."""
    return value.strftime("%Y-%m-%d %H:%M") if value else ""


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))


def emit_json_list(items: Iterable[Any]) -> None:
    """A JSON list, written item by item as the items come: the same text as
    :func:`emit_json` of the whole list but for how a few floats are spelled (``0.00001``,
    not ``1e-05``; the same number read back). The list is never held as one text, nor its
    items as dicts: on a book of 65,995 open alerts ``alerts list`` held 2.5 GB that way,
    and 42% of its time was the standard library's encoder, which writes indented JSON in
    pure Python (pydantic's, used here, is compiled)."""
    from pydantic_core import to_json

    parts: list[str] = []
    held = 0
    opening = "[\n  "
    for item in items:
        # Each item's lines one level in: JSON text holds no raw line break but these.
        text = to_json(item, indent=2, fallback=str).decode().replace("\n", "\n  ")
        parts += (opening, text)
        opening = ",\n  "
        held += len(text)
        if held >= _ECHO_CHUNK:
            click.echo("".join(parts), nl=False)
            parts, held = [], 0
    parts.append("[]" if opening.startswith("[") else "\n]")
    click.echo("".join(parts))


#: Characters of a JSON list written at once (:func:`emit_json_list`).
_ECHO_CHUNK = 1 << 16


def records(
    config_path: Path,
    query: Callable[[Store], Iterable[R]],
    as_json: bool,
    title: str,
    columns: Sequence[str],
    row: Callable[[R], Sequence[object]],
    *,
    dump: Callable[[R], object] | None = None,
) -> None:
    """A list command: ``query`` the config's store, then print the records as JSON (with
    ``--json`` or off a terminal: ``dump`` of each, by default its JSON fields) or as a
    table of ``row`` of each."""
    with gc_paused(), read_store(load(config_path, check_plugins=False)) as store:
        # Shown as read: a query that streams (signals) is written as its records come.
        show(query(store) if store is not None else [], as_json, title, columns, row, dump=dump)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The block runs with Python's cyclic garbage collector paused (reference counting
    frees as usual), and what the process holds then is frozen out of later collections.

    A quick command's imports (the config's models, SQLAlchemy) make hundreds of
    thousands of objects that live as long as the process. Python 3.11 scans them every
    few thousand allocations, all of them once more when the collector is back on, and
    again as the process exits: a third of `alerts list`, for nothing. Only for a short,
    bounded read, never a cycle or the daemon. The freeze is made once in a process (the
    imports are made once): frozen objects are still freed when nothing refers to them,
    only a reference cycle among them stays until the exit."""
    enabled = gc.isenabled()
    with collector.paused():
        try:
            yield
        finally:
            if enabled:  # frozen before the collector is back on, as the pause ends
                _freeze_once()


@cache
def _freeze_once() -> None:
    gc.freeze()


def show(
    found: Iterable[R],
    as_json: bool,
    title: str,
    columns: Sequence[str],
    row: Callable[[R], Sequence[object]],
    *,
    dump: Callable[[R], object] | None = None,
) -> None:
    """Records as :func:`records` prints them."""
    if as_json or not tty():
        emit_json_list(dump(r) if dump else r.model_dump(mode="json") for r in found)
        return
    table(title, columns, [row(r) for r in found])


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A table on a terminal; tab-separated lines with a header otherwise."""
    if tty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        # Text, not str: a reason like "[bold]QBR[/bold] booked [ticket-42]" is shown as
        # written, never read as Rich markup.
        shown = Table(title=Text(title))
        for col in columns:
            shown.add_column(Text(col))
        for row in rows:
            shown.add_row(*(Text("" if v is None else str(v)) for v in row))
        Console().print(shown)
        return
    click.echo("\t".join(columns))
    for row in rows:
        click.echo("\t".join("" if v is None else str(v) for v in row))


# click.ParamType is generic only in newer click releases: not subscripted, for older ones.
class DurationType(click.ParamType):  # type: ignore[type-arg]
    """A duration option: 30s, 5m, 4h, 7d, 1w; a bare number is days (``3``: three days),
    and the commands say the duration back in words."""

    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, timedelta):
            return value
        from swanwatch.durations import parse_duration

        try:
            found = parse_duration(value, bare_unit="d")
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if found <= timedelta(0):
            self.fail(f"{value!r}: a duration must be longer than zero", param, ctx)
        return found


class InstantType(click.ParamType):  # type: ignore[type-arg]
    """A point in time: an ISO 8601 date or datetime, read as UTC when it has no offset."""

    name = "date"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, datetime):
            return value
        from swanwatch.clock import parse_instant

        try:
            return parse_instant(value)
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or datetime", param, ctx)


DURATION = DurationType()
INSTANT = InstantType()
