"""Reads one WHOIS text: expiry, registrar, status and nameservers, or why there are none.

This module runs inside a separate worker process (see ``_whois.ParsePool``), because
python-whois's regular expressions can run for minutes on some registry texts and a thread
cannot be stopped. It therefore imports nothing from Swanwatch: only the standard library,
python-whois and dateutil. Run as a script it serves one JSON request per line on stdin.
"""

from __future__ import annotations

import json
import re
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

#: The longest text handed to python-whois; real records are a few kilobytes.
MAX_TEXT_CHARS = 200_000

# RFC 5731 status codes (and RFC 3915's grace periods), keyed by their letters in lower case.
EPP_STATUSES = [
    "ok", "inactive", "clientHold", "serverHold", "clientDeleteProhibited",
    "serverDeleteProhibited", "clientRenewProhibited", "serverRenewProhibited",
    "clientTransferProhibited", "serverTransferProhibited", "clientUpdateProhibited",
    "serverUpdateProhibited", "pendingCreate", "pendingDelete", "pendingRenew",
    "pendingRestore", "pendingTransfer", "pendingUpdate", "addPeriod", "autoRenewPeriod",
    "renewPeriod", "transferPeriod", "redemptionPeriod",
]  # fmt: skip
_EPP_BY_LETTERS = {s.lower(): s for s in EPP_STATUSES}
_EPP_BY_LETTERS["active"] = "ok"  # RFC 8056: "active" is EPP "ok"
# Registry words for critical states that are not EPP codes, in the EPP code they amount to.
_CRITICAL_WORDS = [
    (re.compile(r"redemption|quarantine|to be deleted|restorable|grace", re.I), "redemptionPeriod"),
    (re.compile(r"pending[\s_-]*delete|deleted|deactivated|to be released", re.I), "pendingDelete"),
    (re.compile(r"pending[\s_-]*restore", re.I), "pendingRestore"),
    (re.compile(r"client[\s_-]*hold", re.I), "clientHold"),
    (re.compile(r"(?:^|[^a-z])(?:hold|held)(?:[^a-z]|$)|suspend|server[\s_-]*hold|withdrawn", re.I),
     "serverHold"),
]  # fmt: skip

NOT_FOUND = re.compile(
    r"no match|not found|no data found|no entries found|no matching (?:record|object)"
    r"|does not exist|not been registered|is not registered|domain is not registered"
    r"|\bis free\b|available for registration|no object found|no information available"
    r"|nincs tal[aá]lat|\bno found\b|^\s*status:\s*(?:free|available)\s*$|not known in"
    r"|nothing found|query_status:\s*220|returned 0 objects|does not have\s+any data"
    r"|no such domain|not registered\.|domain name not known|^\s*free\s*$"
    r"|not available for (?:second level )?registration",
    re.I | re.M,
)
RATE_LIMITED = re.compile(
    r"exceeded|too many (?:requests|queries|connections|lookups)|try again (?:later|in)"
    r"|temporarily (?:blocked|denied|unavailable)|access denied"
    r"|you (?:have been|are) (?:rate.?limited|blocked|throttled)",
    re.I,
)
_RECORDISH = re.compile(
    r"^\s*\[?\s*(?:domain\s*|record\s*)?(?:status|registrar|registrant|holder|nserver|name\s*servers?"
    r"|created?|creation|registered|changed|last[ -]modified|dnssec|state|owner|admin"
    r"|organi[sz]ation|source|tech|registrar?\s*name)\b",
    re.I | re.M,
)
_KEY_VALUE = re.compile(r"^\s*\[?([^\n:\]]{2,60}?)\s*(?:\]|:|\.{3,})\s*(.*)$", re.M)
# "Domain-status       DOM_HELD": a key, two or more spaces, a value (.sk, .il and others)
_KEY_SPACED = re.compile(r"^\s*([A-Za-z][\w\- ]{1,30}?)\s{2,}(\S.*)$")
_REFERRAL = re.compile(
    r"^\s*(?:registrar\s+whois\s+server|whois\s+server|referralserver|refer)\s*:\s*(\S+)",
    re.I | re.M,
)

