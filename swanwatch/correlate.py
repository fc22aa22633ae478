"""Correlation, pure: signals, account facts and ``now`` in; assessments out.

The score of an account is a noisy-OR of ``weight x strength x decay`` over its active
signals, where decay halves every half-life of the signal's kind. Rules then name the
compound risks: which kinds together, within a window, on which accounts, how severe (raised
with the stake and the strength, :func:`swanwatch.rules.raised`). :func:`candidates` turns
the rules that hold on an account into the ONE alert it calls for (the most severe rule
names it, the others are its further reasons), which :mod:`swanwatch.alerts` reconciles
with the alerts on record.
No I/O and no clock of its own: the daemon and the backtest call the same functions.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import NamedTuple, Protocol, TypeVar

from pydantic import BaseModel

from swanwatch import collector
from swanwatch.model import (
    JSON,
    Account,
    Contribution,
    Reason,
    Severity,
    account_alert_fingerprint,
    arr_at_risk,
)
from swanwatch.model import alert_fingerprint as alert_fingerprint  # public here too, as before
from swanwatch.rules import DEFAULT_PHRASES, Between, raised
from swanwatch.settings import CorrelationConfig, Rule

_Trusted = TypeVar("_Trusted", bound=BaseModel)

#: The rule every account is held to even without a rule file: a high combined score.
SCORE_RULE = "risk_score"


@dataclass(frozen=True)
class RuleMatch:
    """A rule that holds for an account, with the contributions it rests on."""

    rule: Rule
    contributions: tuple[Contribution, ...]
    score: float
    #: The rule's severity, raised by its steps for this account's stake and score.
    severity: Severity


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
    #: Every rule that holds, most severe first: the first names the alert.
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Assessment:
    """One account's risk now: its score, every signal's weight, and the rules that hold.

    ``weighed`` is heaviest first; for an account on which no rule may hold, a batch
    weighs its signals only when they are first asked for.
    """

    account: Account
    score: float
    weighed: Sequence[Weighed]
    matches: tuple[RuleMatch, ...]

    @cached_property
    def contributions(self) -> tuple[Contribution, ...]:
        """Every signal's contribution, heaviest first (built on demand)."""
        return tuple(w.contribution() for w in self.weighed)

    @property
    def revenue_at_risk(self) -> float:
        """ARR at risk: ARR x score (:func:`swanwatch.model.arr_at_risk`)."""
        return arr_at_risk(self.account.arr, self.score)


class Observed(Protocol):
    """What correlation reads of a signal: a :class:`Signal`, or the light
    :class:`~swanwatch.model.ActiveSignal` a streamed pass reads from the store."""

    @property
    def account_id(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def strength(self) -> float: ...
    @property
    def observed_at(self) -> datetime: ...
    @property
    def summary(self) -> str: ...
    @property
    def evidence(self) -> Mapping[str, JSON]: ...
    @property
    def half_life_days(self) -> float | None: ...


class Weighed(NamedTuple):
    """A signal with its weight and decay now: the light form correlation works on.

    A named tuple, not a frozen dataclass: a pass makes one per signal, and a tuple is made
    in a third of the time. A full :class:`Contribution` record is built only for the
    signals an alert rests on.
    """

    signal: Observed
    weight: float
    decay: float
    age_days: float
    effective: float

    def contribution(self) -> Contribution:
        """The signal's share as a record. Built without validating again: every value
        is already of its field's type (the signal's were validated when it was recorded,
        its instant is aware UTC; the weight, decay and age are floats computed here)."""
        s = self.signal
        return _trusted_contribution(
            {
                "fingerprint": s.fingerprint,
                "kind": s.kind,
                "key": s.key,
                "summary": s.summary,
                "strength": float(s.strength),
                "weight": float(self.weight),
                "decay": self.decay,
                "age_days": round(self.age_days, 3),
                "observed_at": s.observed_at,
            }
        )


def _trusted_contribution(values: dict[str, object]) -> Contribution:
    """``Contribution.model_construct(**values)`` for a dict that gives every field."""
    return _trusted(Contribution, values, None)


def _trusted(
    model: type[_Trusted], values: dict[str, object], defaults: Mapping[str, object] | None
) -> _Trusted:
    """``model.model_construct(**values)`` in a fifth of its time, for values already of
    their fields' types and ``defaults`` the fields left out: the same instance state (the
    fields, those given set; no extra, no private), without the loop over the fields that
    looks for aliases and defaults."""
    record = _new_object(model)
    _set_state(record, "__dict__", values if defaults is None else {**values, **defaults})
    _set_state(record, "__pydantic_fields_set__", set(values))
    _set_state(record, "__pydantic_extra__", None)
    _set_state(record, "__pydantic_private__", None)
    return record


_new_object = object.__new__
_set_state = object.__setattr__


def weigh(signal: Observed, now: datetime, config: CorrelationConfig) -> Weighed:
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
    account_score: float | None = None,
) -> RuleMatch | None:
    """The rule's match on this account now, or None.

    ``built`` caches the Contribution records across an account's rules, by the identity
    of the Weighed entry (they live as long as the assessment). The rule's ``raise`` steps
    judge ``account_score`` (the match's own score when not given).
    """
    present = {w.signal.kind for w in weighed}
    return RulePlan(rule).match(account, weighed, present, now, built, account_score)


