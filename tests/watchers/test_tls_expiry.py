"""The tls_expiry watcher against real local TLS servers with certificates made here."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pydantic
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from swanwatch import StateMap, SystemClock, tls
from swanwatch.testing import assert_watcher_contract, last_unknowns, make_account, run_watcher

# TLS verification reads the real clock, so these tests run at the real now.
NOW = SystemClock().now()


@dataclass
class Pem:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    folder: Path, label: str, *, cn: str, not_after: datetime, sans: list[x509.GeneralName],
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    not_before: datetime | None = None, ca: bool = False,
) -> tuple[Pem, x509.Certificate, ec.EllipticCurvePrivateKey]:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(issuer[0].subject if issuer else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or NOW - timedelta(days=30))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    pem = Pem(folder / f"{label}.crt", folder / f"{label}.key")
    pem.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, cert, key


LOCAL = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]


@pytest.fixture(scope="module")
def pems(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    """A test CA, and leaves for 127.0.0.1/localhost: far, soon, expired, wrong host,
    self-signed."""
    folder = tmp_path_factory.mktemp("pki")
    ca_pem, ca_cert, ca_key = _cert(
        folder, "ca", cn="Swanwatch Test CA", not_after=NOW + timedelta(days=3650), sans=[],
        ca=True,
    )  # fmt: skip
    ca = (ca_cert, ca_key)
    out = {"ca": ca_pem}
    out["far"] = _cert(folder, "far", cn="localhost", not_after=NOW + timedelta(days=200),
                       sans=LOCAL, issuer=ca)[0]  # fmt: skip
    out["soon"] = _cert(folder, "soon", cn="localhost", not_after=NOW + timedelta(days=10),
                        sans=LOCAL, issuer=ca)[0]  # fmt: skip
    out["expired"] = _cert(
        folder, "expired", cn="localhost", not_before=NOW - timedelta(days=90),
        not_after=NOW - timedelta(days=3), sans=LOCAL, issuer=ca,
    )[0]  # fmt: skip
    out["wrong_host"] = _cert(
        folder, "wrong_host", cn="shop.other.example", not_after=NOW + timedelta(days=200),
        sans=[x509.DNSName("shop.other.example")], issuer=ca,
    )[0]  # fmt: skip
    out["self_signed"] = _cert(
        folder, "self_signed", cn="localhost", not_after=NOW + timedelta(days=200), sans=LOCAL
    )[0]  # fmt: skip
    return out


async def _close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


async def serve(pem: Pem) -> tuple[asyncio.Server, int]:
    """A TLS server on 127.0.0.1 presenting ``pem``, and its port."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pem.cert, pem.key)
    server = await asyncio.start_server(_close, "127.0.0.1", 0, ssl=ctx)
    return server, int(server.sockets[0].getsockname()[1])


@pytest.fixture
async def tls_server(pems: dict[str, Pem]) -> AsyncIterator[Any]:
    """``await tls_server(label)`` starts a server presenting ``pems[label]``: its port."""
    servers: list[asyncio.Server] = []

    async def start(label: str) -> int:
        server, port = await serve(pems[label])
        servers.append(server)
        return port

    yield start
    for server in servers:
        server.close()
        await server.wait_closed()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    yield port


def opts(pems: dict[str, Pem], **extra: Any) -> dict[str, Any]:
    return {"ca_bundle_path": str(pems["ca"].cert), "connect_timeout_s": 2, **extra}


async def run(port: int, options: dict[str, Any], host: str = "127.0.0.1", **kw: Any) -> list[Any]:
    return await run_watcher(
        "tls_expiry",
        options={"endpoints": {"acme": [f"https://{host}:{port}/"]}, **options},
        accounts=[make_account("acme", domains=["acme.example"])],
        now=kw.pop("now", NOW),
        **kw,
    )


