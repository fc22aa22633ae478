"""`swanwatch review`: hold a replay of history against what actually happened to accounts."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from swanwatch.cli_common import (
    DURATION,
    INSTANT,
    BadConfig,
    Failure,
    config_option,
    emit_json,
    json_option,
    load,
    tty,
)
from swanwatch.errors import SwanwatchError

if TYPE_CHECKING:  # the review's and rich's imports wait until the command runs
    from rich.console import Console
    from rich.table import Table

    from swanwatch.review import Outcome, Review, WeightFit
    from swanwatch.settings import Config


def escape(text: str) -> str:
    """User text (account ids, kinds, rule names) shown as it is, never read as markup."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _days(value: float | None) -> str:
    return "-" if value is None else f"{value:g} d"


@click.command("review")
@config_option
@click.option(
    "--outcomes",
    "outcomes_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="CSV: account_id, date, outcome (churned, downgraded, renewed or expanded).",
)
@click.option("--start", type=INSTANT, required=True, help="First simulated day (ISO 8601).")
@click.option("--end", type=INSTANT, required=True, help="Last simulated day (ISO 8601).")
@click.option("--step", type=DURATION, default="1d", show_default=True, help="e.g. 1d, 6h.")
@click.option(
    "--window",
    type=DURATION,
    default="90d",
    show_default=True,
    help="Attribution window: an event counts for an outcome if it came this long before it.",
)
@click.option(
    "--write-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write every kind's weight as a config snippet (correlation: {weights: ...}): "
    "the fitted ones, and the current weight of kinds the replay saw no signal of.",
)
@json_option
def review(
    config_path: Path,
    outcomes_path: Path,
    start: datetime,
    end: datetime,
    step: timedelta,
    window: timedelta,
    write_weights: Path | None,
    as_json: bool,
) -> None:
    """Replay history and hold it against what happened: lead times, blind spots,
    precision and recall per signal kind and rule, and weights fitted to the outcomes."""
    from swanwatch.review import review as review_history

    config, outcomes = _read(config_path, outcomes_path)
    try:
        found = asyncio.run(review_history(config, outcomes, start, end, step=step, window=window))
    except SwanwatchError as exc:
        raise Failure(str(exc)) from exc
    if write_weights is not None:
        _write_weights(found, write_weights)
    if as_json or not tty():
        emit_json(found.as_json())
    else:
        _print(found, write_weights)


def _read(config_path: Path, outcomes_path: Path) -> tuple[Config, list[Outcome]]:
    """The config and the outcomes; a bad outcomes file exits 2, as a bad config does."""
    from swanwatch.review import read_outcomes

    config = load(config_path)
    try:
        return config, read_outcomes(outcomes_path)
    except SwanwatchError as exc:
        raise BadConfig(str(exc)) from exc


def _write_weights(found: Review, path: Path) -> None:
    from swanwatch.review import weights_yaml

    if found.fit is None:
        raise Failure(f"no weights to write: {found.fit_problem}")
    path.write_text(weights_yaml(found.fit, found.current_weights), encoding="utf-8")
    click.echo(f"wrote the fitted weights to {path}", err=True)


def _print(found: Review, written: Path | None = None) -> None:
    from rich.console import Console

    console = Console()
    window = found.window.total_seconds() / 86400
    console.print(
        f"{len(found.cases)} accounts with an outcome in {found.start.date()}..{found.end.date()}"
        f", {len(found.losses)} losses; an event counts if it came within {window:g} days "
        "before the outcome."
    )
    console.print(_losses_table(found))
    console.print(_predictors_table(found))
    console.print(_history_table(found))
    if found.fit is None:
        # markup=False: the reason names `swanwatch[review]`, which is not markup.
        console.print(f"Weights not fitted: {found.fit_problem}", markup=False)
        return
    _print_fit(console, found.fit, saved=written)


def _losses_table(found: Review) -> Table:
    from rich.table import Table

    losses = Table(title="Losses and what came before them")
    for col in ("account", "outcome", "date", "first alert", "first signal", "alerts", "signals"):
        losses.add_column(col)
    for r in found.losses:
        losses.add_row(
            escape(r.case.account_id),
            escape(r.case.outcome.outcome),
            r.case.outcome.date.isoformat(),
            _days(r.alert_lead_days) + " before" if r.alerts else "[red]none: blind spot[/red]",
            _days(r.signal_lead_days) + " before" if r.signals else "none",
            escape(", ".join(sorted({s.event.name for s in r.alerts}))),
            escape(", ".join(sorted({s.event.name for s in r.signals}))),
        )
    return losses


def _predictors_table(found: Review) -> Table:
    from rich.table import Table

    stats = Table(title="Per signal kind and rule, against the outcomes")
    for col in ("type", "name", "flagged", "losses", "precision", "recall", "lift", "median lead"):
        stats.add_column(col)
    for p in found.predictors:
        stats.add_row(
            p.type,
            escape(p.name),
            str(p.flagged),
            str(p.hits),
            _fmt(p.precision),
            _fmt(p.recall),
            _fmt(p.lift),
            _days(p.median_lead_days),
        )
    return stats


def _history_table(found: Review) -> Table:
    from rich.table import Table

    table = Table(title="Are the lead times leak-free? (no source read as it is today)")
    for col in ("kind", "leak-free", "how its sources keep their history"):
        table.add_column(col)
    for kind in found.history:
        verdict = "yes" if kind.leak_free else f"[yellow]{escape(kind.statement())}[/yellow]"
        described = "; ".join(h.describe() for h in kind.sources)
        table.add_row(escape(kind.kind), verdict, escape(described))
    return table


def _print_fit(console: Console, fit: WeightFit, *, saved: Path | None) -> None:
    from rich.table import Table

    from swanwatch.review import CURRENT, FITTED

    weights = Table(title="Weights fitted to the outcomes")
    for col in ("kind", "fitted", "coefficient"):
        weights.add_column(col)
    for kind in fit.kinds:
        weights.add_row(escape(kind), f"{fit.weights[kind]:.3f}", f"{fit.coefficients[kind]:+.3f}")
    console.print(weights)
    held = Table(title=f"Held out ({fit.folds}-fold cross-validation over accounts)")
    for col in ("scoring", "ROC AUC", "log loss"):
        held.add_column(col)
    for s in fit.scores:
        held.add_row(s.name, f"{s.auc:.3f}", f"{s.log_loss:.3f}")
    console.print(held)
    better = fit.score(FITTED).auc - fit.score(CURRENT).auc
    where = f"saved in {saved}" if saved else "`--write-weights FILE` saves them"
    console.print(
        f"The fitted weights rank losses {'better' if better > 0 else 'no better'} than the "
        f"current ones (ROC AUC {better:+.3f}); {where}.",
        markup=False,
    )