_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_ZONE = (
    r"(?:\s*\(?\s*(?P<zone>(?:UTC|GMT)\s*[+-]\d{1,2}(?::?\d{2})?|Z|UTC|GMT|[+-]\d{2}:?\d{2}"
    r"|[A-Z]{3,4}\b)\s*\)?)?"
)
_TIME = r"(?:[T\s]+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:[.,]\d+)?)?)?"
_DATE_SHAPES = [
    re.compile(r"(?P<y>\d{4})[-./](?P<m>\d{1,2})[-./](?P<d>\d{1,2})\.?" + _TIME + _ZONE, re.I),
    re.compile(r"(?P<d>\d{1,2})[-./](?P<m>\d{1,2})[-./](?P<y>\d{4})" + _TIME + _ZONE, re.I),
    re.compile(r"(?P<d>\d{1,2})[-\s/.]?(?P<mon>[a-z]{3})[a-z]*\.?[-\s/.,]+(?P<y>\d{4})"
               + _TIME + _ZONE, re.I),
    re.compile(r"(?P<mon>[a-z]{3})[a-z]*\.?\s+(?P<d>\d{1,2}),?\s+" + r"(?:(?P<H>\d{1,2}):"
               r"(?P<M>\d{2}):(?P<S>\d{2})\s+(?:(?P<zone>[A-Z]{3,4})\s+)?)?(?P<y>\d{4})", re.I),
    re.compile(r"(?P<y>\d{4})\.\s*(?P<m>\d{1,2})\.\s*(?P<d>\d{1,2})\.?"),
    re.compile(
        r"(?P<y>\d{4})[-./\s](?P<mon>[a-z]{3})[a-z]*\.?[-./\s](?P<d>\d{1,2})" + _TIME + _ZONE, re.I
    ),
    re.compile(r"\b(?P<y>(?:19|20)\d{2})(?P<m>[01]\d)(?P<d>[0-3]\d)\b"),
]  # fmt: skip
_NAMED_ZONES = {"UTC": 0, "GMT": 0, "Z": 0, "CET": 1, "CEST": 2, "EST": -5, "EDT": -4,
                "PST": -8, "PDT": -7, "JST": 9, "KST": 9, "CST": 8, "MSK": 3}  # fmt: skip


def slash_order(text: str) -> bool:
    """Whether ``text`` writes slashed dates month first (12/18/2001), judged by its dates."""
    month_first = day_first = 0
    for a, b in re.findall(r"\b(\d{1,2})/(\d{1,2})/\d{4}\b", text):
        if int(a) > 12 >= int(b):
            day_first += 1
        elif int(b) > 12 >= int(a):
            month_first += 1
    return month_first > day_first


def parse_date(value: str, *, month_first: bool = False) -> tuple[datetime, bool] | None:
    """An aware UTC datetime from a registry's date text, and whether it named its zone.

    A text without a zone is read as UTC (registries print local time, so it is right to
    within a day); None when no valid date is in ``value``.
    """
    for shape in _DATE_SHAPES:
        m = shape.search(value)
        if not m:
            continue
        g = m.groupdict()
        if month_first and "/" in m.group(0) and shape is _DATE_SHAPES[1]:
            g["d"], g["m"] = g["m"], g["d"]
        try:
            month = _MONTHS[g["mon"][:3].lower()] if g.get("mon") else int(g["m"])
            moment = datetime(
                int(g["y"]), month, int(g["d"]),
                int(g.get("H") or 0), int(g.get("M") or 0), int(g.get("S") or 0), tzinfo=UTC,
            )  # fmt: skip
        except (KeyError, ValueError):
            return None  # a date-shaped text that is no date (31-02-2026): not another guess
        zone = re.sub(r"^(?:UTC|GMT)\s*(?=[+-])", "", (g.get("zone") or "").strip("() ").upper())
        if re.fullmatch(r"[+-]\d{1,2}", zone):
            zone = f"{zone[0]}{int(zone[1:]):02d}00"
        if not zone:
            return moment, False
        if zone in _NAMED_ZONES:
            offset = timedelta(hours=_NAMED_ZONES[zone])
        elif re.fullmatch(r"[+-]\d{2}:?\d{2}", zone):
            sign = -1 if zone[0] == "-" else 1
            digits = zone[1:].replace(":", "")
            offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        else:
            return moment, False
        return moment.replace(tzinfo=timezone(offset)).astimezone(UTC), True
    return None


