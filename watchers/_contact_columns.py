"""The champion watcher's columnar path: contact rows as Arrow columns, each contact's latest
row (and the one before) found with numpy, and only the accounts where something can be
wrong handed to the row path's judging.

Equal to the row path by construction: the same rows are kept (wanted accounts, a contact
named by e-mail or name, no change from the future), each value is read by the row path's
own functions (distinct value by distinct value), a contact's latest row is the last of its
rows by (change day, row order) and the one before the next to last, as the row path's
loop leaves them. An account is judged when one of its key contacts is gone, bounces, has
changed or is silent, or when it has no champion present: an account with none of these
gets no signal from the row path either. A date that does not read sends the watcher back
to the row path (which fails, or not, where it always did). The watcher's tests run both
ways.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from . import _arrays as arrays  # noqa: TID251 (a sibling helper)

#: The contact fields read.
FIELDS = (
    "account_id",
    "email",
    "name",
    "title",
    "role",
    "status",
    "last_login",
    "changed_at",
    "company",
)


class Unreadable(Exception):
    """A date the columns cannot read; the row path reads the source instead."""


@dataclass(frozen=True)
class Params:
    """What the screen needs of the watcher's options and the run."""

    wanted: Mapping[str, object]
    today: date
    key_roles: Collection[str]
    champion_role: str
    gone: Collection[str]
    bounced: Collection[str]
    silent_before: date
    no_champion: bool
    text: Callable[[object], str]
    day: Callable[[object], date | None]


#: A contact as the judging takes it: (e-mail key, latest row, its change day, row before).
Contact = tuple[str, dict[str, object], date, dict[str, object] | None]


@dataclass
class People:
    """The contacts of the accounts to judge, by account id; every account with contacts."""

    judged: dict[str, list[Contact]]
    known: set[str]


def people(table: Any, p: Params) -> People:
    """Each wanted account's contacts, screened (see the module's docstring)."""
    return screen(prepare(table, p), p)


@dataclass
class Prepared:
    """What the screen reads of a table, bar what depends on the day: each contact's
    latest row and the one before, and what its rows say (role, status, last login)."""

    table: Any
    distinct: list[object]
    names: list[str]  # each contact key's text, by its number
    key: Any
    changed: Any
    latest: Any
    previous: Any
    accounts: Any
    key_role: Any
    gone: Any
    champion: Any
    login: Any
    #: Rows left out as changed after the day prepared for: the contacts then hold only
    #: that day (a later day keeps more rows).
    future: bool


def prepare(table: Any, p: Params) -> Prepared | None:
    """The day-free part of the screen of ``table`` (None: no contact)."""
    import numpy as np

    # Per row: 32-bit numbers where they fit (key numbers, day ordinals), temporaries let
    # go once used: at 400,000 contacts each 64-bit column is 3 MiB more at the peak.
    codes, distinct = arrays.encoded(table.column("account_id"))
    wanted = np.array([v in p.wanted for v in [*distinct, None]], dtype=bool)
    rows = np.flatnonzero(wanted[codes])
    table, codes = arrays.kept(table, rows), codes[rows]
    del rows
    keys: dict[str, int] = {"": 0}
    key = arrays.per_value(
        table.column("email"), lambda v: keys.setdefault(p.text(v).lower(), len(keys)), np.int32
    )
    by_name = arrays.per_value(
        table.column("name"), lambda v: keys.setdefault(p.text(v), len(keys)), np.int32
    )
    key = np.where(key != 0, key, by_name)
    del by_name
    changed = arrays.per_value(table.column("changed_at"), lambda v: _ordinal(p.day, v), np.int32)
    named = key != 0
    keep = np.flatnonzero(named & (changed <= p.today.toordinal()))
    future = int(np.count_nonzero(named)) != len(keep)
    del named
    table, codes, key, changed = arrays.kept(table, keep), codes[keep], key[keep], changed[keep]
    if not len(keep):
        return None
    del keep
    group = codes * len(keys) + key
    order = np.lexsort((np.arange(len(group)), changed, group))
    sorted_group = group[order]
    del group
    same = sorted_group[1:] == sorted_group[:-1]  # a row and the next: one contact
    del sorted_group
    ends = np.flatnonzero(np.append(~same, True))  # each contact's last row, in order
    latest = order[ends]
    previous = np.where(np.append(False, same)[ends], order[ends - 1], -1)
    del order, same, ends
    role = arrays.per_value(table.column("role"), lambda v: p.text(v).lower() in p.key_roles)
    status = arrays.per_value(table.column("status"), lambda v: _status(p, v), np.int8)
    champion = arrays.per_value(
        table.column("role"), lambda v: p.text(v).lower() == p.champion_role
    )
    login = arrays.per_value(table.column("last_login"), lambda v: _login(p.day, v), np.int32)
    return Prepared(
        table=table,
        distinct=distinct,
        names=list(keys),  # numbered in the order added
        key=key,
        changed=changed,
        latest=latest,
        previous=previous,
        accounts=codes[latest],
        key_role=role[latest] | np.where(previous >= 0, role[previous], _role_of_none(p)),
        gone=status[latest] > 0,
        champion=champion[latest],
        login=login[latest],
        future=future,
    )


