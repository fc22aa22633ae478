"""`swanwatch reload`: ask the running daemon to re-read its config, as SIGHUP does.

It posts to the daemon's ``/-/reload`` on this machine (the port from ``server.listen``).
Exit 0 when the new config is in force, 1 when the daemon refused it (its problems are
printed; the running config stays) or could not be reached.
"""

from __future__ import annotations

from pathlib import Path

import click

from swanwatch.cli_common import CONFIG_ENV, BadConfig, Failure, load


def reload_url(listen: str) -> str:
    """The reload endpoint on this machine for a ``server.listen`` of host:port."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    if host in ("", "0.0.0.0", "*"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/-/reload"


_FILE = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.option("-c", "--config", "config_path", type=_FILE, envvar=CONFIG_ENV, help="Its config.")
@click.option("--url", default=None, help="The daemon's /-/reload URL, instead of -c.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True)
def reload(config_path: Path | None, url: str | None, timeout: float) -> None:
    """Make the running daemon re-read its config file (the same as SIGHUP).

    With -c FILE (or $SWANWATCH_CONFIG), the daemon's port comes from its server.listen.
    """
    import httpx

    if url is None:
        if config_path is None:
            raise BadConfig("give -c FILE (the daemon's config) or --url")
        listen = load(config_path).server.listen
        if listen is None:
            raise BadConfig(
                f"{config_path}: server.listen is not set, so the daemon has no endpoint; "
                "send it SIGHUP instead (kill -HUP PID)"
            )
        url = reload_url(listen)
    try:
        response = httpx.post(url, timeout=timeout, trust_env=False)
    except httpx.HTTPError as exc:
        raise Failure(f"{url}: no answer ({exc}); is `swanwatch run` up?") from exc
    body = response.text.strip()
    if response.status_code != 200:
        raise Failure(f"{url}: HTTP {response.status_code}: {body}")
    click.echo(body)
