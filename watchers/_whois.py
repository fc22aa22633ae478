"""WHOIS over TCP (RFC 3912) with asyncio, the server tables, and a killable parse pool."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from ._whois_parse import parse_whois  # noqa: TID251 (a sibling private helper)

#: Registry WHOIS servers for TLDs without RDAP or as the fallback when RDAP fails.
WHOIS_SERVERS: dict[str, str] = {
    "com": "whois.verisign-grs.com", "net": "whois.verisign-grs.com",
    "name": "whois.nic.name", "cc": "ccwhois.verisign-grs.com", "tv": "whois.nic.tv",
    "org": "whois.pir.org", "info": "whois.nic.info", "biz": "whois.nic.biz",
    "mobi": "whois.nic.mobi", "pro": "whois.nic.pro", "us": "whois.nic.us",
    "xyz": "whois.nic.xyz", "io": "whois.nic.io", "co": "whois.nic.co", "me": "whois.nic.me",
    "ai": "whois.nic.ai", "app": "whois.nic.google", "dev": "whois.nic.google",
    "uk": "whois.nic.uk", "de": "whois.denic.de", "jp": "whois.jprs.jp",
    "au": "whois.auda.org.au", "fr": "whois.nic.fr", "re": "whois.nic.re",
    "nl": "whois.domain-registry.nl", "eu": "whois.eu", "be": "whois.dns.be",
    "it": "whois.nic.it", "ch": "whois.nic.ch", "li": "whois.nic.li", "at": "whois.nic.at",
    "pl": "whois.dns.pl", "se": "whois.iis.se", "nu": "whois.iis.nu", "dk": "whois.punktum.dk",
    "fi": "whois.fi", "no": "whois.norid.no", "is": "whois.isnic.is", "ee": "whois.tld.ee",
    "lv": "whois.nic.lv", "lt": "whois.domreg.lt", "cz": "whois.nic.cz", "sk": "whois.sk-nic.sk",
    "hu": "whois.nic.hu", "ro": "whois.rotld.ro", "bg": "whois.register.bg",
    "si": "whois.register.si", "hr": "whois.dns.hr", "rs": "whois.rnids.rs", "ua": "whois.ua",
    "ru": "whois.tcinet.ru", "su": "whois.tcinet.ru", "pt": "whois.dns.pt", "ie": "whois.weare.ie",
    "ca": "whois.cira.ca", "br": "whois.registro.br", "mx": "whois.mx", "cl": "whois.nic.cl",
    "cn": "whois.cnnic.cn", "hk": "whois.hkirc.hk", "tw": "whois.twnic.net.tw",
    "kr": "whois.kr", "sg": "whois.sgnic.sg", "in": "whois.registry.in",
    "nz": "whois.irs.net.nz", "za": "whois.registry.net.za", "il": "whois.isoc.org.il",
    "tr": "whois.trabis.gov.tr", "kz": "whois.nic.kz", "id": "whois.id",
}  # fmt: skip

#: How a registry wants the query line written (``{}`` is the domain).
QUERY_FORMATS: dict[str, str] = {
    "com": "domain {}", "net": "domain {}",  # exact domain match, not name servers
    "de": "-T dn,ace {}",  # DENIC: the domain record, ASCII names
    "jp": "{}/e",  # JPRS: English rather than Japanese output
}  # fmt: skip

#: The largest answer read; real records are a few kilobytes.
MAX_ANSWER_BYTES = 1_000_000

IANA_WHOIS = "whois.iana.org"


def split_host_port(value: str, default_port: int = 43) -> tuple[str, int]:
    """``host[:port]`` (or ``whois://host``) as (host, port)."""
    text = value.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    text = text.split("/", 1)[0]
    if text.startswith("["):  # [v6]:port
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else default_port
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def query_line(domain: str, suffix: str) -> str:
    """The query line for ``domain`` under ``suffix``, per the registry's own syntax."""
    return QUERY_FORMATS.get(suffix, "{}").format(domain)


def decode(raw: bytes) -> str:
    """The text of a WHOIS answer: UTF-8 when it is, else the Japanese or Latin-1 reading."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    for encoding in ("iso-2022-jp", "euc-jp", "shift_jis"):
        if b"\x1b$B" in raw[:4000] and encoding == "iso-2022-jp":
            with contextlib.suppress(UnicodeDecodeError):
                return raw.decode(encoding)
    return raw.decode("latin-1")


class WhoisFailure(Exception):
    """A WHOIS exchange that failed before any text: ``code`` is timeout or unreachable."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


async def whois_query(host: str, port: int, query: str, *, timeout_s: float) -> bytes:
    """Send one query line to ``host:port`` and read the answer to EOF, within ``timeout_s``."""
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(query.encode("utf-8") + b"\r\n")
            await writer.drain()
            chunks: list[bytes] = []
            size = 0
            while size < MAX_ANSWER_BYTES:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
    except TimeoutError:
        raise WhoisFailure(
            "timeout", f"no complete answer from {host}:{port} in {timeout_s:g} s"
        ) from None
    except OSError as exc:
        raise WhoisFailure("unreachable", f"{host}:{port}: {exc.strerror or exc}") from None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


_WORKER = Path(__file__).with_name("_whois_parse.py")
#: The longest text our own rules read on the event loop (real records: a few kB).
INLINE_MAX_CHARS = 32_000


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def close(self, *, kill: bool = False) -> None:
        proc = self.proc
        if proc.returncode is None:
            if kill:
                proc.kill()
            elif proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 2.0)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if proc.stdout is not None:
            with contextlib.suppress(Exception):
                await proc.stdout.read()