async def test_valid_far_certificate_is_quiet(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("far")
    assert await run(port, opts(pems)) == []
    assert last_unknowns() == []


async def test_expiring_in_ten_days_is_graded(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("soon")
    [signal] = await run(port, opts(pems))
    assert signal.kind == "tls_expiry" and signal.key == f"127.0.0.1:{port}"
    assert signal.strength == pytest.approx(0.6)  # within 60, 30 and 14 days; not 7 or 1
    assert signal.summary == (
        f"The certificate of 127.0.0.1:{port} expires in 10 days (issuer Swanwatch Test CA)."
    )
    assert signal.evidence["check"] == "expiry" and signal.evidence["days_left"] == 10
    assert signal.evidence["not_after"].startswith((NOW + timedelta(days=10)).date().isoformat())


async def test_expired_certificate_is_full_strength(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("expired")
    [signal] = await run(port, opts(pems))
    assert signal.strength == 1.0 and signal.evidence["check"] == "expiry"
    expired_on = (NOW - timedelta(days=3)).date().isoformat()
    assert signal.summary.startswith(f"The certificate of 127.0.0.1:{port} expired on {expired_on}")
    assert "expired" in signal.evidence["verify_error"]


async def test_hostname_mismatch_is_its_own_signal(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("wrong_host")
    [signal] = await run(port, opts(pems), host="localhost")
    assert signal.key == f"localhost:{port} hostname" and signal.strength == pytest.approx(0.9)
    assert signal.evidence["check"] == "hostname"
    assert "does not cover localhost (it names shop.other.example)" in signal.summary


async def test_untrusted_chain_is_its_own_signal(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("self_signed")
    [signal] = await run(port, opts(pems))
    assert signal.key == f"127.0.0.1:{port} chain" and signal.strength == pytest.approx(0.9)
    assert "is not trusted: self-signed certificate" in signal.summary
    assert signal.evidence["hostname_ok"] is True


async def test_ca_bundle_decides_what_is_trusted(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("far")
    [signal] = await run(port, opts(pems, ca_bundle_path=None))  # system roots: not our CA
    assert signal.key.endswith(" chain") and "not trusted" in signal.summary


async def test_unreachable_is_unknown_never_healthy(closed_port: int, pems: dict[str, Pem]) -> None:
    assert await run(closed_port, opts(pems)) == []
    [(account, key, reason)] = last_unknowns()
    assert account == "acme" and key == f"127.0.0.1:{closed_port}"
    assert "unreachable" in reason


async def test_silent_server_times_out_as_unknown(pems: dict[str, Pem]) -> None:
    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accepts TCP, never speaks TLS
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = int(server.sockets[0].getsockname()[1])
    try:
        async with asyncio.timeout(60):  # a bound on a hang, not a measure of speed
            assert await run(port, opts(pems, connect_timeout_s=0.3)) == []
    finally:
        server.close()
    assert "timeout" in last_unknowns()[0][2]


async def test_failures_keep_the_last_certificate_then_become_weak_unknown(
    pems: dict[str, Pem],
) -> None:
    server, port = await serve(pems["soon"])
    state = StateMap()
    try:
        [first] = await run(port, opts(pems), state=state)
    finally:
        server.close()
        await server.wait_closed()
    # the endpoint now refuses: the certificate seen before still counts, marked stale
    [again] = await run(port, opts(pems), state=state)
    assert again.key == first.key and again.strength == first.strength
    assert again.evidence["stale_since"] and "(as of " in again.summary
    [(_, _, reason)] = last_unknowns()
    assert "unreachable" in reason and "using the certificate seen" in reason
    # never seen: a weak unknown signal only after repeated failures
    fresh = StateMap()
    for attempt in range(3):
        signals = await run(port, opts(pems, unknown_after_failures=3), state=fresh)
        assert (signals == []) == (attempt < 2)
    [weak] = signals
    assert weak.strength == pytest.approx(0.1) and "unknown after 3 failed checks" in weak.summary


async def test_template_over_account_domains(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("soon")
    signals = await run_watcher(
        "tls_expiry",
        options=opts(pems, endpoint_template=f"https://{{domain}}:{port}/"),
        accounts=[
            make_account("acme", domains=["https://localhost/login", "ops@localhost"]),
            make_account("beta", domains=["localhost"]),
        ],
        now=NOW,
    )
    assert sorted((s.account_id, s.key) for s in signals) == [
        ("acme", f"localhost:{port}"), ("beta", f"localhost:{port}")
    ]  # fmt: skip


def test_bad_template_is_rejected() -> None:
    from swanwatch import plugins

    cls = plugins.watcher_class("tls_expiry")
    with pytest.raises(pydantic.ValidationError, match="domain"):
        cls.Options.model_validate({"endpoint_template": "https://{tenant}.example/"})


async def test_contract(tls_server: Any, pems: dict[str, Pem]) -> None:
    port = await tls_server("soon")
    await assert_watcher_contract(
        "tls_expiry",
        options=opts(pems, endpoints={"acme": [f"127.0.0.1:{port}"]}),
        accounts=[make_account("acme", domains=["acme.example"])],
        now=NOW,
    )


async def test_http_clients_share_one_tls_context_which_follows_ssl_cert_file(
    tls_server: Any, pems: dict[str, Pem], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's, the sources' and the workers' HTTP clients share one TLS context (its
    CA store is loaded once), built as httpx builds its own: a server our test CA signed is
    trusted only once ``SSL_CERT_FILE`` names that CA, and no longer when it names none."""
    port = await tls_server("far")
    url = f"https://localhost:{port}/"

    async def reached() -> bool:
        async with tls.client(timeout=10) as http:
            try:
                await http.get(url)
            except httpx.ConnectError as exc:  # the handshake failed: not trusted
                assert "CERTIFICATE_VERIFY_FAILED" in str(exc)
                return False
            except httpx.RemoteProtocolError:  # trusted; this server then hangs up
                return True
        raise AssertionError("the test server never answers")

    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert tls.shared_context() is tls.shared_context()
    assert not await reached()
    monkeypatch.setenv("SSL_CERT_FILE", str(pems["ca"].cert))
    assert await reached()
    assert tls.shared_context() is tls.shared_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    assert not await reached()
