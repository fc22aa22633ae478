"""Correlation, pure: signals, account facts and ``now`` in; assessments out.

The score of an account is a noisy-OR of ``weight x strength x decay`` over its active
signals, where decay halves every half-life of the signal's kind. Rules then name the
compound risks: which kinds together, within a window, on which accounts, and
:func:`candidates` turns the rules that hold into the alerts they call for, which
:mod:`swanwatch.alerts` reconciles with the alerts on record.
No I/O and no clock of its own: the daemon and the backtest call the same functions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Protocol

from swanwatch.model import JSON, Account, Contribution, Severity, Signal
from swanwatch.model import alert_fingerprint as alert_fingerprint  # public here too, as before
from swanwatch.settings import CorrelationConfig, Rule

#: The rule every account is held to even without a rule file: a high combined score.
SCORE_RULE = "risk_score"


@dataclass(frozen=True)
class RuleMatch:
    """A rule that holds for an account, with the contributions it rests on."""

    rule: Rule
    contributions: tuple[Contribution, ...]
    score: float

    @property
    def severity(self) -> Severity:
        return self.rule.severity


@dataclass(frozen=True)
class Candidate:
    """An alert that should be open now: what the lifecycle reconciles against the store."""

    fingerprint: str
    account_id: str
    rule: str
    title: str
    severity: Severity
    score: float
    contributions: tuple[Contribution, ...]
    why_now: tuple[str, ...]
    play: tuple[str, ...]
    at_stake: Mapping[str, JSON]


@dataclass(frozen=True)
class Assessment:
    """One account's risk now: its score, every signal's weight, and the rules that hold."""

    account: Account
    score: float
    weighed: tuple[Weighed, ...]
    matches: tuple[RuleMatch, ...]

    @cached_property
    def contributions(self) -> tuple[Contribution, ...]:
        """Every signal's contribution, heaviest first (built on demand)."""
        return tuple(w.contribution() for w in self.weighed)

    @property
    def revenue_at_risk(self) -> float:
        return self.account.arr * self.score


@dataclass(frozen=True, slots=True)
class Weighed:
    """A signal with its weight and decay now: the light form correlation works on.

    A full :class:`Contribution` record is built only for the signals an alert rests on.
    """

    signal: Signal
    weight: float
    decay: float
    age_days: float
    effective: float

    def contribution(self) -> Contribution:
        s = self.signal
        return Contribution(
            fingerprint=s.fingerprint,
            kind=s.kind,
            key=s.key,
            summary=s.summary,
            strength=s.strength,
            weight=self.weight,
            decay=self.decay,
            age_days=round(self.age_days, 3),
            observed_at=s.observed_at,
        )


def weigh(signal: Signal, now: datetime, config: CorrelationConfig) -> Weighed:
    """How much one signal weighs now: its kind's weight, and decay by its age."""
    weight = config.weights.get(signal.kind, config.default_weight)
    half_life = signal.half_life_days or config.half_life_days.get(
        signal.kind, config.default_half_life_days
    )
    age_days = max(0.0, (now - signal.observed_at).total_seconds() / 86400)
    decay = math.pow(0.5, age_days / half_life)
    return Weighed(signal, weight, decay, age_days, weight * signal.strength * decay)


class _HasEffective(Protocol):
    @property
    def effective(self) -> float: ...


def noisy_or(contributions: Iterable[_HasEffective]) -> float:
    """1 - prod(1 - weight x strength x decay): one strong signal or several weak ones."""
    remaining = 1.0
    for c in contributions:
        remaining *= 1.0 - min(1.0, max(0.0, c.effective))
    return min(1.0, max(0.0, 1.0 - remaining))


def _account_fits(rule: Rule, account: Account, now: datetime) -> bool:
    if rule.renewal_within_days is not None:
        days = account.days_to_renewal(now)
        if days is None or days > rule.renewal_within_days:
            return False
    if rule.arr_at_least is not None and account.arr < rule.arr_at_least:
        return False
    if rule.segments and account.segment not in rule.segments:
        return False
    return not (rule.tags and not set(rule.tags) & set(account.tags))