class RulePlan:
    """A rule made ready to match many accounts: the kinds it looks at, as sets.

    :meth:`match` is the exact test; :meth:`may_hold` and the batch pre-check
    (:mod:`swanwatch.correlate_batch`) only rule out accounts on which it cannot hold."""

    __slots__ = ("all_of", "any_of", "counted", "named", "rule", "since", "where")

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        #: The start of the rule's window, for the last ``now`` asked (``now``, start).
        self.since: tuple[datetime, datetime] | None = None
        self.all_of = frozenset(rule.all_of)
        self.any_of = frozenset(rule.any_of)
        self.counted = frozenset(rule.of) if rule.of else None
        # The kinds whose signals can count: all of them for "at least N kinds of any".
        every = rule.at_least is not None and self.counted is None
        self.named = None if every else self.all_of | self.any_of | (self.counted or frozenset())
        self.where = tuple(rule.where.items())

    def match(
        self,
        account: Account,
        weighed: Sequence[Weighed],
        present: set[str],
        now: datetime,
        built: dict[int, Contribution] | None,
        account_score: float | None,
        recent: _Recent | None = None,
    ) -> RuleMatch | None:
        """:func:`match_rule`; ``present`` is the kinds of all of ``weighed`` (a rule whose
        kinds are absent is out before any signal is looked at). ``recent``, when given,
        holds the same signals' kinds by window and the score of them all: a rule whose
        kinds are not all within its window, or whose least score is above that of every
        signal, is out before its signals are filtered one by one."""
        rule = self.rule
        if self.all_of and not self.all_of <= present:
            return None
        if self.any_of and not self.any_of & present:
            return None
        if not _account_fits(rule, account, now):
            return None
        window_start = self.window_start(now)
        if recent is not None and not self.may_hold(recent, window_start):
            return None
        named = self.named
        pool = weighed if named is None else [w for w in weighed if w.signal.kind in named]
        floor = rule.min_strength
        used = [
            w
            for w in pool
            if w.signal.observed_at >= window_start
            and w.signal.strength >= floor
            and (not self.where or _holds(self.where, w.signal))
        ]
        return self.matched(account, used, now, built, account_score)

    def matched(
        self,
        account: Account,
        used: Sequence[Weighed],
        now: datetime,
        built: dict[int, Contribution] | None,
        account_score: float | None,
        score: float | None = None,
    ) -> RuleMatch | None:
        """The match on the signals the rule uses (heaviest first; those within its
        window, strong enough, of its kinds and evidence), if they are enough for it.
        The account is taken to fit the rule. ``score``, when given, is the noisy-OR of
        ``used``, from a caller that has found their kinds and score enough (a batch)."""
        rule = self.rule
        if score is None:
            if not self.kinds_hold({w.signal.kind for w in used}):
                return None
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
        severity = raised(
            rule.severity,
            rule.raise_,
            account.arr,
            account.days_to_renewal(now),
            score if account_score is None else account_score,
        )
        return RuleMatch(rule=rule, contributions=tuple(records), score=score, severity=severity)

    def admits(self, signal: Observed) -> bool:
        """Whether the signal's evidence has the numbers the rule's ``where`` asks for."""
        return not self.where or _holds(self.where, signal)

    def window_start(self, now: datetime) -> datetime:
        since = self.since
        if since is None or since[0] != now:
            since = self.since = (now, now - self.rule.within)
        return since[1]

    def kinds_hold(self, kinds: set[str]) -> bool:
        """Whether signals of these kinds are enough for the rule's kinds."""
        if self.all_of and not self.all_of <= kinds:
            return False
        if self.any_of and not self.any_of & kinds:
            return False
        if self.rule.at_least is not None:
            counted = kinds if self.counted is None else kinds & self.counted
            if len(counted) < self.rule.at_least:
                return False
        return True

    def may_hold(self, recent: _Recent, window_start: datetime) -> bool:
        """Whether the rule may hold on an account, from all its signals: their score
        (that of any of them is at most that of all, rounding included: each factor of
        the noisy-OR is at most 1) and their kinds within the window (a superset of those
        the rule uses)."""
        if self.rule.min_score > 0 and recent.score < self.rule.min_score:
            return False
        return self.kinds_hold(recent.kinds_since(window_start))


