"""Learn from churn: what actually happened to accounts, against what a replay saw and told.

``swanwatch review`` replays history exactly as the backtest does (``backtest.replay``) and
holds the signals and alerts it yields against an outcomes file (``account_id, date,
outcome`` with outcome churned, downgraded, renewed or expanded).

Cases. Each account in the outcomes file whose outcome falls within the replayed period is
one case: its earliest loss (churned or downgraded) if it has one, otherwise its latest
renewal or expansion. Its **cutoff** is the start (00:00 UTC) of that outcome's day.
Accounts without an outcome are left out: nobody can say whether their alerts were right.

Attribution window. An event (a signal raised or an alert told) counts for a case when it
came within ``window`` before the cutoff: ``cutoff - window <= at < cutoff``. An event on the
day of the outcome or later foresaw nothing. Lead time is ``cutoff - at`` in days.

Per signal kind and per rule, over the cases: *flagged* cases have at least one such event
in their window; precision = losses among the flagged / flagged; recall = flagged losses /
all losses; lift = precision / the base rate of losses; median lead time over the flagged
losses, from each one's earliest event. A loss with no alert in its window is a *blind
spot*: either nothing was seen (a new watcher is called for) or signals were seen but no
rule combined them.

Fitted weights. Each case's features are, per signal kind, the largest ``strength x decay``
among its signals in the window (decay as in correlation: halving every half-life of the
kind, from when the signal was raised to the cutoff). An L2-regularised logistic regression
(scikit-learn, the ``swanwatch[review]`` extra) is fitted to loss (1) or not (0). It is
scored on held-out accounts by stratified k-fold cross-validation (each account's case is
predicted by a model that never saw it), beside the noisy-OR score of the same features
with the fitted weights, with the config's current weights and with uniform weights (0.5
each). For log loss a noisy-OR score gets a leak, ``1 - (1 - leak)(1 - score)``, where the
leak is the loss rate among the training fold's cases with no signal at all: without it a
loss nothing foresaw would score 0 and its log loss would be infinite. The leak does not
change the ranking, so ROC AUC is that of the bare score.

From coefficients to weights: correlation reads a weight as how likely one full-strength
signal of the kind, on its own, makes a loss on top of the leak (the noisy-OR). With the
model's intercept ``b`` the base probability is ``p0 = sigmoid(b)``, and one full-strength
signal of kind k alone gives ``p_k = sigmoid(b + beta_k)``. Solving the noisy-OR
``p_k = 1 - (1 - p0)(1 - w_k)`` gives ``w_k = (p_k - p0) / (1 - p0)``, clipped to 0..1: a
kind that lowers the odds (beta_k <= 0) gets weight 0, a decisive one nears 1. The weights
depend on the base rate of losses among the cases, as correlation's weights should.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from swanwatch.backtest import Event, replay, replayable
from swanwatch.correlate import noisy_or, weigh
from swanwatch.errors import SwanwatchError
from swanwatch.model import Signal
from swanwatch.settings import Config, CorrelationConfig
from swanwatch.sources.history import KindHistory, replay_kind_histories
from swanwatch.values import midnight

#: The outcomes an outcomes file may record.
OUTCOMES = ("churned", "downgraded", "renewed", "expanded")
#: The outcomes that count as losses.
LOSSES = frozenset({"churned", "downgraded"})
#: The attribution window unless told otherwise.
DEFAULT_WINDOW = timedelta(days=90)
#: The weight every kind gets in the uniform baseline.
UNIFORM_WEIGHT = 0.5
#: Keeps log loss finite when a score is exactly 0 or 1.
_EPS = 1e-6


class ReviewError(SwanwatchError):
    """The review cannot be made: a bad outcomes file, or the fit's extra is missing."""


class MissingExtraError(ReviewError):
    """scikit-learn is not installed: ``pip install 'swanwatch[review]'``."""


