"""One TLS endpoint's certificate, read with the stdlib ssl module over asyncio.

A verifying handshake first; when it fails, a second one with verification off reads the
certificate anyway (decoded with ``cryptography``), so an untrusted or mismatched
certificate still tells its expiry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtensionOID, NameOID

from ._registrable import to_ascii, to_unicode  # noqa: TID251 (a sibling private helper)

#: OpenSSL verify codes that say the chain does not lead to a trusted root.
UNTRUSTED_CODES = frozenset(
    {
        2,  # unable to get issuer certificate
        18,  # self-signed certificate
        19,  # self-signed certificate in certificate chain
        20,  # unable to get local issuer certificate
        21,  # unable to verify the first certificate
        27,  # certificate not trusted
        28,  # certificate rejected
    }
)
HOSTNAME_MISMATCH = 62


@dataclass(frozen=True)
class Endpoint:
    """A TLS endpoint: the host name (A-labels, or an IP address) and the port."""

    host: str
    port: int = 443

    @property
    def key(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def shown(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else to_unicode(self.host)
        return f"{host}:{self.port}"


def parse_endpoint(value: str, default_port: int = 443) -> Endpoint:
    """``https://host[:port]/...``, ``host:port``, ``[v6]:port`` or ``host`` as an Endpoint;
    ValueError when there is no host in it."""
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is no endpoint: {exc}") from None
    host = parts.hostname or ""
    if not host:
        raise ValueError(f"{value!r} has no host name")
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        host = to_ascii(host)
    return Endpoint(host, port or default_port)


@dataclass
class CertInfo:
    """What the leaf certificate says, and what the handshakes found wrong with it."""

    not_before: datetime
    not_after: datetime
    subject: str
    issuer: str
    names: list[str]
    sha256: str
    #: The verifying handshake's complaint (OpenSSL's verify message), None when it passed.
    verify_error: str | None = None
    verify_code: int | None = None
    hostname_ok: bool = True
    chain_ok: bool = True

    def to_state(self) -> dict[str, Any]:
        """A JSON form, for state and evidence."""
        return {
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "subject": self.subject,
            "issuer": self.issuer,
            "names": self.names,
            "sha256": self.sha256,
            "verify_error": self.verify_error,
            "verify_code": self.verify_code,
            "hostname_ok": self.hostname_ok,
            "chain_ok": self.chain_ok,
        }

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> CertInfo:
        """The info saved by :meth:`to_state`."""
        return cls(
            not_before=datetime.fromisoformat(str(data["not_before"])),
            not_after=datetime.fromisoformat(str(data["not_after"])),
            subject=str(data.get("subject", "")),
            issuer=str(data.get("issuer", "")),
            names=[str(n) for n in data.get("names") or []],
            sha256=str(data.get("sha256", "")),
            verify_error=data.get("verify_error"),
            verify_code=data.get("verify_code"),
            hostname_ok=bool(data.get("hostname_ok", True)),
            chain_ok=bool(data.get("chain_ok", True)),
        )


class ProbeFailure(Exception):
    """No certificate could be read: ``code`` is timeout, unreachable or handshake_failed."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def _name(name: x509.Name) -> str:
    cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if cn:
        return str(cn[0].value)
    org = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    return str(org[0].value) if org else name.rfc4514_string()


def decode(der: bytes) -> CertInfo:
    """Validity, subject, issuer and names of a DER certificate; ValueError when it is none."""
    cert = x509.load_der_x509_certificate(der)
    names: list[str] = []
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        san = None
    if isinstance(san, x509.SubjectAlternativeName):
        names.extend(str(n).lower() for n in san.get_values_for_type(x509.DNSName))
        names.extend(str(ip) for ip in san.get_values_for_type(x509.IPAddress))
    return CertInfo(
        not_before=cert.not_valid_before_utc.astimezone(UTC),
        not_after=cert.not_valid_after_utc.astimezone(UTC),
        subject=_name(cert.subject),
        issuer=_name(cert.issuer),
        names=names,
        sha256=cert.fingerprint(hashes.SHA256()).hex(),
    )


