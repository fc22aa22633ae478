"""RDAP (RFC 9082/9083) for domains: the IANA bootstrap, and reading a domain answer."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from importlib.resources import files
from typing import Any

RDAP_TYPES = "application/rdap+json, application/json;q=0.9"


def shipped_bootstrap() -> dict[str, Any]:
    """The IANA DNS bootstrap copy that ships with the package."""
    text = files("swanwatch").joinpath("data", "rdap_dns.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def bootstrap_map(data: object) -> dict[str, str]:
    """TLD -> RDAP base URL from an RFC 9224 bootstrap document; ValueError when malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("services"), list):
        raise ValueError("not an RDAP bootstrap document: no 'services' list")
    found: dict[str, str] = {}
    for service in data["services"]:
        if (
            not isinstance(service, list)
            or len(service) < 2
            or not isinstance(service[0], list)
            or not isinstance(service[1], list)
        ):
            raise ValueError(f"malformed bootstrap service entry: {str(service)[:80]}")
        urls = [
            u for u in service[1] if isinstance(u, str) and u.startswith(("https://", "http://"))
        ]
        if not urls:
            raise ValueError(f"bootstrap service without an http(s) URL: {str(service)[:80]}")
        url = next((u for u in urls if u.startswith("https://")), urls[0])
        for tld in service[0]:
            if isinstance(tld, str) and tld:
                found[tld.lower().strip(".")] = url if url.endswith("/") else url + "/"
    if not found:
        raise ValueError("the bootstrap document names no TLDs")
    return found


def domain_url(base: str, domain: str) -> str:
    """The RFC 9082 lookup URL for ``domain`` under the server ``base``."""
    return base.rstrip("/") + "/domain/" + domain


_FRACTION = re.compile(r"(\.\d{6})\d+")


def parse_event_date(value: object) -> datetime | None:
    """An RDAP eventDate in any of its ISO 8601 shapes, as aware UTC; None if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace(" ", "T", 1)
    if text[-1:] in "Zz":
        text = text[:-1] + "+00:00"
    text = _FRACTION.sub(r"\1", text)  # nanoseconds: Python reads six digits at most
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def rdap_status(value: str) -> str:
    """An RDAP status (RFC 8056, "client transfer prohibited") as its EPP name."""
    words = re.findall(r"[A-Za-z]+", value)
    if not words:
        return value
    if [w.lower() for w in words] == ["active"]:
        return "ok"
    head, *rest = (w.lower() for w in words)
    return str(head + "".join(w.title() for w in rest))


def _vcard_name(entity: dict[str, Any]) -> str | None:
    card = entity.get("vcardArray")
    if isinstance(card, list) and len(card) > 1 and isinstance(card[1], list):
        by_kind: dict[str, str] = {}
        for item in card[1]:
            if isinstance(item, list) and len(item) >= 4 and isinstance(item[3], str):
                by_kind.setdefault(str(item[0]).lower(), item[3])
        name = by_kind.get("fn") or by_kind.get("org")
        if name and name.strip():
            return name.strip()
    return None


def _registrar(entities: object) -> str | None:
    if not isinstance(entities, list):
        return None
    for entity in entities:
        if not isinstance(entity, dict):
            continue
        roles = entity.get("roles")
        if isinstance(roles, list) and "registrar" in roles:
            name = _vcard_name(entity)
            if name:
                return name
            handle = entity.get("handle")
            return str(handle) if handle else None
    return None


class RdapUnparseable(ValueError):
    """The answer is not an RDAP domain object."""


def read_domain(body: bytes) -> dict[str, Any]:
    """Expiry, registrar, status and nameservers from an RDAP domain answer.

    Raises RdapUnparseable when ``body`` is not JSON or not a domain object. The result's
    ``expires_at`` is None when the answer has no ``expiration`` event.
    """
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RdapUnparseable(f"the answer is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise RdapUnparseable(f"the answer is a JSON {type(data).__name__}, not an object")
    cls = data.get("objectClassName")
    if cls is not None and cls != "domain":
        raise RdapUnparseable(f"the answer is an RDAP {cls!r} object, not a domain")
    events = data.get("events", [])
    if not isinstance(events, list):
        raise RdapUnparseable("'events' is not a list")
    if cls is None and "ldhName" not in data and not events:
        raise RdapUnparseable("the answer is no RDAP domain object")
    expires: datetime | None = None
    bad_date = ""
    for event in events:
        if not isinstance(event, dict):
            raise RdapUnparseable("an event is not an object")
        if str(event.get("eventAction", "")).lower() == "expiration":
            expires = parse_event_date(event.get("eventDate"))
            if expires is None:
                bad_date = str(event.get("eventDate"))[:40]
    statuses = data.get("status", [])
    nameservers = []
    for ns in data.get("nameservers", []) if isinstance(data.get("nameservers"), list) else []:
        if isinstance(ns, dict) and isinstance(ns.get("ldhName"), str):
            nameservers.append(ns["ldhName"].lower().rstrip("."))
    return {
        "expires_at": expires,
        "bad_date": bad_date,
        "registrar": _registrar(data.get("entities")),
        "status": [rdap_status(s) for s in statuses if isinstance(s, str)]
        if isinstance(statuses, list)
        else [],
        "nameservers": nameservers,
    }
