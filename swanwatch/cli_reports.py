"""`swanwatch rules stats` and `swanwatch risk report`: how the rules do, what is at risk."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from swanwatch.cli_common import (
    config_option,
    emit_json,
    json_option,
    load,
    read_store,
    table,
    tty,
)

if TYPE_CHECKING:
    from swanwatch.reports import RiskLine


@click.group()
def rules() -> None:
    """Compound rules."""


@rules.command("stats")
@config_option
@json_option
def rules_stats(config_path: Path, as_json: bool) -> None:
    """Per rule: alerts fired, acted on, marked noise, median lead time before renewal."""
    from swanwatch.reports import rule_stats

    config = load(config_path)
    with read_store(config) as store:
        stats = (
            rule_stats(store.alerts(), store.feedback(), {a.id: a for a in store.accounts()})
            if store is not None
            else []
        )
    if as_json or not tty():
        emit_json(
            [
                {
                    "rule": r.rule,
                    "fired": r.fired,
                    "acted_on": r.acted_on,
                    "useful": r.useful,
                    "noise": r.noise,
                    "median_lead_days": r.median_lead_days,
                }
                for r in stats
            ]
        )
        return
    table(
        "Rules",
        ["rule", "fired", "acted on", "useful", "noise", "median lead (days)"],
        [(r.rule, r.fired, r.acted_on, r.useful, r.noise, r.median_lead_days) for r in stats],
    )


@click.group()
def risk() -> None:
    """Revenue at risk."""


@risk.command("report")
@config_option
@click.option(
    "--by",
    "by",
    type=click.Choice(["owner", "segment", "rule"]),
    default=None,
    help="Group and total by this.",
)
@click.option("--json", "as_json", is_flag=True, help="JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV.")
def risk_report(config_path: Path, by: str | None, as_json: bool, as_csv: bool) -> None:
    """Open risks ranked by ARR at risk, with totals per group."""
    from swanwatch.reports import risk_lines, totals

    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    config = load(config_path)
    with read_store(config) as store:
        lines = (
            risk_lines(
                [a for a in store.alerts(open_only=True) if a.muted_by is None],
                {a.id: a for a in store.accounts()},
            )
            if store is not None
            else []
        )
    group = by or "all"
    sums = totals(lines, group)
    rows = _risk_rows(lines, group)
    if as_json:
        emit_json(
            {
                "by": group,
                "accounts": rows,
                "totals": [
                    {"group": g, "accounts": n, "arr": arr, "revenue_at_risk": risk}
                    for g, n, arr, risk in sums
                ],
                "total_revenue_at_risk": round(sum(line.revenue_at_risk for line in lines), 2),
            }
        )
    elif as_csv or not tty():
        _risk_csv(rows)
    else:
        _risk_tables(rows, sums, group)


def _risk_rows(lines: Sequence[RiskLine], group: str) -> list[dict[str, Any]]:
    return [
        {
            "account": line.account.id,
            "name": line.account.name,
            "group": line.group(group),
            "owner": line.account.owner,
            "segment": line.account.segment,
            "arr": line.account.arr,
            "score": round(line.score, 4),
            "revenue_at_risk": line.revenue_at_risk,
            "severity": line.severity,
            "renewal_date": line.account.renewal_date,
            "rules": " ".join(line.rules),
        }
        for line in lines
    ]


def _risk_csv(rows: Sequence[dict[str, Any]]) -> None:
    import csv

    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["account"])
    writer.writeheader()
    writer.writerows(rows)


def _risk_tables(
    rows: Sequence[dict[str, Any]], sums: Sequence[tuple[str, int, float, float]], group: str
) -> None:
    """The ranking, then the totals: per group with --by, else one line of totals (no
    column of "all")."""
    grouped = group != "all"
    by = [group] if grouped else []
    table(
        "ARR at risk (ARR x score)",
        ["account", *by, "ARR", "risk", "ARR at risk", "severity", "renewal", "rules"],
        [
            (
                r["name"] or r["account"],
                *([r["group"]] if grouped else []),
                f"{r['arr']:,.0f}",
                f"{r['score']:.2f}",
                f"{r['revenue_at_risk']:,.0f}",
                r["severity"],
                r["renewal_date"],
                r["rules"],
            )
            for r in rows
        ],
    )
    table(
        f"Totals by {group}" if grouped else "Totals",
        [*by, "accounts", "ARR", "ARR at risk"],
        [(*([g] if grouped else []), n, f"{arr:,.0f}", f"{risk:,.0f}") for g, n, arr, risk in sums],
    )
