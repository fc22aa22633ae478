"""No look-ahead: how each source keeps its history, and a replay's refusal of one that keeps
none.

A replay (``swanwatch backtest``, ``swanwatch review``) reads every source as of a simulated
day, ``rows(until=day)``. Only a source that knows when each of its rows held can do that:
rows dated by a ``date_field``, snapshot files by date (the csv source's ``snapshots``), a
query or an API that cuts at the day itself (``:until``, ``until_param``). A source that keeps
no history (an export of how contracts stand today) would hand a replay of September today's
rows: a payment that failed in November "seen" on September 1st, and lead times that are
partly leaked.

So a replay refuses, before it starts, to read such a source: the accounts source and every
source a replayed watcher declares in ``uses()``; the error names each one and its readers,
and says how to declare its history. A read of such a source during a replay (a watcher that
reads a source it did not declare) fails the same way (:class:`MeteredSource` asks
:func:`refusal`). A source whose rows truly never change (a fixed lookup table) may say so
with ``static: true`` in its config: it is then read as it is today, and ``review`` says that
the lead times of its readers are leak-free only as far as that holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from swanwatch import plugins
from swanwatch.accounts import build_sources
from swanwatch.errors import LookAheadError
from swanwatch.interfaces import Source
from swanwatch.settings import Config, WatcherConfig

#: What to tell someone whose replay reads a source with no history.
HOW_TO_DECLARE = (
    "`date_field` (the field that dates a row; a sql "
    "query may instead cut at :until, an http API at `until_param`), or snapshot files by "
    "date (csv: `path: contracts-*.csv` with a date in each file name, and `snapshots: "
    "true`, each file read as of the simulated day); or, for a table whose rows never "
    "change, `static: true` in the source's config"
)


@dataclass(frozen=True)
class SourceHistory:
    """How one source a replay reads keeps its history, and who reads it."""

    source: str
    #: How its rows are placed in time ("rows dated by 'date'"), or None.
    kept: str | None
    #: Declared unchanging in its config (``static: true``): read as it is today.
    static: bool
    readers: tuple[str, ...]

    @property
    def readable(self) -> bool:
        """A replay may read it: it keeps history, or is declared static."""
        return self.kept is not None or self.static

    def describe(self) -> str:
        if self.kept is not None:
            return f"{self.source}: {self.kept}"
        if self.static:
            return f"{self.source}: declared static (read as it is today)"
        return f"{self.source}: no history"


def refusal(source: str, until: datetime) -> LookAheadError:
    """The error of a replay's read of ``source``, which keeps no history, as of ``until``."""
    return LookAheadError(
        f"source {source!r} keeps no history: a replay of {until:%Y-%m-%d} would read its "
        f"rows as they are today (look-ahead). Declare how it keeps its history: "
        f"{HOW_TO_DECLARE}"
    )


def replay_readers(config: Config, specs: Sequence[WatcherConfig]) -> dict[str, list[str]]:
    """The sources a replay of ``specs`` reads, each with its readers: the accounts source
    (the account list), and each source a watcher declares in ``uses()``."""
    readers: dict[str, list[str]] = {config.accounts.source: ["accounts.source"]}
    for spec in specs:
        cls = plugins.watcher_class(spec.type)
        watcher = cls(spec.instance, cls.Options.model_validate(spec.options))
        for use in watcher.uses():
            readers.setdefault(use.source, []).append(f"watcher {spec.instance}")
    return readers


def histories(
    config: Config, sources: Mapping[str, Source], specs: Sequence[WatcherConfig]
) -> list[SourceHistory]:
    """How each source a replay of ``specs`` reads keeps its history, by source name."""
    out = []
    for name, readers in sorted(replay_readers(config, specs).items()):
        source = sources.get(name)
        if source is None:
            continue  # an unknown source is the config's problem, reported when it is read
        spec = config.sources.get(name)
        static = spec is not None and spec.static
        out.append(SourceHistory(name, source.history(), static, tuple(readers)))
    return out


def require_history(
    config: Config, sources: Mapping[str, Source], specs: Sequence[WatcherConfig]
) -> list[SourceHistory]:
    """How each source a replay reads keeps its history; LookAheadError, naming every source
    that keeps none and who reads it, when a replay would look ahead."""
    found = histories(config, sources, specs)
    missing = [h for h in found if not h.readable]
    if missing:
        lines = [f"  source {h.source!r} (read by: {', '.join(h.readers)})" for h in missing]
        raise LookAheadError(
            "a replay cannot read these sources as of a past day: they keep no history, so "
            "every simulated day would see their rows as they are today (look-ahead):\n"
            + "\n".join(lines)
            + f"\nTo replay, declare how each keeps its history: {HOW_TO_DECLARE}."
        )
    return found


@dataclass(frozen=True)
class KindHistory:
    """Whether the lead times of one signal kind in a replay are leak-free: every source its
    watchers read (and the accounts source) places its rows in time."""

    kind: str
    sources: tuple[SourceHistory, ...]

    @property
    def leak_free(self) -> bool:
        return all(h.kept is not None for h in self.sources)

    def statement(self) -> str:
        """In words, for ``review``'s report."""
        static = [h.source for h in self.sources if h.kept is None]
        if not static:
            return "leak-free: " + "; ".join(h.describe() for h in self.sources)
        return (
            f"leak-free only as far as {', '.join(static)} never changed: declared static, "
            "read as it is today"
        )

    def as_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "leak_free": self.leak_free,
            "sources": {h.source: h.kept or ("static" if h.static else None) for h in self.sources},
            "statement": self.statement(),
        }


def kind_histories(
    config: Config, sources: Mapping[str, Source], specs: Sequence[WatcherConfig]
) -> list[KindHistory]:
    """Per signal kind (a watcher type) the replay runs, the history of what it reads;
    LookAheadError when a replay would look ahead at all."""
    by_source = {h.source: h for h in require_history(config, sources, specs)}
    reads: dict[str, set[str]] = {}
    for name, readers in replay_readers(config, specs).items():
        for spec in specs:
            if name == config.accounts.source or f"watcher {spec.instance}" in readers:
                reads.setdefault(spec.type, set()).add(name)
    return [
        KindHistory(kind, tuple(by_source[n] for n in sorted(names) if n in by_source))
        for kind, names in sorted(reads.items())
    ]


async def replay_kind_histories(
    config: Config, specs: Sequence[WatcherConfig]
) -> list[KindHistory]:
    """:func:`kind_histories` with the config's own sources, built and closed here."""
    sources = build_sources(config)
    try:
        return kind_histories(config, sources, specs)
    finally:
        for source in sources.values():
            await source.aclose()
