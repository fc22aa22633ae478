"""Signals customer TLS certificates about to expire, not covering their host, or untrusted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from swanwatch import Account, Signal, WatchContext, Watcher, WatcherOptions

from ._grading import (  # noqa: TID251 (a sibling private helper)
    DEFAULT_THRESHOLDS_DAYS,
    days_left,
    is_past,
    strength_for_days,
)
from ._registrable import host_of, registrable_domain, to_ascii  # noqa: TID251
from ._tls import (  # noqa: TID251
    CertInfo,
    Endpoint,
    ProbeFailure,
    leaf_explains,
    parse_endpoint,
    probe,
)

_PREFIX = "endpoint:"


class TlsExpiryWatcher(Watcher):
    """A certificate expiring within the widest threshold, one that does not cover its host,
    or one whose chain is not trusted, at each account endpoint.

    Expiry is graded like domain_expiry (60/30/14/7/1 days: 0.2 ... 1.0; 1.0 once expired).
    A hostname mismatch and an untrusted chain are signals of their own (keys
    ``<host:port> hostname`` and ``<host:port> chain``), strong by default. An endpoint that
    cannot be reached is reported unknown, the last certificate seen is kept, and repeated
    failures become a weak "unknown" signal.
    """

    name = "tls_expiry"

    class Options(WatcherOptions):
        thresholds_days: tuple[int, ...] = Field(
            DEFAULT_THRESHOLDS_DAYS, min_length=1,
            description="Days-left thresholds; each one passed raises the strength a step.",
        )  # fmt: skip
        endpoint_template: str | None = Field(
            "https://{domain}:443/",
            description="Endpoint checked for each account domain: {domain} is its registrable "
            "domain (the host itself when it has none), {host} the host as the account holds "
            "it. Null: only the endpoints listed in `endpoints`.",
        )
        endpoints: dict[str, list[str]] = Field(
            default_factory=dict,
            description="Account id -> endpoints (URL, host or host:port) checked instead of "
            "the template's for that account.",
        )
        ca_bundle_path: str | None = Field(
            None, description="PEM file of trusted CAs (a private CA); null: the system's."
        )
        connect_timeout_s: float = Field(
            10.0, gt=0, description="Longest one connection and TLS handshake may take."
        )
        concurrency: int = Field(16, ge=1, description="Endpoints checked at once, in all.")
        mismatch_strength: float = Field(
            0.9, ge=0, le=1, description="Strength of a certificate not covering its host."
        )
        untrusted_strength: float = Field(
            0.9, ge=0, le=1, description="Strength of a certificate whose chain is not trusted."
        )
        unknown_after_failures: int = Field(
            3, ge=1, description="Failed checks in a row that make a weak 'unknown' signal."
        )
        unknown_strength: float = Field(
            0.1, ge=0, le=1, description="Strength of the 'unknown' signal."
        )

        @field_validator("endpoint_template")
        @classmethod
        def _known_fields(cls, value: str | None) -> str | None:
            if value is not None:
                try:
                    value.format(domain="a.example", host="www.a.example")
                except (KeyError, IndexError, ValueError) as exc:
                    raise ValueError(
                        f"the template may use {{domain}} and {{host}} only ({exc!r})"
                    ) from None
            return value

    options: Options

    def endpoints_of(self, account: Account) -> Iterator[tuple[str, Endpoint | str]]:
        """The account's endpoints as (what was configured, Endpoint or why it is none)."""
        listed = self.options.endpoints.get(account.id)
        raws: list[str] = []
        if listed is not None:
            raws = list(listed)
        elif self.options.endpoint_template is not None:
            for value in account.domains:
                try:
                    host = to_ascii(host_of(value))
                except ValueError as exc:
                    yield value, f"domain {value!r}: {exc}"
                    continue
                try:
                    domain = registrable_domain(host)
                except ValueError:
                    domain = host  # localhost, an IP address: the host is the endpoint
                raws.append(self.options.endpoint_template.format(domain=domain, host=host))
        for raw in raws:
            try:
                yield raw, parse_endpoint(raw)
            except ValueError as exc:
                yield raw, f"endpoint {raw!r}: {exc}"

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        """Check every account endpoint's certificate once, then grade each for its accounts."""
        if ctx.replay or not ctx.accounts:
            return
        now = ctx.clock.now()
        owners: dict[Endpoint, list[Account]] = {}
        for account in ctx.accounts:
            for raw, found in self.endpoints_of(account):
                if isinstance(found, str):
                    ctx.report_unknown(account, found, key=raw)
                    continue
                owners.setdefault(found, [])
                if account not in owners[found]:
                    owners[found].append(account)
        slots = asyncio.Semaphore(self.options.concurrency)

        async def check(endpoint: Endpoint) -> CertInfo | ProbeFailure:
            async with slots:
                try:
                    return await probe(
                        endpoint, ca_bundle_path=self.options.ca_bundle_path,
                        timeout_s=self.options.connect_timeout_s,
                    )  # fmt: skip
                except ProbeFailure as exc:
                    return exc

        endpoints = list(owners)
        results = await asyncio.gather(*(check(e) for e in endpoints))
        for endpoint, result in zip(endpoints, results, strict=True):
            entry = self._remember(ctx, endpoint, result, now)
            for account in owners[endpoint]:
                for signal in self._grade(ctx, account, endpoint, result, entry, now):
                    yield signal
        current = {_PREFIX + e.key for e in endpoints}
        known = ctx.state.keys()  # StateMap is no mapping: it lists its keys
        for key in known:
            if key.startswith(_PREFIX) and key not in current:
                ctx.state.delete(key)  # an endpoint no account has any more

    def _remember(
        self, ctx: WatchContext, endpoint: Endpoint, result: CertInfo | ProbeFailure,
        now: datetime,
    ) -> dict[str, Any]:  # fmt: skip
        key = _PREFIX + endpoint.key
        old = ctx.state.get(key)
        entry: dict[str, Any] = dict(old) if isinstance(old, dict) else {}
        entry["checked_at"] = now.isoformat()
        if isinstance(result, ProbeFailure):
            entry["failures"] = int(entry.get("failures", 0)) + 1
            entry["error"] = str(result)
        else:
            entry.update(good=result.to_state(), good_at=now.isoformat(), failures=0, error=None)
        ctx.state.set(key, entry)
        return entry

    def _grade(
        self, ctx: WatchContext, account: Account, endpoint: Endpoint,
        result: CertInfo | ProbeFailure, entry: dict[str, Any], now: datetime,
    ) -> list[Signal]:  # fmt: skip
        shown = endpoint.shown
        evidence: dict[str, Any] = {"endpoint": endpoint.key, "checked_at": now.isoformat()}
        stale = ""
        if isinstance(result, ProbeFailure):
            known = self._last_good(ctx, account, endpoint, result, entry, now, evidence)
            if not isinstance(known, CertInfo):
                return known
            info = known
            stale = f" (as of {evidence['stale_since'][:10]})"
        else:
            info = result
        evidence.update(info.to_state())
        evidence["names"] = info.names[:20]
        signals = [self._expiry(account, endpoint, info, now, evidence, stale)]
        if not info.hostname_ok:
            names = ", ".join(info.names[:3]) or info.subject or "no name"
            signals.append(self._signal(
                account, f"{endpoint.key} hostname", self.options.mismatch_strength, now,
                {**evidence, "check": "hostname"},
                f"The certificate at {shown} does not cover {endpoint.host} "
                f"(it names {names}){stale}.",
            ))  # fmt: skip
        chain_problem = _chain_problem(info, now)
        if chain_problem:
            signals.append(self._signal(
                account, f"{endpoint.key} chain", self.options.untrusted_strength, now,
                {**evidence, "check": "chain"},
                f"The certificate at {shown} {chain_problem}{stale}.",
            ))  # fmt: skip
        return [s for s in signals if s is not None]

    def _last_good(
        self, ctx: WatchContext, account: Account, endpoint: Endpoint, result: ProbeFailure,
        entry: dict[str, Any], now: datetime, evidence: dict[str, Any],
    ) -> CertInfo | list[Signal]:  # fmt: skip
        """After a failed check: the certificate seen last time, or (with none) the signals
        of an endpoint unknown for too long. Reports the account unknown either way."""
        good = entry.get("good")
        age = str(entry.get("good_at") or "")
        ctx.report_unknown(
            account, f"{endpoint.key}: certificate check failed ({result})"
            + (f"; using the certificate seen {age[:10]}" if good else ""),
            key=endpoint.key,
        )  # fmt: skip
        evidence["error"] = str(result)
        if isinstance(good, dict):
            evidence["stale_since"] = age
            return CertInfo.from_state(good)
        failures = int(entry.get("failures", 0))
        if failures < self.options.unknown_after_failures:
            return []
        return [self._signal(
            account, endpoint.key, self.options.unknown_strength, now,
            {**evidence, "check": "unknown", "failures": failures},
            f"Certificate of {endpoint.shown} unknown after {failures} failed checks "
            f"({result.code}).",
        )]  # fmt: skip

    def _expiry(
        self, account: Account, endpoint: Endpoint, info: CertInfo, now: datetime,
        evidence: dict[str, Any], stale: str,
    ) -> Signal | None:  # fmt: skip
        """Expired, or expiring within the thresholds."""
        shown = endpoint.shown
        if is_past(info.not_after, now):
            return self._signal(
                account, endpoint.key, 1.0, now, {**evidence, "check": "expiry"},
                f"The certificate of {shown} expired on {info.not_after.date().isoformat()}"
                f"{stale}.",
            )  # fmt: skip
        left = max(days_left(info.not_after, now), 0)
        strength = strength_for_days(left, self.options.thresholds_days)
        if strength <= 0:
            return None
        when = {0: "today", 1: "in 1 day"}.get(left, f"in {left} days")
        issuer = f" (issuer {info.issuer})" if info.issuer else ""
        return self._signal(
            account, endpoint.key, strength, now,
            {**evidence, "check": "expiry", "days_left": left},
            f"The certificate of {shown} expires {when}{issuer}{stale}.",
        )  # fmt: skip

    def _signal(
        self, account: Account, key: str, strength: float, now: datetime,
        evidence: dict[str, Any], summary: str,
    ) -> Signal:  # fmt: skip
        return Signal(
            account_id=account.id, kind=self.name, key=key, strength=strength,
            observed_at=now, summary=summary, evidence=evidence,
        )  # fmt: skip


def _chain_problem(info: CertInfo, now: datetime) -> str | None:
    """Why the certificate's chain or validity is wrong now, if it is."""
    if not info.chain_ok:
        return f"is not trusted: {info.verify_error}"
    if now < info.not_before:
        return f"is not valid until {info.not_before.date().isoformat()}"
    if info.verify_error and not leaf_explains(info, now):
        return f"fails verification: {info.verify_error}"
    return None