# --- outcomes -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One row of the outcomes file: what happened to an account, and when."""

    account_id: str
    date: date
    outcome: str
    line: int

    @property
    def loss(self) -> bool:
        return self.outcome in LOSSES


def read_outcomes(path: str | Path) -> list[Outcome]:
    """Read an outcomes CSV (account_id, date, outcome; other columns ignored).

    Raises ReviewError listing every bad row as ``file:line: reason``.
    """
    name = str(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in ("account_id", "date", "outcome") if c not in header]
            if missing:
                raise ReviewError(
                    f"{name}:1: the header lacks {', '.join(missing)} "
                    "(expected: account_id,date,outcome)"
                )
            reader.fieldnames = header
            out: list[Outcome] = []
            problems: list[str] = []
            for row in reader:
                line = reader.line_num
                account = (row.get("account_id") or "").strip()
                day_text = (row.get("date") or "").strip()
                what = (row.get("outcome") or "").strip().lower()
                if not (account or day_text or what):
                    continue  # a blank line
                reasons = []
                if not account:
                    reasons.append("account_id is empty")
                try:
                    day = date.fromisoformat(day_text[:10])
                except ValueError:
                    reasons.append(f"date {day_text!r} is not an ISO date (YYYY-MM-DD)")
                if what not in OUTCOMES:
                    reasons.append(f"outcome {what!r} is not one of {', '.join(OUTCOMES)}")
                if reasons:
                    problems.append(f"{name}:{line}: {'; '.join(reasons)}")
                    continue
                out.append(Outcome(account, day, what, line))
    except OSError as exc:
        raise ReviewError(f"cannot read the outcomes file {name}: {exc}") from exc
    if problems:
        shown = problems[:50]
        more = f"\n  ... and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise ReviewError(
            f"{len(problems)} bad rows in the outcomes file:\n  " + "\n  ".join(shown) + more
        )
    if not out:
        raise ReviewError(f"{name}: no outcomes")
    return out


@dataclass(frozen=True)
class Case:
    """One account judged against its outcome: the outcome and the cutoff before it."""

    account_id: str
    outcome: Outcome

    @property
    def loss(self) -> bool:
        return self.outcome.loss

    @property
    def cutoff(self) -> datetime:
        return midnight(self.outcome.date)


def select_cases(
    outcomes: Iterable[Outcome], start: datetime, end: datetime
) -> tuple[list[Case], list[tuple[Outcome, str]]]:
    """One case per account (its earliest loss, else its latest renewal or expansion) among
    the outcomes within the replayed days; and the outcomes left out, each with why."""
    first, last = start.date(), end.date()
    by_account: dict[str, list[Outcome]] = defaultdict(list)
    left_out: list[tuple[Outcome, str]] = []
    for o in outcomes:
        if not first <= o.date <= last:
            left_out.append((o, f"outside the replayed days {first}..{last}"))
            continue
        by_account[o.account_id].append(o)
    cases = []
    for account, rows in sorted(by_account.items()):
        losses = sorted((o for o in rows if o.loss), key=lambda o: o.date)
        kept = losses[0] if losses else max(rows, key=lambda o: o.date)
        cases.append(Case(account, kept))
        left_out.extend((o, "the account's case is another outcome") for o in rows if o != kept)
    return cases, left_out


# --- what came before each outcome --------------------------------------------------------


@dataclass(frozen=True)
class Sighting:
    """An event in a case's attribution window, with its lead time before the outcome."""

    event: Event
    lead_days: float


@dataclass(frozen=True)
class LossReport:
    """One loss and everything that came before it in the window."""

    case: Case
    signals: tuple[Sighting, ...]
    alerts: tuple[Sighting, ...]

    @property
    def foreseen(self) -> bool:
        """An alert was told before the loss."""
        return bool(self.alerts)

    @property
    def alert_lead_days(self) -> float | None:
        return max((s.lead_days for s in self.alerts), default=None)

    @property
    def signal_lead_days(self) -> float | None:
        return max((s.lead_days for s in self.signals), default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            "account": self.case.account_id,
            "outcome": self.case.outcome.outcome,
            "date": self.case.outcome.date.isoformat(),
            "foreseen": self.foreseen,
            "alert_lead_days": self.alert_lead_days,
            "signal_lead_days": self.signal_lead_days,
            "alerts": [_sighting_json(s) for s in self.alerts],
            "signals": [_sighting_json(s) for s in self.signals],
        }


