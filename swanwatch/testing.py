"""Test helpers for watcher authors (and Swanwatch's own tests); also a pytest plugin.

signals = await run_watcher(
    "domain_expiry", options={"warn_days": 60},
    accounts=[make_account(domains=["a.example"])], now="2026-01-15",
)
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime
from typing import Any

import httpx
import pytest

from swanwatch import plugins, tls
from swanwatch.clock import FrozenClock, ensure_utc, parse_instant
from swanwatch.interfaces import Row, Source, SourceOptions, StateMap, WatchContext, Watcher
from swanwatch.model import JSON, Account, Signal


def make_account(
    id: str = "acme",
    *,
    name: str | None = None,
    domains: Sequence[str] = (),
    owner: str | None = "csm@example.com",
    segment: str | None = "mid-market",
    arr: float = 50_000.0,
    renewal_date: date | str | None = None,
    tags: Sequence[str] = (),
) -> Account:
    """An Account with sensible defaults; override what the test is about."""
    renewal = date.fromisoformat(renewal_date) if isinstance(renewal_date, str) else renewal_date
    return Account(
        id=id,
        name=name if name is not None else id.title(),
        domains=tuple(domains),
        owner=owner,
        segment=segment,
        arr=arr,
        renewal_date=renewal,
        tags=tuple(tags),
    )


def make_source(type_: str, options: Mapping[str, Any], *, base_dir: str = ".") -> Source:
    """A configured source instance, loaded by entry-point name like the daemon does."""
    cls = plugins.source_class(type_)
    return cls(type_, cls.Options.model_validate(dict(options)), base_dir=base_dir)


async def run_watcher(
    name: str,
    *,
    options: Mapping[str, Any] | None = None,
    accounts: Sequence[Account] = (),
    now: datetime | str = "2026-01-15T12:00:00Z",
    sources: Mapping[str, Source] | None = None,
    state: StateMap | Mapping[str, JSON] | None = None,
    http: httpx.AsyncClient | None = None,
    replay: bool = False,
    instance: str | None = None,
) -> list[Signal]:
    """Run one watcher once, outside the daemon, and return the signals it yields.

    The returned signals carry the instance name, as the runner would set it. Pass a
    ``StateMap`` as ``state`` to see or carry state across runs; the context's unknowns
    are available as ``run_watcher.last_unknowns``.
    """
    cls = plugins.watcher_class(name)
    watcher = cls(instance or name, cls.Options.model_validate(dict(options or {})))
    state_map = state if isinstance(state, StateMap) else StateMap(state)
    own_client = http is None
    client = http or tls.client(timeout=10.0)
    with ThreadPoolExecutor(max_workers=4) as pool:
        ctx = WatchContext(
            instance=watcher.instance,
            clock=FrozenClock(now),
            http=client,
            log=logging.getLogger(f"swanwatch.watcher.{watcher.instance}"),
            accounts=list(accounts),
            state=state_map,
            sources=dict(sources or {}),
            executor=pool,
            replay=replay,
        )
        try:
            signals = [
                s.model_copy(update={"watcher": watcher.instance}) async for s in watcher.watch(ctx)
            ]
        finally:
            if own_client:
                await client.aclose()
    _last_unknowns.clear()
    _last_unknowns.extend(ctx.unknowns)
    return signals


_last_unknowns: list[tuple[str, str, str]] = []


def last_unknowns() -> list[tuple[str, str, str]]:
    """(account_id, key, reason) reported by the last :func:`run_watcher` call."""
    return list(_last_unknowns)


async def assert_watcher_contract(
    name: str, *, options: Mapping[str, Any] | None = None, **kwargs: Any
) -> None:
    """Check what every watcher must do: documented options, nothing from no accounts,
    stable fingerprints across reruns, strength within 0..1, a one-sentence summary."""
    cls = plugins.watcher_class(name)
    assert issubclass(cls, Watcher)
    for field_name, field in cls.Options.model_fields.items():
        assert field.description, f"{name}: option {field_name!r} has no description"
    assert await run_watcher(name, options=options, **{**kwargs, "accounts": []}) == []
    first = await run_watcher(name, options=options, **kwargs)
    second = await run_watcher(name, options=options, **kwargs)
    assert sorted(s.fingerprint for s in first) == sorted(s.fingerprint for s in second)
    for signal in first:
        assert 0.0 <= signal.strength <= 1.0
        assert signal.summary.strip() and "\n" not in signal.summary


class RowsSource(Source):
    """An in-memory source for tests: the given rows, those dated after ``until`` left out.

    A row is dated by its ``date_field`` (a date, a datetime or ISO text); undated rows are
    always yielded, as the csv source does.
    """

    name = "rows"

    def __init__(
        self,
        rows: Sequence[Mapping[str, Any]],
        *,
        date_field: str | None = None,
        instance: str = "rows",
    ) -> None:
        super().__init__(instance, SourceOptions())
        self._rows = [dict(r) for r in rows]
        self.date_field = date_field

    def history(self) -> str | None:
        return f"rows dated by {self.date_field!r}" if self.date_field else None

    async def rows(self, *, until: datetime | None = None) -> AsyncIterator[Row]:
        for row in self._rows:
            if until is not None and self.date_field is not None:
                stamp = row.get(self.date_field)
                if isinstance(stamp, str) and stamp:
                    stamp = parse_instant(stamp) if "T" in stamp else date.fromisoformat(stamp)
                if isinstance(stamp, datetime) and ensure_utc(stamp) > ensure_utc(until):
                    continue
                if (
                    isinstance(stamp, date)
                    and not isinstance(stamp, datetime)
                    and stamp > ensure_utc(until).date()
                ):
                    continue
            yield row


def rows_source(rows: Sequence[Mapping[str, Any]], *, date_field: str | None = None) -> RowsSource:
    """A source that yields ``rows`` (dicts), for feeding a watcher hand-built histories."""
    return RowsSource(rows, date_field=date_field)


# --- the pytest plugin (entry point ``pytest11``) ---------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    """A frozen clock at 2026-01-15 12:00 UTC; move it with ``set`` or ``advance``."""
    return FrozenClock("2026-01-15T12:00:00Z")


@pytest.fixture(name="make_account")
def make_account_fixture() -> Any:
    """The :func:`make_account` factory, as a fixture."""
    return make_account


@pytest.fixture(name="run_watcher")
def run_watcher_fixture() -> Any:
    """The :func:`run_watcher` coroutine, as a fixture."""
    return run_watcher
