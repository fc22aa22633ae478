"""No look-ahead, enforced: a replay never sees a row dated after its simulated day, from any
source type (csv, JSON Lines, csv snapshots, sql on SQLite and PostgreSQL, http); a source
that keeps no history is refused, naming it, unless it is declared static. Through the real
backtest (`replay`), real files, real databases and a real local HTTP server."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from sqlalchemy import create_engine, text

from swanwatch.backtest import Event, replay
from swanwatch.config import load_config
from swanwatch.errors import LookAheadError
from swanwatch.sources.history import kind_histories
from swanwatch.testing import make_source

if TYPE_CHECKING:
    from conftest import CliRun

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.yaml"

#: Ten rows, one dated each day from 2026-09-01; the replay runs 09-01..09-05 at noon.
DAYS = [date(2026, 9, 1) + timedelta(days=i) for i in range(10)]
ROWS: list[dict[str, Any]] = [
    {"account_id": "acc-1", "id": f"r{i + 1}", "day": d} for i, d in enumerate(DAYS)
]
START = datetime(2026, 9, 1, 12, tzinfo=UTC)
END = datetime(2026, 9, 5, 12, tzinfo=UTC)
SEEN_BY_THE_END = {r["id"] for r in ROWS if r["day"] <= END.date()}


def _config(tmp_path: Path, rows: dict[str, Any], *, declare: bool = True) -> Path:
    """A replay of the probe watcher over the source ``rows``, one account."""
    (tmp_path / "accounts.csv").write_text("id,name\nacc-1,Acme\n")
    config = {
        "store": {"url": "sqlite:///unused.db"},
        "sources": {
            "accounts": {"type": "csv", "static": True, "options": {"path": "accounts.csv"}},
            "rows": rows,
        },
        "accounts": {"source": "accounts"},
        "watchers": [{"type": "probe", "options": {"source": "rows", "declare": declare}}],
        "notify": {"console": False},
    }
    path = tmp_path / "swanwatch.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def _replayed(path: Path) -> list[Event]:
    config = load_config(path)
    return [e async for e in replay(config, START, END, timedelta(days=1)) if e.name == "probe"]


def _seen(events: list[Event]) -> dict[str, tuple[date, date]]:
    """Per row: the simulated day it was first seen, and the day it is dated."""
    out = {}
    for e in events:
        found = re.fullmatch(r"row (\w+) dated (\S+)", e.summary)
        assert found is not None, e.summary
        out[found[1]] = (e.at.date(), date.fromisoformat(found[2][:10]))
    return out


def _assert_never_ahead(events: list[Event]) -> dict[str, tuple[date, date]]:
    seen = _seen(events)
    ahead = {row: (at, day) for row, (at, day) in seen.items() if day > at}
    assert not ahead, f"rows seen before their day: {ahead}"
    assert set(seen) == SEEN_BY_THE_END  # and every row once its day came
    return seen


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    lines = ["account_id,id,day", *(f"{r['account_id']},{r['id']},{r['day']}" for r in rows)]
    path.write_text("\n".join(lines) + "\n")


def _csv(tmp_path: Path, dated: bool) -> dict[str, Any]:
    _write_csv(tmp_path / "rows.csv", ROWS)
    options: dict[str, Any] = {"path": "rows.csv", "types": {"day": "date"}}
    return {"type": "csv", "options": {**options, **({"date_field": "day"} if dated else {})}}


def _jsonl(tmp_path: Path, dated: bool) -> dict[str, Any]:
    lines = [json.dumps({**r, "day": r["day"].isoformat()}) for r in ROWS]
    (tmp_path / "rows.jsonl").write_text("\n".join(lines) + "\n")
    options: dict[str, Any] = {"path": "rows.jsonl", "types": {"day": "date"}}
    return {"type": "csv", "options": {**options, **({"date_field": "day"} if dated else {})}}


def _snapshots(tmp_path: Path, dated: bool) -> dict[str, Any]:
    """The table as it stood every other day: each file holds the rows dated up to its own."""
    for day in DAYS[::2]:
        _write_csv(tmp_path / f"rows-{day.isoformat()}.csv", [r for r in ROWS if r["day"] <= day])
    # Without `snapshots`, the files are one table, read whole: nothing places it in time.
    options: dict[str, Any] = {"path": "rows-*.csv", "types": {"day": "date"}}
    return {"type": "csv", "options": {**options, **({"snapshots": True} if dated else {})}}


class _Api:
    """Every row, or with ``?before=`` those dated at or before it: without `until_param` the
    http source has to leave out later ones itself."""

    @staticmethod
    def handle(handler: BaseHTTPRequestHandler) -> None:
        query = parse_qs(urlsplit(handler.path).query)
        cut = query["before"][0][:10] if "before" in query else "9999-12-31"
        rows = [{**r, "day": r["day"].isoformat()} for r in ROWS if r["day"].isoformat() <= cut]
        body = json.dumps(rows).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@pytest.fixture
def api() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            _Api.handle(self)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rows"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


FILES = {"csv": _csv, "jsonl": _jsonl, "snapshots": _snapshots}


@pytest.mark.parametrize("kind", sorted(FILES))
async def test_a_replay_never_sees_a_file_row_dated_after_its_day(
    tmp_path: Path, kind: str
) -> None:
    seen = _assert_never_ahead(await _replayed(_config(tmp_path, FILES[kind](tmp_path, True))))
    if kind != "snapshots":
        assert all(at == day for at, day in seen.values())  # each on its own day
    else:  # a row is known from the first snapshot that holds it
        assert seen["r2"] == (date(2026, 9, 3), date(2026, 9, 2))


def _fill(url: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE probe_rows (account_id VARCHAR(20), id VARCHAR(9), day DATE)")
        )
        conn.execute(text("INSERT INTO probe_rows VALUES (:account_id, :id, :day)"), ROWS)
    engine.dispose()


@pytest.mark.parametrize(
    "query",
    [
        "SELECT account_id, id, day FROM probe_rows",  # cut by date_field, in the database
        "SELECT account_id, id, day FROM probe_rows WHERE day <= :until",  # the query cuts
    ],
)
async def test_a_replay_never_sees_a_sql_row_dated_after_its_day(
    tmp_path: Path, store_url: str, query: str
) -> None:
    _fill(store_url)
    options: dict[str, Any] = {"url": store_url, "query": query, "types": {"day": "date"}}
    if ":until" not in query:
        options["date_field"] = "day"
    seen = _assert_never_ahead(
        await _replayed(_config(tmp_path, {"type": "sql", "options": options}))
    )
    assert all(at == day for at, day in seen.values())


@pytest.mark.parametrize("cut", ["date_field", "until_param"])
async def test_a_replay_never_sees_an_http_record_dated_after_its_day(
    tmp_path: Path, api: str, cut: str
) -> None:
    options: dict[str, Any] = {"url": api, "types": {"day": "date"}, "pagination": "none"}
    options.update({"date_field": "day"} if cut == "date_field" else {"until_param": "before"})
    seen = _assert_never_ahead(
        await _replayed(_config(tmp_path, {"type": "http", "options": options}))
    )
    assert all(at == day for at, day in seen.values())


# --- a source that keeps no history ------------------------------------------------------


def _undated(tmp_path: Path, kind: str, store_url: str, api: str) -> dict[str, Any]:
    if kind in FILES:
        return FILES[kind](tmp_path, False)
    if kind == "sql":
        _fill(store_url)
        query = "SELECT account_id, id, day FROM probe_rows"
        return {"type": "sql", "options": {"url": store_url, "query": query}}
    return {"type": "http", "options": {"url": api, "pagination": "none"}}


UNDATED = [*sorted(FILES), "sql", "http"]


@pytest.mark.parametrize("kind", UNDATED)
async def test_an_undated_source_is_refused_before_the_replay_starts(
    tmp_path: Path, kind: str, api: str
) -> None:
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    path = _config(tmp_path, _undated(tmp_path, kind, url, api))
    with pytest.raises(LookAheadError) as info:
        await _replayed(path)
    message = str(info.value)
    assert "source 'rows' (read by: watcher probe)" in message
    assert "keep no history" in message and "`date_field`" in message
    assert "snapshots: true" in message and "static: true" in message


@pytest.mark.parametrize("kind", ["csv", "sql", "http"])
async def test_an_undeclared_read_of_an_undated_source_is_refused_when_it_happens(
    tmp_path: Path, kind: str, api: str
) -> None:
    # The watcher does not say it reads the source: the read itself is refused, and the
    # replay stops with the error rather than count it as one failed run.
    url = f"sqlite:///{tmp_path / 'rows.db'}"
    path = _config(tmp_path, _undated(tmp_path, kind, url, api), declare=False)
    with pytest.raises(
        LookAheadError, match="source 'rows' keeps no history: a replay of 2026-09-01"
    ):
        await _replayed(path)


async def test_a_static_source_is_read_as_it_is_today(tmp_path: Path) -> None:
    # Declared unchanging: read whole on every simulated day (so it had better be).
    rows = {**_csv(tmp_path, False), "static": True}
    seen = _seen(await _replayed(_config(tmp_path, rows)))
    assert set(seen) == {r["id"] for r in ROWS}
    assert {at for at, _ in seen.values()} == {START.date()}


def test_lead_times_are_leak_free_per_kind_only_where_every_source_is_dated(
    tmp_path: Path,
) -> None:
    path = _config(tmp_path, _csv(tmp_path, True))
    config = load_config(path)
    sources = {
        name: make_source(s.type, s.options, base_dir=str(tmp_path))
        for name, s in config.sources.items()
    }
    (probe,) = kind_histories(config, sources, config.watchers)
    assert not probe.leak_free  # the accounts are declared static, not dated
    assert probe.statement().startswith("leak-free only as far as accounts never changed")
    raw = yaml.safe_load(path.read_text())
    raw["sources"]["accounts"] = {
        "type": "csv",
        "options": {"path": "accounts-*.csv", "snapshots": True},
    }
    (tmp_path / "accounts-2026-08-01.csv").write_text("id,name\nacc-1,Acme\n")
    path.write_text(yaml.safe_dump(raw))
    config = load_config(path)
    sources = {
        name: make_source(s.type, s.options, base_dir=str(tmp_path))
        for name, s in config.sources.items()
    }
    (probe,) = kind_histories(config, sources, config.watchers)
    assert probe.leak_free
    assert probe.statement() == (
        "leak-free: accounts: snapshot files dated by their names; rows: rows dated by 'day'"
    )


# --- the demo ------------------------------------------------------------------------------


async def test_the_demo_replays_contracts_as_they_stood_on_each_day() -> None:
    # The leak: a replay from 2026-09-01 read the 2026-11-20 contracts and "saw"
    # the payment that failed in October. Now each day reads the export of its own day.
    config = load_config(DEMO)
    day = timedelta(days=1)
    early = [
        e
        async for e in replay(
            config, datetime(2026, 9, 1, 6, tzinfo=UTC), datetime(2026, 9, 1, 6, tzinfo=UTC), day
        )
    ]
    assert not [e for e in early if e.account == "acc-021" and e.name == "renewal_lapse"]
    later = [
        e
        async for e in replay(
            config, datetime(2026, 11, 1, 6, tzinfo=UTC), datetime(2026, 11, 1, 6, tzinfo=UTC), day
        )
    ]
    failed = [e.summary for e in later if e.account == "acc-021" and e.name == "renewal_lapse"]
    assert "A payment on contract C-00021 failed (seen 2026-11-01)." in failed, failed


def test_a_backtest_of_a_demo_with_undated_contracts_is_refused_naming_them(
    run_cli: CliRun, tmp_path: Path
) -> None:
    text = DEMO.read_text().replace("sample/contracts-*.csv", "sample/contracts-2026-11-20.csv")
    text = text.replace("      snapshots: true\n", "")
    text = text.replace("path: sample/", f"path: {DEMO.parent}/sample/")
    text = text.replace("rules/default.yaml", str(DEMO.parent / "rules" / "default.yaml"))
    config = tmp_path / "demo.yaml"
    config.write_text(text)
    done = run_cli("backtest", "-c", str(config), "--start", "2026-09-01", "--end", "2026-09-02")
    assert done.returncode == 1
    assert "source 'contracts' (read by: watcher renewal_lapse)" in done.stderr
    assert "accounts" not in done.stderr.split("look-ahead")[1].split("To replay")[0]
