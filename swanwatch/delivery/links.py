"""Signed, expiring action links: acknowledge, snooze or mark noise without a login.

A link carries a token: the action, the alert's fingerprint and episode, who it was sent
to, when it expires (and the snooze length), as base64url JSON, then an HMAC-SHA256 of
that under ``notify.link_secret``. The daemon's HTTP endpoint checks the signature and the
expiry before it shows a confirmation page; the action happens on the page's POST, so a
chat client that previews links never acts by itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from swanwatch.signing import b64decode, b64encode, sign, verify

#: The actions a link can carry.
ACTIONS = ("ack", "snooze", "noise", "useful")
DEFAULT_SNOOZE = timedelta(days=1)


class LinkError(ValueError):
    """A link that is forged, damaged or expired."""


@dataclass(frozen=True)
class LinkClaim:
    """What a valid link asks for."""

    action: str
    fingerprint: str
    episode: int
    who: str
    expires: datetime
    snooze: timedelta = DEFAULT_SNOOZE


def make_token(secret: bytes, claim: LinkClaim) -> str:
    """The signed token of ``claim``."""
    if claim.action not in ACTIONS:
        raise ValueError(f"unknown action {claim.action!r}")
    data = {
        "a": claim.action,
        "f": claim.fingerprint,
        "e": claim.episode,
        "w": claim.who,
        "x": int(claim.expires.timestamp()),
    }
    if claim.action == "snooze":
        data["d"] = int(claim.snooze.total_seconds())
    body = b64encode(json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8"))
    return f"{body}.{sign(secret, body)}"


def read_token(secret: bytes, token: str, now: datetime) -> LinkClaim:
    """The claim of a token whose signature holds and that has not expired."""
    body, _, mac = token.partition(".")
    if not body or not mac or not verify(secret, mac, body):
        raise LinkError("this link is not valid (its signature does not match)")
    try:
        data = json.loads(b64decode(body))
        claim = LinkClaim(
            action=str(data["a"]),
            fingerprint=str(data["f"]),
            episode=int(data["e"]),
            who=str(data["w"]),
            expires=datetime.fromtimestamp(int(data["x"]), UTC),
            snooze=timedelta(seconds=int(data.get("d", DEFAULT_SNOOZE.total_seconds()))),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise LinkError("this link is damaged") from exc
    if claim.action not in ACTIONS:
        raise LinkError(f"this link asks for an unknown action {claim.action!r}")
    if now >= claim.expires:
        raise LinkError(f"this link expired on {claim.expires:%Y-%m-%d %H:%M} UTC")
    return claim


def action_links(
    base_url: str,
    secret: bytes,
    *,
    fingerprint: str,
    episode: int,
    who: str,
    now: datetime,
    ttl: timedelta,
) -> dict[str, str]:
    """action -> URL for one alert and one recipient, valid for ``ttl`` from ``now``."""
    root = base_url.rstrip("/")
    out = {}
    for action in ACTIONS:
        claim = LinkClaim(action, fingerprint, episode, who, now + ttl)
        out[action] = f"{root}/a/{make_token(secret, claim)}"
    return out