def _sighting_json(s: Sighting) -> dict[str, Any]:
    return {**s.event.as_json(), "lead_days": s.lead_days}


@dataclass(frozen=True)
class PredictorStats:
    """How well one signal kind or rule foretold the losses among the cases."""

    type: str  # "signal" or "alert"
    name: str
    flagged: int
    hits: int
    losses: int
    cases: int
    median_lead_days: float | None

    @property
    def precision(self) -> float | None:
        return self.hits / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.hits / self.losses if self.losses else None

    @property
    def lift(self) -> float | None:
        precision = self.precision
        if precision is None or not self.losses:
            return None
        return precision / (self.losses / self.cases)

    def as_json(self) -> dict[str, Any]:
        key = "kind" if self.type == "signal" else "rule"
        return {
            "type": self.type,
            key: self.name,
            "flagged": self.flagged,
            "hits": self.hits,
            "precision": _round(self.precision),
            "recall": _round(self.recall),
            "lift": _round(self.lift),
            "median_lead_days": self.median_lead_days,
        }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


# --- fitted weights -----------------------------------------------------------------------


@dataclass(frozen=True)
class ModelScore:
    """A scoring of the cases, judged on held-out accounts."""

    name: str
    auc: float
    log_loss: float

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "roc_auc": round(self.auc, 4),
            "log_loss": round(self.log_loss, 4),
        }


@dataclass(frozen=True)
class WeightFit:
    """Weights fitted to the outcomes, and how they score against the alternatives."""

    kinds: tuple[str, ...]
    weights: Mapping[str, float]
    coefficients: Mapping[str, float]
    intercept: float
    scores: tuple[ModelScore, ...]
    folds: int
    c: float

    def score(self, name: str) -> ModelScore:
        return next(s for s in self.scores if s.name == name)

    def as_json(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "weights": dict(self.weights),
            "coefficients": {k: round(v, 4) for k, v in self.coefficients.items()},
            "intercept": round(self.intercept, 4),
            "held_out": [s.as_json() for s in self.scores],
            "folds": self.folds,
            "C": self.c,
        }


#: The names of the scorings in WeightFit.scores.
LOGISTIC, FITTED, CURRENT, UNIFORM = "logistic", "fitted_weights", "current_weights", "uniform"
SCORINGS = (LOGISTIC, FITTED, CURRENT, UNIFORM)


def features(
    cases: Sequence[Case],
    events: Iterable[Event],
    window: timedelta,
    correlation: CorrelationConfig,
) -> tuple[tuple[str, ...], list[list[float]]]:
    """Per case, per signal kind: the largest ``strength x decay`` at the cutoff among the
    kind's signals raised in the window (0 when none). Returns the kinds and the rows."""
    by_account: dict[str, list[Signal]] = defaultdict(list)
    for e in events:
        if e.type == "signal":
            by_account[e.account].append(_raised(e))
    rows: list[dict[str, float]] = []
    kinds: set[str] = set()
    for case in cases:
        best: dict[str, float] = {}
        for s in by_account.get(case.account_id, ()):
            if not case.cutoff - window <= s.observed_at < case.cutoff:
                continue
            # decay exactly as correlation weighs it, from the raising to the cutoff
            value = s.strength * weigh(s, case.cutoff, correlation).decay
            best[s.kind] = max(best.get(s.kind, 0.0), value)
            kinds.add(s.kind)
        rows.append(best)
    ordered = tuple(sorted(kinds))
    return ordered, [[row.get(k, 0.0) for k in ordered] for row in rows]


