"""The incremental replay (each source read once, every day served from memory) tells
exactly what the replay that re-reads every source every day tells: the same events, in the
same order, with the same scores, on the demo and on the scenarios of the backtest and
review tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import scenario as scenario_module

from swanwatch.backtest import Event, replay
from swanwatch.config import Config, load_config

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "config" / "demo.yaml"


async def _both(
    config: Config, start: datetime, end: datetime, step: timedelta
) -> tuple[list[Event], list[Event]]:
    old = [e async for e in replay(config, start, end, step, incremental=False)]
    new = [e async for e in replay(config, start, end, step)]
    return old, new


def _assert_same(old: list[Event], new: list[Event]) -> None:
    assert any(e.type == "alert" for e in old), "a comparison that tells no alert proves little"
    for i, (a, b) in enumerate(zip(old, new, strict=False)):
        assert a == b, f"event {i} differs: {a} != {b}"
    assert len(new) == len(old)


@pytest.mark.slow
async def test_the_demo_replays_the_same_incrementally() -> None:
    config = load_config(DEMO)
    start = datetime(2026, 8, 20, 12, tzinfo=UTC)  # four weeks into the sample's usage
    old, new = await _both(config, start, datetime(2026, 11, 20, 12, tzinfo=UTC), timedelta(1))
    _assert_same(old, new)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("accounts", "noise", "step_days"), [(50, 1.0, 1), (60, 3.0, 3)], ids=["scenario", "review"]
)
async def test_the_scenarios_replay_the_same_incrementally(
    tmp_path: Path, accounts: int, noise: float, step_days: int
) -> None:
    scenario = scenario_module.build(tmp_path / "s", accounts=accounts, everyday_noise=noise)
    config = load_config(scenario.config)
    old, new = await _both(config, scenario.start, scenario.end, timedelta(days=step_days))
    _assert_same(old, new)