def screen(prep: Prepared | None, p: Params) -> People:
    """The accounts worth judging on ``p.today``, with their contacts."""
    import numpy as np

    if prep is None:
        return People(judged={}, known=set())
    accounts, latest, previous = prep.accounts, prep.latest, prep.previous
    silent = (prep.login >= 0) & (prep.login <= p.silent_before.toordinal())
    busy = prep.key_role & (prep.gone | (previous >= 0) | silent)
    present = prep.champion & ~prep.gone
    count = len(prep.distinct) + 1
    flagged = np.bincount(accounts[busy], minlength=count) > 0
    if p.no_champion:
        flagged |= np.bincount(accounts[present], minlength=count) == 0
    distinct = prep.distinct
    out = People(judged={}, known={str(distinct[c]) for c in set(accounts.tolist())})
    chosen = np.flatnonzero(flagged[accounts])
    table = prep.table
    latest_rows = table.take(latest[chosen]).to_pylist()
    before = previous[chosen]
    before_rows = table.take(np.maximum(before, 0)).to_pylist() if len(chosen) else []
    for i, c in enumerate(chosen.tolist()):
        row = latest[c]
        contact = (
            prep.names[int(prep.key[row])],
            latest_rows[i],
            date.fromordinal(int(prep.changed[row])),
            before_rows[i] if before[i] >= 0 else None,
        )
        out.judged.setdefault(str(distinct[accounts[c]]), []).append(contact)
    return out


def _ordinal(day: Callable[[object], date | None], value: object) -> int:
    """A change day as an ordinal (no day: the first day of all, as the row path takes it)."""
    try:
        found = day(value)
    except ValueError as exc:
        raise Unreadable(str(exc)) from exc
    return (found or date.min).toordinal()


def _role_of_none(p: Params) -> bool:
    """Whether no row before makes a key role (an empty role among ``key_roles``)."""
    return "" in p.key_roles


def _status(p: Params, value: object) -> int:
    """1 for a gone or bouncing contact's status, else 0."""
    status = p.text(value).lower() or "active"
    return int(status in p.gone or status in p.bounced)


def _login(day: Callable[[object], date | None], value: object) -> int:
    """A last login as an ordinal (-1: none)."""
    try:
        seen = day(value)
    except ValueError as exc:
        raise Unreadable(str(exc)) from exc
    return -1 if seen is None else seen.toordinal()


@dataclass
class Carry:
    """A replay's screen carried from day to day: the day-free part is prepared again only
    when the table (or the accounts wanted) is not the last one, or when the last left out
    rows changed after its day (a later day keeps them)."""

    table: Any = None
    wanted: frozenset[object] = frozenset()
    today: date = date.min
    prep: Prepared | None = None

    def people(self, table: Any, p: Params) -> People:
        """:func:`people`, from what is carried where it holds."""
        wanted = frozenset(p.wanted)
        if (
            self.table is None
            or self.prep is None
            or self.prep.future
            or p.today < self.today
            or wanted != self.wanted
            or not table.equals(self.table)
        ):
            self.table = None
            self.prep = prepare(table, p)
            self.table, self.wanted, self.today = table, wanted, p.today
        return screen(self.prep, p)
