"""Signals an account losing its champion or sponsor: gone, bouncing, silent, moved on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, ClassVar

from pydantic import Field

from swanwatch import (
    Account,
    Replayer,
    Signal,
    SourceUse,
    WatchContext,
    Watcher,
    WatcherOptions,
)
from swanwatch.values import day_of, midnight, text_of

from . import _arrays as contact_arrays  # noqa: TID251 (a sibling helper)
from . import _contact_columns as contacts  # noqa: TID251 (a sibling helper)

_EPOCH = date.min


def _text(row: Mapping[str, object] | None, field: str) -> str:
    return "" if row is None else text_of(row.get(field))


def _role(row: Mapping[str, object] | None) -> str:
    return _text(row, "role").lower()


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


@dataclass(frozen=True)
class _Judging:
    """What one account's contacts are judged by, today."""

    today: date
    key_roles: tuple[str, ...]
    champion_role: str
    gone: frozenset[str]
    bounced: frozenset[str]
    silent_before: date
    recent_after: date

    def status(self, c: _Contact) -> str:
        return _text(c.latest, "status").lower() or "active"

    def login(self, c: _Contact) -> date | None:
        seen = day_of(c.latest.get("last_login"))
        return min(seen, self.today) if seen else None

    def present(self, c: _Contact) -> bool:
        return self.status(c) not in self.gone and self.status(c) not in self.bounced


