"""Scenario: 120 days of 50 accounts with planted black swans, replayed as the backtest does.

Every planted compound risk must be alerted before its planted loss date, and the clean
accounts, which carry only ordinary noise, must stay under a stated bound of false alerts.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import pytest
import scenario as scenario_module

from swanwatch.backtest import Event, replay
from swanwatch.config import load_config

#: At most this share of the clean accounts may raise any alert over the 120 days.
FALSE_ALERT_BOUND = 0.10


@pytest.mark.slow
async def test_planted_black_swans_are_alerted_before_the_loss_and_clean_accounts_stay_quiet(
    tmp_path: Path,
) -> None:
    scenario = scenario_module.build(tmp_path / "scenario", accounts=50)
    config = load_config(scenario.config)
    events: list[Event] = [
        e async for e in replay(config, scenario.start, scenario.end, timedelta(days=1))
    ]
    alerts: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.type == "alert":
            alerts[e.account].append(e)
    compound = scenario.compound
    assert len(compound) == 8 and len(scenario.clean) == 40

    rules = scenario_module.COMPOUND
    for plan in compound:
        assert plan.story is not None and plan.loss_date is not None
        before = [(e.name, e.at.date()) for e in alerts[plan.id] if e.at.date() < plan.loss_date]
        assert rules[plan.story] in {name for name, _ in before}, (
            f"{plan.id} ({plan.story}, lost {plan.loss_date}) was not alerted by "
            f"{rules[plan.story]} in time; alerts before the loss: {before}"
        )
        lead_days = (plan.loss_date - min(at for _, at in before)).days
        assert lead_days >= 7, f"{plan.id}: only {lead_days} days of warning"

    (blind,) = [p for p in scenario.plans if p.story == "blind"]
    assert not alerts[blind.id], "nothing was planted on the blind account"

    falsely = sorted(p.id for p in scenario.clean if alerts[p.id])
    bound = FALSE_ALERT_BOUND * len(scenario.clean)
    assert len(falsely) <= bound, (
        f"{len(falsely)} clean accounts alerted (bound {bound:g}): {falsely}"
    )
