"""The domain_expiry watcher against local RDAP and WHOIS servers."""

from __future__ import annotations

import time
from typing import Any

import pytest

from swanwatch import StateMap
from swanwatch.testing import assert_watcher_contract, last_unknowns, make_account, run_watcher

from .conftest import FakeRdap, FakeWhois, rdap_domain

NOW = "2026-01-15T12:00:00Z"

# WHOIS texts written for these tests in the shapes the registries use.
COM_THIN = """\
   Domain Name: ACME.COM
   Registry Domain ID: 1234567_DOMAIN_COM-VRSN
   Registrar WHOIS Server: whois.registrar.test
   Registrar URL: http://www.registrar.test
   Updated Date: 2025-01-02T03:04:05Z
   Creation Date: 1999-01-27T05:00:00Z
   Registry Expiry Date: 2026-01-27T05:00:00Z
   Registrar: Example Registrar, Inc.
   Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited
   DNSSEC: unsigned
>>> Last update of whois database: 2026-01-15T11:58:00Z <<<
"""
COM_REGISTRAR = """\
Domain Name: acme.com
Registrar WHOIS Server: whois.registrar.test
Registrar Registration Expiration Date: 2026-01-27T05:00:00Z
Registrar: Example Registrar, Inc.
Name Server: ns1.acme-dns.net
Name Server: ns2.acme-dns.net
"""
ORG = """\
Domain Name: acme.org
Registry Domain ID: 5a0c6b1e_LROR-PIR
Creation Date: 2003-02-11T17:04:51Z
Registry Expiry Date: 2026-02-11T17:04:51Z
Registrar: Example Registrar, Inc.
Domain Status: clientDeleteProhibited https://icann.org/epp#clientDeleteProhibited
Name Server: ns1.acme-dns.net
"""
UK = """\

    Domain name:
        acme.co.uk

    Registrar:
        Example Registrar Ltd [Tag = EXAMPLE]

    Relevant dates:
        Registered on: 14-Feb-1999
        Expiry date:  20-Jan-2026
        Last updated:  13-Jan-2025

    Registration status:
        Registered until expiry date.

    Name servers:
        ns1.acme-dns.net
"""
JP = """\
[ JPRS database provides information on network administration. ]

Domain Information:
a. [Domain Name]                ACME.JP
g. [Name Server]                ns1.acme-dns.jp

[Created on]                    2005/03/31
[Expires on]                    2026/03/31
[Status]                        Active
[Last Updated]                  2025/04/01 01:05:03 (JST)
"""
DE = """\
Domain: acme.de
Nserver: ns1.acme-dns.de
Status: connect
Changed: 2024-06-01T10:00:00+02:00
"""
NOT_FOUND = (
    'No match for "NOPE-ACME.COM".\r\n'
    ">>> Last update of whois database: 2026-01-15T11:58:00Z <<<\r\n"
)
RATE_LIMITED = (
    "The WHOIS query quota for 127.0.0.1 has been exceeded\n"
    "and will be replenished in 60 seconds.\n"
)
EXPIRED = ORG.replace("acme.org", "old-acme.org").replace("2026-02-11", "2026-01-10")
PENDING_DELETE = (
    ORG.replace("acme.org", "gone-acme.org")
    .replace(
        "clientDeleteProhibited https://icann.org/epp#clientDeleteProhibited",
        "pendingDelete https://icann.org/epp#pendingDelete",
    )
    .replace("2026-02-11", "2026-09-01")
)


def opts(
    whois: FakeWhois | None = None, rdap: FakeRdap | None = None, **extra: Any
) -> dict[str, Any]:
    o: dict[str, Any] = {
        "rdap_bootstrap_url": None,
        "rdap_timeout_s": 2,
        "whois_timeout_s": 2,
        "parse_workers": 1,
        "per_server_rate_per_s": 100,
    }
    if whois is not None:
        o["whois_servers"] = {"*": f"127.0.0.1:{whois.port}"}
    if rdap is not None:
        o["rdap_servers"] = {"*": rdap.url}
    else:
        o["source"] = "whois"
    o.update(extra)
    return o