def _raised(event: Event) -> Signal:
    """A replay's signal event as the signal it was, observed when it was raised."""
    return Signal(
        account_id=event.account,
        kind=event.name,
        strength=event.score,
        observed_at=event.at,
        summary=event.summary or event.name,
    )


@dataclass(frozen=True, slots=True)
class _Term:
    """One kind's ``weight x feature``, in the shape correlation's noisy-OR reads."""

    effective: float


def noisy_or_score(row: Sequence[float], weights: Sequence[float]) -> float:
    """The correlation score of one case's features under the given weights."""
    return noisy_or(_Term(w * x) for x, w in zip(row, weights, strict=True))


def coefficients_to_weights(intercept: float, coefficients: Sequence[float]) -> list[float]:
    """Noisy-OR weights from a logistic model (see the module docstring)."""
    p0 = _sigmoid(intercept)
    return [
        round(min(1.0, max(0.0, (_sigmoid(intercept + b) - p0) / (1.0 - p0))), 3)
        for b in coefficients
    ]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def fit_weights(
    kinds: Sequence[str],
    x: Sequence[Sequence[float]],
    y: Sequence[int],
    correlation: CorrelationConfig,
    *,
    c: float = 1.0,
    folds: int = 5,
    seed: int = 0,
) -> WeightFit:
    """Fit the logistic model, map it to weights, and score every alternative held out.

    Needs scikit-learn (``pip install 'swanwatch[review]'``) and at least two losses and
    two non-losses. The held-out scores pool the out-of-fold predictions of a stratified
    k-fold split (k = ``folds``, fewer when a class has fewer cases).
    """
    try:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
    except ImportError as exc:
        raise MissingExtraError(
            f"fitting weights needs scikit-learn: pip install 'swanwatch[review]' ({exc})"
        ) from exc
    positives = sum(y)
    negatives = len(y) - positives
    if positives < 2 or negatives < 2:
        raise ReviewError(
            f"fitting weights needs at least 2 losses and 2 other outcomes among the cases; "
            f"there are {positives} and {negatives}"
        )
    if not kinds:
        raise ReviewError("fitting weights needs signals: the replay raised none in any window")
    xa = np.asarray(x, dtype=float)
    ya = np.asarray(y, dtype=int)
    k = max(2, min(folds, positives, negatives))
    current = [correlation.weights.get(kind, correlation.default_weight) for kind in kinds]
    scores = _held_out(xa, ya, current, folds=k, c=c, seed=seed)
    model = LogisticRegression(C=c, max_iter=1000).fit(xa, ya)
    intercept = float(model.intercept_[0])
    betas = [float(b) for b in model.coef_[0]]
    return WeightFit(
        kinds=tuple(kinds),
        weights=dict(zip(kinds, coefficients_to_weights(intercept, betas), strict=True)),
        coefficients=dict(zip(kinds, betas, strict=True)),
        intercept=intercept,
        scores=scores,
        folds=k,
        c=c,
    )


