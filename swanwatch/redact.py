"""Text from elsewhere made safe to store and log: cut short, credentials scrubbed.

An upstream error body (an API, a webhook receiver) may echo the request it refused, its
``Authorization`` header included; a driver's message may carry a connection URL. What
Swanwatch keeps of such text (a run's error, a notification's last error, the log) goes
through :func:`scrub` first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The most of an upstream text kept (an error body, a reason).
MAX_UPSTREAM_CHARS = 300
#: What a scrubbed credential reads as.
MASK = "***"

_SCHEMES = r"(?:bearer|basic|token|digest|apikey|api-key)"
_VALUE = r"[^\s\"',;&}{)\]]+"
_PATTERNS = (
    # Authorization: Bearer abc / "authorization": "Basic abc" / Proxy-Authorization=...
    re.compile(
        r"(?i)((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?)(" + _SCHEMES + r"\s+)?" + _VALUE
    ),
    # api_key=..., "token": "...", X-API-Key: ..., password=..., client_secret=...
    re.compile(
        r"(?i)((?:x-)?(?:api[-_]?key|access[-_]?token|refresh[-_]?token|id[-_]?token|token|"
        r"secret|client[-_]?secret|password|passwd|pwd|signature|sig)[\"']?\s*[:=]\s*[\"']?)()"
        + _VALUE
    ),
    # scheme://user:password@host
    re.compile(r"(?i)([a-z][a-z0-9+.-]*://[^/\s:@]*:)()[^@\s/]+(?=@)"),
)


#: Where a secret URL or token is cut into the parts an error message may quote.
_PARTS = re.compile(r"[/:@?&=#;,]+")


def secret_parts(secret: str, shortest: int = 8) -> list[str]:
    """``secret`` and its parts long enough to be secrets themselves (a webhook URL's path
    segments, a password, a query value), longest first, for :func:`scrub`."""
    parts = {secret, *(p for p in _PARTS.split(secret) if len(p) >= shortest)}
    return sorted(parts, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str] = (), limit: int = MAX_UPSTREAM_CHARS) -> str:
    """``text`` on one line, credentials masked, cut to ``limit`` characters.

    ``secrets`` are values known to be secret (a token, a password): masked wherever they
    appear. Header-like and URL credentials are masked whatever their value.
    """
    out = text
    for secret in secrets:
        if secret and len(secret) >= 4:
            out = out.replace(secret, MASK)
    for pattern in _PATTERNS:
        out = pattern.sub(lambda m: f"{m.group(1)}{m.group(2) or ''}{MASK}", out)
    out = " ".join(out.split())
    if len(out) > limit:
        out = out[: max(0, limit - 1)].rstrip() + "…"
    return out