async def run(domains: list[str], options: dict[str, Any], **kw: Any) -> list[Any]:
    return await run_watcher(
        "domain_expiry",
        options=options,
        now=kw.pop("now", NOW),
        accounts=[make_account("acme", domains=domains)],
        **kw,
    )


async def test_rdap_success_is_graded_by_days_left(rdap_server: FakeRdap) -> None:
    rdap_server.answers["acme.com"] = (200, rdap_domain("acme.com", "2026-01-27T04:00:00.000Z"), {})
    [signal] = await run(["https://www.acme.com/login"], opts(rdap=rdap_server))
    assert signal.key == "acme.com" and signal.kind == "domain_expiry"
    assert signal.strength == pytest.approx(0.6)  # 12 days: within 30 and 14, not 7
    assert signal.summary == "acme.com expires in 12 days (registrar Example Registrar, Inc.)."
    ev = signal.evidence
    assert ev["expires_at"].startswith("2026-01-27T04:00") and ev["source"] == "rdap"
    assert ev["status"] == ["clientTransferProhibited"] and ev["nameservers"] == [
        "ns1.example-dns.net"
    ]
    assert ev["server"] == rdap_server.url


async def test_rdap_404_falls_back_to_whois(rdap_server: FakeRdap, whois_server: FakeWhois) -> None:
    whois_server.answers["acme.org"] = ORG
    [signal] = await run(["acme.org"], opts(whois_server, rdap_server, source="auto"))
    assert rdap_server.queries and whois_server.queries
    assert signal.evidence["source"] == "whois" and signal.evidence["expires_at"].startswith(
        "2026-02-11"
    )
    assert signal.strength == pytest.approx(0.4)


async def test_429_retry_after_is_honoured(rdap_server: FakeRdap) -> None:
    ok: tuple[int, object, dict[str, str]] = (
        200,
        rdap_domain("acme.com", "2026-01-20T00:00:00Z"),
        {},
    )
    rdap_server.answers["acme.com"] = [(429, {"errorCode": 429}, {"Retry-After": "1"}), ok]
    [signal] = await run(["acme.com"], opts(rdap=rdap_server))
    assert len(rdap_server.queries) == 2
    assert rdap_server.starts[1] - rdap_server.starts[0] >= 0.9
    assert signal.evidence["expires_at"].startswith("2026-01-20")


async def test_429_with_long_retry_after_is_rate_limited(rdap_server: FakeRdap) -> None:
    rdap_server.answers["acme.com"] = (429, {"errorCode": 429}, {"Retry-After": "3600"})
    assert await run(["acme.com"], opts(rdap=rdap_server)) == []
    assert len(rdap_server.queries) == 1
    [(_, key, reason)] = last_unknowns()
    assert key == "acme.com" and "rate_limited" in reason


async def test_timeout_and_malformed_json(rdap_server: FakeRdap) -> None:
    rdap_server.answers["broken.com"] = (200, b"{not json", {})
    rdap_server.answers["slow.com"] = (200, rdap_domain("slow.com", "2026-01-20T00:00:00Z"), {})
    rdap_server.latency_s = 0.6
    state = StateMap()
    await run(["broken.com", "slow.com"], opts(rdap=rdap_server, rdap_timeout_s=0.4), state=state)
    reasons = {key: reason for _, key, reason in last_unknowns()}
    assert "unparseable" in reasons["broken.com"] or "timeout" in reasons["broken.com"]
    assert "timeout" in reasons["slow.com"]
    rdap_server.latency_s = 0
    await run(["broken.com"], opts(rdap=rdap_server), state=StateMap())
    assert "unparseable: the answer is not JSON" in last_unknowns()[0][2]