def _held_out(
    xa: Any, ya: Any, current: Sequence[float], *, folds: int, c: float, seed: int
) -> tuple[ModelScore, ...]:
    """Every scoring of the cases (SCORINGS), each case predicted by a model fitted on the
    folds without it (numpy arrays in; scikit-learn is installed)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    uniform = [UNIFORM_WEIGHT] * len(current)
    held: dict[str, Any] = {name: np.zeros(len(ya)) for name in SCORINGS}  # for log loss
    bare: dict[str, Any] = {name: np.zeros(len(ya)) for name in SCORINGS}  # for ROC AUC
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(xa, ya):
        model = LogisticRegression(C=c, max_iter=1000).fit(xa[train], ya[train])
        held[LOGISTIC][test] = bare[LOGISTIC][test] = model.predict_proba(xa[test])[:, 1]
        fold_weights = coefficients_to_weights(
            float(model.intercept_[0]), [float(b) for b in model.coef_[0]]
        )
        # The leak: how often a loss comes with nothing seen at all, learnt on the fold.
        blank = ~xa[train].any(axis=1)
        leak = float(ya[train][blank].mean()) if blank.any() else 0.0
        for name, weights in ((FITTED, fold_weights), (CURRENT, current), (UNIFORM, uniform)):
            bare[name][test] = [noisy_or_score(row, weights) for row in xa[test]]
            held[name][test] = 1.0 - (1.0 - leak) * (1.0 - bare[name][test])
    return tuple(
        ModelScore(
            name=name,
            auc=float(roc_auc_score(ya, bare[name])),
            log_loss=float(log_loss(ya, np.clip(held[name], _EPS, 1 - _EPS), labels=[0, 1])),
        )
        for name in SCORINGS
    )


def weights_yaml(fit: WeightFit, current: Mapping[str, float]) -> str:
    """Every kind's weight as a config snippet, ``correlation: {weights: {...}}``: the fitted
    ones, and the ``current`` (configured) weight of each kind the replay gave no signal of,
    each line saying which it is. Written whole, so that pasting it in changes exactly the
    fitted kinds and nothing else."""
    head = (
        "# Weights fitted by `swanwatch review` to recorded outcomes "
        f"({fit.folds}-fold held-out ROC AUC {fit.score(FITTED).auc:.3f}; current weights "
        f"{fit.score(CURRENT).auc:.3f}).\n"
        "# Every kind is listed: those the replay saw no signal of keep their current weight.\n"
    )
    weights = {**current, **fit.weights}
    width = max(len(k) for k in weights)
    lines = ["correlation:", "  weights:"]
    for kind in sorted(weights):
        why = "fitted" if kind in fit.weights else "kept: no signal of this kind in any window"
        lines.append(f"    {kind + ':':<{width + 1}} {float(weights[kind])!r:<20} # {why}")
    return head + "\n".join(lines) + "\n"


# --- the review ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Review:
    """Everything the review found."""

    start: datetime
    end: datetime
    window: timedelta
    cases: tuple[Case, ...]
    losses: tuple[LossReport, ...]
    predictors: tuple[PredictorStats, ...]
    fit: WeightFit | None
    fit_problem: str | None = None
    left_out: tuple[tuple[Outcome, str], ...] = ()
    events: int = 0
    #: The configured weight of every kind (the built-in ones merged with the config's).
    current_weights: Mapping[str, float] = field(default_factory=dict)
    #: Per signal kind replayed: are its lead times leak-free (every source it reads dated)?
    history: tuple[KindHistory, ...] = ()

    @property
    def blind_spots(self) -> list[LossReport]:
        """Losses no alert foretold."""
        return [r for r in self.losses if not r.foreseen]

    def as_json(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": self.end.isoformat().replace("+00:00", "Z"),
            "window_days": self.window.total_seconds() / 86400,
            "cases": len(self.cases),
            "losses": [r.as_json() for r in self.losses],
            "blind_spots": [r.case.account_id for r in self.blind_spots],
            "predictors": [p.as_json() for p in self.predictors],
            "fit": self.fit.as_json() if self.fit is not None else None,
            "fit_problem": self.fit_problem,
            "left_out": [
                {
                    "account": o.account_id,
                    "date": o.date.isoformat(),
                    "outcome": o.outcome,
                    "line": o.line,
                    "why": why,
                }
                for o, why in self.left_out
            ],
            "events": self.events,
            "lead_times": [h.as_json() for h in self.history],
        }


def review_events(
    events: Sequence[Event],
    outcomes: Sequence[Outcome],
    correlation: CorrelationConfig,
    start: datetime,
    end: datetime,
    *,
    window: timedelta = DEFAULT_WINDOW,
    c: float = 1.0,
    fit: bool = True,
) -> Review:
    """The review of a replay's events against the outcomes: pure, no I/O."""
    if window <= timedelta(0):
        raise ReviewError("the attribution window must be longer than zero")
    cases, left_out = select_cases(outcomes, start, end)
    if not cases:
        raise ReviewError(f"no outcome falls within the replayed days {start.date()}..{end.date()}")
    losses, earliest = _sightings(cases, events, window)
    fitted: WeightFit | None = None
    problem: str | None = None
    if fit:
        kinds, x = features(cases, events, window, correlation)
        try:
            fitted = fit_weights(kinds, x, [int(c.loss) for c in cases], correlation, c=c)
        except ReviewError as exc:
            problem = str(exc)
    return Review(
        start=start,
        end=end,
        window=window,
        cases=tuple(cases),
        losses=tuple(sorted(losses, key=lambda r: (r.case.outcome.date, r.case.account_id))),
        predictors=tuple(_predictors(cases, earliest)),
        fit=fitted,
        fit_problem=problem,
        left_out=tuple(left_out),
        events=len(events),
        current_weights=dict(correlation.weights),
    )