class ChampionDepartureWatcher(Watcher):
    """A champion or sponsor who left, bounces, went silent, changed title or company.

    Reads contact rows (account_id, email, name, title, role, status, last_login, changed_at;
    ``company`` optional). Several rows for one e-mail are its history: the latest by
    ``changed_at`` is the contact now, the one before tells what changed. One signal per key
    contact (``key`` = e-mail), the most telling finding; and one with ``key="no_champion"``
    for an account that has no active champion at all. A finding older than ``recent_days``
    is no longer signalled, nor kept while the contacts source is unhealthy. Contacts change
    rarely, so the source is checked for freshness only when it sets ``fresh_within``
    (against the newest ``last_login``: a CRM sync that stops shows there first).
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
    #: In a replay: the contacts' screen carried from the days before (see ``replayer``).
    carry: contacts.Carry | None = None

    def replayer(self) -> Replayer:
        return _Replay(self)

    def uses(self) -> tuple[SourceUse, ...]:
        return (
            SourceUse(self.options.contacts_source, "last_login", fields=("account_id", "role")),
        )

    def lookback(self) -> timedelta:
        return timedelta(days=self.options.recent_days)

    async def watch(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        opts = self.options
        now = ctx.clock.now()
        today = now.date()
        wanted = {a.id: a for a in ctx.accounts}
        if not wanted:
            return
        source = ctx.source(opts.contacts_source)
        tables = source.columns(contacts.FIELDS, until=now if ctx.replay else None)
        found = None if tables is None else await self._read_columns(ctx, tables, wanted, today)
        judged, known = found if found is not None else await self._read_rows(ctx, wanted, today)
        for account in wanted.values():
            people = judged.get(account.id)
            if people:
                for signal in self._judge(account, people, today):
                    yield signal
            elif account.id not in known:
                ctx.report_unknown(account, f"no contacts in source {opts.contacts_source!r}")

    async def _read_rows(
        self, ctx: WatchContext, wanted: dict[str, Account], today: date
    ) -> tuple[dict[str, dict[str, _Contact]], set[str]]:
        """Every wanted account's contacts, row by row; and the accounts that have any."""
        contacts: dict[str, dict[str, _Contact]] = {}
        source = ctx.source(self.options.contacts_source)
        async for row in source.rows(until=ctx.clock.now() if ctx.replay else None):
            account_id = row.get("account_id")
            if account_id not in wanted:
                continue
            email = _text(row, "email").lower() or _text(row, "name")
            if not email:
                continue
            changed = day_of(row.get("changed_at")) or _EPOCH
            if changed > today:
                continue  # a change from the future (snapshot read in a replay)
            people = contacts.setdefault(str(account_id), {})
            known = people.get(email)
            if known is None:
                people[email] = _Contact(row, changed)
            elif changed >= known.changed:
                people[email] = _Contact(row, changed, known.latest)
            elif known.previous is None or changed >= (
                day_of(known.previous.get("changed_at")) or _EPOCH
            ):
                known.previous = row
        return contacts, set(contacts)

    async def _read_columns(
        self, ctx: WatchContext, tables: AsyncIterator[Any], wanted: dict[str, Account], today: date
    ) -> tuple[dict[str, dict[str, _Contact]], set[str]] | None:
        """The contacts of the accounts worth judging, as columns (see _contact_columns);
        None when the columns do not read (the row path then reads the source)."""
        import pyarrow as pa

        j = self._judging(today)
        params = contacts.Params(
            wanted=wanted,
            today=today,
            key_roles=frozenset(j.key_roles),
            champion_role=j.champion_role,
            gone=j.gone,
            bounced=j.bounced,
            silent_before=j.silent_before,
            no_champion=self.options.signal_no_champion,
            text=text_of,
            day=day_of,
        )
        try:
            table = await contact_arrays.gathered(tables, contacts.FIELDS)
            people = contacts.people if self.carry is None else self.carry.people
            found = await ctx.run_blocking(people, table, params)
        except (pa.ArrowTypeError, pa.ArrowInvalid, contacts.Unreadable):
            return None
        judged = {
            account_id: {
                key: _Contact(latest, changed, before) for key, latest, changed, before in people
            }
            for account_id, people in found.judged.items()
        }
        return judged, found.known

    def _judging(self, today: date) -> _Judging:
        opts = self.options
        return _Judging(
            today=today,
            key_roles=tuple(opts.key_roles),
            champion_role=opts.key_roles[0] if opts.key_roles else "champion",
            gone=frozenset(s.lower() for s in opts.gone_statuses),
            bounced=frozenset(s.lower() for s in opts.bounced_statuses),
            silent_before=today - timedelta(days=opts.inactive_days),
            recent_after=today - timedelta(days=opts.recent_days),
        )

    def _judge(self, account: Account, people: dict[str, _Contact], today: date) -> list[Signal]:
        j = self._judging(today)
        signals = []
        for email, contact in sorted(people.items()):
            signal = self._key_contact(account, email, contact, people, j)
            if signal is not None:
                signals.append(signal)
        if self.options.signal_no_champion:
            signal = self._no_champion(account, people, j)
            if signal is not None:
                signals.append(signal)
        return signals

    def _key_contact(
        self,
        account: Account,
        email: str,
        contact: _Contact,
        people: dict[str, _Contact],
        j: _Judging,
    ) -> Signal | None:
        """The signal about one contact, if it holds a key role and something is wrong."""
        now_role = _role(contact.latest)
        key_role = now_role if now_role in j.key_roles else _role(contact.previous)
        if key_role not in j.key_roles:
            return None
        others_active = any(
            (seen := j.login(other)) is not None and seen > j.silent_before and j.present(other)
            for e, other in people.items()
            if e != email
        )
        finding = self._finding(contact, key_role, now_role, j, others_active)
        if finding is None or finding.observed < j.recent_after:
            return None
        strength = finding.strength
        successor = None
        if key_role == j.champion_role and finding.reason != "silent":
            successor = _successor(email, contact, people, j)
        summary = finding.summary
        if successor is not None:
            strength *= 0.75  # someone took over: a new relationship, not none
            summary = summary.rstrip(".") + (
                f"; {_text(successor.latest, 'name') or 'someone'} has taken over as "
                f"{j.champion_role}."
            )
        seen = j.login(contact)
        return Signal(
            account_id=account.id,
            kind=self.name,
            key=email,
            strength=round(min(1.0, strength), 3),
            observed_at=midnight(finding.observed),
            summary=summary,
            evidence={
                "contact": email,
                "name": _text(contact.latest, "name"),
                "role": key_role,
                "reason": finding.reason,
                "status": j.status(contact),
                "title": _text(contact.latest, "title"),
                "previous_title": _text(contact.previous, "title") or None,
                "last_login": seen.isoformat() if seen else None,
                "since": finding.observed.isoformat(),
                "replaced_by": _text(successor.latest, "email") if successor else None,
            },
        )

    def _no_champion(
        self, account: Account, people: dict[str, _Contact], j: _Judging
    ) -> Signal | None:
        """The signal for an account none of whose champions is still there."""
        champion_role = j.champion_role
        champions = [c for c in people.values() if _role(c.latest) == champion_role]
        if any(j.present(c) for c in champions):
            return None
        left = [
            c.changed
            for c in people.values()
            if champion_role in (_role(c.latest), _role(c.previous))
        ]
        since = max(left) if left else min(c.changed for c in people.values())
        if since == _EPOCH:
            since = j.today
        return Signal(
            account_id=account.id,
            kind=self.name,
            key="no_champion",
            strength=0.5,
            observed_at=midnight(since),
            summary=f"{account.label} has no active {champion_role} among its "
            f"{len(people)} contacts.",
            evidence={
                "contacts": len(people),
                "since": since.isoformat(),
                "former_champions": sorted(_text(c.latest, "email") for c in champions),
            },
        )

    def _finding(
        self,
        contact: _Contact,
        key_role: str,
        now_role: str,
        j: _Judging,
        others_active: bool,
    ) -> _Finding | None:
        """The most telling thing about one key contact, if anything is wrong."""
        champion = key_role == j.champion_role
        who = _text(contact.latest, "name") or _text(contact.latest, "email")
        title = _text(contact.latest, "title")
        label = f"{key_role.capitalize()} {who}" + (f" ({title})" if title else "")
        on = contact.changed
        status = j.status(contact)
        if status in j.gone:
            return _Finding(
                0.8 if champion else 0.6,
                on,
                f"{label} was marked {status} on {on.isoformat()}.",
                "gone",
            )
        if status in j.bounced:
            return _Finding(
                0.7 if champion else 0.5,
                on,
                f"E-mail to {key_role} {who}"
                + (f" ({title})" if title else "")
                + f" has bounced since {on.isoformat()}.",
                "bounced",
            )
        changed = _change(contact, key_role, now_role, champion, who, label)
        if changed is not None:
            return changed
        seen = j.login(contact)
        if seen is not None and seen <= j.silent_before and others_active:
            inactive_days = self.options.inactive_days
            return _Finding(
                0.5 if champion else 0.4,
                seen + timedelta(days=inactive_days),
                f"{label} has not logged in for {(j.silent_before - seen).days + inactive_days} "
                "days while colleagues have.",
                "silent",
            )
        return None


