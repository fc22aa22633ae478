"""domain_expiry at scale: 10,000 domains against local RDAP and WHOIS servers with latency.

    python bench/domains.py                         # 10,000 domains, 50 ms, 16 servers
    python bench/domains.py --domains 2000 --json   # smaller, machine-readable

A separate process serves 8 RDAP servers (HTTP/1.1 keep-alive, RFC 9083 JSON) and 8 WHOIS
servers (TCP, one query per connection), one per TLD, each adding ``--latency-ms`` before it
answers and counting, as a registry would, every request beyond ``--server-rate`` in any
sliding one-second window (answered 429 / "query quota exceeded", which the client must
honour). The watcher runs once over all the domains through ``swanwatch.testing.run_watcher``:
the real path (registrable domain, server choice, per-server gates and pacing, WHOIS parse
pool, grading, state).

It prints lookups per second beside the concurrency bound (concurrency / latency) and beside
a plain sequential loop (one fetch then ``json.loads`` or python-whois's parser, per domain)
over the same servers. The sequential loop runs on the first ``--sequential`` domains only and
is extrapolated to all of them (it is a straight line: one latency per domain).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
_CODE = re.compile(
    r"\b(?:no_expiry|not_found|rate_limited|unparseable|timeout|unreachable|unsupported_tld)\b"
)

#: TLDs (public suffixes) answered by RDAP, and by WHOIS only (as in the IANA bootstrap).
RDAP_SUFFIXES = ["com", "net", "org", "info", "xyz", "app", "dev", "co.uk"]
WHOIS_SUFFIXES = ["de", "io", "co", "jp", "com.au", "eu", "it", "be"]


def expiry_of(name: str) -> datetime:
    """A stable expiry 1..400 days out, from the name."""
    days = int(hashlib.sha256(name.encode()).hexdigest()[:6], 16) % 400 + 1
    return NOW + timedelta(days=days, hours=3)


def domains(count: int) -> list[str]:
    """``count`` names spread evenly over all the suffixes."""
    suffixes = RDAP_SUFFIXES + WHOIS_SUFFIXES
    return [f"customer{i:05d}.{suffixes[i % len(suffixes)]}" for i in range(count)]


# --- the fake registries (a child process) ----------------------------------------------


def rdap_body(name: str) -> bytes:
    expires = expiry_of(name).strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({
        "objectClassName": "domain", "ldhName": name.upper(),
        "rdapConformance": ["rdap_level_0"], "status": ["client transfer prohibited"],
        "events": [{"eventAction": "registration", "eventDate": "2010-03-05T10:00:00Z"},
                   {"eventAction": "expiration", "eventDate": expires}],
        "entities": [{"objectClassName": "entity", "roles": ["registrar"], "handle": "9999",
                      "vcardArray": ["vcard", [["version", {}, "text", "4.0"],
                                               ["fn", {}, "text", "Bench Registrar"]]]}],
        "nameservers": [{"objectClassName": "nameserver", "ldhName": "NS1.BENCH-DNS.NET"}],
    }).encode()  # fmt: skip


def whois_text(name: str) -> bytes:
    """A record in the shape of the name's registry (.de publishes no expiry)."""
    e = expiry_of(name)
    if name.endswith(".de"):
        text = f"Domain: {name}\nNserver: ns1.bench-dns.de\nStatus: connect\n"
    elif name.endswith(".jp"):
        text = (
            "[ JPRS database provides information on network administration. ]\n\n"
            f"a. [Domain Name]                {name.upper()}\n"
            "g. [Name Server]                ns1.bench-dns.jp\n\n"
            "[Created on]                    2010/03/31\n"
            f"[Expires on]                    {e:%Y/%m/%d}\n"
            "[Status]                        Active\n"
        )
    elif name.endswith(".eu"):
        text = (
            f"Domain: {name}\nScript: LATIN\n\nRegistrar:\n        Name: Bench Registrar\n\n"
            "Name servers:\n        ns1.bench-dns.eu\n"
        )
    else:
        text = (
            f"Domain Name: {name}\nRegistry Domain ID: D{abs(hash(name)) % 10**8}-BENCH\n"
            "Creation Date: 2010-03-05T10:00:00Z\n"
            f"Registry Expiry Date: {e:%Y-%m-%dT%H:%M:%SZ}\n"
            "Registrar: Bench Registrar\n"
            "Domain Status: clientTransferProhibited https://icann.org/epp#clientTransferProhibited\n"
            "Name Server: ns1.bench-dns.net\n"
        )
    return text.encode()


@dataclass
class Meter:
    """Requests one server saw, and those beyond its limit in a sliding 1 s window."""

    limit: int
    requests: int = 0
    exceeded: int = 0
    peak_1s: int = 0
    #: Seconds from each request's arrival to its answer written: latency plus our own lag.
    served_s: float = 0.0
    window: collections.deque[float] = field(default_factory=collections.deque)

    def arrive(self) -> bool:
        """Count one request; False when it is over the limit."""
        now = time.monotonic()
        while self.window and self.window[0] <= now - 1.0:
            self.window.popleft()
        self.window.append(now)
        self.requests += 1
        self.peak_1s = max(self.peak_1s, len(self.window))
        if len(self.window) > self.limit:
            self.exceeded += 1
            return False
        return True