def _letters(text: str) -> str:
    return re.sub(r"[^a-z]", "", text.lower())


def normalise_status(raw: str) -> str | None:
    """An EPP status code (RFC 5731 camelCase) for a registry's status text, if it is one."""
    text = raw.strip()
    if not text:
        return None
    first = re.split(r"\s+(?:https?://|\()", text, maxsplit=1)[0].strip()
    letters = _letters(first)
    if letters in _EPP_BY_LETTERS:
        return str(_EPP_BY_LETTERS[letters])
    for pattern, code in _CRITICAL_WORDS:
        if pattern.search(text):
            return code
    words = re.findall(r"[A-Za-z]+", first)
    if 1 <= len(words) <= 3 and len(first) <= 40:
        head, *rest = (w.lower() for w in words)
        return str(head + "".join(w.title() for w in rest))
    return None


# Expiry keys in the registries' languages, in lower case with spaces and punctuation out.
_EXPIRY_WORDS = (
    "expir", "paidtill", "paiduntil", "validuntil", "validity", "renewaldate", "billeduntil",
    "vencimiento", "expira", "scadenza", "ablauf", "vervaldatum", "udløb", "utløp", "lejár",
    "bitiş", "voimassa", "有効期限", "到期", "過期", "만료", "срокдействия", "оплаченодо",
)  # fmt: skip


def _expiry_key(key: str) -> int:
    """How good a key is as the expiry field: 0 not at all, higher better."""
    k = re.sub(r"[\W_\d]", "", key.lower())
    if not any(word in k for word in _EXPIRY_WORDS):
        return 0
    if "registrar" in k or "password" in k or "update" in k:
        return 1
    return 3 if "registry" in k or k.startswith(("expir", "domainexpir")) else 2


_REGISTRAR_KEYS = frozenset(
    {"registrar", "registrarname", "sponsoringregistrar", "registrarorganization"}
)


def own_fields(text: str) -> dict[str, Any]:
    """Expiry, registrar, statuses and nameservers read with this module's own line rules."""
    best: tuple[int, datetime, bool] | None = None
    expiry_field_seen = False
    registrar: str | None = None
    statuses: list[str] = []
    nameservers: list[str] = []
    pending_key = ""
    month_first = slash_order(text)
    for line in text.splitlines():
        stripped = line.strip().lstrip("%#").strip()
        m = _KEY_VALUE.match(stripped) or _KEY_SPACED.match(stripped)
        key, value = (m.group(1), m.group(2).strip()) if m else ("", "")
        if m and not value:
            pending_key = key  # "Registrar:" with the value on the next line (.uk, .be)
            continue
        if not m and pending_key and stripped:
            key, value, pending_key = pending_key, stripped, ""
        elif m:
            pending_key = ""
        if not key:
            if "expir" in stripped.lower() and best is None:  # "Record expires on 2021-02-05"
                expiry_field_seen = True
                parsed = parse_date(stripped, month_first=month_first)
                if parsed:
                    best = (1, parsed[0], parsed[1])
            continue
        score = _expiry_key(key)
        if score and any(ch.isdigit() for ch in value + key):
            expiry_field_seen = True
            parsed = parse_date(value, month_first=month_first) or parse_date(
                stripped, month_first=month_first
            )
            if parsed and (best is None or score > best[0]):
                best = (score, parsed[0], parsed[1])
        k = _letters(key)
        if registrar is None and value and k in _REGISTRAR_KEYS:
            registrar = value
        if k in ("status", "domainstatus", "state", "registrationstatus", "eppstatus"):
            for part in re.split(r",\s*", value):
                code = normalise_status(part)
                if code and code not in statuses:
                    statuses.append(code)
        if k in ("nameserver", "nameservers", "nserver", "nsserver", "dnsserver", "hostname"):
            host = value.split()[0].rstrip(".").lower() if value.split() else ""
            if "." in host and host not in nameservers:
                nameservers.append(host)
    return {
        "expires_at": best[1] if best else None,
        "tz_known": best[2] if best else False,
        "expiry_field_seen": expiry_field_seen,
        "registrar": registrar,
        "status": statuses,
        "nameservers": nameservers,
    }


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


