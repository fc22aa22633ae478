"""Correlation of a batch of accounts in columns: the same assessments, a few times faster.

:func:`assess_batch` weighs every signal of the batch at once (numpy), computes each
account's score as a product down the columns of its signals heaviest first, and finds
from the kinds each account has within each rule's window, and its score, the rules that
MAY hold on it. Only those are matched signal by signal
(:meth:`swanwatch.correlate.RulePlan.match`); every other rule cannot hold. The result is
exactly that of :func:`swanwatch.correlate.assess_planned` account by account:

- the arithmetic is the reference's, operation for operation, on float64 (IEEE, correctly
  rounded, as Python's floats): ages from whole microseconds (exact in a float64 below
  2**53, as Python's int division makes them), the decay by :func:`math.pow` itself, the
  noisy-OR as the same sequential product in the same order (equal factors may swap);
- instants compare as whole microseconds, not as floats;
- the pre-check is conservative: the kinds an account has within a window among its
  signals at least as strong as the rule asks are a superset of those a match uses, the
  rule's kind tests only ever pass on more kinds, and the score of all of an account's
  signals is at least that of any of them (:meth:`RulePlan.may_hold`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from itertools import chain, pairwise, repeat
from operator import attrgetter
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from swanwatch import collector
from swanwatch.correlate import (
    Assessment,
    Observed,
    RulePlan,
    Weighed,
    assess_planned,
    heaviest_first,
    heaviest_key,
)
from swanwatch.model import Account, Contribution
from swanwatch.settings import CorrelationConfig, Rule

_US = timedelta(microseconds=1)
#: Kinds are bits of one unsigned 64-bit word; a batch with more falls back.
_MAX_KINDS = 64
#: Integers below this convert to float64 exactly.
_EXACT = 2**53
#: A window longer than this reaches before any instant a datetime can hold.
_FOREVER_US = 2**62

#: What a batch reads of each signal: its strength, then its kind, instant and half-life.
_STRENGTH = attrgetter("strength")
_FACTS = attrgetter("kind", "observed_at", "half_life_days")
#: ``Weighed(*fields)`` without the named tuple's own ``__new__`` (as ``Weighed._make``).
_weighed: Callable[[tuple[Observed, float, float, float, float]], Weighed] = partial(
    tuple.__new__, Weighed
)

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]
Words = npt.NDArray[np.uint64]


def assess_batch(
    accounts: Sequence[Account],
    by_account: Mapping[str, Sequence[Observed]],
    now: datetime,
    config: CorrelationConfig,
    plans: Sequence[RulePlan],
) -> list[Assessment]:
    """The assessment of each of ``accounts`` (each has signals in ``by_account``), in
    their order: :func:`swanwatch.correlate.assess_planned` for each, found at once."""
    with collector.paused():
        return _assess_batch(accounts, by_account, now, config, plans)


def _assess_batch(
    accounts: Sequence[Account],
    by_account: Mapping[str, Sequence[Observed]],
    now: datetime,
    config: CorrelationConfig,
    plans: Sequence[RulePlan],
) -> list[Assessment]:
    columns = _Columns(accounts, by_account, now, config)
    if len(columns.codes) > _MAX_KINDS:
        return [assess_planned(a, by_account[a.id], now, config, plans) for a in accounts]
    scores = columns.scores(None)
    rules = _RuleColumns(columns, accounts, now)
    holding = rules.may_hold(plans)
    heavy = _Heaviest(columns)
    out = []
    score_list = scores.tolist()
    for i, (account, which) in enumerate(zip(accounts, holding, strict=True)):
        score = score_list[i]
        if not which:
            lazy = WeighedLater(by_account[account.id], now, config)
            out.append(Assessment(account=account, score=score, weighed=lazy, matches=()))
            continue
        weighed, places = heavy.weighed(i)
        built: dict[int, Contribution] = {}
        found = []
        for p in which:
            # the signals the rule uses: those the columns chose, heaviest first
            plan = plans[p]
            chosen = rules.chosen(plan)
            used = [w for w, j in zip(weighed, places, strict=True) if chosen[j]]
            found.append(plan.matched(account, used, now, built, score, rules.score(plan, i)))
        matches = tuple(m for m in found if m is not None)
        out.append(Assessment(account=account, score=score, weighed=weighed, matches=matches))
    return out


class _Columns:
    """The batch's signals strong enough to count, account after account (each account's
    in the order given), weighed: one array entry per signal."""

    def __init__(
        self,
        accounts: Sequence[Account],
        by_account: Mapping[str, Sequence[Observed]],
        now: datetime,
        config: CorrelationConfig,
    ) -> None:
        lists = [by_account[a.id] for a in accounts]
        every = list(chain.from_iterable(lists))
        owner = np.repeat(np.arange(len(lists), dtype=np.int64), [len(x) for x in lists])
        strength = np.fromiter(map(_STRENGTH, every), dtype=np.float64, count=len(every))
        kept = ~(strength < config.min_strength)  # as the reference skips: NaN is kept
        self.signals: list[Observed] = (
            every if kept.all() else [every[i] for i in np.flatnonzero(kept).tolist()]
        )
        self.n_accounts = len(lists)
        self.account = owner[kept]
        self.strength = strength[kept]
        facts = list(map(_FACTS, self.signals))  # (kind, observed_at, half_life_days) each
        kinds = [f[0] for f in facts]
        observed = [f[1] for f in facts]
        own = [f[2] for f in facts]
        self.codes: dict[str, int] = {k: i for i, k in enumerate(dict.fromkeys(kinds))}
        self.kind = np.array(list(map(self.codes.__getitem__, kinds)), dtype=np.int64)
        self.own_half_life = np.array([h or 0.0 for h in own], dtype=np.float64)
        self.age_us = np.array([(now - o) // _US for o in observed], dtype=np.int64)
        self.weight, self.decay, self.age_days = self._weigh(config)
        # weight x strength x decay, left to right as the reference multiplies
        self.effective = self.weight * self.strength * self.decay
        #: The signals account by account, each account's heaviest first (then as given).
        self.order: Ints = np.lexsort((-self.effective, self.account))
        # In heaviest order: each signal's account, its noisy-OR factor, and the signals
        # by their place in their account's run (bounds: where each place starts).
        self.owner = self.account[self.order]
        clamped = np.minimum(1.0, np.maximum(0.0, self.effective))
        self.factor: Floats = (1.0 - clamped)[self.order]
        position = _positions(self.owner, self.n_accounts)
        self.by_position = np.argsort(position, kind="stable")
        self.heaviest_signals = [self.signals[i] for i in self.order.tolist()]
        places = np.arange(position.max(initial=-1) + 2)
        self.bounds: list[int] = np.searchsorted(position[self.by_position], places).tolist()

    def _weigh(self, config: CorrelationConfig) -> tuple[Floats, Floats, Floats]:
        """Each signal's weight, decay and age in days, as the reference computes them."""
        by_code = list(self.codes)
        weights = config.weights
        weight_of = [weights.get(k, config.default_weight) for k in by_code]
        half_lives = config.half_life_days
        half_life_of = [half_lives.get(k, config.default_half_life_days) for k in by_code]
        weight = np.array(weight_of, dtype=np.float64)[self.kind]
        own = self.own_half_life
        half_life = np.where(own == 0.0, np.array(half_life_of, np.float64)[self.kind], own)
        age_us = self.age_us
        if len(age_us) and int(np.abs(age_us).max()) >= _EXACT:
            seconds = np.array([a / 1_000_000 for a in age_us.tolist()], dtype=np.float64)
        else:
            seconds = age_us.astype(np.float64) / 1_000_000.0
        age_days = np.maximum(0.0, seconds / 86400.0)
        ratios = (age_days / half_life).tolist()
        decay = np.array(list(map(math.pow, repeat(0.5), ratios)), dtype=np.float64)
        return weight, decay, age_days

    def scores(self, used: npt.NDArray[np.bool_] | None) -> Floats:
        """Each account's noisy-OR of its ``used`` signals (in heaviest order; all when
        None): ``1 - prod(1 - effective)``, the product taken heaviest first, one position
        at a time down the columns of all the accounts. An unused signal's factor is 1.0,
        which leaves a product as it is."""
        factor = self.factor if used is None else np.where(used, self.factor, 1.0)
        owner, by_position, bounds = self.owner, self.by_position, self.bounds
        remaining = np.ones(self.n_accounts, dtype=np.float64)
        for place, (lo, hi) in enumerate(pairwise(bounds)):
            if hi - lo <= DEEP_ACCOUNTS:
                self._deep_products(remaining, factor, place)
                break
            at = by_position[lo:hi]
            remaining[owner[at]] *= factor[at]  # one signal per account in a position
        result: Floats = np.minimum(1.0, np.maximum(0.0, 1.0 - remaining))
        return result

    def _deep_products(self, remaining: Floats, factor: Floats, place: int) -> None:
        """The products of the few accounts with more than ``place`` signals, taken on
        from there one account at a time, in the same order: the same float products as
        down the columns, without a round of array work per place (an account of 56,000
        signals made 56,000 rounds, 0.06 s a rule)."""
        owner = self.owner
        at = self.by_position[self.bounds[place] : self.bounds[place + 1]].tolist()
        ends = np.searchsorted(owner, owner[at], side="right").tolist()
        for start, end, account in zip(at, ends, owner[at].tolist(), strict=True):
            product = float(remaining[account])
            for f in factor[start:end].tolist():
                product *= f
            remaining[account] = product