def _successor(
    email: str, contact: _Contact, people: dict[str, _Contact], j: _Judging
) -> _Contact | None:
    """Another contact present in the champion role since the departure, if any."""
    return next(
        (
            other
            for e, other in sorted(people.items())
            if e != email
            and _role(other.latest) == j.champion_role
            and j.present(other)
            and other.changed >= contact.changed
        ),
        None,
    )


def _change(
    contact: _Contact, key_role: str, now_role: str, champion: bool, who: str, label: str
) -> _Finding | None:
    """What changed since the contact's previous row: company, role or title."""
    previous = contact.previous
    if previous is None:
        return None
    on = contact.changed
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
    title = _text(contact.latest, "title")
    old_title = _text(previous, "title")
    if old_title and title and old_title != title:
        return _Finding(
            0.4 if champion else 0.3,
            on,
            f"{key_role.capitalize()} {who} changed title from {old_title} "
            f"to {title} on {on.isoformat()}.",
            "title_changed",
        )
    return None


class _Replay(Replayer):
    """The champion watcher in a replay: the contacts change rarely, so what the screen
    reads of them (each contact's latest row and the one before, its role and status) is
    carried from one day to the next while they read the same (:class:`contacts.Carry`);
    each day is then screened and judged as ``watch()`` does."""

    def __init__(self, watcher: ChampionDepartureWatcher) -> None:
        self.watcher = watcher
        self.carry = contacts.Carry()

    def day(self, ctx: WatchContext) -> AsyncIterator[Signal]:
        self.watcher.carry = self.carry
        return self.watcher.watch(ctx)
