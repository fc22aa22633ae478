"""What a source's health says names everything wrong with a read, and what is wrong where."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from swanwatch import SourceError
from swanwatch.interfaces import ReadTally
from swanwatch.model import SourceState
from swanwatch.sources.health import HealthPolicy, judge
from swanwatch.testing import make_source

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_a_read_both_short_and_stale_says_both() -> None:
    # A partial export cut at mid-October: fewer rows, and the newest of them old.
    policy = HealthPolicy(fresh_within=timedelta(days=14), date_field="opened_at")
    first = judge(
        ReadTally("opened_at", 260, newest=date(2026, 11, 20), finished=True),
        "tickets",
        None,
        policy,
        T0,
    )
    cut = ReadTally("opened_at", 165, newest=date(2026, 10, 14), finished=True)
    judged = judge(cut, "tickets", first, policy, T0 + timedelta(hours=1))
    assert judged is not None and judged.state == SourceState.SUSPECT
    assert "37% fewer" in judged.reason
    assert "tickets data ends 2026-10-14, 37 days ago" in judged.reason


def test_a_directory_where_a_file_is_named_says_so(tmp_path: Path) -> None:
    (tmp_path / "usage.csv").mkdir()
    source = make_source("csv", {"path": "usage.csv"}, base_dir=str(tmp_path))
    with pytest.raises(SourceError, match=r"usage\.csv' is a directory, not a file"):
        source.files()  # type: ignore[attr-defined]