#: Per (event type, name), per case index: the earliest event's lead time in the window.
_Earliest = dict[tuple[str, str], dict[int, float]]


def _sightings(
    cases: Sequence[Case], events: Iterable[Event], window: timedelta
) -> tuple[list[LossReport], _Earliest]:
    """What came before each loss in its window, and the earliest lead of each signal kind
    and rule on each case."""
    by_account: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        by_account[e.account].append(e)
    losses: list[LossReport] = []
    earliest: _Earliest = defaultdict(dict)
    for i, case in enumerate(cases):
        seen: list[Sighting] = []
        for e in sorted(by_account.get(case.account_id, ()), key=lambda e: e.at):
            if not case.cutoff - window <= e.at < case.cutoff:
                continue
            lead = round((case.cutoff - e.at).total_seconds() / 86400, 2)
            seen.append(Sighting(e, lead))
            leads = earliest[(e.type, e.name)]
            leads[i] = max(leads.get(i, 0.0), lead)
        if case.loss:
            losses.append(
                LossReport(
                    case=case,
                    signals=tuple(s for s in seen if s.event.type == "signal"),
                    alerts=tuple(s for s in seen if s.event.type == "alert"),
                )
            )
    return losses, earliest


def _predictors(cases: Sequence[Case], earliest: _Earliest) -> list[PredictorStats]:
    """Precision, recall and lead time of each signal kind and rule over the cases."""
    total_losses = sum(1 for c in cases if c.loss)
    predictors = []
    for (kind, name), leads in sorted(earliest.items()):
        hit_leads = [lead for i, lead in leads.items() if cases[i].loss]
        predictors.append(
            PredictorStats(
                type=kind,
                name=name,
                flagged=len(leads),
                hits=len(hit_leads),
                losses=total_losses,
                cases=len(cases),
                median_lead_days=round(statistics.median(hit_leads), 1) if hit_leads else None,
            )
        )
    return predictors


async def review(
    config: Config,
    outcomes: Sequence[Outcome],
    start: datetime,
    end: datetime,
    *,
    step: timedelta = timedelta(days=1),
    window: timedelta = DEFAULT_WINDOW,
    c: float = 1.0,
    fit: bool = True,
) -> Review:
    """Replay ``start``..``end`` as the backtest does and review it against ``outcomes``.

    The outcomes and the window are checked before the (long) replay starts.
    """
    if window <= timedelta(0):
        raise ReviewError("the attribution window must be longer than zero")
    if not select_cases(outcomes, start, end)[0]:
        raise ReviewError(f"no outcome falls within the replayed days {start.date()}..{end.date()}")
    # Refused here, before the replay, if it would look ahead; else said per kind.
    history = await replay_kind_histories(config, replayable(config)[0])
    events = [e async for e in replay(config, start, end, step)]
    found = review_events(
        events, outcomes, config.correlation, start, end, window=window, c=c, fit=fit
    )
    return replace(found, history=tuple(history))