async def test_thin_registry_referral(whois_server: FakeWhois, whois_server2: FakeWhois) -> None:
    whois_server.answers["acme.com"] = COM_THIN
    whois_server2.answers["acme.com"] = COM_REGISTRAR
    options = opts(
        whois_server, whois_hosts={"whois.registrar.test": f"127.0.0.1:{whois_server2.port}"}
    )
    [signal] = await run(["acme.com"], options)
    assert whois_server.queries == ["domain acme.com"]  # Verisign's exact-match syntax
    assert whois_server2.queries == ["acme.com"]
    assert signal.evidence["nameservers"] == ["ns1.acme-dns.net", "ns2.acme-dns.net"]
    assert signal.evidence["registrar"] == "Example Registrar, Inc."


@pytest.mark.parametrize(
    ("domain", "text", "expires", "strength"),
    [
        ("acme.org", ORG, "2026-02-11", 0.4),
        ("acme.co.uk", UK, "2026-01-20", 0.8),
        ("acme.jp", JP, "2026-03-31", 0.0),
        ("old-acme.org", EXPIRED, "2026-01-10", 1.0),
        ("gone-acme.org", PENDING_DELETE, "2026-09-01", 1.0),
    ],
)
async def test_whois_formats(
    whois_server: FakeWhois, domain: str, text: str, expires: str, strength: float
) -> None:
    whois_server.answers[domain] = text
    signals = await run([f"admin@{domain}"], opts(whois_server))
    if strength == 0:
        assert signals == [] and last_unknowns() == []
        return
    [signal] = signals
    assert signal.evidence["expires_at"].startswith(expires)
    assert signal.strength == pytest.approx(strength)
    if domain == "gone-acme.org":
        assert "pendingDelete" in signal.summary
    if domain == "old-acme.org":
        assert signal.summary.startswith("old-acme.org expired on 2026-01-10")


@pytest.mark.parametrize(
    ("domain", "text", "code"),
    [
        ("acme.de", DE, "no_expiry"),
        ("nope-acme.com", NOT_FOUND, "not_found"),
        ("acme.co.uk", RATE_LIMITED, "rate_limited"),
    ],
)
async def test_whois_outcomes_that_are_not_dates(
    whois_server: FakeWhois, domain: str, text: str, code: str
) -> None:
    whois_server.answers[domain] = text
    assert await run([domain], opts(whois_server)) == []
    [(_, key, reason)] = last_unknowns()
    assert key == domain
    assert f"{code}:" in reason


async def test_idn_domains_are_looked_up_in_punycode(whois_server: FakeWhois) -> None:
    whois_server.answers["xn--bcher-kva.org"] = ORG.replace("acme.org", "xn--bcher-kva.org")
    [signal] = await run(["https://shop.Bücher.org/"], opts(whois_server))
    assert signal.key == "xn--bcher-kva.org"
    assert signal.summary.startswith("bücher.org expires in 27 days")


async def test_cache_ttl_and_last_good_answer(whois_server: FakeWhois) -> None:
    whois_server.answers["acme.org"] = ORG
    state = StateMap()
    await run(["acme.org"], opts(whois_server), state=state)
    await run(["acme.org"], opts(whois_server), state=state, now="2026-01-15T18:00:00Z")
    assert len(whois_server.queries) == 1  # 27 days left: kept for 2.7 days
    whois_server.answers["acme.org"] = RATE_LIMITED
    [signal] = await run(["acme.org"], opts(whois_server), state=state, now="2026-01-19T12:00:00Z")
    assert len(whois_server.queries) == 2
    assert signal.evidence["stale_since"].startswith("2026-01-15")
    assert "as of 2026-01-15" in signal.summary
    assert "rate_limited" in last_unknowns()[0][2]


