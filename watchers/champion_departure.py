"""Signals an account losing its champion or sponsor: gone, bouncing, silent, moved on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

from pydantic import Field

from swanwatch import Account, Signal, WatchContext, Watcher, WatcherOptions

_EPOCH = date.min


def _day(value: object) -> date | None:
    """A row's date field as a date; accepts date, datetime, ISO text or empty."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and value.strip():
        return date.fromisoformat(value.strip()[:10])
    return None


def _text(row: Mapping[str, object] | None, field: str) -> str:
    value = None if row is None else row.get(field)
    return "" if value is None else str(value).strip()


@dataclass
class _Contact:
    """A contact's latest row, and the one before it (to see what changed)."""

    latest: Mapping[str, object]
    changed: date
    previous: Mapping[str, object] | None = None


@dataclass(frozen=True)
class _Finding:
    strength: float
    observed: date
    summary: str
    reason: str


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


class ChampionDepartureWatcher(Watcher):
    """A champion or sponsor who left, bounces, went silent, changed title or company.

    Reads contact rows (account_id, email, name, title, role, status, last_login, changed_at;
    ``company`` optional). Several rows for one e-mail are its history: the latest by
    ``changed_at`` is the contact now, the one before tells what changed. One signal per key
    contact (``key`` = e-mail), the most telling finding; and one with ``key="no_champion"``
    for an account that has no active champion at all. A finding older than ``recent_days``
    is no longer signalled.
    """

    name: ClassVar[str] = "champion_departure"
    historical: ClassVar[bool] = True

    class Options(WatcherOptions):
        contacts_source: str = Field(
            "contacts",
            description="Source of contact rows: account_id, email, name, title, role, status, "
            "last_login, changed_at.",
        )
        key_roles: list[str] = Field(
            default_factory=lambda: ["champion", "sponsor"],
            description="Roles whose departure matters; the first is the champion role.",
        )
        gone_statuses: list[str] = Field(
            default_factory=lambda: ["deactivated", "removed", "deleted", "left", "inactive"],
            description="Statuses meaning the contact is no longer there.",
        )
        bounced_statuses: list[str] = Field(
            default_factory=lambda: ["bounced"],
            description="Statuses meaning the contact's e-mail bounces.",
        )
        inactive_days: int = Field(
            30,
            ge=1,
            description="Days without a login, while a colleague logged in, that count as silent.",
        )
        recent_days: int = Field(
            90, ge=1, description="Days after a departure or change during which it is signalled."
        )
        signal_no_champion: bool = Field(
            True, description="Signal an account with no active champion at all."
        )

    options: Options

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        opts = self.options
        now = ctx.clock.now()
        today = now.date()
        wanted = {a.id: a for a in ctx.accounts}
        if not wanted:
            return
        contacts: dict[str, dict[str, _Contact]] = {}
        source = ctx.source(opts.contacts_source)
        async for row in source.rows(until=now if ctx.replay else None):
            account_id = row.get("account_id")
            if account_id not in wanted:
                continue
            email = _text(row, "email").lower() or _text(row, "name")
            if not email:
                continue
            changed = _day(row.get("changed_at")) or _EPOCH
            if changed > today:
                continue  # a change from the future (snapshot read in a replay)
            people = contacts.setdefault(str(account_id), {})
            known = people.get(email)
            if known is None:
                people[email] = _Contact(row, changed)
            elif changed >= known.changed:
                people[email] = _Contact(row, changed, known.latest)
            elif known.previous is None or changed >= (
                _day(known.previous.get("changed_at")) or _EPOCH
            ):
                known.previous = row
        for account in wanted.values():
            found = contacts.get(account.id)
            if not found:
                ctx.report_unknown(account, f"no contacts in source {opts.contacts_source!r}")
                continue
            for signal in self._judge(account, found, today):
                yield signal

    def _judge(self, account: Account, people: dict[str, _Contact], today: date) -> list[Signal]:
        opts = self.options
        champion_role = opts.key_roles[0] if opts.key_roles else "champion"
        gone = {s.lower() for s in opts.gone_statuses}
        bounced = {s.lower() for s in opts.bounced_statuses}
        silent_before = today - timedelta(days=opts.inactive_days)
        recent_after = today - timedelta(days=opts.recent_days)

        def status(c: _Contact) -> str:
            return _text(c.latest, "status").lower() or "active"

        def login(c: _Contact) -> date | None:
            seen = _day(c.latest.get("last_login"))
            return min(seen, today) if seen else None

        def role(row: Mapping[str, object] | None) -> str:
            return _text(row, "role").lower() if row is not None else ""

        def present(c: _Contact) -> bool:
            return status(c) not in gone and status(c) not in bounced

        signals = []
        for email, contact in sorted(people.items()):
            now_role = role(contact.latest)
            was_role = role(contact.previous)
            key_role = now_role if now_role in opts.key_roles else was_role
            if key_role not in opts.key_roles:
                continue
            others_active = any(
                (seen := login(other)) is not None and seen > silent_before and present(other)
                for e, other in people.items()
                if e != email
            )
            finding = self._finding(
                contact,
                key_role,
                now_role,
                status(contact),
                login(contact),
                gone,
                bounced,
                others_active,
                silent_before,
            )
            if finding is None or finding.observed < recent_after:
                continue
            strength = finding.strength
            successor = None
            if key_role == champion_role and finding.reason != "silent":
                successor = next(
                    (
                        other
                        for e, other in sorted(people.items())
                        if e != email
                        and role(other.latest) == champion_role
                        and present(other)
                        and other.changed >= contact.changed
                    ),
                    None,
                )
            summary = finding.summary
            if successor is not None:
                strength *= 0.75  # someone took over: a new relationship, not none
                summary = summary.rstrip(".") + (
                    f"; {_text(successor.latest, 'name') or 'someone'} has taken over as "
                    f"{champion_role}."
                )
            signals.append(
                Signal(
                    account_id=account.id,
                    kind=self.name,
                    key=email,
                    strength=round(min(1.0, strength), 3),
                    observed_at=_midnight(finding.observed),
                    summary=summary,
                    evidence={
                        "contact": email,
                        "name": _text(contact.latest, "name"),
                        "role": key_role,
                        "reason": finding.reason,
                        "status": status(contact),
                        "title": _text(contact.latest, "title"),
                        "previous_title": _text(contact.previous, "title") or None,
                        "last_login": (seen.isoformat() if (seen := login(contact)) else None),
                        "since": finding.observed.isoformat(),
                        "replaced_by": (_text(successor.latest, "email") if successor else None),
                    },
                )
            )
        if opts.signal_no_champion:
            champions = [c for c in people.values() if role(c.latest) == champion_role]
            if not any(present(c) for c in champions):
                left = [
                    c.changed
                    for c in people.values()
                    if champion_role in (role(c.latest), role(c.previous))
                ]
                since = max(left) if left else min(c.changed for c in people.values())
                if since == _EPOCH:
                    since = today
                signals.append(
                    Signal(
                        account_id=account.id,
                        kind=self.name,
                        key="no_champion",
                        strength=0.5,
                        observed_at=_midnight(since),
                        summary=f"{account.label} has no active {champion_role} among its "
                        f"{len(people)} contacts.",
                        evidence={
                            "contacts": len(people),
                            "since": since.isoformat(),
                            "former_champions": sorted(_text(c.latest, "email") for c in champions),
                        },
                    )
                )
        return signals

    def _finding(
        self,
        contact: _Contact,
        key_role: str,
        now_role: str,
        status: str,
        seen: date | None,
        gone: set[str],
        bounced: set[str],
        others_active: bool,
        silent_before: date,
    ) -> _Finding | None:
        """The most telling thing about one key contact, if anything is wrong."""
        champion = key_role == (self.options.key_roles[0] if self.options.key_roles else "")
        who = _text(contact.latest, "name") or _text(contact.latest, "email")
        title = _text(contact.latest, "title")
        old_title = _text(contact.previous, "title")
        label = f"{key_role.capitalize()} {who}" + (f" ({title})" if title else "")
        on = contact.changed
        if status in gone:
            return _Finding(
                0.8 if champion else 0.6,
                on,
                f"{label} was marked {status} on {on.isoformat()}.",
                "gone",
            )
        if status in bounced:
            return _Finding(
                0.7 if champion else 0.5,
                on,
                f"E-mail to {key_role} {who}"
                + (f" ({title})" if title else "")
                + f" has bounced since {on.isoformat()}.",
                "bounced",
            )
        previous = contact.previous
        if previous is not None:
            old_company = _text(previous, "company")
            new_company = _text(contact.latest, "company")
            if old_company and new_company and old_company != new_company:
                return _Finding(
                    0.7 if champion else 0.5,
                    on,
                    f"{label} moved from {old_company} to {new_company} on {on.isoformat()}.",
                    "company_changed",
                )
            if now_role != key_role:
                return _Finding(
                    0.6 if champion else 0.4,
                    on,
                    f"{who} is no longer the {key_role} since {on.isoformat()}.",
                    "role_changed",
                )
            if old_title and title and old_title != title:
                return _Finding(
                    0.4 if champion else 0.3,
                    on,
                    f"{key_role.capitalize()} {who} changed title from {old_title} "
                    f"to {title} on {on.isoformat()}.",
                    "title_changed",
                )
        if seen is not None and seen <= silent_before and others_active:
            days = (silent_before - seen).days + self.options.inactive_days
            became = seen + timedelta(days=self.options.inactive_days)
            return _Finding(
                0.5 if champion else 0.4,
                became,
                f"{label} has not logged in for {days} days while colleagues have.",
                "silent",
            )
        return None
