"""Signals renewals nobody is working, overdue invoices and failed payments."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import ClassVar

from pydantic import Field, field_validator

from swanwatch import (
    Account,
    Replayer,
    Signal,
    SourceUse,
    StateMap,
    WatchContext,
    Watcher,
    WatcherOptions,
)
from swanwatch.values import day_of, int_or_zero, is_true, midnight


class RenewalLapseWatcher(Watcher):
    """A renewal near with nothing in motion; an overdue invoice; a failed payment.

    Reads contract rows (account_id, contract_id, end_date, auto_renew, renewal_stage,
    invoice_overdue_days, payment_failed). A contract ending within the largest of
    ``tiers_days`` whose stage is in ``idle_stages`` and that does not auto-renew is signalled
    (``key`` = contract id); the strength steps up with each tier crossed and is 1.0 once it
    has ended. An account with no contract row falls back to its ``renewal_date``, stage
    unknown. Overdue invoices and failed payments are signalled under ``<contract>:overdue``
    and ``<contract>:payment_failed``. ``payment_failed`` may be a date (when it failed) or a
    flag; for a flag, the day it was first seen is remembered in the watcher state.

    Contracts are a snapshot with no date of their own, so they are not checked for
    freshness unless the source sets ``fresh_within`` and ``date_field``. While the source is
    unhealthy, a finding older than the largest tier plus ``ended_grace_days`` is not kept.
    """

    name: ClassVar[str] = "renewal_lapse"
    historical: ClassVar[bool] = True

    class Options(WatcherOptions):
        contracts_source: str = Field(
            "contracts",
            description="Source of contract rows: account_id, contract_id, end_date, auto_renew, "
            "renewal_stage, invoice_overdue_days, payment_failed.",
        )
        tiers_days: list[int] = Field(
            default_factory=lambda: [90, 60, 30],
            min_length=1,
            description="Days before the end date at which the signal starts and steps up.",
        )
        idle_stages: list[str] = Field(
            default_factory=lambda: ["none", ""],
            description="Renewal stages that mean nothing is in motion.",
        )
        ended_grace_days: int = Field(
            30, ge=0, description="Days after the end date that a lapsed contract is signalled."
        )
        overdue_min_days: int = Field(
            15, ge=1, description="Days an invoice must be overdue before it is signalled."
        )
        overdue_full_days: int = Field(
            90, ge=1, description="Days overdue at which the overdue signal has full strength."
        )
        signal_no_contract: bool = Field(
            True,
            description="Signal an account renewing within the tiers that has no contract row.",
        )

        @field_validator("tiers_days")
        @classmethod
        def _tiers_positive(cls, tiers: list[int]) -> list[int]:
            if any(t <= 0 for t in tiers):
                raise ValueError("every tier must be a positive number of days")
            return sorted(set(tiers), reverse=True)

    options: Options

    def uses(self) -> tuple[SourceUse, ...]:
        return (SourceUse(self.options.contracts_source, fields=("account_id",)),)

    def lookback(self) -> timedelta:
        return timedelta(days=self.options.tiers_days[0] + self.options.ended_grace_days)

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        today = ctx.clock.now().date()
        wanted = {a.id: a for a in ctx.accounts}
        if not wanted:
            return
        # Each wanted account's rows, bar the quiet ones (most of a book: they give nothing
        # and leave the state alone), kept as they are read: an empty list is an account
        # whose contracts are all quiet, not one without a contract.
        contracts: dict[str, list[Mapping[str, object]]] = {}
        source = ctx.source(self.options.contracts_source)
        async for row in source.rows(until=ctx.clock.now() if ctx.replay else None):
            account_id = row.get("account_id")
            account = wanted.get(account_id) if isinstance(account_id, str) else None
            if account is not None:
                mine = contracts.setdefault(account.id, [])
                if not self.quiet(account, row):
                    mine.append(row)
        seen_keys: set[str] = set()
        for account in wanted.values():
            mine = contracts.get(account.id, [])
            if mine or account.id not in contracts:
                for signal in self.account_signals(account, mine, today, ctx, seen_keys):
                    yield signal
        _forget(ctx.state, seen_keys)

    def replayer(self) -> Replayer:
        return _Replay(self)

    async def contract_rows(self, ctx: WatchContext) -> list[Mapping[str, object]]:
        """Every contract row, as of now in a replay."""
        source = ctx.source(self.options.contracts_source)
        until = ctx.clock.now() if ctx.replay else None
        return [row async for row in source.rows(until=until)]

    def account_signals(
        self,
        account: Account,
        rows: list[Mapping[str, object]],
        today: date,
        ctx: WatchContext,
        seen_keys: set[str],
    ) -> list[Signal]:
        """The signals of one account, from its contract rows (none: its renewal date)."""
        if not rows:
            signal = self._no_contract(account, today)
            return [] if signal is None else [signal]
        return [s for row in rows for s in self._judge(account, row, today, ctx.state, seen_keys)]

    def quiet(self, account: Account, row: Mapping[str, object]) -> bool:
        """Whether ``row`` gives no signal on any day, and leaves the state alone: it does
        not renew idle, is not overdue and has no failed payment. False where a value does
        not read (judging the row raises, as it should)."""
        opts = self.options
        try:
            end = day_of(row.get("end_date")) or account.renewal_date
            stage = str(row.get("renewal_stage") or "").strip().lower()
            auto = is_true(row.get("auto_renew"))
            overdue = int_or_zero(row.get("invoice_overdue_days"))
            failed = row.get("payment_failed")
            dated = isinstance(failed, (date, datetime)) or (
                isinstance(failed, str) and failed[:4].isdigit()
            )
            flagged = is_true(failed)
        except (ValueError, TypeError):
            return False
        renews = end is not None and stage in opts.idle_stages and not auto
        return not (renews or overdue >= opts.overdue_min_days or dated or flagged)

    def _tier_strength(self, days: int) -> tuple[float, int] | None:
        """Strength and the tier (days) the date is in, or None when not yet within a tier."""
        tiers = self.options.tiers_days
        if days > tiers[0]:
            return None
        if days < 0:
            return 1.0, 0
        crossed = sum(1 for t in tiers if days <= t)
        return crossed / len(tiers), min(t for t in tiers if days <= t)

    def _renewal_signal(
        self,
        account: Account,
        key: str,
        end: date,
        today: date,
        what: str,
        evidence: dict[str, object],
    ) -> Signal | None:
        days = (end - today).days
        if days < -self.options.ended_grace_days:
            return None
        tier = self._tier_strength(days)
        if tier is None:
            return None
        strength, tier_days = tier
        began = end - timedelta(days=tier_days)
        if days < 0:
            summary = (
                f"{what} ended {-days} days ago ({end.isoformat()}) with no renewal in motion."
            )
        else:
            when = "today" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
            summary = f"{what} ends {when} ({end.isoformat()}) with no renewal in motion."
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=key,
            strength=round(strength, 3),
            observed_at=midnight(min(began, today)),
            summary=summary,
            evidence={
                **evidence,
                "end_date": end.isoformat(),
                "days_left": days,
                "tier_days": tier_days,
                "arr": account.arr,
            },
        )

    def _no_contract(self, account: Account, today: date) -> Signal | None:
        if not self.options.signal_no_contract or account.renewal_date is None:
            return None
        return self._renewal_signal(
            account,
            "renewal",
            account.renewal_date,
            today,
            f"{account.label}'s renewal (no contract on record)",
            {"contract_id": None, "renewal_stage": None, "auto_renew": None},
        )

    def _judge(
        self,
        account: Account,
        row: Mapping[str, object],
        today: date,
        state: StateMap,
        seen_keys: set[str],
    ) -> list[Signal]:
        opts = self.options
        contract = str(row.get("contract_id") or "contract")
        stage = str(row.get("renewal_stage") or "").strip().lower()
        auto = is_true(row.get("auto_renew"))
        end = day_of(row.get("end_date")) or account.renewal_date
        signals = []
        if end is not None and stage in opts.idle_stages and not auto:
            signals.append(
                self._renewal_signal(
                    account,
                    contract,
                    end,
                    today,
                    f"Contract {contract}",
                    {"contract_id": contract, "renewal_stage": stage or "none", "auto_renew": auto},
                )
            )
        signals.append(self._overdue(account, contract, row, today))
        failed_on = _failed_on(account, contract, row, today, state, seen_keys)
        if failed_on is not None and failed_on <= today:
            signals.append(
                Signal(
                    account_id=account.id,
                    kind=self.name,
                    key=f"{contract}:payment_failed",
                    strength=0.6,
                    observed_at=midnight(failed_on),
                    summary=(
                        f"A payment on contract {contract} failed (seen {failed_on.isoformat()})."
                    ),
                    evidence={"contract_id": contract, "payment_failed_on": failed_on.isoformat()},
                )
            )
        return [s for s in signals if s is not None]

    def _overdue(
        self, account: Account, contract: str, row: Mapping[str, object], today: date
    ) -> Signal | None:
        """An invoice overdue for at least ``overdue_min_days``, stronger the longer."""
        opts = self.options
        overdue = int_or_zero(row.get("invoice_overdue_days"))
        if overdue < opts.overdue_min_days:
            return None
        strength = 0.3 + 0.7 * min(
            1.0,
            (overdue - opts.overdue_min_days)
            / max(1, opts.overdue_full_days - opts.overdue_min_days),
        )
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=f"{contract}:overdue",
            strength=round(strength, 3),
            observed_at=midnight(today - timedelta(days=overdue)),
            summary=f"An invoice on contract {contract} is {overdue} days overdue.",
            evidence={"contract_id": contract, "invoice_overdue_days": overdue},
        )


def _failed_on(
    account: Account,
    contract: str,
    row: Mapping[str, object],
    today: date,
    state: StateMap,
    seen_keys: set[str],
) -> date | None:
    """The day a payment failed: the row's date, or for a bare flag the day it was first
    seen (remembered in the state)."""
    failed_raw = row.get("payment_failed")
    failed_on = None
    if isinstance(failed_raw, (date, datetime)) or (
        isinstance(failed_raw, str) and failed_raw[:4].isdigit()
    ):
        failed_on = day_of(failed_raw)
    if failed_on is None and is_true(failed_raw):
        state_key = f"failed_since:{account.id}:{contract}"
        seen_keys.add(state_key)
        remembered = state.get(state_key)
        failed_on = date.fromisoformat(remembered) if isinstance(remembered, str) else None
        if failed_on is None or failed_on > today:
            failed_on = today
            state.set(state_key, today.isoformat())
    return failed_on


def _forget(state: StateMap, seen_keys: set[str]) -> None:
    """Forget when a failure began, for each failure no longer seen."""
    for key in state.keys():  # noqa: SIM118 (StateMap is not iterable)
        if key.startswith("failed_since:") and key not in seen_keys:
            state.delete(key)


class _Replay(Replayer):
    """The renewal watcher in a replay: the contract rows of a day are those of the day
    before, most days (a snapshot is exported now and then); while they are, and the
    accounts are too, only the accounts with a row that can give a signal (or, with no
    row, a renewal date) are judged: the others give none on any day
    (:meth:`RenewalLapseWatcher.quiet`). The rows are read every day, as ``watch()``
    reads them."""

    def __init__(self, watcher: RenewalLapseWatcher) -> None:
        self.watcher = watcher
        self.rows: list[Mapping[str, object]] = []
        self.accounts: list[Account] = []
        #: The accounts worth judging, in order, each with its rows.
        self.plan: list[tuple[Account, list[Mapping[str, object]]]] = []

    async def day(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        watcher = self.watcher
        today = ctx.clock.now().date()
        if not ctx.accounts:
            return
        rows = await watcher.contract_rows(ctx)
        if not (_same(rows, self.rows) and _same(ctx.accounts, self.accounts)):
            self.rows, self.accounts = rows, list(ctx.accounts)
            self.plan = self._plan(rows, ctx.accounts)
        seen_keys: set[str] = set()
        for account, mine in self.plan:
            for signal in watcher.account_signals(account, mine, today, ctx, seen_keys):
                yield signal
        _forget(ctx.state, seen_keys)

    def _plan(
        self, rows: list[Mapping[str, object]], accounts: Sequence[Account]
    ) -> list[tuple[Account, list[Mapping[str, object]]]]:
        watcher = self.watcher
        wanted = {a.id: a for a in accounts}
        contracts: dict[str, list[Mapping[str, object]]] = {}
        for row in rows:
            account_id = row.get("account_id")
            if account_id in wanted:
                contracts.setdefault(str(account_id), []).append(row)
        plan = []
        for account in wanted.values():
            mine = contracts.get(account.id, [])
            if mine:
                worth = not all(watcher.quiet(account, row) for row in mine)
            else:
                worth = watcher.options.signal_no_contract and account.renewal_date is not None
            if worth:
                plan.append((account, mine))
        return plan


def _same(now: Sequence[object], before: Sequence[object]) -> bool:
    """The same items, in the same order (the same objects, or equal ones)."""
    if len(now) != len(before):
        return False
    return all(a is b or a == b for a, b in zip(now, before, strict=True))
