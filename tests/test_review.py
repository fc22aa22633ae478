"""`swanwatch review` on the scenario's history: lead times, blind spots and fitted weights."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import scenario as scenario_module
import yaml
from click.testing import CliRunner

from swanwatch.backtest import Event
from swanwatch.cli import main
from swanwatch.config import load_config
from swanwatch.correlate import assess
from swanwatch.model import Account, Severity, Signal
from swanwatch.review import (
    CURRENT,
    FITTED,
    LOGISTIC,
    UNIFORM,
    Case,
    Outcome,
    ReviewError,
    coefficients_to_weights,
    features,
    noisy_or_score,
    read_outcomes,
    review,
    weights_yaml,
)
from swanwatch.settings import DEFAULT_WEIGHTS


def test_bad_outcome_rows_are_named_by_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "outcomes.csv"
    path.write_text(
        "account_id,date,outcome\n"
        "acc-1,2026-10-01,churned\n"
        ",2026-10-02,renewed\n"
        "acc-3,next week,renewed\n"
        "acc-4,2026-10-04,lost\n"
        "\n"
        "acc-5,2026-10-05,expanded\n"
    )
    with pytest.raises(ReviewError) as caught:
        read_outcomes(path)
    message = str(caught.value)
    assert "3 bad rows" in message
    assert f"{path}:3: account_id is empty" in message
    assert f"{path}:4: date 'next week' is not an ISO date" in message
    assert f"{path}:5: outcome 'lost' is not one of churned, downgraded, renewed, expanded" in (
        message
    )
    path.write_text("account,when,what\nacc-1,2026-10-01,churned\n")
    with pytest.raises(ReviewError, match=r"outcomes.csv:1: the header lacks account_id, date"):
        read_outcomes(path)


def test_coefficients_map_to_noisy_or_weights() -> None:
    # One full-strength signal alone: sigmoid(b + beta) = 1 - (1 - sigmoid(b)) (1 - w).
    assert coefficients_to_weights(0.0, [0.0, -1.0, 50.0]) == [0.0, 0.0, 1.0]
    (w,) = coefficients_to_weights(-2.0, [2.0])
    p0 = 1 / (1 + 2.718281828459045**2)
    assert w == pytest.approx((0.5 - p0) / (1 - p0), abs=1e-3)


def test_features_score_a_case_as_correlation_scores_its_signals() -> None:
    # The review's decay and noisy-OR are correlation's: a case's features under the
    # config's weights score what correlation gives the same signals at the cutoff.
    config = load_config(Path(__file__).resolve().parents[1] / "config" / "demo.yaml")
    correlation = config.correlation.model_copy(
        update={"half_life_days": {"usage_drop": 10.0, "nps_drop": 3.0}}
    )
    cutoff = datetime(2026, 5, 1, tzinfo=UTC)
    case = Case("acme", Outcome("acme", date(2026, 5, 1), "churned", 2))
    raised = [
        ("usage_drop", 0.8, 12),
        ("usage_drop", 0.5, 2),  # weaker but fresher: its strength x decay is the larger
        ("nps_drop", 0.9, 5),
        ("champion_departure", 0.7, 200),  # outside the 90-day window
    ]
    events = [
        Event("signal", cutoff - timedelta(days=d), "acme", k, Severity.WARNING, s, f"{k}.")
        for k, s, d in raised
    ]
    kinds, [row] = features([case], events, timedelta(days=90), correlation)
    assert kinds == ("nps_drop", "usage_drop")
    assert row == [pytest.approx(0.9 * 0.5 ** (5 / 3)), pytest.approx(0.5 * 0.5 ** (2 / 10))]
    strongest = [
        Signal(account_id="acme", kind=k, strength=s, observed_at=cutoff - timedelta(days=d),
               summary=f"{k}.")
        for k, s, d in (raised[1], raised[2])
    ]  # fmt: skip
    weights = [correlation.weights.get(k, correlation.default_weight) for k in kinds]
    assessed = assess(Account(id="acme"), strongest, cutoff, correlation, [])
    assert noisy_or_score(row, weights) == pytest.approx(assessed.score)


@pytest.mark.slow
async def test_review_of_the_scenario_finds_every_loss_and_fitted_weights_beat_uniform(
    tmp_path: Path,
) -> None:
    # 200 accounts, not 50: 5-fold cross-validation needs enough losses in each fold for a
    # stable ROC AUC (50 accounts give 10 losses, two per fold, and AUCs that swing by
    # +-0.05 with the seed). The everyday noise (a sponsor's new title, a burst of routine
    # tickets) is three times the scenario test's, so the signal kinds differ in how much
    # they tell: that difference is what fitted weights can learn and uniform ones cannot.
    scenario = scenario_module.build(tmp_path / "history", accounts=200, everyday_noise=3.0)
    config = load_config(scenario.config)
    outcomes = read_outcomes(scenario.outcomes_csv(tmp_path / "outcomes.csv"))
    found = await review(config, outcomes, scenario.start, scenario.end)

    assert len(found.cases) == 200
    # Accounts and contracts are dated snapshots, the rest dated rows: every lead time is clean.
    assert {h.kind: h.leak_free for h in found.history} == {
        "champion_departure": True,
        "renewal_lapse": True,
        "support_spike": True,
        "usage_drop": True,
    }
    reported = {r.case.account_id: r for r in found.losses}
    assert set(reported) == {p.id for p in scenario.losses}
    for plan in scenario.losses:
        report = reported[plan.id]
        assert report.case.outcome.date == plan.loss_date
        if plan.story in scenario_module.COMPOUND:
            assert report.foreseen, f"{plan.id} ({plan.story}) has no alert before its loss"
            first = min(s.event.at for s in report.alerts).date()
            assert report.alert_lead_days == (plan.loss_date - first).days >= 7
        elif plan.story == "flatline":
            assert report.signal_lead_days is not None and report.signal_lead_days > 0
        else:
            assert plan.story == "blind" and not report.signals and not report.alerts
    blind = {r.case.account_id for r in found.blind_spots}
    assert blind == {p.id for p in scenario.losses if p.story in ("blind", "flatline")}

    rules = {p.name: p for p in found.predictors if p.type == "alert"}
    for rule in scenario_module.COMPOUND.values():
        assert rules[rule].hits > 0 and rules[rule].median_lead_days is not None
    kinds = {p.name: p for p in found.predictors if p.type == "signal"}
    assert kinds["usage_drop"].lift is not None and kinds["usage_drop"].lift > 1

    fit = found.fit
    assert fit is not None, found.fit_problem
    assert fit.score(FITTED).auc > fit.score(UNIFORM).auc, fit.as_json()
    assert fit.score(LOGISTIC).auc > fit.score(UNIFORM).auc, fit.as_json()
    assert fit.weights["usage_drop"] > fit.weights["support_spike"]
    # Every kind is written: the fitted ones, and the others at their current weight.
    snippet = yaml.safe_load(weights_yaml(fit, found.current_weights))
    assert snippet == {"correlation": {"weights": {**found.current_weights, **fit.weights}}}
    assert set(snippet["correlation"]["weights"]) >= set(DEFAULT_WEIGHTS) | set(fit.weights)
    assert {s.name for s in fit.scores} == {LOGISTIC, FITTED, CURRENT, UNIFORM}


def test_review_command_writes_usable_weights(tmp_path: Path) -> None:
    # The command's wiring, not the review's judgement (the test above): a smaller history
    # replayed every third day is enough to fit, report and write the weights.
    scenario = scenario_module.build(tmp_path / "history", accounts=30)
    outcomes = scenario.outcomes_csv(tmp_path / "outcomes.csv")
    weights = tmp_path / "weights.yaml"
    args = [
        "review",
        "-c",
        str(scenario.config),
        "--outcomes",
        str(outcomes),
        "--start",
        scenario.start.date().isoformat(),
        "--end",
        scenario.end.date().isoformat(),
        "--step",
        "3d",
    ]
    done = CliRunner().invoke(main, [*args, "--write-weights", str(weights), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert {r["account"] for r in report["losses"]} == {p.id for p in scenario.losses}
    assert report["window_days"] == 90
    assert {h["kind"]: h["leak_free"] for h in report["lead_times"]}["renewal_lapse"] is True
    assert {m["model"] for m in report["fit"]["held_out"]} == {LOGISTIC, FITTED, CURRENT, UNIFORM}
    # The snippet drops into a config as it is.
    merged = yaml.safe_load(scenario.config.read_text())
    merged["correlation"].update(yaml.safe_load(weights.read_text())["correlation"])
    scenario.config.write_text(yaml.safe_dump(merged))
    written = yaml.safe_load(weights.read_text())["correlation"]["weights"]
    assert set(written) >= set(DEFAULT_WEIGHTS)  # every kind, not only the fitted ones
    assert load_config(scenario.config).correlation.weights == written
    assert {k: written[k] for k in report["fit"]["weights"]} == report["fit"]["weights"]

    bad = tmp_path / "bad.csv"
    bad.write_text("account_id,date,outcome\nacc-0001,2026-10-01,gone\n")
    done = CliRunner().invoke(main, ["review", *args[1:3], "--outcomes", str(bad), *args[5:]])
    assert done.exit_code == 2
    assert f"{bad}:2: outcome 'gone'" in done.output
