"""Exact tails for ticket counts: how improbable a window's count is at an account's own rate.

The support watcher asks of each count (tickets, escalations, P1s): given ``baseline``
events in the ``baseline_days`` before, how likely is it to see at least ``recent`` in the
next ``window_days``, if nothing has changed? docs/statistics.md explains the model; in
short:

- The account's rate is uncertain: after ``B`` events in ``b`` days (and Jeffreys' prior)
  it is Gamma(B + 1/2, b). A Poisson count over ``w`` days at that rate is, unconditionally,
  negative binomial with mean (B + 1/2) w / b and variance mean x (1 + w / b). A short or
  quiet baseline so widens the tail by itself; no "at least one ticket" floor is needed.
- Tickets come in clumps (one outage, five tickets). ``dispersion`` (variance / mean of the
  counts per window, 1 for Poisson) widens the variance by that factor at the same mean.

The tail is summed exactly in log space (``lgamma``), so p-values of 1e-30 stay exact and a
count far below its mean costs a few terms. No scipy: it is fifteen lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

#: Jeffreys' prior for a Poisson rate: Gamma(1/2, 0), so no events in b days is a rate of
#: about 1/(2b), not zero.
PRIOR_EVENTS = 0.5
_LN10 = math.log(10.0)


def predictive(
    baseline: int, baseline_days: float, window_days: float, dispersion: float = 1.0
) -> tuple[float, float]:
    """The window count expected from the baseline, and its variance-to-mean ratio."""
    mean = (baseline + PRIOR_EVENTS) * window_days / baseline_days
    return mean, max(1.0, dispersion) * (1.0 + window_days / baseline_days)


def log10_tail(count: int, mean: float, variance_ratio: float) -> float:
    """log10 P(X >= count) for X negative binomial with this mean and variance / mean (> 1).

    The pmf is Gamma(k + r) / (Gamma(r) k!) (1 - q)^r q^k with q = 1 - 1/variance_ratio and
    r = mean / (variance_ratio - 1).
    """
    if count <= 0:
        return 0.0
    if mean <= 0:
        return -math.inf
    q = 1.0 - 1.0 / variance_ratio
    r = mean / (variance_ratio - 1.0)
    log_q, log_1q = math.log(q), -math.log(variance_ratio)
    head = math.lgamma(r) - r * log_1q

    def log_pmf(k: int) -> float:
        return math.lgamma(k + r) - head - math.lgamma(k + 1) + k * log_q

    if count <= mean:  # the tail is large: one minus the few terms below it
        below = sum(math.exp(log_pmf(k)) for k in range(count))
        return math.log10(max(1.0 - below, 1e-300))
    # Above the mean each term is smaller than the last (ratio q (k + r) / (k + 1) < 1).
    term, total, k = 1.0, 1.0, count
    while term > 1e-17 * total and k < count + 1_000_000:
        term *= q * (k + r) / (k + 1)
        total += term
        k += 1
    return (log_pmf(count) + math.log(total)) / _LN10


def dispersion_index(counts: Sequence[int]) -> float:
    """Variance / mean of counts per window (Pearson's chi-squared over its degrees of
    freedom), at least 1: how much clumpier than Poisson the baseline's windows were."""
    if len(counts) < 2:
        return 1.0
    mean = sum(counts) / len(counts)
    if mean <= 0:
        return 1.0
    spread = sum((c - mean) ** 2 for c in counts) / (len(counts) - 1)
    return max(1.0, spread / mean)