class _Overran(Exception):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Overran


def _python_whois(domain: str, text: str, soft_timeout_s: float = 0.0) -> dict[str, Any] | None:
    """python-whois's reading of ``text``; {"not_found": True} when it says so; None when it
    fails or overruns ``soft_timeout_s`` (its regular expressions can run for minutes)."""
    from whois.exceptions import WhoisDomainNotFoundError
    from whois.parser import WhoisEntry

    timed = soft_timeout_s > 0 and threading.current_thread() is threading.main_thread()
    if timed:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, soft_timeout_s)
    try:
        entry = WhoisEntry.load(domain, text)
    except WhoisDomainNotFoundError:
        return {"not_found": True}
    except _Overran:
        return {"overran": True}
    except Exception:  # python-whois raises bare errors on odd texts; we fall back to our own
        return None
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
    return dict(entry)


def _aware(value: Any) -> tuple[datetime, bool] | None:
    value = _first(value)
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), False
    return value.astimezone(UTC), True


def parse_whois(
    domain: str, text: str, soft_timeout_s: float = 0.0, *, python_whois: bool = True
) -> dict[str, Any]:
    """Read ``text`` (the WHOIS answer for ``domain``) into a JSON-ready dict.

    Our own line rules read the expiry first; python-whois fills in what they miss. With
    ``soft_timeout_s`` (main thread only) a python-whois parse that overruns is abandoned.

    Keys: outcome ("ok", "not_found", "rate_limited", "no_expiry", "unparseable"), detail,
    expires_at (ISO 8601 UTC or None), tz_known, registrar, status, nameservers, referral.
    """
    text = text[:MAX_TEXT_CHARS]
    result: dict[str, Any] = {
        "outcome": "unparseable", "detail": "", "expires_at": None, "tz_known": False,
        "registrar": None, "status": [], "nameservers": [], "referral": None,
    }  # fmt: skip
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text[:20_000])
    if not text.strip():
        result["detail"] = "empty answer"
        return result
    if printable < 0.9 * min(len(text), 20_000):
        result["detail"] = "the answer is not text"
        return result
    own = own_fields(text)
    # python-whois reads what our rules miss; not run when they found the date, because its
    # expressions can run for minutes on some registries' texts (.jp).
    pw: dict[str, Any] = {}
    if python_whois and own["expires_at"] is None and len(text) < MAX_TEXT_CHARS:
        pw = _python_whois(domain, text, soft_timeout_s) or {}
    expiry = (own["expires_at"], own["tz_known"]) if own["expires_at"] is not None else None
    if expiry is None and not pw.get("not_found"):
        expiry = _aware(pw.get("expiration_date"))
    registrar = _first(pw.get("registrar")) or own["registrar"]
    statuses = _statuses(own["status"], pw.get("status"))
    referral = _REFERRAL.search(text)
    result.update(
        registrar=str(registrar).strip() if registrar else None,
        status=statuses,
        nameservers=_nameservers(own["nameservers"], pw.get("name_servers")),
        referral=referral.group(1).strip() if referral else None,
    )
    if expiry is not None:
        result.update(outcome="ok", expires_at=expiry[0].isoformat(), tz_known=expiry[1])
        return result
    outcome, detail = _without_expiry(domain, text, own, pw, statuses)
    result.update(outcome=outcome, detail=detail)
    return result


