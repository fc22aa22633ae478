"""tag_flag's tests, with the pytest plugin that ships with Swanwatch (swanwatch.testing)."""

from __future__ import annotations

from swanwatch.testing import assert_watcher_contract


async def test_a_tagged_account_is_signalled(make_account, run_watcher) -> None:
    accounts = [make_account("acme", tags=["key"]), make_account("globex", tags=["other"])]
    signals = await run_watcher("tag_flag", options={"tag": "key"}, accounts=accounts)
    assert [(s.account_id, s.kind, s.key) for s in signals] == [("acme", "tag_flag", "key")]
    assert signals[0].strength == 0.6  # the default
    assert "tagged 'key'" in signals[0].summary


async def test_the_strength_is_an_option(make_account, run_watcher) -> None:
    accounts = [make_account("acme", tags=["at-risk"])]
    (signal,) = await run_watcher("tag_flag", options={"strength": 0.9}, accounts=accounts)
    assert signal.strength == 0.9


async def test_it_keeps_the_watcher_contract(make_account) -> None:
    await assert_watcher_contract("tag_flag", accounts=[make_account(tags=["at-risk"])])
