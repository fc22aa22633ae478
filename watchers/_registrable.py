"""The registrable domain behind whatever an account holds: a URL, an e-mail, a host, an IDN."""

from __future__ import annotations

from functools import cache
from typing import Any
from urllib.parse import urlsplit

import idna


@cache
def _psl() -> Any:
    # publicsuffixlist bundles its own copy of the Public Suffix List: no network at run time.
    from publicsuffixlist import PublicSuffixList

    return PublicSuffixList(only_icann=True)


def to_ascii(host: str) -> str:
    """``host`` in A-labels (punycode), lower case; ValueError when it is no valid name."""
    host = host.strip().rstrip(".").lower()
    if not host:
        raise ValueError("empty host name")
    if host.isascii():
        labels = host.split(".")
        if any(not label or len(label) > 63 for label in labels):
            raise ValueError(f"{host!r} is not a valid host name")
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise ValueError(f"{host!r} is not a valid internationalised name: {exc}") from None


def to_unicode(host: str) -> str:
    """``host`` with its punycode labels decoded, for people to read."""
    if "xn--" not in host.lower():
        return host
    try:
        return idna.decode(host)
    except idna.IDNAError:
        return host


def host_of(value: str) -> str:
    """The host name in a URL, an e-mail address or a bare host (port and path dropped)."""
    text = value.strip()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    elif "@" in text:
        text = text.rsplit("@", 1)[1]
    else:
        # bare "host/path", "host:port" or "host?query"
        for sep in "/?#":
            text = text.split(sep, 1)[0]
        if text.count(":") == 1:
            text = text.split(":", 1)[0]
    return text.strip().strip("[]").rstrip(".")


def registrable_domain(value: str) -> str:
    """The registrable domain (in A-labels) for ``value``: ``https://shop.acme.co.uk/x`` ->
    ``acme.co.uk``. ValueError when there is none (a bare public suffix, an IP address)."""
    host = to_ascii(host_of(value))
    if host.replace(".", "").isdigit() or ":" in host:
        raise ValueError(f"{value!r} is an IP address, not a domain")
    found = _psl().privatesuffix(host)
    if not found:
        if "." not in host:
            raise ValueError(f"{value!r} has no registrable domain (a bare top-level name)")
        raise ValueError(f"{value!r} has no registrable domain (it is a public suffix)")
    return str(found)


def tld_of(domain: str) -> str:
    """The last label of ``domain`` (the key into the RDAP bootstrap and WHOIS tables)."""
    return domain.rstrip(".").rsplit(".", 1)[-1].lower()


def public_suffix_of(domain: str) -> str:
    """The public suffix of ``domain`` (``co.uk`` for ``acme.co.uk``)."""
    found = _psl().publicsuffix(domain)
    return str(found) if found else tld_of(domain)