def _statuses(own: list[str], raw_status: Any) -> list[str]:
    """Our rules' EPP statuses, then python-whois's that they missed."""
    statuses = list(own)
    raw_status = raw_status or []
    for raw in raw_status if isinstance(raw_status, list) else [raw_status]:
        code = normalise_status(str(raw))
        if code and code not in statuses:
            statuses.append(code)
    return statuses


def _nameservers(own: list[str], raw_ns: Any) -> list[str]:
    """Our rules' nameservers, then python-whois's that they missed (lower case, no dot)."""
    nameservers = list(own)
    raw_ns = raw_ns or []
    for ns in raw_ns if isinstance(raw_ns, list) else [raw_ns]:
        host = str(ns).split()[0].rstrip(".").lower() if str(ns).split() else ""
        if "." in host and host not in nameservers:
            nameservers.append(host)
    return nameservers


def _without_expiry(
    domain: str, text: str, own: dict[str, Any], pw: dict[str, Any], statuses: list[str]
) -> tuple[str, str]:
    """The outcome and detail of an answer with no readable expiry date."""
    limited = _rate_limit_line(text)
    if limited is not None:
        return "rate_limited", limited
    if pw.get("not_found") or NOT_FOUND.search(text):
        found = NOT_FOUND.search(text)
        return "not_found", _line_of(NOT_FOUND, text) if found else "no such domain"
    if pw.get("overran"):
        return "unparseable", "the parser overran its time bound"
    if own["expiry_field_seen"]:
        return "unparseable", "an expiry field with no readable date"
    if _looks_like_record(domain, text, statuses):
        return "no_expiry", "the registry publishes no expiry date"
    return "unparseable", "no registration record in the answer"


def _rate_limit_line(text: str) -> str | None:
    """A short line that says the server refused for too many queries (not a disclaimer)."""
    for line in text.splitlines()[:80]:
        stripped = line.strip().strip("%#>* ").strip()
        if (
            len(stripped) <= 120
            and not stripped.lower().startswith("if ")
            and (RATE_LIMITED.search(stripped))
        ):
            return stripped
    return None


def _looks_like_record(domain: str, text: str, statuses: list[str]) -> bool:
    name = domain.lower().split(".")[0]
    return name in text.lower() and (bool(statuses) or bool(_RECORDISH.search(text)))


def _line_of(pattern: re.Pattern[str], text: str) -> str:
    m = pattern.search(text)
    if not m:
        return ""
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    line = text[start : end if end >= 0 else None].strip().strip("%#>* ").strip()
    return line[:160]


def _target(name: str) -> Any:
    """The function a request names: one of this module's, or ``module:function``."""
    if ":" not in name:
        return globals()[name]
    import importlib

    module, _, attr = name.partition(":")
    return getattr(importlib.import_module(module), attr)


def serve() -> None:
    """The worker loop: after a ready line, one JSON request per line in ({"call": function
    name, "args": [...]}), one JSON answer per line out ({"ok": result} or {"error": why})."""
    import whois.parser  # noqa: F401 (imported now, so the first parse's time bound is its own)

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for raw in sys.stdin.buffer:
        request = json.loads(raw)
        try:
            answer: dict[str, Any] = {"ok": _target(request["call"])(*request.get("args", []))}
        except Exception as exc:  # report, never die: the pool would only restart us
            answer = {"error": f"{request.get('call')} failed: {exc!r}"[:200]}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    serve()
