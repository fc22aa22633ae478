"""A correlation pass over the alerts' heads: the steady ones settled without reading them.

In a steady pass almost every open alert still holds with the same facts, no notice is
due, and the pass leaves it as it is. :func:`decide_heads` settles those from the light
head of each alert on record (its lifecycle columns, and the digest of its facts saved
with it: :mod:`swanwatch.facts`) and the candidate's digest, and reads in full only the
alerts it cannot settle (:func:`swanwatch.alerts.reconcile_accounts` decides them as a
pass always did). What it decides is exactly what :func:`swanwatch.alerts.decide_accounts`
decides over the full alerts: :func:`settled` holds only where the full path writes and
tells nothing (tests/test_steady.py compares the two).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta

from swanwatch.alerts import Reconciliation, reconcile_accounts, repeat_after
from swanwatch.correlate import Assessment, Candidate, candidates
from swanwatch.facts import SCORE_STEP, AlertHead, Told, facts_digest, notice_due
from swanwatch.model import Alert, AlertState
from swanwatch.muting import Muter
from swanwatch.settings import Config


def settled(
    head: AlertHead,
    cand: Candidate,
    mute: str | None,
    now: datetime,
    wait: Callable[[Told], timedelta],
) -> bool:
    """Whether a pass leaves this alert as it is, its candidate holding now (``mute``:
    the silence that mutes the candidate, if any): open, not waking from a snooze, not
    clearing, muted as before, its score within :data:`~swanwatch.facts.SCORE_STEP`, no
    notice due, and the candidate's facts those of the alert (equal digests). Then its
    refresh changes nothing :func:`~swanwatch.facts.worth_saving` compares. False means
    "not known here": the full path decides."""
    if head.digest is None or not head.open or head.clear_since is not None:
        return False
    if head.muted_by != mute or abs(cand.score - head.score) >= SCORE_STEP:
        return False
    if head.state == AlertState.SNOOZED and (
        head.snoozed_until is None or head.snoozed_until <= now
    ):
        return False  # it wakes
    # With equal facts the severity is the head's, and the state stays: after = head.
    if mute is None and notice_due(head, head, False, now, wait) is not None:
        return False
    return facts_digest(cand) == head.digest


def decide_heads(
    assessments: Iterable[Assessment],
    heads: Sequence[AlertHead],
    load: Callable[[Sequence[str]], Iterable[Alert]],
    *,
    listed: Iterable[str],
    muted: Muter,
    now: datetime,
    config: Config,
) -> Reconciliation:
    """:func:`swanwatch.alerts.decide_accounts` over the heads of the alerts on record:
    the alerts :func:`settled` leaves as they are are not read; ``load`` reads the others
    in full, by fingerprint (:func:`reconcile_heads`)."""
    wanted = candidates(assessments, now, config.correlation.phrases)
    return reconcile_heads(wanted, heads, load, listed=listed, muted=muted, now=now, config=config)


def reconcile_heads(
    wanted: Sequence[Candidate],
    heads: Sequence[AlertHead],
    load: Callable[[Sequence[str]], Iterable[Alert]],
    *,
    listed: Iterable[str],
    muted: Muter,
    now: datetime,
    config: Config,
) -> Reconciliation:
    """:func:`swanwatch.alerts.reconcile_accounts` over the heads of the alerts on record:
    ``load`` reads in full those :func:`settled` does not leave as they are: those with
    a candidate, and the open ones without (they clear, or retire). A resolved alert that
    no candidate holds stays as it is, unread."""
    in_list = set(listed)
    wait = repeat_after(config.notify)
    by_fp = {h.fingerprint: h for h in heads}
    rest: list[Candidate] = []
    held: set[str] = set()
    for cand in wanted:
        head = by_fp.get(cand.fingerprint)
        if head is not None:
            held.add(cand.fingerprint)
            if head.account_id in in_list and settled(head, cand, muted(cand), now, wait):
                continue
        rest.append(cand)
    done = held - {c.fingerprint for c in rest}
    needed = [
        h.fingerprint
        for h in heads
        if h.fingerprint not in done and (h.open or h.fingerprint in held)
    ]
    loaded = {a.fingerprint: a for a in load(needed)} if needed else {}
    on_record = [loaded[fp] for fp in needed if fp in loaded]
    return reconcile_accounts(rest, on_record, listed=in_list, muted=muted, now=now, config=config)