#: Down the columns while more accounts than this have a signal in a place; past that,
#: account by account (:meth:`_Columns._deep_products`).
DEEP_ACCOUNTS = 8


def _positions(owner: Ints, n_accounts: int) -> Ints:
    """Each entry's place within its account's run (``owner`` is sorted)."""
    starts = np.searchsorted(owner, np.arange(n_accounts))
    result: Ints = np.arange(len(owner), dtype=np.int64) - starts[owner]
    return result


class _RuleColumns:
    """Which rules may hold on which accounts of the batch, from the columns: exactly
    whether they hold, for a rule without ``where`` (its used signals are those chosen
    here), and a superset of the accounts it holds on for one with ``where``."""

    def __init__(self, columns: _Columns, accounts: Sequence[Account], now: datetime) -> None:
        self.columns = columns
        self.accounts = accounts
        days = [a.days_to_renewal(now) for a in accounts]
        self.renews = np.array([d is not None for d in days], dtype=bool)
        self.days = np.array([0 if d is None else d for d in days], dtype=np.int64)
        self.arr = np.array([a.arr for a in accounts], dtype=np.float64)
        # in heaviest order, each signal's kind as a bit
        self.bit = np.left_shift(np.uint64(1), columns.kind[columns.order].astype(np.uint64))
        self._recent: dict[tuple[int, float, frozenset[str] | None], npt.NDArray[np.bool_]] = {}
        self._chosen: dict[int, npt.NDArray[np.bool_]] = {}
        self._scores: dict[int, list[float]] = {}
        self._chosen_lists: dict[int, list[bool]] = {}

    def may_hold(self, plans: Sequence[RulePlan]) -> list[list[int]]:
        """For each account, the indices of the plans that hold on it: each rule's
        kinds and least score on the signals it uses, and whether the account fits."""
        columns = self.columns
        ok = np.zeros((len(plans), columns.n_accounts), dtype=bool)
        for p, plan in enumerate(plans):
            rule = plan.rule
            holds = self.fits(rule)
            if not holds.any():
                continue
            chosen = self.chosen_array(plan)
            kinds = np.zeros(columns.n_accounts, dtype=np.uint64)
            np.bitwise_or.at(kinds, columns.owner[chosen], self.bit[chosen])
            holds &= _kinds_may_hold(plan, columns.codes, kinds)
            if holds.any():
                scores = columns.scores(chosen)
                holds &= scores >= rule.min_score  # as the reference: not below it
                self._scores[id(plan)] = scores.tolist()
            ok[p] = holds
        rows: list[list[bool]] = ok.T.tolist()
        return [[p for p, y in enumerate(row) if y] for row in rows]

    def score(self, plan: RulePlan, account: int) -> float:
        """The noisy-OR of the signals the rule uses on the account (found by
        :meth:`may_hold`, for an account it may hold on)."""
        return self._scores[id(plan)][account]

    def fits(self, rule: Rule) -> npt.NDArray[np.bool_]:
        """Which accounts the rule is for (:func:`swanwatch.correlate` ``_account_fits``)."""
        holds = np.ones(len(self.accounts), dtype=bool)
        if rule.renewal_within_days is not None:
            holds &= self.renews & (self.days <= rule.renewal_within_days)
        if rule.arr_at_least is not None:
            holds &= ~(self.arr < rule.arr_at_least)
        if rule.segments:
            holds &= np.array([a.segment in rule.segments for a in self.accounts], dtype=bool)
        if rule.tags:
            tags = set(rule.tags)
            holds &= np.array([bool(tags & set(a.tags)) for a in self.accounts], dtype=bool)
        return holds

    def chosen_array(self, plan: RulePlan) -> npt.NDArray[np.bool_]:
        """In heaviest order: the signals the rule uses, those within its window, strong
        enough, of its kinds and with the evidence its ``where`` asks for."""
        found = self._chosen.get(id(plan))
        if found is None:
            found = self._chosen[id(plan)] = self._chose(plan)
        return found

    def _chose(self, plan: RulePlan) -> npt.NDArray[np.bool_]:
        rule, columns = plan.rule, self.columns
        key = (_window_us(rule.within), rule.min_strength, plan.named)
        found = self._recent.get(key)
        if found is None:
            recent = (columns.age_us <= key[0]) & (columns.strength >= key[1])
            if plan.named is not None:
                codes = [columns.codes[k] for k in plan.named if k in columns.codes]
                recent &= np.isin(columns.kind, codes)
            found = self._recent[key] = recent[columns.order]
        if not plan.where:
            return found
        chosen = found.copy()
        signals = columns.heaviest_signals
        for j in np.flatnonzero(found).tolist():
            chosen[j] = plan.admits(signals[j])
        return chosen

    def chosen(self, plan: RulePlan) -> list[bool]:
        """:meth:`chosen_array` as a list, for the accounts one by one."""
        found = self._chosen_lists.get(id(plan))
        if found is None:
            found = self._chosen_lists[id(plan)] = self.chosen_array(plan).tolist()
        return found


