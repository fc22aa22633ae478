"""The batch path of correlation gives exactly what the reference gives account by account.

``assess_all`` weighs, scores and matches a whole batch in columns
(:mod:`swanwatch.correlate_batch`); ``assess`` is the reference, one account at a time.
On generated books (rules of every shape, signals with ties, overrides and weak ones, many
kinds) the assessments, every float of them, and the alerts they call for are the same.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from swanwatch import correlate_batch
from swanwatch.config import CorrelationConfig, Rule
from swanwatch.correlate import Assessment, Weighed, assess, assess_all, candidates, score_rule
from swanwatch.model import Account, ActiveSignal, Contribution, Reason, Signal

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
KINDS = tuple(f"kind_{i}" for i in range(8))
SETTINGS = settings(max_examples=150, deadline=None)
#: Windows, and signal ages that fall on their edges (to the microsecond, either side).
WINDOWS = st.one_of(
    st.sampled_from([timedelta(hours=1), timedelta(days=1), timedelta(days=30)]),
    st.integers(1, 24 * 60).map(lambda h: timedelta(hours=h)),
)
EDGES = [0, 60, 1440, 1440 * 30]

accounts_st = st.builds(
    lambda i, arr, renewal, segment, tags: Account(
        id=f"a{i}",
        arr=arr,
        renewal_date=None if renewal is None else NOW.date() + timedelta(days=renewal),
        segment=segment,
        tags=tags,
    ),
    st.integers(0, 3),
    st.sampled_from([0.0, 40_000.0, 100_000.0, 250_000.0, 600_000.0]),
    st.one_of(st.none(), st.integers(-30, 200)),
    st.sampled_from([None, "smb", "ent"]),
    st.lists(st.sampled_from(["eu", "beta", "vip"]), max_size=2, unique=True).map(tuple),
)

kinds_st = st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True).map(tuple)
between_st = st.fixed_dictionaries(
    {}, optional={"at_least": st.integers(-5, 5), "at_most": st.integers(5, 15)}
).filter(bool)
raise_st = st.fixed_dictionaries(
    {"to": st.sampled_from(["high", "critical"])},
    optional={
        "arr_at_least": st.sampled_from([50_000, 250_000]),
        "renewal_within_days": st.integers(0, 90),
        "score_at_least": st.floats(0, 1),
    },
).filter(lambda d: len(d) > 1)


@st.composite
def rules_st(draw: st.DrawFn, i: int) -> Rule:
    shape = draw(st.sampled_from(["all_of", "any_of", "at_least", "at_least_of", "mixed"]))
    spec: dict[str, object] = {"name": f"rule_{i}", "title": f"Rule {i}", "severity": "warning"}
    if shape in ("all_of", "mixed"):
        spec["all_of"] = draw(kinds_st)
    if shape in ("any_of", "mixed"):
        spec["any_of"] = draw(kinds_st)
    if shape in ("at_least", "at_least_of", "mixed"):
        spec["at_least"] = draw(st.integers(1, 4))
    if shape == "at_least_of":
        spec["of"] = draw(kinds_st)
    spec["within"] = draw(WINDOWS)
    spec["min_strength"] = draw(st.sampled_from([0.0, 0.0, 0.3, 0.5, 0.9]))
    spec["min_score"] = draw(st.sampled_from([0.0, 0.0, 0.2, 0.5, 0.8]))
    if draw(st.booleans()):
        spec["where"] = {"n": draw(between_st)}
    spec["renewal_within_days"] = draw(st.one_of(st.none(), st.integers(0, 120)))
    spec["arr_at_least"] = draw(st.one_of(st.none(), st.sampled_from([50_000, 250_000])))
    spec["segments"] = draw(st.sampled_from([(), ("smb",), ("smb", "ent")]))
    spec["tags"] = draw(st.sampled_from([(), ("vip",), ("eu", "beta")]))
    spec["raise"] = draw(st.lists(raise_st, max_size=2))
    return Rule.model_validate(spec)


@st.composite
def signals_st(draw: st.DrawFn) -> ActiveSignal | Signal:
    account = f"a{draw(st.integers(0, 3))}"
    kind = draw(st.sampled_from(KINDS))
    key = draw(st.sampled_from(["", "x", "topic:overdue"]))
    # few strengths and instants: equal weights in one account, in both orders of kind/key
    strength = draw(st.one_of(st.sampled_from([0.0, 0.02, 0.5, 1.0]), st.floats(0, 1)))
    minutes = draw(st.one_of(st.sampled_from(EDGES), st.integers(-120, 60 * 24 * 90)))
    observed = NOW - timedelta(
        minutes=minutes, microseconds=draw(st.sampled_from([0, 0, 0, -1, 1]))
    )
    half_life = draw(st.sampled_from([None, None, 0.5, 7.0, 45.0]))
    evidence = draw(st.one_of(st.just({}), st.fixed_dictionaries({"n": st.integers(-5, 20)})))
    signal = Signal(
        account_id=account,
        kind=kind,
        key=f"{key}{draw(st.integers(0, 3))}",
        strength=strength,
        observed_at=observed,
        summary=f"{kind} seen",
        evidence=evidence,
        half_life_days=half_life,
        watcher=kind,
    )
    if draw(st.booleans()):  # as a pass reads it from the store: evidence as JSON text
        return ActiveSignal(
            signal.fingerprint,
            signal.watcher,
            signal.account_id,
            signal.kind,
            signal.key,
            signal.strength,
            signal.observed_at,
            signal.summary,
            json.dumps(evidence),
            signal.half_life_days,
        )
    return signal


@st.composite
def books(
    draw: st.DrawFn,
) -> tuple[list[Account], list[ActiveSignal | Signal], CorrelationConfig, list[Rule]]:
    accounts = draw(st.lists(accounts_st, max_size=4, unique_by=lambda a: a.id))
    signals = draw(st.lists(signals_st(), max_size=40))
    rules = [draw(rules_st(i)) for i in range(draw(st.integers(0, 5)))]
    config = CorrelationConfig(
        weights={k: draw(st.sampled_from([0.2, 0.5, 1.0])) for k in KINDS[:4]},
        half_life_days={KINDS[0]: 3.0},
        min_strength=draw(st.sampled_from([0.0, 0.05, 0.3])),
        score_threshold=draw(st.sampled_from([0.0, 0.3, 0.6])),
        score_min_kinds=draw(st.integers(1, 3)),
        score_window=draw(WINDOWS),
    )
    return accounts, signals, config, rules


def reference(
    accounts: Sequence[Account],
    signals: Sequence[ActiveSignal | Signal],
    config: CorrelationConfig,
    rules: Sequence[Rule],
) -> list[Assessment]:
    every = [*rules, score_rule(config)]
    listed = [a for a in accounts if any(s.account_id == a.id for s in signals)]
    return [
        assess(a, [s for s in signals if s.account_id == a.id], NOW, config, every) for a in listed
    ]


def exactly(assessments: list[Assessment]) -> list[object]:
    """Every value of the assessments, floats as their bits (repr), in order."""
    return [
        (
            a.account,
            repr(a.score),
            [
                (
                    w.signal.fingerprint,
                    repr(w.weight),
                    repr(w.decay),
                    repr(w.age_days),
                    repr(w.effective),
                )
                for w in a.weighed
            ],
            [(m.rule.name, repr(m.score), m.severity, m.contributions) for m in a.matches],
            a.contributions,
        )
        for a in assessments
    ]


@SETTINGS
@given(books(), st.sampled_from([0, 1, 2, correlate_batch.DEEP_ACCOUNTS]))
def test_a_batch_gives_what_each_account_gives_alone(book, deep: int) -> None:
    """Whatever the place from which the noisy-OR is taken account by account (0: all
    down the columns; past the batch's accounts: all account by account)."""
    accounts, signals, config, rules = book
    before = correlate_batch.DEEP_ACCOUNTS
    correlate_batch.DEEP_ACCOUNTS = deep
    try:
        fast = assess_all(accounts, signals, NOW, config, rules)
    finally:
        correlate_batch.DEEP_ACCOUNTS = before
    slow = reference(accounts, signals, config, rules)
    assert exactly(fast) == exactly(slow)
    told = candidates(fast, NOW)
    assert told == candidates(slow, NOW)
    for reason in (r for c in told for r in c.reasons):  # as validated records are
        checked = Reason(rule=reason.rule, title=reason.title, severity=reason.severity)
        assert reason.__dict__ == checked.__dict__
        assert reason.model_fields_set == checked.model_fields_set


def test_a_batch_of_more_kinds_than_its_columns_hold_is_assessed_all_the_same() -> None:
    kinds = [f"kind_{i}" for i in range(70)]
    accounts = [Account(id="a0", arr=300_000), Account(id="a1")]
    signals = [
        Signal(
            account_id=f"a{i % 2}",
            kind=kind,
            strength=0.4 + (i % 5) / 10,
            observed_at=NOW - timedelta(hours=i),
            summary=f"{kind} seen",
        )
        for i, kind in enumerate(kinds)
    ]
    rules = [Rule(name="many", title="Many", at_least=20, within=timedelta(days=2))]
    config = CorrelationConfig()
    fast = assess_all(accounts, signals, NOW, config, rules)
    assert exactly(fast) == exactly(reference(accounts, signals, config, rules))
    assert [m.rule.name for m in fast[0].matches] == ["many", "risk_score"]


def test_signals_of_equal_weight_are_in_the_order_of_their_kind_and_key() -> None:
    accounts = [Account(id="a0")]
    seen = NOW - timedelta(days=2)
    signals = [
        Signal(account_id="a0", kind=k, key=key, strength=0.5, observed_at=seen, summary=k)
        for k, key in [("kind_7", "b"), ("kind_7", "a"), ("kind_5", "z"), ("kind_6", "")]
    ]
    rules = [Rule(name="two", title="Two", at_least=2, within=timedelta(days=3))]
    config = CorrelationConfig()
    fast = assess_all(accounts, signals, NOW, config, rules)
    assert exactly(fast) == exactly(reference(accounts, signals, config, rules))
    assert [(w.signal.kind, w.signal.key) for w in fast[0].weighed] == [
        ("kind_5", "z"),
        ("kind_6", ""),
        ("kind_7", "a"),
        ("kind_7", "b"),
    ]


def test_a_contribution_is_the_record_model_construct_makes() -> None:
    signal = Signal(
        account_id="a0",
        kind="usage_drop",
        key="k",
        strength=0.7,
        observed_at=NOW,
        summary="Usage fell.",
    )
    weighed = Weighed(signal, 0.8, 0.5, 1.23456, 0.28)
    made = weighed.contribution()
    want = Contribution.model_construct(
        fingerprint=signal.fingerprint,
        kind="usage_drop",
        key="k",
        summary="Usage fell.",
        strength=0.7,
        weight=0.8,
        decay=0.5,
        age_days=1.235,
        observed_at=NOW,
    )
    assert made == want
    assert made.__dict__ == want.__dict__ and list(made.__dict__) == list(want.__dict__)
    assert made.model_fields_set == want.model_fields_set
    assert (made.__pydantic_extra__, made.__pydantic_private__) == (None, None)
    assert made.model_dump_json() == want.model_dump_json()
    assert made.model_copy(update={"key": "j"}).key == "j"
    assert date.fromisoformat(made.observed_at.date().isoformat()) == NOW.date()