async def _registries(latency_s: float, limit: int, conn: Any) -> None:
    meters: dict[str, Meter] = {}

    def rdap_handler(label: str) -> Any:
        meter = meters[label] = Meter(limit)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    arrived = time.monotonic()
                    ok = meter.arrive()
                    await asyncio.sleep(latency_s)
                    name = line.split()[1].decode().rstrip("/").rsplit("/", 1)[-1]
                    if ok:
                        head, body = b"200 OK", rdap_body(name)
                    else:
                        head, body = b"429 Too Many Requests\r\nRetry-After: 1", b"{}"
                    writer.write(
                        b"HTTP/1.1 " + head + b"\r\nContent-Type: application/rdap+json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
                    )
                    await writer.drain()
                    meter.served_s += time.monotonic() - arrived
            except (ConnectionError, IndexError):
                pass
            finally:
                writer.close()

        return handle

    def whois_handler(label: str) -> Any:
        meter = meters[label] = Meter(limit)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                line = (await reader.readline()).decode().strip()
                arrived = time.monotonic()
                ok = meter.arrive()
                await asyncio.sleep(latency_s)
                name = line.split()[-1] if line else "?"
                writer.write(
                    whois_text(name) if ok else b"Query quota exceeded; try again later.\n"
                )
                await writer.drain()
                meter.served_s += time.monotonic() - arrived
            except ConnectionError:
                pass
            finally:
                writer.close()

        return handle

    ports: dict[str, int] = {}
    servers = []
    for suffix in RDAP_SUFFIXES:
        server = await asyncio.start_server(rdap_handler(f"rdap {suffix}"), "127.0.0.1", 0,
                                            backlog=1024)  # fmt: skip
        servers.append(server)
        ports[f"rdap {suffix}"] = server.sockets[0].getsockname()[1]
    for suffix in WHOIS_SUFFIXES:
        server = await asyncio.start_server(whois_handler(f"whois {suffix}"), "127.0.0.1", 0,
                                            backlog=1024)  # fmt: skip
        servers.append(server)
        ports[f"whois {suffix}"] = server.sockets[0].getsockname()[1]
    conn.send(ports)
    loop = asyncio.get_running_loop()
    while True:
        message = await loop.run_in_executor(None, conn.recv)
        if message == "reset":
            for meter in meters.values():
                meter.requests = meter.exceeded = meter.peak_1s = 0
                meter.served_s = 0.0
                meter.window.clear()
            conn.send("ok")
        elif message == "stats":
            conn.send(
                {k: (m.requests, m.exceeded, m.peak_1s, m.served_s) for k, m in meters.items()}
            )
        else:
            break
    for server in servers:
        server.close()


def registries_main(latency_s: float, limit: int, conn: Any) -> None:
    """The child process: serve until told to stop."""
    asyncio.run(_registries(latency_s, limit, conn))


# --- the client side ----------------------------------------------------------------------


def watcher_options(ports: dict[str, int], args: argparse.Namespace) -> dict[str, Any]:
    return {
        "rdap_bootstrap_url": None,
        "rdap_servers": {s: f"http://127.0.0.1:{ports['rdap ' + s]}/rdap/" for s in RDAP_SUFFIXES},
        "whois_servers": {s: f"127.0.0.1:{ports['whois ' + s]}" for s in WHOIS_SUFFIXES},
        "concurrency": args.concurrency,
        "per_server_concurrency": args.per_server_concurrency,
        "per_server_rate_per_s": args.server_rate,
        "parse_workers": args.parse_workers,
        "rdap_timeout_s": 10,
        "whois_timeout_s": 10,
    }


async def run_watcher_once(names: list[str], options: dict[str, Any]) -> tuple[float, Any]:
    from swanwatch.testing import last_unknowns, make_account, run_watcher

    per_account = 5
    accounts = [
        make_account(f"acc-{i:05d}", domains=names[i : i + per_account])
        for i in range(0, len(names), per_account)
    ]
    started = time.perf_counter()
    signals = await run_watcher("domain_expiry", options=options, accounts=accounts, now=NOW)
    elapsed = time.perf_counter() - started
    unknown_codes = collections.Counter(
        m.group(0) if (m := _CODE.search(reason)) else "other" for _, _, reason in last_unknowns()
    )
    return elapsed, {"signals": len(signals), "unknowns": dict(unknown_codes)}