class _Recent:
    """An account's weighed signals as its rules pre-check them: the kinds observed since
    each window's start (found once per window) and the score of all of them."""

    __slots__ = ("by_start", "score", "weighed")

    def __init__(self, weighed: Sequence[Weighed], score: float) -> None:
        self.weighed = weighed
        self.score = score
        self.by_start: dict[datetime, set[str]] = {}

    def kinds_since(self, start: datetime) -> set[str]:
        found = self.by_start.get(start)
        if found is None:
            found = {w.signal.kind for w in self.weighed if w.signal.observed_at >= start}
            self.by_start[start] = found
        return found


def _holds(where: Sequence[tuple[str, Between]], signal: Observed) -> bool:
    evidence = signal.evidence
    return all(between.holds(evidence.get(f)) for f, between in where)


def score_rule(config: CorrelationConfig) -> Rule:
    """The catch-all rule: a combined score over the threshold from several kinds. Its
    title and play name the signals it combines (:func:`candidates`); its severity rises
    with ``correlation.score_raise``."""
    return Rule(
        name=SCORE_RULE,
        title="Several risk signals at once",
        severity=Severity.WARNING,
        at_least=config.score_min_kinds,
        within=config.score_window,
        min_score=config.score_threshold,
        raise_=config.score_raise,
    )


def assess(
    account: Account,
    signals: Iterable[Observed],
    now: datetime,
    config: CorrelationConfig,
    rules: Sequence[Rule],
) -> Assessment:
    """Score one account and find the rules that hold for it."""
    return assess_planned(account, signals, now, config, [RulePlan(r) for r in rules])


def assess_planned(
    account: Account,
    signals: Iterable[Observed],
    now: datetime,
    config: CorrelationConfig,
    plans: Sequence[RulePlan],
) -> Assessment:
    """:func:`assess` with the rules made ready once for many accounts: the reference,
    account by account, that :func:`assess_all` gives the same assessments as."""
    weighed = heaviest_first(signals, now, config)
    built: dict[int, Contribution] = {}
    score = noisy_or(weighed)
    present = {w.signal.kind for w in weighed}
    recent = _Recent(weighed, score)
    matches = tuple(
        m
        for m in (p.match(account, weighed, present, now, built, score, recent) for p in plans)
        if m is not None
    )
    return Assessment(account=account, score=score, weighed=weighed, matches=matches)


def heaviest_first(
    signals: Iterable[Observed], now: datetime, config: CorrelationConfig
) -> tuple[Weighed, ...]:
    """An account's signals strong enough to count, weighed now, heaviest first."""
    return tuple(sorted(_weigh_all(signals, now, config), key=heaviest_key))


def _weigh_all(
    signals: Iterable[Observed], now: datetime, config: CorrelationConfig
) -> list[Weighed]:
    """:func:`weigh` for each signal strong enough to count, the same sums in one loop."""
    out = []
    floor = config.min_strength
    weights, default_weight = config.weights, config.default_weight
    half_lives, default_half_life = config.half_life_days, config.default_half_life_days
    for s in signals:
        strength = s.strength
        if strength < floor:
            continue
        weight = weights.get(s.kind, default_weight)
        half_life = s.half_life_days or half_lives.get(s.kind, default_half_life)
        age_days = max(0.0, (now - s.observed_at).total_seconds() / 86400)
        decay = math.pow(0.5, age_days / half_life)
        out.append(Weighed(s, weight, decay, age_days, weight * strength * decay))
    return out


def heaviest_key(w: Weighed) -> tuple[float, str, str]:
    """The order of an account's signals: heaviest first, then by kind and key."""
    return (-w.effective, w.signal.kind, w.signal.key)


def assess_all(
    accounts: Iterable[Account],
    signals: Iterable[Observed],
    now: datetime,
    config: CorrelationConfig,
    rules: Sequence[Rule],
) -> list[Assessment]:
    """Assess every account that has at least one signal; others carry no risk.

    The same assessments as :func:`assess_planned` account by account, found for the
    whole batch at once (:func:`swanwatch.correlate_batch.assess_batch`).
    """
    # numpy is loaded when a batch is first assessed, not when correlation is imported.
    from swanwatch.correlate_batch import assess_batch

    with collector.paused():  # the grouping and the batch in one pause
        by_account: dict[str, list[Observed]] = defaultdict(list)
        for s in signals:
            by_account[s.account_id].append(s)
        plans = [RulePlan(r) for r in [*rules, score_rule(config)]]
        assessed = [a for a in accounts if a.id in by_account]
        return assess_batch(assessed, by_account, now, config, plans)