def _label_match(pattern: str, host: str) -> bool:
    """RFC 6125 matching: a wildcard only as the whole left-most label, one label deep."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern == host:
        return True
    if not pattern.startswith("*.") or "*" in pattern[2:]:
        return False
    head, _, rest = host.partition(".")
    return bool(head) and rest == pattern[2:] and "." in rest


def covers(cert: CertInfo, der: bytes, host: str) -> bool:
    """Whether the certificate names ``host``: its subjectAltNames, or without any, its CN."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    if cert.names:
        if ip is not None:
            return any(n == str(ip) for n in cert.names)
        return any(_label_match(n, host) for n in cert.names)
    subject = x509.load_der_x509_certificate(der).subject
    return any(
        ip is None and _label_match(str(a.value), host)
        for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    )


def client_context(ca_bundle_path: str | None, *, verify: bool) -> ssl.SSLContext:
    """A client context: the system's (or the bundle's) roots; verification on or off."""
    if verify:
        return ssl.create_default_context(cafile=ca_bundle_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def _peer_der(endpoint: Endpoint, ctx: ssl.SSLContext, timeout_s: float) -> bytes:
    """One handshake with ``endpoint``; the peer's DER certificate."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            _reader, writer = await asyncio.open_connection(
                endpoint.host, endpoint.port, ssl=ctx, server_hostname=endpoint.host,
                ssl_handshake_timeout=timeout_s, ssl_shutdown_timeout=min(timeout_s, 2.0),
            )  # fmt: skip
        ssl_object = writer.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            raise ProbeFailure("handshake_failed", f"{endpoint.key} sent no certificate")
        return bytes(der)
    finally:
        if writer is not None:
            writer.close()
            # a peer that never answers our close_notify must not hold the check
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                async with asyncio.timeout(2.0):
                    await writer.wait_closed()


async def probe(endpoint: Endpoint, *, ca_bundle_path: str | None, timeout_s: float) -> CertInfo:
    """The endpoint's leaf certificate with what is wrong with it; ProbeFailure when none
    could be read (no connection, no answer in ``timeout_s``, no TLS spoken)."""
    verify_error: ssl.SSLCertVerificationError | None = None
    try:
        der = await _peer_der(endpoint, client_context(ca_bundle_path, verify=True), timeout_s)
    except ssl.SSLCertVerificationError as exc:
        verify_error = exc
    except ssl.SSLError as exc:
        raise ProbeFailure("handshake_failed", f"{endpoint.key}: {exc.reason or exc}") from None
    except TimeoutError:
        raise ProbeFailure(
            "timeout", f"no TLS handshake with {endpoint.key} in {timeout_s:g} s"
        ) from None
    except OSError as exc:
        raise ProbeFailure("unreachable", f"{endpoint.key}: {exc.strerror or exc}") from None
    if verify_error is not None:
        try:
            der = await _peer_der(endpoint, client_context(None, verify=False), timeout_s)
        except ssl.SSLError as exc:
            raise ProbeFailure("handshake_failed", f"{endpoint.key}: {exc.reason or exc}") from None
        except TimeoutError:
            raise ProbeFailure(
                "timeout", f"no second TLS handshake with {endpoint.key} in {timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise ProbeFailure("unreachable", f"{endpoint.key}: {exc.strerror or exc}") from None
    try:
        info = decode(der)
    except ValueError as exc:
        raise ProbeFailure(
            "handshake_failed", f"{endpoint.key}: unreadable certificate: {exc}"
        ) from None
    if verify_error is None:
        return info
    code = int(verify_error.verify_code or 0)
    message = str(verify_error.verify_message or verify_error.reason or verify_error)
    info.verify_code = code
    info.verify_error = message
    # OpenSSL stops at the first problem it meets (chain, then host name, then dates), so
    # judge the host name ourselves; the chain is bad when OpenSSL says so, or when it
    # failed the certificate for a reason neither the name nor the leaf's dates explain.
    info.hostname_ok = code != HOSTNAME_MISMATCH and covers(info, der, endpoint.host)
    info.chain_ok = code not in UNTRUSTED_CODES
    return info


def leaf_explains(info: CertInfo, now: datetime) -> bool:
    """Whether the leaf's own dates or name explain a failed verification."""
    return not info.hostname_ok or now > info.not_after or now < info.not_before