def sequential(names: list[str], ports: dict[str, int]) -> float:
    """One domain after another: fetch, then json.loads or python-whois's parser."""
    import httpx
    from whois.parser import WhoisEntry

    # one keep-alive client per RDAP server, made before the clock starts
    clients = {suffix: httpx.Client() for suffix in RDAP_SUFFIXES}
    started = time.perf_counter()
    for name in names:
        suffix = name.split(".", 1)[1]
        if suffix in RDAP_SUFFIXES:
            port = ports["rdap " + suffix]
            client = clients[suffix]
            response = client.get(f"http://127.0.0.1:{port}/rdap/domain/{name}")
            json.loads(response.content)
        else:
            with socket.create_connection(("127.0.0.1", ports["whois " + suffix])) as sock:
                sock.sendall(name.encode() + b"\r\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
            with contextlib.suppress(Exception):  # python-whois raises bare errors on some texts
                WhoisEntry.load(name, b"".join(chunks).decode())
    elapsed = time.perf_counter() - started
    for client in clients.values():
        client.close()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--per-server-concurrency", type=int, default=4)
    parser.add_argument(
        "--server-rate",
        type=int,
        default=50,
        help="each server's limit, requests per second (the client keeps it)",
    )
    parser.add_argument("--parse-workers", type=int, default=2)
    parser.add_argument(
        "--sequential", type=int, default=100, help="domains for the sequential loop (extrapolated)"
    )
    parser.add_argument("--runs", type=int, default=1, help="watcher runs (median reported)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    latency_s = args.latency_ms / 1000
    parent, child = multiprocessing.get_context("spawn").Pipe()
    proc = multiprocessing.get_context("spawn").Process(
        target=registries_main, args=(latency_s, args.server_rate, child), daemon=True
    )
    proc.start()
    ports: dict[str, int] = parent.recv()
    names = domains(args.domains)
    options = watcher_options(ports, args)
    rates, details, server_stats = [], [], []
    for _ in range(args.runs):
        parent.send("reset")
        parent.recv()
        elapsed, detail = asyncio.run(run_watcher_once(names, options))
        parent.send("stats")
        server_stats.append(parent.recv())
        rates.append(len(names) / elapsed)
        details.append(detail)
    seq_names = names[: args.sequential]
    seq_elapsed = sequential(seq_names, ports) if seq_names else float("nan")
    parent.send("stop")
    proc.join(5)

    servers = len(RDAP_SUFFIXES) + len(WHOIS_SUFFIXES)
    bound = args.concurrency / latency_s
    per_server_cap = min(args.per_server_concurrency / latency_s, args.server_rate)
    seq_rate = len(seq_names) / seq_elapsed if seq_names else float("nan")
    last = server_stats[-1]
    result = {
        "domains": len(names),
        "latency_ms": args.latency_ms,
        "concurrency": args.concurrency,
        "servers": servers,
        "server_rate_limit_per_s": args.server_rate,
        "bound_per_s": bound,
        "per_server_caps_per_s": servers * per_server_cap,
        "lookups_per_s": statistics.median(rates),
        "runs_per_s": [round(r, 1) for r in rates],
        "of_bound": statistics.median(rates) / bound,
        "sequential_per_s": seq_rate,
        "sequential_domains": len(seq_names),
        "sequential_extrapolated_s": len(names) / seq_rate if seq_names else None,
        "speedup_vs_sequential": statistics.median(rates) / seq_rate if seq_names else None,
        "server_requests": sum(v[0] for v in last.values()),
        "server_over_limit": sum(v[1] for s in server_stats for v in s.values()),
        "server_peak_1s": max(v[2] for s in server_stats for v in s.values()),
        "server_answer_ms": 1000
        * sum(v[3] for v in last.values())
        / max(1, sum(v[0] for v in last.values())),
        "signals": details[-1]["signals"],
        "unknowns": details[-1]["unknowns"],
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['domains']} domains, {servers} servers ({len(RDAP_SUFFIXES)} RDAP, "
        f"{len(WHOIS_SUFFIXES)} WHOIS), latency {args.latency_ms:g} ms, "
        f"{result['cpus']} CPUs"
    )
    print(
        f"  watcher:     {result['lookups_per_s']:8.1f} lookups/s "
        f"({100 * result['of_bound']:.0f}% of the bound; runs {result['runs_per_s']})"
    )
    print(
        f"  bound:       {bound:8.1f} lookups/s (concurrency {args.concurrency} / "
        f"{args.latency_ms:g} ms); per-server caps allow {result['per_server_caps_per_s']:.0f}"
    )
    print(
        f"  sequential:  {seq_rate:8.1f} lookups/s (first {len(seq_names)} domains; "
        f"{len(names):,} would take ~{result['sequential_extrapolated_s'] or 0:.0f} s)"
    )
    print(
        f"  servers:     {result['server_requests']} requests, peak {result['server_peak_1s']} "
        f"in 1 s against a limit of {args.server_rate}, {result['server_over_limit']} over; "
        f"answered in {result['server_answer_ms']:.1f} ms on average"
    )
    print(f"  outcome:     {result['signals']} signals, unknowns {result['unknowns']}")


if __name__ == "__main__":
    main()
