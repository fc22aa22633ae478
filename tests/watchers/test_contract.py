"""Every installed built-in watcher keeps the plugin contract, on the bundled sample data."""

from __future__ import annotations

from pathlib import Path

import pytest

from swanwatch import plugins
from swanwatch.accounts import account_from_row
from swanwatch.config import load_config
from swanwatch.testing import assert_watcher_contract, make_source

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "config" / "demo.yaml"
BUILT_IN = sorted(
    name
    for name, ep in plugins.available(plugins.WATCHERS).items()
    if ep.value.startswith("swanwatch.watchers.")
)


async def _sample():
    config = load_config(DEMO)
    sources = {
        name: make_source(spec.type, spec.options, base_dir=config.base_dir)
        for name, spec in config.sources.items()
    }
    accounts = [account_from_row(r) async for r in sources["accounts"].rows()]
    return config, sources, accounts


def test_every_built_in_watcher_is_listed() -> None:
    assert {"usage_drop", "champion_departure", "renewal_lapse", "support_spike"} <= set(BUILT_IN)
    assert {"domain_expiry", "tls_expiry"} <= set(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
async def test_watcher_contract(name: str) -> None:
    config, sources, accounts = await _sample()
    cls = plugins.watcher_class(name)
    assert cls.__doc__, f"{name} has no docstring"
    if not cls.historical:
        # Watchers that look things up live are held to the contract without a network:
        # accounts without domains give them nothing to look up.
        accounts = [a.model_copy(update={"domains": ()}) for a in accounts]
    options: dict[str, object] = next((w.options for w in config.watchers if w.type == name), {})
    await assert_watcher_contract(
        name, options=options, accounts=accounts, sources=sources, now="2026-11-20T12:00:00Z"
    )
