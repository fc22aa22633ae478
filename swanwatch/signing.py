"""HMAC-SHA256 signatures in base64url: the one signing helper of action links and the board.

A signature covers its parts joined by the unit separator (``\\x1f``), so ``("session",
"123")`` and ``("session\\x1f1", "23")`` can never be mistaken for each other. Checks
compare in constant time. :func:`weak_secret` tells whether a secret is fit to sign with.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: Joins the parts of a signed message.
SEPARATOR = "\x1f"


def b64encode(data: bytes) -> str:
    """``data`` as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``; raises ValueError (binascii.Error) when it
    is not base64url."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_key(secret: bytes, purpose: str) -> bytes:
    """A key for one purpose from a shared secret: signatures made for one purpose never
    pass as another's."""
    return hmac.new(secret, purpose.encode("utf-8"), hashlib.sha256).digest()


def sign(key: bytes, *parts: str) -> str:
    """The base64url HMAC-SHA256 of ``parts`` under ``key``."""
    message = SEPARATOR.join(parts).encode("utf-8")
    return b64encode(hmac.new(key, message, hashlib.sha256).digest())


def verify(key: bytes, signature: str, *parts: str) -> bool:
    """True when ``signature`` is the signature of ``parts`` under ``key``."""
    return same(signature, sign(key, *parts))


def same(presented: str, expected: str) -> bool:
    """``presented == expected`` in constant time (for secrets and signatures)."""
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


#: The shortest secret (link key, board token) accepted, and the fewest distinct characters.
MIN_SECRET_CHARS = 16
MIN_SECRET_DISTINCT = 8


def weak_secret(name: str, value: str) -> str | None:
    """Why ``value`` is too weak to sign links or guard the board, or None when it will do.

    Length alone is not strength: ``"xxxxxxxxxxxxxxxx"`` is refused too.
    """
    hint = "use at least 16 random characters, e.g. from `openssl rand -base64 24`"
    if len(value) < MIN_SECRET_CHARS:
        return f"{name} is too short ({len(value)} characters): {hint}"
    if len(set(value)) < MIN_SECRET_DISTINCT:
        return f"{name} is too predictable (only {len(set(value))} distinct characters): {hint}"
    return None
