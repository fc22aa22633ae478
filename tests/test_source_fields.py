"""An export that lost or renamed a column a watcher needs, between two cycles of the daemon
(after `run` checked the config), breaks the read: the source is broken, named with its file
and the field; the watcher is held and its signals are kept. On the bundled demo data."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from swanwatch import SourceError
from swanwatch.clock import FrozenClock
from swanwatch.config import load_config
from swanwatch.engine import Engine
from swanwatch.interfaces import SourceUse
from swanwatch.model import SourceState
from swanwatch.settings import SourceConfig
from swanwatch.sources.health import metered
from swanwatch.store import Store
from swanwatch.testing import make_source

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def _demo(tmp_path: Path, store_url: str) -> Path:
    """A copy of the demo config and its sample data, on the test's store."""
    for part in ("sample", "rules"):
        shutil.copytree(CONFIG_DIR / part, tmp_path / part)
    text = (CONFIG_DIR / "demo.yaml").read_text()
    path = tmp_path / "demo.yaml"
    path.write_text(text.replace("sqlite:///./swanwatch-demo.db", store_url))
    return path


async def _cycle(path: Path, store: Store, now: datetime) -> None:
    """One cycle of the daemon, its start-up checks long past."""
    async with Engine(load_config(path), store, FrozenClock(now)) as engine:
        await engine.load_accounts()
        await engine.run_watchers()
        await engine.correlate()


@pytest.mark.parametrize(
    ("file", "header", "renamed", "source", "field", "watcher"),
    [
        # read as Arrow columns
        ("usage.csv", "account_id,date", "account,date", "usage", "account_id", "usage_drop"),
        # read row by row
        ("contacts.csv", ",role,", ",function,", "contacts", "role", "champion_departure"),
    ],
)
async def test_a_column_a_watcher_needs_gone_from_the_export_breaks_the_read(
    tmp_path: Path,
    store_url: str,
    file: str,
    header: str,
    renamed: str,
    source: str,
    field: str,
    watcher: str,
) -> None:
    path = _demo(tmp_path, store_url)
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        before = sorted(s.fingerprint for s in store.signals() if s.kind == watcher)
        assert before
        export = tmp_path / "sample" / file
        text = export.read_text()
        assert header in text.splitlines()[0]
        export.write_text(text.replace(header, renamed, 1))

        await _cycle(path, store, T0 + timedelta(hours=1))
        health = store.source_health()[source]
        assert health.state == SourceState.BROKEN, health
        assert f"sample/{file}" in health.reason and f"no field {field!r}" in health.reason
        (run, *_) = store.runs(watcher)
        assert run.held is not None and f"source {source!r} is broken" in run.held
        assert sorted(s.fingerprint for s in store.signals() if s.kind == watcher) == before
    finally:
        store.close()


async def test_a_json_record_may_leave_out_a_key_the_others_have(tmp_path: Path) -> None:
    some = '{"account_id": "a"}\n{"account_id": "b", "role": "champion"}\n'
    (tmp_path / "some.jsonl").write_text(some)
    (tmp_path / "none.jsonl").write_text('{"account_id": "a"}\n{"account_id": "b"}\n')
    use = SourceUse("contacts", fields=("account_id", "role"))
    for name, broken in (("some", False), ("none", True)):
        source = make_source("csv", {"path": f"{name}.jsonl"}, base_dir=str(tmp_path))
        view = metered({"contacts": source}, {"contacts": SourceConfig(type="csv")}, [use])
        try:
            rows = [r async for r in view["contacts"].rows()]
        except SourceError as exc:
            assert broken and "no field 'role'" in str(exc) and f"{name}.jsonl" in str(exc)
            assert view["contacts"].reads[-1].error == str(exc)
        else:
            assert not broken and len(rows) == 2


async def test_an_account_the_export_left_out_keeps_its_usage_signal(
    tmp_path: Path, store_url: str
) -> None:
    """One account's rows gone from a usage export that is otherwise whole (the source is
    ok: 2% fewer rows): the watcher cannot judge it, reports it unknown, and its signal
    stays. Cleared, its alert would resolve, and fire again once the rows are back."""
    path = _demo(tmp_path, store_url)
    store = Store(store_url)
    try:
        await _cycle(path, store, T0)
        (signal, *_) = [s for s in store.signals() if s.kind == "usage_drop"]
        export = tmp_path / "sample" / "usage.csv"
        lines = export.read_text().splitlines(keepends=True)
        export.write_text("".join(x for x in lines if not x.startswith(f"{signal.account_id},")))

        await _cycle(path, store, T0 + timedelta(hours=1))
        assert store.source_health()["usage"].state == SourceState.OK
        (unknown,) = [u for u in store.unknowns(signal.account_id) if u.watcher == "usage_drop"]
        assert "no usage rows" in unknown.reason
        kept = [s for s in store.signals(account_id=signal.account_id) if s.kind == "usage_drop"]
        assert [s.fingerprint for s in kept] == [signal.fingerprint]
    finally:
        store.close()