def match_rule(
    rule: Rule,
    account: Account,
    weighed: Sequence[Weighed],
    now: datetime,
    built: dict[int, Contribution] | None = None,
) -> RuleMatch | None:
    """The rule's match on this account now, or None.

    ``built`` caches the Contribution records across an account's rules, by the identity
    of the Weighed entry (they live as long as the assessment).
    """
    if not _account_fits(rule, account, now):
        return None
    window_start = now - rule.within
    in_window = [
        w
        for w in weighed
        if w.signal.observed_at >= window_start and w.signal.strength >= rule.min_strength
    ]
    kinds = {w.signal.kind for w in in_window}
    if rule.all_of and not set(rule.all_of) <= kinds:
        return None
    if rule.any_of and not set(rule.any_of) & kinds:
        return None
    counted = set(rule.of) if rule.of else None
    if rule.at_least is not None:
        pool = kinds if counted is None else kinds & counted
        if len(pool) < rule.at_least:
            return None
    if rule.at_least is not None and counted is None:
        used = in_window
    else:
        named = set(rule.all_of) | set(rule.any_of) | (counted or set())
        used = [w for w in in_window if w.signal.kind in named]
    score = noisy_or(used)
    if score < rule.min_score:
        return None
    cache = built if built is not None else {}
    records = []
    for w in used:
        record = cache.get(id(w))
        if record is None:
            record = cache[id(w)] = w.contribution()
        records.append(record)
    return RuleMatch(rule=rule, contributions=tuple(records), score=score)


def score_rule(config: CorrelationConfig) -> Rule:
    """The catch-all rule: a combined score over the threshold from several kinds."""
    return Rule(
        name=SCORE_RULE,
        title="Several risk signals at once",
        severity=Severity.WARNING,
        at_least=config.score_min_kinds,
        within=config.score_window,
        min_score=config.score_threshold,
        play=(
            "CSM: review the signals below with the account team this week and agree one owner "
            "for each.",
        ),
    )


def assess(
    account: Account,
    signals: Iterable[Signal],
    now: datetime,
    config: CorrelationConfig,
    rules: Sequence[Rule],
) -> Assessment:
    """Score one account and find the rules that hold for it."""
    weighed = sorted(
        (weigh(s, now, config) for s in signals if s.strength >= config.min_strength),
        key=lambda w: (-w.effective, w.signal.kind, w.signal.key),
    )
    built: dict[int, Contribution] = {}
    matches = tuple(
        m for m in (match_rule(r, account, weighed, now, built) for r in rules) if m is not None
    )
    return Assessment(
        account=account,
        score=noisy_or(weighed),
        weighed=tuple(weighed),
        matches=matches,
    )


def assess_all(
    accounts: Iterable[Account],
    signals: Iterable[Signal],
    now: datetime,
    config: CorrelationConfig,
    rules: Sequence[Rule],
) -> list[Assessment]:
    """Assess every account that has at least one signal; others carry no risk."""
    by_account: dict[str, list[Signal]] = defaultdict(list)
    for s in signals:
        by_account[s.account_id].append(s)
    everything = [*rules, score_rule(config)]
    return [
        assess(a, by_account[a.id], now, config, everything) for a in accounts if a.id in by_account
    ]


def candidates(assessments: Iterable[Assessment], now: datetime) -> list[Candidate]:
    """The alerts the assessments call for. The catch-all score rule only speaks for an
    account that no named rule covers, so one risk is not told twice."""
    out: list[Candidate] = []
    for a in assessments:
        named = [m for m in a.matches if m.rule.name != SCORE_RULE] or list(a.matches)
        out.extend(_candidate(a, m, now) for m in named)
    return out


def _candidate(a: Assessment, m: RuleMatch, now: datetime) -> Candidate:
    account = a.account
    days = account.days_to_renewal(now)
    at_stake: dict[str, JSON] = {
        "arr": account.arr,
        "revenue_at_risk": round(account.arr * m.score, 2),
        "renewal_date": account.renewal_date.isoformat() if account.renewal_date else None,
        "days_to_renewal": days,
        "owner": account.owner,
        "segment": account.segment,
    }
    why = [_why(c) for c in m.contributions]
    if days is not None and 0 <= days <= 120:
        why.append(f"Renewal on {account.renewal_date} is {days} days away.")
    elif days is not None and days < 0:
        why.append(f"Renewal date {account.renewal_date} passed {-days} days ago.")
    return Candidate(
        fingerprint=alert_fingerprint(account.id, m.rule.name),
        account_id=account.id,
        rule=m.rule.name,
        title=m.rule.title,
        severity=m.severity,
        score=round(m.score, 4),
        contributions=m.contributions,
        why_now=tuple(why),
        play=m.rule.play,
        at_stake=at_stake,
    )


def _why(c: Contribution) -> str:
    if c.age_days < 1:
        return c.summary
    return f"{c.summary} (since {c.observed_at.date().isoformat()})"
