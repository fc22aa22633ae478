"""`swanwatch domain lookup`: what the domain_expiry watcher sees for one domain, for ops."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import click


@click.group()
def domain() -> None:
    """Domain registration lookups (the domain_expiry watcher's view)."""


def _watcher_options(config_file: str | None) -> dict[str, Any]:
    """The options of the domain_expiry watcher configured in ``config_file`` ({} without a
    file), read with ``swanwatch.config.load_config``. Several: the first enabled one, with a
    note; none: a config error (exit 2)."""
    if not config_file:
        return {}
    from swanwatch.cli_common import BadConfig, load

    config = load(Path(config_file))
    entries = [w for w in config.watchers if w.type == "domain_expiry"]
    if not entries:
        raise BadConfig(f"{config_file}: no watcher of type domain_expiry is configured")
    chosen = next((w for w in entries if w.enabled), entries[0])
    if len(entries) > 1:
        click.echo(
            f"note: {len(entries)} domain_expiry watchers in {config_file}; "
            f"using {chosen.instance!r}",
            err=True,
        )
    return dict(chosen.options)


_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)*(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})\.?$")


def _check_domain(name: str) -> None:
    """Exit 2 for what is not a domain name (``not a domain``, ``https://acme.example``)."""
    try:
        ascii_name = name.strip().lower().encode("idna").decode("ascii")
    except UnicodeError:
        ascii_name = ""
    if len(ascii_name) > 253 or not _DOMAIN.match(ascii_name):
        raise click.BadParameter(
            f"{name!r} is not a domain name; give one such as acme.example (no scheme, no "
            "path, no spaces)",
            param_hint="DOMAIN",
        )


@domain.command()
@click.argument("name", metavar="DOMAIN")
@click.option(
    "-c",
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Use the domain_expiry watcher's options from this config file.",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "rdap", "whois"]),
    default=None,
    help="Where to look (default: the watcher's setting, auto).",
)
@click.option("--rdap-server", metavar="URL", help="Ask this RDAP server (base URL).")
@click.option("--whois-server", metavar="HOST[:PORT]", help="Ask this WHOIS server.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def lookup(
    name: str, config_file: str | None, source: str | None, rdap_server: str | None,
    whois_server: str | None, as_json: bool,
) -> None:  # fmt: skip
    """Look DOMAIN up now, uncached; exit 0 when an expiry date was found, 1 otherwise."""
    from swanwatch import plugins

    _check_domain(name)
    cls = plugins.watcher_class("domain_expiry")
    options = _watcher_options(config_file)
    if rdap_server:
        options["rdap_servers"] = {"*": rdap_server}
    if whois_server:
        options["whois_servers"] = {"*": whois_server}
        options["follow_referrals"] = False  # ask that server and no other
    watcher: Any = cls("domain_expiry", cls.Options.model_validate(options))
    record = asyncio.run(watcher.lookup(name, source=source))
    out = record.as_json()
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
    else:
        for key, value in out.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            click.echo(f"{key + ':':12} {'-' if shown in (None, '') else shown}")
    raise SystemExit(0 if out["expires_at"] else 1)
