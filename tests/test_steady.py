"""A steady pass settles the alerts that do not change from their heads and decides exactly
what the full path decides: the same alerts changed, field by field, the same notices."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from swanwatch.alerts import RETIRED, SCORE_STEP, Reconciliation, reconcile_accounts
from swanwatch.config import Config
from swanwatch.correlate import Candidate, alert_fingerprint
from swanwatch.facts import AlertHead, alert_digest, facts_digest, worth_saving
from swanwatch.model import Alert, AlertState, Contribution, Reason, Severity
from swanwatch.steady import reconcile_heads

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CONFIG = Config.model_validate(
    {
        "accounts": {"source": "accounts"},
        "notify": {"repeat_interval": "7d", "critical_repeat": "4h"},
    }
)
SILENCE = "silence 1 by ann until 2026-12-01 00:00 UTC"
RULES = {
    "pair": ("Champion left and usage fell", Severity.CRITICAL),
    "usage": ("Usage sagging", Severity.HIGH),
    "renewal": ("Renewal at risk", Severity.WARNING),
}
SEVERITIES = list(Severity)


def _signal(fp: str, strength: float = 0.8, summary: str | None = None) -> Contribution:
    return Contribution(
        fingerprint=fp,
        kind="usage_drop",
        key=fp,
        summary=summary or f"usage fell on {fp}",
        strength=strength,
        weight=0.7,
        decay=0.9,
        age_days=1.0,
        observed_at=NOW - timedelta(days=1),
    )


def _reason(rule: str, severity: Severity | None = None) -> Reason:
    title, own = RULES[rule]
    return Reason(rule=rule, title=title, severity=severity or own)


def _candidate(account: str, rules: tuple[str, ...] = ("usage",), **kw: object) -> Candidate:
    reasons = tuple(_reason(r) for r in rules)
    values: dict[str, object] = {
        "fingerprint": alert_fingerprint(account, "*"),
        "account_id": account,
        "rule": reasons[0].rule,
        "title": reasons[0].title,
        "severity": reasons[0].severity,
        "score": 0.6,
        "contributions": (_signal("s1"), _signal("s2", 0.5)),
        "why_now": ("Usage fell 40% in a week.", "Renewal on 2027-01-10 is 51 days away."),
        "play": ("Call the champion.",),
        "at_stake": {
            "name": account.title(),
            "arr": 12000.0,
            "revenue_at_risk": 7200.0,
            "days_to_renewal": 51,
            "owner": "ann@csm.example",
            "segment": None,
        },
        "reasons": reasons,
    }
    values.update(kw)
    return Candidate(**values)  # type: ignore[arg-type]


# --- the alerts on record, as an earlier pass left them -----------------------------------


@dataclass(frozen=True)
class Lifecycle:
    """How an alert on record stands: its state and what was told."""

    state: AlertState
    acted_by: str | None
    snoozed_for: timedelta | None  # from now (negative: past); None: no end
    muted: bool
    clearing: bool
    told_ago: timedelta | None  # None: never told
    told_severity: Severity | None
    notify_count: int
    retired_ago: timedelta | None
    known_digest: bool


def _lifecycle(draw: st.DrawFn) -> Lifecycle:
    state = draw(st.sampled_from(list(AlertState)))
    acted_by = {
        AlertState.FIRING: None,
        AlertState.ACKNOWLEDGED: "ack:ann",
        AlertState.SNOOZED: "snooze:ann",
        AlertState.RESOLVED: draw(st.sampled_from(["resolve:ann", None, "retired"])),
    }[state]
    retired_ago = None
    if acted_by == "retired":
        acted_by = f"{RETIRED};was=acknowledged:ack:ann"
        retired_ago = draw(st.sampled_from([timedelta(hours=2), timedelta(days=3)]))
    told = draw(
        st.sampled_from([None, timedelta(minutes=30), timedelta(hours=5), timedelta(days=8)])
    )
    return Lifecycle(
        state=state,
        acted_by=acted_by,
        snoozed_for=draw(
            st.sampled_from([None, timedelta(hours=-1), timedelta(0), timedelta(days=1)])
        ),
        muted=draw(st.booleans()),
        clearing=draw(st.booleans()) if state != AlertState.RESOLVED else False,
        told_ago=told,
        told_severity=None if told is None else draw(st.sampled_from(SEVERITIES)),
        notify_count=0 if told is None else draw(st.integers(1, 6)),
        retired_ago=retired_ago,
        known_digest=draw(st.integers(0, 9)) > 0,
    )


def _on_record(cand: Candidate, life: Lifecycle) -> tuple[Alert, str | None]:
    """The alert an earlier pass saved from ``cand``, read back from the store (JSON),
    and the digest saved with it."""
    started = NOW - timedelta(days=10)
    resolved = life.state == AlertState.RESOLVED
    saved = Alert(
        fingerprint=cand.fingerprint,
        account_id=cand.account_id,
        rule=cand.rule,
        title=cand.title,
        severity=cand.severity,
        score=cand.score,
        state=life.state,
        contributions=cand.contributions,
        why_now=cand.why_now,
        play=cand.play,
        at_stake=dict(cand.at_stake),
        reasons=tuple(r.model_copy(update={"since": started}) for r in cand.reasons),
        started_at=started,
        updated_at=NOW - timedelta(minutes=30),
        resolved_at=(NOW - (life.retired_ago or timedelta(hours=1))) if resolved else None,
        clear_since=NOW - timedelta(days=1) if life.clearing else None,
        snoozed_until=(
            NOW + life.snoozed_for
            if life.state == AlertState.SNOOZED and life.snoozed_for is not None
            else None
        ),
        last_notified_at=None if life.told_ago is None else NOW - life.told_ago,
        last_notified_severity=life.told_severity,
        notify_count=life.notify_count,
        notified_signals=tuple(c.fingerprint for c in cand.contributions[:1]),
        muted_by=SILENCE if life.muted else None,
        acted_by=life.acted_by,
        version=3,
    )
    digest = alert_digest(saved) if life.known_digest else None
    return Alert.model_validate_json(saved.model_dump_json()), digest


# --- what changed since ---------------------------------------------------------------------

CHANGES = (
    "same",
    "score_drift_small",
    "score_drift_large",
    "signal_new",
    "signal_gone",
    "summary",
    "strength",
    "severity_up",
    "severity_down",
    "reason_added",
    "reason_removed",
    "renewal_days",
    "gone",
)


def _changed(cand: Candidate, change: str) -> Candidate | None:
    """``cand`` as the pass now finds it (None: no rule holds any more)."""
    signals = cand.contributions
    if change == "gone":
        return None
    if change == "same":
        return replace(cand, at_stake={**cand.at_stake, "revenue_at_risk": 7100.0})
    if change.startswith("score_drift"):
        step = SCORE_STEP / 2 if change.endswith("small") else SCORE_STEP
        return replace(cand, score=cand.score - step)
    if change == "signal_new":
        return replace(cand, contributions=(*signals, _signal("s3")))
    if change == "signal_gone":
        return replace(cand, contributions=signals[:1])
    if change == "summary":
        return replace(cand, contributions=(_signal("s1", summary="usage fell 60%"), *signals[1:]))
    if change == "strength":
        return replace(cand, contributions=(_signal("s1", 0.95), *signals[1:]))
    if change in ("severity_up", "severity_down"):
        severity = Severity.CRITICAL if change == "severity_up" else Severity.WARNING
        top = cand.reasons[0].model_copy(update={"severity": severity})
        return replace(cand, severity=severity, reasons=(top, *cand.reasons[1:]))
    if change == "reason_added":
        return replace(cand, reasons=(*cand.reasons, _reason("renewal")))
    if change == "reason_removed":
        return replace(cand, reasons=cand.reasons[:1])
    assert change == "renewal_days"
    return replace(cand, at_stake={**cand.at_stake, "days_to_renewal": 50})


@dataclass(frozen=True)
class Account:
    """One account of the batch: its alert on record (if any) and its candidate now."""

    id: str
    rules: tuple[str, ...]
    life: Lifecycle | None
    change: str
    mute: bool
    listed: bool


@st.composite
def accounts(draw: st.DrawFn) -> list[Account]:
    count = draw(st.integers(1, 4))
    return [
        Account(
            id=f"acct-{n}",
            rules=draw(st.sampled_from([("usage",), ("pair", "usage"), ("usage", "renewal")])),
            life=None if draw(st.integers(0, 9)) == 0 else _lifecycle(draw),
            change=draw(st.sampled_from(CHANGES)),
            mute=draw(st.booleans()),
            listed=draw(st.integers(0, 9)) > 0,
        )
        for n in range(count)
    ]


@dataclass
class Batch:
    """A batch as both paths see it."""

    wanted: list[Candidate]
    on_record: list[Alert]
    heads: list[AlertHead]
    listed: set[str]
    muted: set[str]
    loaded: list[str]

    def mute(self, cand: Candidate) -> str | None:
        return SILENCE if cand.account_id in self.muted else None

    def load(self, fingerprints: Sequence[str]) -> list[Alert]:
        wanted = list(fingerprints)
        self.loaded.extend(wanted)
        return [a for a in self.on_record if a.fingerprint in wanted]


def _batch(book: list[Account]) -> Batch:
    batch = Batch([], [], [], set(), set(), [])
    for account in book:
        cand = _candidate(account.id, account.rules)
        if account.life is not None:
            alert, digest = _on_record(cand, account.life)
            batch.on_record.append(alert)
            batch.heads.append(AlertHead.of(alert, digest))
        now = _changed(cand, account.change)
        if now is not None:
            batch.wanted.append(now)
        if account.listed:
            batch.listed.add(account.id)
        if account.mute:
            batch.muted.add(account.id)
    return batch


def _full(batch: Batch) -> Reconciliation:
    return reconcile_accounts(
        batch.wanted,
        batch.on_record,
        listed=batch.listed,
        muted=batch.mute,
        now=NOW,
        config=CONFIG,
    )


def _fast(batch: Batch) -> Reconciliation:
    return reconcile_heads(
        batch.wanted,
        batch.heads,
        batch.load,
        listed=batch.listed,
        muted=batch.mute,
        now=NOW,
        config=CONFIG,
    )


@settings(max_examples=250, deadline=None)
@given(accounts())
def test_the_steady_path_decides_what_the_full_path_decides(book: list[Account]) -> None:
    batch = _batch(book)
    full, fast = _full(batch), _fast(batch)
    # In the same order too: the alerts settled are those the full path leaves alone.
    assert fast.changed == full.changed
    assert fast.notices == full.notices


def test_a_steady_alert_is_settled_without_being_read() -> None:
    """The comparison above is not won by reading every alert: an open, told, unchanged
    alert is settled from its head; one whose facts changed is read and saved."""
    life = Lifecycle(
        state=AlertState.FIRING,
        acted_by=None,
        snoozed_for=None,
        muted=False,
        clearing=False,
        told_ago=timedelta(minutes=30),
        told_severity=Severity.HIGH,
        notify_count=1,
        retired_ago=None,
        known_digest=True,
    )
    book = [
        Account("steady", ("usage",), life, "same", mute=False, listed=True),
        Account("drifting", ("usage",), life, "score_drift_small", mute=False, listed=True),
        Account("joined", ("usage",), life, "reason_added", mute=False, listed=True),
        Account("regraded", ("usage",), life, "strength", mute=False, listed=True),
    ]
    batch = _batch(book)
    fast = _fast(batch)
    assert batch.loaded == [alert_fingerprint(a, "*") for a in ("joined", "regraded")]
    assert sorted(a.account_id for a in fast.changed) == ["joined", "regraded"]
    assert fast.notices == []
    assert fast.changed == _full(batch).changed


def test_the_digest_and_worth_saving_see_the_same_facts() -> None:
    """Each fact worth_saving compares of a candidate changes the digest, and the revenue
    at risk (it follows the score) does not."""
    cand = _candidate("acme", ("usage", "renewal"))
    alert, _ = _on_record(cand, Lifecycle(AlertState.FIRING, None, None, False, False,
                                          None, None, 0, None, True))  # fmt: skip
    for change in CHANGES:
        now = _changed(cand, change)
        if now is None or change.startswith("score_drift"):
            continue
        facts = {
            "rule": now.rule, "title": now.title, "severity": now.severity,
            "contributions": now.contributions, "why_now": now.why_now, "play": now.play,
            "at_stake": dict(now.at_stake),
            "reasons": tuple(
                r.model_copy(update={"since": alert.reasons[0].since}) for r in now.reasons
            ),
        }  # fmt: skip
        refreshed = alert.model_copy(update=facts)
        assert (facts_digest(now) == alert_digest(alert)) == (not worth_saving(alert, refreshed)), (
            change
        )


def test_a_value_that_would_read_back_as_another_has_no_digest() -> None:
    """A tuple in what is at stake reads back as a list, a NaN is not equal to itself: no
    digest then (the full path decides)."""
    cand = _candidate("acme")
    assert facts_digest(cand) is not None
    assert facts_digest(replace(cand, at_stake={"tags": ("a", "b")})) is None
    assert facts_digest(replace(cand, at_stake={"arr": float("nan")})) is None
    assert facts_digest(replace(cand, why_now=["a list"])) is None  # type: ignore[arg-type]
    assert facts_digest(replace(cand, contributions=(_signal("s1", float("nan")),))) is None
