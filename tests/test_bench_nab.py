"""bench/usage_nab.py's adapter (``detect``), which scores usage_drop on the NAB series
through the real `swanwatch backtest`: it replays a series without look-ahead, finds a
sustained drop, and stays quiet on a one-day holiday dip. The NAB data itself is not here."""

from __future__ import annotations

import importlib.util
import math
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def nab() -> ModuleType:
    spec = importlib.util.spec_from_file_location("usage_nab", ROOT / "bench" / "usage_nab.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _series(change: dict[int, float]) -> tuple[list[date], list[float]]:
    """84 days of steady weekly usage; ``change`` scales the day of that index."""
    days = [date(2015, 1, 5) + timedelta(days=i) for i in range(84)]
    values = [
        (1000.0 if d.weekday() < 5 else 400.0) * (1 + 0.02 * math.sin(i)) * change.get(i, 1.0)
        for i, d in enumerate(days)
    ]
    return days, values


@pytest.mark.slow
def test_the_adapter_finds_a_sustained_drop_and_not_a_holiday(nab: ModuleType) -> None:
    days, values = _series({i: 0.5 for i in range(70, 84)})
    found = nab.detect(days, values)
    assert found and days[70] <= found[0] <= days[73]  # caught within the first days
    holiday = _series({63: 0.35})  # one day at a third of usual, as on Labor Day
    assert nab.detect(*holiday) == []
