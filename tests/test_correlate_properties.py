"""Properties of correlation and the alert lifecycle over generated histories (hypothesis).

A history is a pool of signals on a few accounts and a sequence of steps; at each step the
clock moves on, some of the pool is active, silences may hold, and ``assess_all`` ->
``candidates`` -> silences -> ``reconcile`` run exactly as the engine runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from swanwatch.alerts import Notice, acknowledge, muter, reconcile
from swanwatch.config import CorrelationConfig, Rule, bundled
from swanwatch.correlate import Candidate, assess, assess_all, candidates, score_rule
from swanwatch.model import Account, Alert, AlertState, Severity, Signal, Silence

T0 = datetime(2026, 10, 1, tzinfo=UTC)
KINDS = ("champion_departure", "usage_drop", "renewal_lapse", "support_spike", "domain_expiry")
ACCOUNTS = (
    Account(id="a0", arr=120_000, renewal_date=date(2026, 11, 20), owner="ann", segment="ent"),
    Account(id="a1", arr=40_000, renewal_date=date(2027, 6, 1), owner="bob", segment="smb"),
    Account(id="a2", arr=9_000, renewal_date=date(2026, 10, 20), owner="ann", segment="smb"),
)
CONFIG = CorrelationConfig()
RULES = [
    Rule.model_validate(r)
    for r in yaml.safe_load(bundled("rules", "default.yaml").read_text())["rules"]
]
ALL_RULES = [*RULES, score_rule(CONFIG)]
SETTINGS = settings(max_examples=300, deadline=None)


# --- strategies ---------------------------------------------------------------------------

signals_st = st.builds(
    lambda account, kind, key, strength, age_h: Signal(
        account_id=account,
        kind=kind,
        key=key,
        strength=strength,
        observed_at=T0 - timedelta(hours=age_h),
        summary=f"{kind} on {account}",
        watcher=kind,
    ),
    st.sampled_from(["a0", "a0", "a1", "a1", "a2"]),  # a2 rarer: more compounds on a0, a1
    st.sampled_from(KINDS),
    st.sampled_from(["k1", "k2"]),
    st.one_of(st.floats(0.0, 1.0), st.floats(0.5, 1.0)),  # strong ones more often
    st.integers(0, 24 * 20),
)


@dataclass(frozen=True)
class Step:
    """One correlation pass: how far the clock moved, which signals of the pool are on, and
    whether a silence of everything holds for just this pass."""

    advance: timedelta
    active: frozenset[int]
    silenced: bool = False


silences_st = st.builds(
    lambda field_, value, start_h, hours: Silence(
        id=1,
        matchers={field_: value},
        starts_at=T0 + timedelta(hours=start_h),
        ends_at=T0 + timedelta(hours=start_h + hours),
        author="tester",
        reason="testing",
        created_at=T0,
    ),
    st.sampled_from(["account", "rule", "kind"]),
    st.sampled_from(["a0", "a1", "a2", "three_weak_signals", "risk_score", "usage_drop", "*"]),
    st.integers(0, 24 * 30),
    st.integers(1, 24 * 30),
)


@st.composite
def histories(draw: st.DrawFn) -> History:
    pool = draw(st.lists(signals_st, min_size=2, max_size=10, unique_by=lambda s: s.fingerprint))
    steps = draw(
        st.lists(
            st.builds(
                Step,
                st.integers(1, 36).map(lambda h: timedelta(hours=h)),
                st.frozensets(st.integers(0, len(pool) - 1)),
                st.booleans(),
            ),
            min_size=1,
            max_size=30,
        )
    )
    return History(
        pool=tuple(pool),
        steps=tuple(steps),
        silences=tuple(draw(st.lists(silences_st, max_size=2))),
        hold_down=timedelta(hours=draw(st.integers(0, 96))),
        repeat=timedelta(hours=draw(st.integers(1, 24 * 10))),
    )


@dataclass(frozen=True)
class History:
    """A generated history to correlate step by step."""

    pool: tuple[Signal, ...]
    steps: tuple[Step, ...]
    silences: tuple[Silence, ...]
    hold_down: timedelta
    repeat: timedelta


@dataclass
class Pass:
    """What one step saw and decided."""

    now: datetime
    candidates: dict[str, Candidate]
    muted: dict[str, str | None]
    changed: list[Alert]
    notices: list[Notice]


@dataclass
class Trace:
    """A whole run: every pass, and the alerts on record at the end."""

    passes: list[Pass] = field(default_factory=list)
    alerts: dict[str, Alert] = field(default_factory=dict)


def run(history: History) -> Trace:
    """Correlate the history the way the engine does, keeping the store in a dict."""
    trace = Trace()
    now = T0
    for step in history.steps:
        now += step.advance
        active = [history.pool[i] for i in sorted(step.active)]
        assessments = assess_all(ACCOUNTS, active, now, CONFIG, RULES)
        wanted = candidates(assessments, now)
        silences = list(history.silences)
        if step.silenced:
            silences.append(
                Silence(
                    id=2,
                    matchers={"account": "*"},
                    starts_at=now,
                    ends_at=now + timedelta(minutes=1),
                    author="t",
                    reason="this pass",
                    created_at=now,
                )
            )
        why = muter(silences, now)
        result = reconcile(
            trace.alerts,
            wanted,
            now,
            hold_down=history.hold_down,
            repeat_interval=history.repeat,
            muted=why,
            scope=[a.id for a in ACCOUNTS],
        )
        for alert in result.changed:
            trace.alerts[alert.fingerprint] = alert
        trace.passes.append(
            Pass(
                now=now,
                candidates={c.fingerprint: c for c in wanted},
                muted={c.fingerprint: why(c) for c in wanted},
                changed=list(result.changed),
                notices=list(result.notices),
            )
        )
    return trace


# --- properties ---------------------------------------------------------------------------


@SETTINGS
@given(histories())
def test_the_same_inputs_give_the_same_alerts(history: History) -> None:
    first, second = run(history), run(history)
    assert first.alerts == second.alerts
    assert [[(n.event, n.alert) for n in p.notices] for p in first.passes] == [
        [(n.event, n.alert) for n in p.notices] for p in second.passes
    ]


@SETTINGS
@given(histories())
def test_no_alert_is_told_twice_for_one_severity_within_the_repeat_interval(
    history: History,
) -> None:
    # An episode ends when its resolution is told: after "resolved", "firing" is news. A
    # resolution held back by a silence ends nothing for those who heard it fire.
    last: dict[str, tuple[datetime, str]] = {}  # fingerprint -> last told (when, severity)
    for p in run(history).passes:
        told = {n.alert.fingerprint: n for n in p.notices}
        for fp, n in told.items():
            if n.event == "resolved":
                last.pop(fp, None)
                continue
            if fp in last and last[fp][1] == n.alert.severity:
                when, _ = last[fp]
                assert p.now - when >= history.repeat, (
                    f"{n.alert.rule} on {n.alert.account_id} told twice as "
                    f"{n.alert.severity} within {history.repeat}: {when} and {p.now} ({n.event})"
                )
            last[fp] = (p.now, n.alert.severity)


def test_a_return_after_a_silenced_resolution_is_not_told_again_within_repeat() -> None:
    # The minimal example hypothesis found, by hand: hourly passes, hold-down 0, repeat 5 h.
    pool = (
        Signal(
            account_id="a0",
            kind="champion_departure",
            key="k1",
            strength=1.0,
            observed_at=T0,
            summary="Champion left.",
            watcher="c",
        ),
        Signal(
            account_id="a0",
            kind="usage_drop",
            key="k1",
            strength=1.0,
            observed_at=T0,
            summary="Usage fell.",
            watcher="u",
        ),
    )
    hour = timedelta(hours=1)
    history = History(
        pool=pool,
        steps=(
            Step(hour, frozenset({0, 1})),  # told: firing
            Step(hour, frozenset({0, 1}), silenced=True),  # muted for this pass only
            Step(hour, frozenset()),  # clear
            Step(hour, frozenset()),  # resolved; not told, it was muted when last seen
            Step(hour, frozenset({0, 1})),  # back 4 h after it was told: no news
        ),
        silences=(),
        hold_down=timedelta(0),
        repeat=timedelta(hours=5),
    )
    told = [(p.now, n.event) for p in run(history).passes for n in p.notices]
    assert told == [(T0 + hour, "firing")], told


@SETTINGS
@given(histories())
def test_a_silenced_alert_is_never_told(history: History) -> None:
    for p in run(history).passes:
        for n in p.notices:
            fp = n.alert.fingerprint
            assert n.alert.muted_by is None
            if n.event != "resolved":
                assert p.muted[fp] is None, f"{n.event} told while {p.muted[fp]}"
        for fp, why in p.muted.items():
            if why is not None:
                assert fp not in {n.alert.fingerprint for n in p.notices}


@SETTINGS
@given(histories())
def test_an_alert_resolves_only_after_its_signals_clear_and_the_hold_down(
    history: History,
) -> None:
    last_wanted: dict[str, datetime] = {}
    was_open: dict[str, bool] = {}
    for p in run(history).passes:
        for fp in p.candidates:
            last_wanted[fp] = p.now
        for alert in p.changed:
            fp = alert.fingerprint
            if alert.state == AlertState.RESOLVED and was_open.get(fp, False):
                assert fp not in p.candidates, "resolved while its rule still holds"
                assert p.now - last_wanted[fp] > history.hold_down, (
                    f"resolved {p.now - last_wanted[fp]} after its rule last held; "
                    f"hold-down {history.hold_down}"
                )
            was_open[fp] = alert.open


@SETTINGS
@given(
    st.lists(signals_st, min_size=1, max_size=8, unique_by=lambda s: s.fingerprint),
    st.data(),
    st.integers(0, 24 * 60),
)
def test_the_score_is_monotone_in_each_signal_strength(
    pool: list[Signal], data: st.DataObject, later_h: int
) -> None:
    now = T0 + timedelta(hours=later_h)
    i = data.draw(st.integers(0, len(pool) - 1))
    stronger = data.draw(st.floats(pool[i].strength, 1.0))
    raised = [*pool[:i], pool[i].model_copy(update={"strength": stronger}), *pool[i + 1 :]]
    account = next(a for a in ACCOUNTS if a.id == pool[i].account_id)
    mine = [s for s in pool if s.account_id == account.id]
    mine_raised = [s for s in raised if s.account_id == account.id]
    before = assess(account, mine, now, CONFIG, ALL_RULES)
    after = assess(account, mine_raised, now, CONFIG, ALL_RULES)
    assert after.score >= before.score
    assert {m.rule.name for m in before.matches} <= {m.rule.name for m in after.matches}


@SETTINGS
@given(histories())
def test_an_account_has_at_most_one_open_alert_and_an_acknowledgement_holds_until_it_rises(
    history: History,
) -> None:
    """One alert per account, whatever rules come and go; and an alert acknowledged on the
    first pass it is told is told again only when its severity rises above what was told."""
    trace = Trace()
    now = T0
    acked: dict[str, str] = {}  # fingerprint -> severity told when it was acknowledged
    for step in history.steps:
        now += step.advance
        active = [history.pool[i] for i in sorted(step.active)]
        wanted = candidates(assess_all(ACCOUNTS, active, now, CONFIG, RULES), now)
        assert len({c.account_id for c in wanted}) == len(wanted)
        result = reconcile(
            trace.alerts,
            wanted,
            now,
            hold_down=history.hold_down,
            repeat_interval=history.repeat,
            scope=[a.id for a in ACCOUNTS],
        )
        for alert in result.changed:
            trace.alerts[alert.fingerprint] = alert
        for n in result.notices:
            fp = n.alert.fingerprint
            if fp in acked and n.event != "resolved":
                assert n.event == "escalated", f"{n.event} while acknowledged at {acked[fp]}"
                assert n.alert.severity.rank > Severity(acked.pop(fp)).rank
            elif n.event == "resolved":
                acked.pop(fp, None)
            if n.event in ("firing", "escalated") and fp in trace.alerts:
                # Someone owns it at once.
                trace.alerts[fp] = acknowledge(trace.alerts[fp], "ann", now)
                acked[fp] = str(n.alert.severity)
        open_accounts = [a.account_id for a in trace.alerts.values() if a.open]
        assert len(open_accounts) == len(set(open_accounts))