def candidates(
    assessments: Iterable[Assessment],
    now: datetime,
    phrases: Mapping[str, str] = DEFAULT_PHRASES,
) -> list[Candidate]:
    """The alerts the assessments call for: ONE per account with a rule that holds.

    The most severe rule names it; the others are its further reasons, and their
    evidence and plays join it, each line once. The catch-all score rule speaks only when
    no named rule holds, or when the stake makes it more severe than all of them.
    """
    out: list[Candidate] = []
    with collector.paused():
        for a in assessments:
            if a.matches:
                out.append(_candidate(a, _speaking(a.matches), now, phrases))
    return out


def _speaking(matches: Sequence[RuleMatch]) -> list[RuleMatch]:
    """The matches an account's alert tells, most severe first (named rules before the
    catch-all at the same severity, then the stronger)."""
    if len(matches) == 1:  # alone, a match tells (the catch-all's rank is above -1)
        return list(matches)
    named = [m for m in matches if m.rule.name != SCORE_RULE]
    top = max((m.severity.rank for m in named), default=-1)
    keep = [m for m in matches if m.rule.name != SCORE_RULE or m.severity.rank > top]
    return sorted(
        keep,
        key=lambda m: (
            -m.severity.rank,
            m.rule.name == SCORE_RULE,
            -m.rule.severity.rank,  # at the same severity, the rule that is severe on its own
            -m.score,
            m.rule.name,
        ),
    )


def phrase(c: Contribution, phrases: Mapping[str, str]) -> str:
    """A signal in a few words: by ``kind:topic`` (the last part of its key), then kind."""
    topic = c.key.rsplit(":", 1)[-1] if ":" in c.key else ""
    found = phrases.get(f"{c.kind}:{topic}") if topic else None
    return found or phrases.get(c.kind) or c.kind.replace("_", " ")


def _joined(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _told(m: RuleMatch, phrases: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
    """A match's title and play; the catch-all's name the signals it combines."""
    if m.rule.name != SCORE_RULE:
        return m.rule.title, m.rule.play
    named = list(dict.fromkeys(phrase(c, phrases) for c in m.contributions))
    said = _joined(named)
    play = (
        f"CSM: this week, go through {said} with the account team and agree one owner for each.",
    )
    return said[:1].upper() + said[1:], play


def _candidate(
    a: Assessment, matches: Sequence[RuleMatch], now: datetime, phrases: Mapping[str, str]
) -> Candidate:
    account = a.account
    told = [_told(m, phrases) for m in matches]
    contributions = _union(c for m in matches for c in m.contributions)
    play = tuple(dict.fromkeys(step for _, steps in told for step in steps))
    reasons = tuple(
        _trusted(Reason, {"rule": m.rule.name, "title": title, "severity": m.severity}, _SINCE)
        for m, (title, _) in zip(matches, told, strict=True)
    )
    score = round(a.score, 4)
    days = account.days_to_renewal(now)
    renewal = account.renewal_date.isoformat() if account.renewal_date else None
    return Candidate(
        fingerprint=account_alert_fingerprint(account.id),
        account_id=account.id,
        rule=reasons[0].rule,
        title=reasons[0].title,
        severity=reasons[0].severity,
        score=score,
        contributions=contributions,
        why_now=_why_now(contributions, days, renewal),
        play=play,
        at_stake={
            "name": account.label,
            "arr": account.arr,
            "revenue_at_risk": arr_at_risk(account.arr, score),
            "renewal_date": renewal,
            "days_to_renewal": days,
            "owner": account.owner,
            "segment": account.segment,
        },
        reasons=reasons,
    )


#: A candidate's reason leaves ``since`` to the lifecycle: its default, not set.
_SINCE = {"since": None}


def _union(contributions: Iterable[Contribution]) -> tuple[Contribution, ...]:
    """Each signal once, heaviest first."""
    seen: dict[str, Contribution] = {}
    for c in contributions:
        seen.setdefault(c.fingerprint, c)
    return tuple(sorted(seen.values(), key=_heavier))


def _heavier(c: Contribution) -> tuple[float, str, str]:
    return (-(c.weight * c.strength * c.decay), c.kind, c.key)  # -c.effective


def _why_now(
    contributions: Sequence[Contribution], days: int | None, renewal: str | None
) -> tuple[str, ...]:
    """One line per signal, each said once; the renewal date unless a signal says it."""
    why = list(dict.fromkeys(map(_why, contributions)))
    if renewal is None or days is None or any(renewal in c.summary for c in contributions):
        return tuple(why)
    if 0 <= days <= 120:
        why.append(f"Renewal on {renewal} is {days} days away.")
    elif days < 0:
        why.append(f"Renewal date {renewal} passed {-days} days ago.")
    return tuple(why)


def _why(c: Contribution) -> str:
    if c.age_days < 1:
        return c.summary
    return f"{c.summary} (since {c.observed_at.date().isoformat()})"