class WorkerOverran(Exception):
    """A worker call ran past the pool's time bound; the worker was killed."""


class WorkerFailed(Exception):
    """A worker died, would not start, or answered nonsense."""


class ParsePool:
    """Parses WHOIS texts in worker processes, at most ``size`` at once.

    A call that overruns ``timeout_s`` has its worker killed (and replaced on next use), so
    a pathological text never holds a worker for good; :meth:`parse` reports it as
    ``unparseable``. The bound starts once the worker is up (``startup_timeout_s``), so a
    slow interpreter start never passes for a slow parse.
    """

    def __init__(
        self, size: int = 2, *, timeout_s: float = 10.0, startup_timeout_s: float = 30.0
    ) -> None:
        self.size = max(1, size)
        self.timeout_s = timeout_s
        self.startup_timeout_s = startup_timeout_s
        self._idle: list[_Worker] = []
        self._all: set[_Worker] = set()
        self._slots = asyncio.Semaphore(self.size)
        #: Workers killed for overrunning, since the pool started.
        self.killed = 0

    async def _spawn(self) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-I", str(_WORKER),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, limit=4 * 1024 * 1024,
        )  # fmt: skip
        worker = _Worker(proc)
        self._all.add(worker)
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(self.startup_timeout_s):
                ready = await proc.stdout.readline()
            if not json.loads(ready or b"{}").get("ready"):
                raise WorkerFailed("the parse worker did not start")
        except (TimeoutError, ValueError, OSError, WorkerFailed) as exc:
            await self._discard(worker)
            raise WorkerFailed(f"the parse worker did not start: {exc!r}") from None
        except BaseException:
            await self._discard(worker)
            raise
        return worker

    async def call(self, function: str, *args: Any) -> Any:
        """``function(*args)`` in a worker, within ``timeout_s``: a function of
        ``_whois_parse`` by name, or any importable ``module:function``; args and result
        are JSON. Raises WorkerOverran (the worker is killed) or WorkerFailed."""
        async with self._slots:
            worker = self._idle.pop() if self._idle else await self._spawn()
            request = json.dumps({"call": function, "args": list(args)}).encode() + b"\n"
            try:
                assert worker.proc.stdin is not None and worker.proc.stdout is not None
                worker.proc.stdin.write(request)
                async with asyncio.timeout(self.timeout_s):
                    await worker.proc.stdin.drain()
                    line = await worker.proc.stdout.readline()
                if not line:
                    raise WorkerFailed("the parse worker died")
                answer = json.loads(line)
            except TimeoutError:
                self.killed += 1
                await self._discard(worker)
                raise WorkerOverran(
                    f"{function} overran {self.timeout_s:g} s and was stopped"
                ) from None
            except (OSError, ValueError) as exc:
                await self._discard(worker)
                raise WorkerFailed(f"the parse worker failed: {exc!r}") from None
            except BaseException:
                await self._discard(worker)
                raise
            self._idle.append(worker)
            if not isinstance(answer, dict) or "ok" not in answer:
                detail = answer.get("error") if isinstance(answer, dict) else None
                raise WorkerFailed(str(detail or f"unexpected answer {line[:80]!r}"))
            return answer["ok"]

    async def parse(self, domain: str, text: str) -> dict[str, Any]:
        """The parse of ``text`` (see ``_whois_parse.parse_whois``), bounded in time: an
        overrun or a failed worker comes back as outcome ``unparseable``.

        Our own line rules (linear, a fraction of a millisecond on a record) run here first;
        when they find the expiry, the answer is the one the worker would give, since
        python-whois runs only when they do not. Only the rest crosses to a worker, which
        spares most lookups two process switches.
        """
        if len(text) <= INLINE_MAX_CHARS:
            quick = parse_whois(domain, text, python_whois=False)
            if quick.get("outcome") == "ok":
                return quick
        try:
            answer = await self.call("parse_whois", domain, text, self.timeout_s / 2)
        except WorkerOverran:
            detail = f"parsing overran {self.timeout_s:g} s and was stopped"
            return {"outcome": "unparseable", "detail": detail}
        except WorkerFailed as exc:
            return {"outcome": "unparseable", "detail": str(exc)}
        if not isinstance(answer, dict):
            return {"outcome": "unparseable", "detail": "the parser gave no record"}
        return answer

    async def _discard(self, worker: _Worker) -> None:
        self._all.discard(worker)
        await worker.close(kill=True)

    async def aclose(self) -> None:
        """Stop every worker."""
        workers, self._all, self._idle = list(self._all), set(), []
        await asyncio.gather(*(w.close() for w in workers))

    async def __aenter__(self) -> ParsePool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
