"""Reports over alerts and feedback, pure: rule statistics and revenue at risk."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from swanwatch.model import Account, Alert, Feedback, Verdict, arr_at_risk


@dataclass(frozen=True)
class RuleStats:
    """How one rule has done: fired, acted on, marked noise, and its lead time."""

    rule: str
    fired: int
    acted_on: int
    useful: int
    noise: int
    median_lead_days: float | None

    @property
    def noise_rate(self) -> float | None:
        judged = self.useful + self.noise
        return self.noise / judged if judged else None


def rule_stats(
    alerts: Iterable[Alert], feedback: Iterable[Feedback], accounts: Mapping[str, Account]
) -> list[RuleStats]:
    """Per rule: episodes fired, how many were acted on (acknowledged, snoozed, resolved by
    hand, or marked useful or acted), how many were marked noise, and the median days
    between the alert and the account's renewal date (its lead time)."""
    verdicts: dict[tuple[str, int], set[Verdict]] = defaultdict(set)
    for f in feedback:
        verdicts[(f.alert_fingerprint, f.episode)].add(f.verdict)
    per_alert: dict[tuple[str, Verdict], int] = defaultdict(int)
    for (fp, _episode), said in verdicts.items():
        for verdict in said:
            per_alert[(fp, verdict)] += 1
    fired: dict[str, int] = defaultdict(int)
    acted: dict[str, int] = defaultdict(int)
    useful: dict[str, int] = defaultdict(int)
    noise: dict[str, int] = defaultdict(int)
    leads: dict[str, list[float]] = defaultdict(list)
    for alert in alerts:
        said = verdicts.get((alert.fingerprint, alert.episode), set())
        useful_n = sum(
            1
            for (fp, _ep), v in verdicts.items()
            if fp == alert.fingerprint and Verdict.USEFUL in v
        )
        noise_n = sum(
            1 for (fp, _ep), v in verdicts.items() if fp == alert.fingerprint and Verdict.NOISE in v
        )
        account = accounts.get(alert.account_id)
        # An account's alert speaks for each of its rules: the one that names it and its
        # further reasons (an alert of before keeps its one rule).
        for rule in dict.fromkeys((alert.rule, *(r.rule for r in alert.reasons))):
            fired[rule] += alert.episode
            if _by_a_person(alert) or said & {Verdict.USEFUL, Verdict.ACTED}:
                acted[rule] += 1
            useful[rule] += useful_n
            noise[rule] += noise_n
            if account is not None and account.renewal_date is not None:
                leads[rule].append((account.renewal_date - alert.started_at.date()).days)
    return [
        RuleStats(
            rule=rule,
            fired=fired[rule],
            acted_on=acted[rule],
            useful=useful[rule],
            noise=noise[rule],
            median_lead_days=statistics.median(leads[rule]) if leads[rule] else None,
        )
        for rule in sorted(fired)
    ]


def _by_a_person(alert: Alert) -> bool:
    """Acknowledged, snoozed or resolved by someone (not retired, not merged: no one)."""
    return (alert.acted_by or "").partition(":")[0] in ("ack", "snooze", "resolve")


@dataclass(frozen=True)
class RiskLine:
    """One account's open risk: its worst alert and the revenue it puts at risk."""

    account: Account
    score: float
    revenue_at_risk: float
    rules: tuple[str, ...]
    severity: str

    def group(self, by: str) -> str:
        if by == "owner":
            return self.account.owner or "(no owner)"
        if by == "segment":
            return self.account.segment or "(no segment)"
        if by == "rule":
            return self.rules[0]
        return "all"


def risk_lines(alerts: Iterable[Alert], accounts: Mapping[str, Account]) -> list[RiskLine]:
    """Open risks per account, ranked by ARR at risk (:func:`swanwatch.model.arr_at_risk`:
    ARR x the account's score, the one definition the board, the digests and the alerts
    use). One line per account, so an account's revenue is never counted twice.
    """
    by_account: dict[str, list[Alert]] = defaultdict(list)
    for a in alerts:
        if a.open and a.account_id in accounts:
            by_account[a.account_id].append(a)
    lines = []
    for account_id, group in by_account.items():
        account = accounts[account_id]
        worst = max(group, key=lambda a: (a.severity.rank, a.score))
        score = max(a.score for a in group)
        ranked = sorted(group, key=lambda a: (-a.severity.rank, -a.score))
        rules = [r.rule for a in ranked for r in a.reasons] or [a.rule for a in ranked]
        lines.append(
            RiskLine(
                account=account,
                score=score,
                revenue_at_risk=arr_at_risk(account.arr, score),
                rules=tuple(dict.fromkeys(rules)),
                severity=str(worst.severity),
            )
        )
    return sorted(lines, key=lambda line: (-line.revenue_at_risk, line.account.id))


def totals(lines: Sequence[RiskLine], by: str) -> list[tuple[str, int, float, float]]:
    """(group, accounts, ARR, revenue at risk) per group, largest risk first."""
    return group_totals((line.group(by), line.account.arr, line.revenue_at_risk) for line in lines)


def group_totals(
    rows: Iterable[tuple[str, float, float]],
) -> list[tuple[str, int, float, float]]:
    """(group, accounts, ARR, ARR at risk) from (group, ARR, ARR at risk) rows, largest risk
    first: the one summing rule of `risk report` and the board."""
    out: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0.0])
    for name, arr, at_risk in rows:
        row = out[name]
        row[0] += 1
        row[1] += arr
        row[2] += at_risk
    return sorted(
        ((g, int(v[0]), round(v[1], 2), round(v[2], 2)) for g, v in out.items()),
        key=lambda t: (-t[3], t[0]),
    )
