"""Signals customer domains whose registration is about to lapse, or is already in trouble."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from swanwatch import Account, Signal, WatchContext, Watcher, WatcherOptions, parse_instant

from . import _rdap  # noqa: TID251 (a sibling private helper)
from ._grading import (  # noqa: TID251
    DEFAULT_THRESHOLDS_DAYS,
    days_left,
    is_past,
    strength_for_days,
)
from ._lookup import DomainLookup, DomainRecord, LookupSettings  # noqa: TID251
from ._registrable import (  # noqa: TID251
    host_of,
    registrable_domain,
    to_ascii,
    to_unicode,
)

#: EPP statuses that mean the domain is, or is about to be, out of service.
CRITICAL_STATUSES = frozenset(
    {"redemptionPeriod", "pendingDelete", "pendingRestore", "clientHold", "serverHold"}
)
_BOOTSTRAP_KEY = "rdap_bootstrap"


class DomainExpiryWatcher(Watcher):
    """A customer domain expiring within the widest threshold, or in a critical EPP state.

    Strength rises one step per threshold passed (60/30/14/7/1 days: 0.2 ... 1.0);
    redemptionPeriod, pendingDelete, pendingRestore, clientHold, serverHold or a date already
    past are 1.0 whatever the date. Answers are cached in the watcher's state; a failed
    lookup keeps the last good answer; repeated failures become a weak "unknown" signal.
    """

    name = "domain_expiry"

    class Options(WatcherOptions):
        thresholds_days: tuple[int, ...] = Field(
            DEFAULT_THRESHOLDS_DAYS, min_length=1,
            description="Days-left thresholds; each one passed raises the strength a step.",
        )  # fmt: skip
        source: Literal["auto", "rdap", "whois"] = Field(
            "auto", description="auto: RDAP where the TLD has it, WHOIS otherwise or on failure."
        )
        rdap_servers: dict[str, str] = Field(
            default_factory=dict,
            description='RDAP base URL per TLD or public suffix ("*" for all); over the bootstrap.',
        )
        rdap_bootstrap_url: str | None = Field(
            "https://data.iana.org/rdap/dns.json",
            description="Where to refresh the IANA RDAP DNS bootstrap from; null: shipped copy.",
        )
        rdap_bootstrap_refresh_h: float = Field(
            24.0, ge=1.0, description="Hours between bootstrap refreshes (a day at least)."
        )
        whois_servers: dict[str, str] = Field(
            default_factory=dict,
            description='WHOIS host[:port] per TLD or public suffix ("*" for all).',
        )
        whois_hosts: dict[str, str] = Field(
            default_factory=dict,
            description="WHOIS host name -> host[:port] to dial instead (mirrors, tests).",
        )
        follow_referrals: bool = Field(
            True, description="Follow thin registries' referral to the registrar's WHOIS."
        )
        rdap_timeout_s: float = Field(10.0, gt=0, description="Timeout of one RDAP request.")
        whois_timeout_s: float = Field(10.0, gt=0, description="Timeout of one WHOIS exchange.")
        parse_timeout_s: float = Field(
            10.0, gt=0, description="Longest a WHOIS text may take to parse before it is stopped."
        )
        parse_workers: int = Field(2, ge=1, le=64, description="WHOIS parser processes.")
        concurrency: int = Field(32, ge=1, description="Lookups in flight at once, in all.")
        per_server_concurrency: int = Field(
            4, ge=1, description="Lookups in flight at once against one server."
        )
        per_server_rate_per_s: float = Field(
            5.0, gt=0, description="Most requests started per second against one server."
        )
        max_retry_wait_s: float = Field(
            10.0, ge=0, description="Longest Retry-After or back-off waited out within a run."
        )
        rate_limit_backoff_s: float = Field(
            60.0, gt=0, description="First back-off after a WHOIS rate-limit answer (doubles)."
        )
        cache_min_ttl_h: float = Field(6.0, gt=0, description="Shortest time an answer is kept.")
        cache_max_ttl_h: float = Field(168.0, gt=0, description="Longest time an answer is kept.")
        failure_retry_h: float = Field(
            1.0, gt=0, description="Hours before a failed lookup is tried again."
        )
        unknown_after_failures: int = Field(
            3, ge=1, description="Failed lookups in a row that make a weak 'unknown' signal."
        )
        unknown_strength: float = Field(
            0.1, ge=0, le=1, description="Strength of the 'unknown' signal."
        )

    options: Options

    # -- the public lookup, for `swanwatch domain lookup` ---------------------------------

    def settings(self) -> LookupSettings:
        """The lookup settings these options describe."""
        o = self.options
        return LookupSettings(
            source=o.source, rdap_servers=o.rdap_servers, whois_servers=o.whois_servers,
            whois_hosts=o.whois_hosts, follow_referrals=o.follow_referrals,
            rdap_timeout_s=o.rdap_timeout_s, whois_timeout_s=o.whois_timeout_s,
            parse_timeout_s=o.parse_timeout_s, parse_workers=o.parse_workers,
            concurrency=o.concurrency, per_server_concurrency=o.per_server_concurrency,
            per_server_rate_per_s=o.per_server_rate_per_s, max_retry_wait_s=o.max_retry_wait_s,
            rate_limit_backoff_s=o.rate_limit_backoff_s,
        )  # fmt: skip

    async def lookup(
        self, domain: str, *, source: Literal["auto", "rdap", "whois"] | None = None
    ) -> DomainRecord:
        """Look ``domain`` up now, uncached, as the watcher would: a :class:`DomainRecord`
        whose ``as_json()`` is what ``swanwatch domain lookup --json`` prints."""
        try:
            name = registrable_domain(domain)
        except ValueError:
            name = domain.strip().rstrip(".").lower()  # a TLD's own record, as asked
            try:
                name = name.encode("idna").decode("ascii")
            except UnicodeError:
                return DomainRecord(
                    domain=domain, source=source or "rdap",
                    error=f"unsupported_tld: {domain!r} is no domain name",
                )  # fmt: skip
        bootstrap = _rdap.bootstrap_map(_rdap.shipped_bootstrap())
        async with DomainLookup(self.settings(), bootstrap) as lk:
            record = await lk.lookup(name, source)
            if record.code == "not_found":
                # Second-level registries the PSL does not list (CentralNic's hu.com, uk.com)
                # hold names one label below what the PSL calls registrable: ask for the name.
                try:
                    asked = to_ascii(host_of(domain))
                except ValueError:
                    return record
                if asked != name and asked.endswith("." + name):
                    again = await lk.lookup(asked, source)
                    if again.code != "not_found":
                        return again
            return record

    # -- the run --------------------------------------------------------------------------

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        """Look up each account domain that is due, then grade every domain's latest answer."""
        if ctx.replay or not ctx.accounts:
            return
        now = ctx.clock.now()
        owners: dict[str, list[Account]] = {}
        for account in ctx.accounts:
            for raw in account.domains:
                try:
                    domain = registrable_domain(raw)
                except ValueError as exc:
                    ctx.report_unknown(account, f"domain {raw!r}: {exc}", key=raw)
                    continue
                owners.setdefault(domain, [])
                if account not in owners[domain]:
                    owners[domain].append(account)
        due = [d for d in owners if self._due(ctx, d, now)]
        if due:
            bootstrap = await self._bootstrap(ctx, now)
            async with DomainLookup(self.settings(), bootstrap) as lk:
                records = await asyncio.gather(*(lk.lookup(d) for d in due))
            for record in records:
                self._remember(ctx, record, now)
        for domain, accounts in owners.items():
            entry = ctx.state.get(f"domain:{domain}")
            if not isinstance(entry, dict):
                continue
            for account in accounts:
                signal = self._grade(ctx, account, domain, entry, now)
                if signal is not None:
                    yield signal

    def _due(self, ctx: WatchContext, domain: str, now: datetime) -> bool:
        entry = ctx.state.get(f"domain:{domain}")
        if not isinstance(entry, dict) or not entry.get("next_at"):
            return True
        return now >= parse_instant(str(entry["next_at"]))

    def _ttl(self, record: DomainRecord, now: datetime) -> timedelta:
        o = self.options
        if record.expires_at is None:
            hours = max(o.failure_retry_h, (record.retry_after_s or 0) / 3600)
            if record.code == "no_expiry":
                hours = o.cache_max_ttl_h  # the registry will not publish one tomorrow either
            return timedelta(hours=hours)
        left_h = (record.expires_at - now).total_seconds() / 3600
        # a tenth of the time left: 300 days -> a week, 30 days -> 3 days, 3 days -> 7 hours
        hours = min(o.cache_max_ttl_h, max(o.cache_min_ttl_h, left_h / 10))
        return timedelta(hours=hours)

    def _remember(self, ctx: WatchContext, record: DomainRecord, now: datetime) -> None:
        key = f"domain:{record.domain}"
        old = ctx.state.get(key)
        entry: dict[str, Any] = dict(old) if isinstance(old, dict) else {}
        entry["last"] = record.to_state()
        entry["checked_at"] = now.isoformat()
        entry["next_at"] = (now + self._ttl(record, now)).isoformat()
        good = record.expires_at is not None or record.code == "no_expiry"
        if good:
            entry["good"] = record.to_state()
            entry["good_at"] = now.isoformat()
            entry["failures"] = 0
        else:
            entry["failures"] = int(entry.get("failures", 0)) + 1
        ctx.state.set(key, entry)

    def _grade(
        self, ctx: WatchContext, account: Account, domain: str, entry: Mapping[str, Any],
        now: datetime,
    ) -> Signal | None:  # fmt: skip
        last = DomainRecord.from_state(entry["last"])
        evidence: dict[str, Any] = {"domain": domain, "checked_at": entry.get("checked_at")}
        record = last
        if last.expires_at is None and last.code != "no_expiry":
            good, signal = self._after_failure(ctx, account, domain, entry, evidence, now)
            if good is None:
                return signal
            record = good
        evidence.update(_evidence(record))
        if record.code == "no_expiry":
            ctx.report_unknown(account, f"{domain}: {record.error}", key=domain)
        return self._judge(account, domain, record, evidence, now)

    def _after_failure(
        self, ctx: WatchContext, account: Account, domain: str, entry: Mapping[str, Any],
        evidence: dict[str, Any], now: datetime,
    ) -> tuple[DomainRecord | None, Signal | None]:  # fmt: skip
        """After a failed lookup: the last good answer to grade instead, or no answer and
        what to signal (a lapsed domain, or one unknown for too long). Reports the account
        unknown unless the domain is gone."""
        last = DomainRecord.from_state(entry["last"])
        good = DomainRecord.from_state(entry["good"]) if entry.get("good") else None
        shown = to_unicode(domain)
        if last.code == "not_found" and good is not None and good.expires_at is not None:
            # it was registered when last seen: it has lapsed and been deleted
            seen = str(entry.get("good_at", "?"))[:10]
            return None, self._signal(
                account, domain, 1.0, now, {**evidence, **_evidence(last)},
                f"{shown} is no longer registered (it was, as of {seen}).",
            )  # fmt: skip
        age = ""
        if good is not None:
            age = str(entry.get("good_at") or "")
            evidence["stale_since"] = age
            evidence["last_error"] = last.error
        ctx.report_unknown(
            account, f"{domain}: lookup failed ({last.error})"
            + (f"; using the answer of {age[:10]}" if age else ""), key=domain,
        )  # fmt: skip
        if good is not None:
            return good, None
        failures = int(entry.get("failures", 0))
        if failures < self.options.unknown_after_failures:
            return None, None
        return None, self._signal(
            account, domain, self.options.unknown_strength, now,
            {**evidence, **_evidence(last), "failures": failures},
            f"Expiry of {shown} unknown after {failures} failed lookups ({last.code}).",
        )  # fmt: skip

    def _judge(
        self, account: Account, domain: str, record: DomainRecord, evidence: dict[str, Any],
        now: datetime,
    ) -> Signal | None:  # fmt: skip
        """A critical EPP state, an expiry date past or within the thresholds."""
        shown = to_unicode(domain)
        registrar = f" (registrar {record.registrar})" if record.registrar else ""
        critical = sorted(CRITICAL_STATUSES.intersection(record.status))
        stale = f" as of {str(evidence['stale_since'])[:10]}" if "stale_since" in evidence else ""
        if critical:
            return self._signal(
                account, domain, 1.0, now, evidence,
                f"{shown} is in {', '.join(critical)}{registrar}{stale}.",
            )  # fmt: skip
        expires = record.expires_at
        if expires is None:
            return None
        if is_past(expires, now, zone_known=record.tz_known):
            return self._signal(
                account, domain, 1.0, now, evidence,
                f"{shown} expired on {expires.date().isoformat()}{registrar}{stale}.",
            )  # fmt: skip
        left = max(days_left(expires, now), 0)
        strength = strength_for_days(left, self.options.thresholds_days)
        if strength <= 0:
            return None
        evidence["days_left"] = left
        when = _when(left, expires, tz_known=record.tz_known)
        return self._signal(
            account, domain, strength, now, evidence, f"{shown} expires {when}{registrar}{stale}."
        )

    def _signal(
        self, account: Account, domain: str, strength: float, now: datetime,
        evidence: dict[str, Any], summary: str,
    ) -> Signal:  # fmt: skip
        return Signal(
            account_id=account.id, kind=self.name, key=domain, strength=strength,
            observed_at=now, summary=summary, evidence=evidence,
        )  # fmt: skip

    async def _bootstrap(self, ctx: WatchContext, now: datetime) -> dict[str, str]:
        """The RDAP bootstrap: refreshed at most every ``rdap_bootstrap_refresh_h``, the last
        good copy kept in state, the shipped copy when there has never been one."""
        saved = ctx.state.get(_BOOTSTRAP_KEY)
        entry: dict[str, Any] = dict(saved) if isinstance(saved, dict) else {}
        url = self.options.rdap_bootstrap_url
        tried = entry.get("tried_at")
        period = timedelta(hours=self.options.rdap_bootstrap_refresh_h)
        if url and (not tried or now - parse_instant(str(tried)) >= period):
            entry["tried_at"] = now.isoformat()
            try:
                response = await ctx.http.get(url, timeout=self.options.rdap_timeout_s)
                response.raise_for_status()
                entry["map"] = _rdap.bootstrap_map(response.json())
                entry["fetched_at"] = now.isoformat()
                entry.pop("error", None)
            except (ValueError, OSError, _http_errors()) as exc:
                entry["error"] = f"{url}: {exc.__class__.__name__}: {exc}"[:300]
                ctx.log.warning("RDAP bootstrap refresh failed, keeping the last good copy: %s",
                                entry["error"])  # fmt: skip
            ctx.state.set(_BOOTSTRAP_KEY, entry)
        saved_map = entry.get("map")
        if isinstance(saved_map, dict):
            return {str(k): str(v) for k, v in saved_map.items()}
        return _rdap.bootstrap_map(_rdap.shipped_bootstrap())


def _http_errors() -> type[Exception]:
    import httpx

    return httpx.HTTPError


def _when(left: int, expires: datetime, *, tz_known: bool) -> str:
    """Today, in 1 day or in N days; on the day, the date itself when the registry's time
    zone is unknown."""
    if left == 0:
        return "today" if tz_known else (
            f"on {expires.date().isoformat()} (registry time zone unknown)"
        )  # fmt: skip
    return "in 1 day" if left == 1 else f"in {left} days"


def _evidence(record: DomainRecord) -> dict[str, Any]:
    return {
        "expires_at": record.expires_at.isoformat() if record.expires_at else None,
        "registrar": record.registrar,
        "status": list(record.status),
        "nameservers": list(record.nameservers),
        "source": record.source,
        "server": record.server,
        "error": record.error,
    }
