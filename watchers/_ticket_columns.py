"""The support watcher's columnar path: ticket rows as Arrow columns, each account's counts
tallied with numpy in one pass over the arrays.

Equal to the row path by construction: the same rows are kept (wanted accounts, a time not
after now), each value is read by the row path's own functions (distinct value by distinct
value), and each count, first time and window bin is what the row path's loop adds up.
A value is only read where the row path reads it (a response time only for a ticket old
enough to be late), so a malformed one fails, or not, as it does there. The watcher's tests
run both ways.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from . import _arrays as arrays  # noqa: TID251 (a sibling helper)

#: The ticket fields read.
FIELDS = (
    "account_id",
    "ticket_id",
    "opened_at",
    "priority",
    "escalated",
    "status",
    "first_response_at",
)


@dataclass(frozen=True)
class Params:
    """What the tally needs of the watcher's options and the run."""

    wanted: Any  # a mapping of account ids
    now: datetime
    recent_from: datetime
    baseline_from: datetime
    answer_by: datetime
    window_days: int
    bins: int
    replay: bool
    instant: Callable[[object], datetime | None]
    is_p1: Callable[[object], bool]
    is_escalated: Callable[[object], bool]
    is_closed: Callable[[object], bool]


@dataclass
class Tallies:
    """Per account (in ``ids``, first seen order): the counts of the row path's tally."""

    ids: list[object]
    first: Any  # int64 microseconds
    recent: Any  # (accounts, 3) counts
    baseline: Any  # (accounts, 3)
    per_window: Any  # (accounts, 3, bins) int32
    first_recent: Any  # (accounts, 3) microseconds, -1: none
    p1_before: Any  # (accounts,)
    #: Per account index: (opened microseconds, ticket id) of each unanswered ticket.
    unanswered: dict[int, list[tuple[int, str]]]


def tally(table: Any, p: Params) -> Tallies:
    """Every wanted account's counts from the ticket columns (see :class:`Tallies`)."""
    import numpy as np

    # Rows are kept by position (``at``), each column taken there only as it is read: the
    # table is never copied whole (the book's usual case takes no copy at all).
    codes, distinct = arrays.encoded(table.column("account_id"))
    wanted = np.array([v in p.wanted for v in [*distinct, None]], dtype=bool)
    at = np.flatnonzero(wanted[codes])
    codes = codes[at]
    opened, present = arrays.instants(arrays.kept(table.column("opened_at"), at), p.instant)
    now = arrays.microseconds(p.now)
    keep = np.flatnonzero(present & (opened <= now))
    at, codes, opened = at[keep], codes[keep], opened[keep]
    del keep, present
    # Accounts numbered in the order the row path first meets them.
    seen, index = np.unique(codes, return_index=True)
    order = np.argsort(index, kind="stable")
    number = np.empty(len(distinct) + 1, dtype=np.int64)
    number[seen[order]] = np.arange(len(seen))
    acc = number[codes]
    count = len(seen)
    first = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(first, acc, opened)
    p1 = arrays.per_value(arrays.kept(table.column("priority"), at), p.is_p1)
    recent_from = arrays.microseconds(p.recent_from)
    recent = opened > recent_from
    p1_before = np.bincount(acc[~recent & p1], minlength=count)
    counted = recent | (opened > arrays.microseconds(p.baseline_from))
    escalated = arrays.per_value(arrays.kept(table.column("escalated"), at), p.is_escalated)
    kinds = np.stack([np.ones(len(acc), dtype=bool), escalated, p1], axis=1)
    out = Tallies(
        ids=[distinct[c] for c in seen[order].tolist()],
        first=first,
        recent=np.zeros((count, 3), dtype=np.int64),
        baseline=np.zeros((count, 3), dtype=np.int64),
        per_window=np.zeros((count, 3, p.bins), dtype=np.int32),  # a window's tickets
        first_recent=np.full((count, 3), -1, dtype=np.int64),
        p1_before=p1_before,
        unanswered={},
    )
    slot = (recent_from - opened) // arrays.DAY_US // p.window_days
    for kind in range(3):
        new = recent & kinds[:, kind]
        out.recent[:, kind] = np.bincount(acc[new], minlength=count)
        earliest = np.full(count, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(earliest, acc[new], opened[new])
        out.first_recent[:, kind] = np.where(out.recent[:, kind] > 0, earliest, -1)
        old = counted & ~recent & kinds[:, kind]
        out.baseline[:, kind] = np.bincount(acc[old], minlength=count)
        binned = old & (slot < p.bins)
        np.add.at(out.per_window, (acc[binned], kind, slot[binned]), 1)
    late = np.flatnonzero(counted & (opened <= arrays.microseconds(p.answer_by)))
    _unanswered(table, at[late], acc[late], opened[late], now, p, out)
    return out


def _unanswered(
    table: Any, at: Any, acc: Any, opened: Any, now: int, p: Params, out: Tallies
) -> None:
    """Of the tickets old enough to be late (rows ``at`` of ``table``), those with no
    response by now (nor, outside a replay, a closed status), in row order. Each column is
    taken only at the rows still in question (few once the answered are out)."""
    import numpy as np

    column = arrays.kept(table.column("first_response_at"), at)
    answered, present = arrays.instants(column, p.instant)
    rows = np.flatnonzero(~(present & (answered <= now)))
    del column, answered, present
    if not p.replay:
        closed = arrays.per_value(arrays.kept(table.column("status"), at[rows]), p.is_closed)
        rows = rows[~closed]
    ids = arrays.kept(table.column("ticket_id"), at[rows]).to_pylist()
    for account, when, ticket in zip(acc[rows].tolist(), opened[rows].tolist(), ids, strict=True):
        out.unanswered.setdefault(account, []).append((when, str(ticket or "?")))
