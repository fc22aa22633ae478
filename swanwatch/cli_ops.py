"""`swanwatch health`: ask the running daemon's ops endpoint whether it is ready.

The container's HEALTHCHECK (the slim image has no curl): standard library only, so it
starts quickly and needs nothing that the daemon itself might lack.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import click

from swanwatch.cli_common import Failure

#: The daemon's /readyz with the container's ``server.listen`` (0.0.0.0:8080).
DEFAULT_HEALTH_URL = "http://127.0.0.1:8080/readyz"
HEALTH_URL_ENV = "SWANWATCH_HEALTH_URL"


@click.command()
@click.option(
    "--url",
    envvar=HEALTH_URL_ENV,
    default=DEFAULT_HEALTH_URL,
    show_default=True,
    help=f"The daemon's /readyz (or /healthz), from server.listen (or ${HEALTH_URL_ENV}).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds to wait for the answer.",
)
def health(url: str, timeout: float) -> None:
    """Exit 0 when the daemon answers ready (HTTP 200), 1 otherwise: for HEALTHCHECK."""
    # No proxy: the endpoint is local, and a container's HTTP_PROXY must not carry this.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            body = response.read(2000).decode("utf-8", "replace").strip()
            click.echo(f"{url}: {response.status} {body}")
    except urllib.error.HTTPError as exc:
        body = exc.read(2000).decode("utf-8", "replace").strip()
        raise Failure(f"{url}: HTTP {exc.code}: {body}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise Failure(
            f"{url}: no answer ({reason}); is `swanwatch run` up, with server.listen set "
            "to this port?"
        ) from exc
