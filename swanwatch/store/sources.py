"""Source health: each source as its last read left it (ok, suspect, stale or broken)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from swanwatch.model import SourceHealth
from swanwatch.store.base import StoreBase, upsert
from swanwatch.store.tables import SOURCE_HEALTH


class SourcesStore(StoreBase):
    """The health of each source, one row per source."""

    def source_health(self, names: Iterable[str] | None = None) -> dict[str, SourceHealth]:
        """The health on record of ``names`` (every source by default), by name."""
        query = select(SOURCE_HEALTH).order_by(SOURCE_HEALTH.c.source)
        if names is not None:
            query = query.where(SOURCE_HEALTH.c.source.in_(list(names)))
        with self._read() as conn:
            return {
                r.source: SourceHealth.model_validate(r, from_attributes=True)
                for r in conn.execute(query)
            }

    def save_source_health(self, health: SourceHealth) -> None:
        """Record how a source's latest read went (it replaces what was on record)."""
        with self._tx() as conn:
            upsert(conn, SOURCE_HEALTH, [health.model_dump()], ["source"])