def _window_us(within: timedelta) -> int:
    return min(within // _US, _FOREVER_US)


def _kinds_may_hold(plan: RulePlan, codes: Mapping[str, int], mask: Words) -> npt.NDArray[Any]:
    """:meth:`RulePlan.kinds_hold` for every account's kinds at once."""
    holds = np.ones(len(mask), dtype=bool)
    if plan.all_of:
        if not plan.all_of <= codes.keys():
            return np.zeros(len(mask), dtype=bool)
        wanted = _bits(plan.all_of, codes)
        holds &= (mask & wanted) == wanted
    if plan.any_of:
        holds &= (mask & _bits(plan.any_of, codes)) != 0
    at_least = plan.rule.at_least
    if at_least is not None:
        counted = mask if plan.counted is None else mask & _bits(plan.counted, codes)
        holds &= _popcount(counted) >= at_least
    return holds


def _bits(kinds: frozenset[str], codes: Mapping[str, int]) -> np.uint64:
    word = 0
    for kind in kinds:
        if kind in codes:
            word |= 1 << codes[kind]
    return np.uint64(word)


def _popcount(words: Words) -> Ints:
    """The number of bits set in each word."""
    bits = np.unpackbits(words.view(np.uint8).reshape(-1, 8), axis=1)
    result: Ints = bits.sum(axis=1, dtype=np.int64)
    return result


class _Heaviest:
    """The batch's signals weighed, account by account, heaviest first: the lists
    :meth:`RulePlan.matched` reads, made for the accounts a rule may hold on."""

    def __init__(self, columns: _Columns) -> None:
        order, owner = columns.order, columns.owner
        effective = columns.effective[order]
        self.starts: list[int] = np.searchsorted(owner, np.arange(columns.n_accounts + 1)).tolist()
        # Equal weights in one account: their order is by kind and key (heaviest_key).
        tied = (owner[1:] == owner[:-1]) & (effective[1:] == effective[:-1])
        self.tied = set(owner[1:][tied].tolist())
        self.signals = columns.heaviest_signals
        self.weight = columns.weight[order].tolist()
        self.decay = columns.decay[order].tolist()
        self.age_days = columns.age_days[order].tolist()
        self.effective = effective.tolist()

    def weighed(self, account: int) -> tuple[tuple[Weighed, ...], Sequence[int]]:
        """The account's weighed signals, heaviest first as the reference sorts them, and
        the place of each in the batch's heaviest order."""
        lo, hi = self.starts[account], self.starts[account + 1]
        made: list[Weighed] = list(
            map(
                _weighed,
                zip(
                    self.signals[lo:hi],
                    self.weight[lo:hi],
                    self.decay[lo:hi],
                    self.age_days[lo:hi],
                    self.effective[lo:hi],
                    strict=True,
                ),
            )
        )
        if account not in self.tied:
            return tuple(made), range(lo, hi)
        # stable: signals equal in the whole key stay in the order given, as in the reference
        places = sorted(range(lo, hi), key=lambda j: heaviest_key(made[j - lo]))
        return tuple(made[j - lo] for j in places), places


class WeighedLater(Sequence[Weighed]):
    """An account's weighed signals, heaviest first, weighed when first asked for: those
    of an account no rule holds on are seldom read."""

    __slots__ = ("_config", "_done", "_now", "_signals")

    def __init__(
        self, signals: Sequence[Observed], now: datetime, config: CorrelationConfig
    ) -> None:
        self._signals = signals
        self._now = now
        self._config = config
        self._done: tuple[Weighed, ...] | None = None

    def _all(self) -> tuple[Weighed, ...]:
        if self._done is None:
            self._done = heaviest_first(self._signals, self._now, self._config)
        return self._done

    @overload
    def __getitem__(self, index: int) -> Weighed: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Weighed, ...]: ...
    def __getitem__(self, index: int | slice) -> Weighed | tuple[Weighed, ...]:
        return self._all()[index]

    def __len__(self) -> int:
        return len(self._all())

    def __iter__(self) -> Iterator[Weighed]:
        return iter(self._all())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return self._all() == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(self._all())
