"""champion_departure: gone, bounced, silent, changed; no champion; quiet when all is well."""

from __future__ import annotations

from datetime import date

from swanwatch.testing import (
    assert_watcher_contract,
    last_unknowns,
    make_account,
    rows_source,
)

from .table_files import by_rows_and_columns

NOW = "2026-11-20T12:00:00Z"


def contact(
    email: str,
    role: str = "user",
    *,
    status: str = "active",
    login: str | None = "2026-11-18",
    changed: str = "2025-06-01",
    title: str = "Analyst",
    account: str = "acme",
    **extra: str,
) -> dict[str, object]:
    return {
        "account_id": account,
        "email": email,
        "name": email.split("@")[0].title(),
        "title": title,
        "role": role,
        "status": status,
        "last_login": login,
        "changed_at": changed,
        **extra,
    }


def team(*changes: dict[str, object]) -> list[dict[str, object]]:
    base = [
        contact("jane@acme.example", "champion", title="VP Ops"),
        contact("sid@acme.example", "sponsor", title="CFO"),
        contact("ann@acme.example"),
        contact("bob@acme.example"),
    ]
    return base + list(changes)


async def run(
    rows: list[dict[str, object]],
    now: str = NOW,
    *,
    replay: bool = False,
    accounts: tuple[str, ...] = ("acme",),
    **options: object,
) -> list:  # type: ignore[type-arg]
    """The watcher over ``rows`` row by row, and (the same signals and unknowns, checked)
    as columns from a CSV file, typed and as text, and from Parquet."""
    return await by_rows_and_columns(
        "champion_departure",
        "contacts",
        rows,
        types=CONTACT_TYPES,
        date_field="changed_at",
        accounts=accounts,
        now=now,
        replay=replay,
        options=options,
    )


CONTACT_TYPES = {"last_login": "date", "changed_at": "date"}


async def test_contract() -> None:
    rows = team(
        contact("jane@acme.example", "champion", status="deactivated", changed="2026-11-01")
    )
    await assert_watcher_contract(
        "champion_departure",
        accounts=[make_account("acme")],
        now=NOW,
        sources={"contacts": rows_source(rows)},
    )


async def test_quiet_on_a_healthy_team() -> None:
    assert await run(team()) == []


async def test_champion_deactivated_and_no_champion_left() -> None:
    rows = team(
        contact(
            "jane@acme.example",
            "champion",
            status="deactivated",
            login="2026-10-30",
            changed="2026-11-01",
            title="VP Ops",
        )
    )
    signals = {s.key: s for s in await run(rows)}
    gone = signals["jane@acme.example"]
    assert gone.observed_at.date() == date(2026, 11, 1)
    assert gone.summary == "Champion Jane (VP Ops) was marked deactivated on 2026-11-01."
    assert gone.evidence["reason"] == "gone" and gone.strength == 0.8
    assert signals["no_champion"].observed_at.date() == date(2026, 11, 1)


async def test_replaced_champion_is_noted_and_weaker() -> None:
    rows = team(
        contact("jane@acme.example", "champion", status="deactivated", changed="2026-11-01"),
        contact("kim@acme.example", "champion", changed="2026-11-10"),
    )
    signals = {s.key: s for s in await run(rows)}
    assert set(signals) == {"jane@acme.example"}
    assert "Kim has taken over as champion" in signals["jane@acme.example"].summary
    assert signals["jane@acme.example"].strength < 0.8


async def test_bounced_sponsor_and_title_change() -> None:
    rows = team(
        contact("sid@acme.example", "sponsor", status="bounced", changed="2026-11-10"),
        contact("jane@acme.example", "champion", title="Advisor", changed="2026-11-05"),
    )
    signals = {s.key: s for s in await run(rows)}
    assert signals["sid@acme.example"].evidence["reason"] == "bounced"
    assert signals["jane@acme.example"].evidence["reason"] == "title_changed"
    assert signals["jane@acme.example"].summary == (
        "Champion Jane changed title from VP Ops to Advisor on 2026-11-05."
    )


async def test_silent_champion_only_while_colleagues_are_active() -> None:
    rows = team(
        contact(
            "jane@acme.example",
            "champion",
            login="2026-10-01",
            changed="2026-10-01",
            title="VP Ops",
        )
    )
    signals = await run(rows)
    assert [s.evidence["reason"] for s in signals] == ["silent"]
    assert signals[0].observed_at.date() == date(2026, 10, 31)
    everyone_away = [{**r, "last_login": "2026-09-01"} for r in rows]
    assert await run(everyone_away) == []


async def test_clears_when_the_departure_is_old_or_reversed() -> None:
    rows = team(
        contact("jane@acme.example", "champion", status="deactivated", changed="2026-07-01"),
        contact("kim@acme.example", "champion", changed="2026-07-05"),
    )
    assert await run(rows) == []  # older than recent_days, and someone took over
    back = team(
        contact("jane@acme.example", "champion", status="deactivated", changed="2026-11-01"),
        contact("jane@acme.example", "champion", changed="2026-11-15"),
    )
    assert await run(back) == []


async def test_replay_sees_only_the_past() -> None:
    rows = team(
        contact("jane@acme.example", "champion", status="deactivated", changed="2026-11-01")
    )
    assert await run(rows, now="2026-10-20T12:00:00Z", replay=True) == []


async def test_account_without_contacts_is_unknown() -> None:
    assert await run(team(), accounts=("acme", "empty")) == []
    assert [a for a, _, _ in last_unknowns()] == ["empty"]