async def test_repeated_failures_become_a_weak_unknown_signal(whois_server: FakeWhois) -> None:
    whois_server.answers["acme.co.uk"] = RATE_LIMITED
    state = StateMap()
    for hour in range(3):
        signals = await run(
            ["acme.co.uk"],
            opts(whois_server, failure_retry_h=1),
            state=state,
            now=f"2026-01-15T{10 + 2 * hour:02d}:00:00Z",
        )
    [signal] = signals
    assert signal.strength == pytest.approx(0.1) and "unknown" in signal.summary


async def test_per_server_rate_limit_is_kept(whois_server: FakeWhois) -> None:
    names = [f"acme{i}.org" for i in range(8)]
    for name in names:
        whois_server.answers[name] = ORG.replace("acme.org", name)
    started = time.monotonic()
    signals = await run(
        names, opts(whois_server, per_server_rate_per_s=10, per_server_concurrency=8)
    )
    assert len(signals) == 8
    # Each query reaches the server no earlier than the client let it go, so however late a
    # busy machine delivers them, the k-th arrival comes at least k tenths of a second in.
    arrivals = sorted(at - started for at in whois_server.starts)
    assert all(at >= 0.1 * k - 0.02 for k, at in enumerate(arrivals)), arrivals


async def test_bootstrap_refresh_keeps_last_good_copy(rdap_server: FakeRdap) -> None:
    boot = {"version": "1.0", "services": [[["test"], [rdap_server.url]]]}
    rdap_server.answers["dns.json"] = (200, boot, {})
    rdap_server.answers["acme.test"] = (200, rdap_domain("acme.test", "2026-01-20T00:00:00Z"), {})
    options = {"rdap_bootstrap_url": rdap_server.url + "dns.json", "source": "rdap"}
    state = StateMap()
    [signal] = await run(["acme.test"], options, state=state)
    assert signal.evidence["server"] == rdap_server.url
    rdap_server.answers["dns.json"] = (200, {"services": "broken"}, {})
    await run(["acme.test"], options, state=state, now="2026-01-17T12:00:00Z")
    assert state.get("rdap_bootstrap")["map"] == {"test": rdap_server.url}
    assert sum("dns.json" in q for q in rdap_server.queries) == 2


async def test_contract(whois_server: FakeWhois) -> None:
    whois_server.answers["acme.org"] = ORG
    await assert_watcher_contract(
        "domain_expiry",
        options=opts(whois_server),
        accounts=[make_account("acme", domains=["acme.org"])],
        now=NOW,
    )


async def test_hung_parse_is_killed_and_its_worker_replaced() -> None:
    # a sleeping call goes through the same bounded, kill-on-overrun path as every parse
    from swanwatch.watchers._whois import ParsePool, WorkerOverran

    async with ParsePool(1, timeout_s=0.5) as pool:
        assert (await pool.call("parse_whois", "acme.org", ORG))["outcome"] == "ok"
        [worker] = pool._idle
        started = time.monotonic()
        with pytest.raises(WorkerOverran, match=r"overran 0\.5 s"):
            await pool.call("time:sleep", 60)
        assert time.monotonic() - started < 3
        assert worker.proc.returncode is not None and pool.killed == 1
        answer = await pool.call("parse_whois", "acme.org", ORG)  # a fresh worker takes over
        assert answer["outcome"] == "ok" and answer["expires_at"].startswith("2026-02-11")
        assert pool._idle and pool._idle[0] is not worker


async def test_slow_parse_is_reported_unparseable_in_bounded_time(whois_server: FakeWhois) -> None:
    # a real record padded to ~190 kB takes python-whois about 0.2 s; the bound is 0.02 s
    filler = "".join(f"Remark: a long remark with no date in it, line {i}\n" for i in range(3500))
    whois_server.answers["acme.org"] = "Domain Name: acme.org\n" + filler
    started = time.monotonic()
    assert await run(["acme.org"], opts(whois_server, parse_timeout_s=0.02)) == []
    assert time.monotonic() - started < 5
    [(_, key, reason)] = last_unknowns()
    assert key == "acme.org" and "unparseable:" in reason and "overran" in reason
