"""Severity from stake and strength, the catch-all named by its signals, the built-in rules
for an imminent lapse, and the text of one account's alert (pure correlation)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from swanwatch.config import bundled, load_rules
from swanwatch.correlate import Candidate, assess_all, candidates
from swanwatch.errors import ConfigError
from swanwatch.model import Account, Severity, Signal
from swanwatch.rules import Rule
from swanwatch.settings import CorrelationConfig

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = CorrelationConfig()


def _signal(account: str, kind: str, strength: float, key: str = "", **evidence: object) -> Signal:
    return Signal(
        account_id=account,
        kind=kind,
        key=key,
        strength=strength,
        observed_at=NOW - timedelta(days=2),
        summary=f"{kind} {key} on {account}.",
        evidence=evidence,
        watcher="w",
    )


def _alerts(
    accounts: list[Account],
    signals: list[Signal],
    rules: list[Rule],
    config: CorrelationConfig = CONFIG,
) -> dict[str, Candidate]:
    assessed = assess_all(accounts, signals, NOW, config, rules)
    return {c.account_id: c for c in candidates(assessed, NOW, config.phrases)}


def _default_rules() -> list[Rule]:
    path = bundled("rules", "default.yaml")
    return load_rules(Path(str(path)))


def test_a_rule_raises_its_severity_with_arr_and_days_to_renewal() -> None:
    rule = Rule.model_validate(
        {
            "name": "sag",
            "title": "Usage sagging",
            "severity": "warning",
            "any_of": ["usage_drop"],
            "raise": [
                {"to": "high", "renewal_within_days": 30},
                {"to": "critical", "arr_at_least": 250000},
            ],
        }
    )
    soon = date(2026, 12, 10)  # 20 days away
    later = date(2027, 6, 1)
    accounts = [
        Account(id="small", arr=20000, renewal_date=later),
        Account(id="soon", arr=20000, renewal_date=soon),
        Account(id="big", arr=300000, renewal_date=later),
        Account(id="big-soon", arr=300000, renewal_date=soon),
    ]
    signals = [_signal(a.id, "usage_drop", 0.8) for a in accounts]
    got = {k: c.severity for k, c in _alerts(accounts, signals, [rule]).items()}
    assert got == {
        "small": Severity.WARNING,
        "soon": Severity.HIGH,
        "big": Severity.CRITICAL,
        "big-soon": Severity.CRITICAL,  # the highest step that holds wins
    }


def test_the_catch_all_names_the_signals_it_combines_and_rises_with_the_stake() -> None:
    accounts = [
        Account(id="big", name="Quarry", arr=312000, renewal_date=date(2027, 6, 1)),
        Account(id="small", name="Tiny", arr=9000, renewal_date=date(2027, 6, 1)),
    ]
    signals = []
    for a in accounts:
        signals += [
            _signal(a.id, "usage_drop", 0.9, "reports"),
            _signal(a.id, "renewal_lapse", 0.9, "C-1:overdue"),
            _signal(a.id, "support_spike", 0.9, "volume"),
        ]
    got = _alerts(accounts, signals, [])
    big, small = got["big"], got["small"]
    assert big.title == "Usage falling, invoice overdue and support spiking"
    assert big.play == (
        "CSM: this week, go through usage falling, invoice overdue and support spiking with "
        "the account team and agree one owner for each.",
    )
    # Same signals, the larger stake is the more severe.
    assert (small.severity, big.severity) == (Severity.HIGH, Severity.CRITICAL)
    assert big.score == small.score  # the severity comes from the stake, not the score
    # ARR at risk is ARR x score, with the raw ARR beside it.
    assert big.at_stake["revenue_at_risk"] == round(312000 * big.score, 2)
    assert big.at_stake["arr"] == 312000 and big.at_stake["name"] == "Quarry"


def test_configured_phrases_merge_over_the_built_in_ones() -> None:
    config = CorrelationConfig.model_validate({"phrases": {"usage_drop": "logins down"}})
    assert config.phrases["support_spike"] == "support spiking"
    account = Account(id="a", arr=1000)
    signals = [_signal("a", "usage_drop", 0.9), _signal("a", "support_spike", 0.9)]
    assert _alerts([account], signals, [], config)["a"].title == "Logins down and support spiking"


def test_the_catch_all_is_quiet_when_a_named_rule_is_as_severe() -> None:
    rule = Rule(name="pair", title="Pair", severity=Severity.HIGH, all_of=("a", "b"))
    account = Account(id="x", arr=1000)
    signals = [_signal("x", "a", 1.0), _signal("x", "b", 1.0)]
    config = CorrelationConfig.model_validate({"weights": {"a": 0.9, "b": 0.9}})
    (cand,) = _alerts([account], signals, [rule], config).values()
    assert [r.rule for r in cand.reasons] == ["pair"]


def test_a_renewal_within_14_days_with_nothing_in_motion_alerts_on_its_own() -> None:
    rules = _default_rules()
    accounts = [
        Account(id="big", arr=120000, renewal_date=date(2026, 11, 27)),
        Account(id="small", arr=20000, renewal_date=date(2026, 11, 27)),
        Account(id="far", arr=120000, renewal_date=date(2027, 1, 19)),
        Account(id="owes", arr=120000, renewal_date=date(2026, 11, 27)),
    ]
    signals = [
        _signal("big", "renewal_lapse", 1.0, "C-1", days_left=7),
        _signal("small", "renewal_lapse", 1.0, "C-2", days_left=7),
        _signal("far", "renewal_lapse", 0.33, "C-3", days_left=60),
        # An overdue invoice says nothing about the renewal being idle.
        _signal("owes", "renewal_lapse", 0.9, "C-4:overdue", invoice_overdue_days=40),
    ]
    got = _alerts(accounts, signals, rules)
    assert got["big"].title == "Renewal within 14 days with nothing in motion"
    assert got["big"].severity == Severity.CRITICAL  # raised: ARR 120,000
    assert got["small"].severity == Severity.HIGH
    assert "far" not in got and "owes" not in got


def test_a_contract_that_has_ended_alerts_on_its_own() -> None:
    account = Account(id="gone", arr=5000, renewal_date=date(2026, 11, 10))
    signal = _signal("gone", "renewal_lapse", 1.0, "C-9", days_left=-10)
    (cand,) = _alerts([account], [signal], _default_rules()).values()
    assert cand.title == "The contract has ended with no renewal in motion"
    assert cand.severity == Severity.CRITICAL


def test_one_alert_says_each_line_once() -> None:
    """The contract's line already names the renewal date: no second line repeats it."""
    account = Account(id="n", arr=50400, renewal_date=date(2027, 1, 4))
    contract = Signal(
        account_id="n",
        kind="renewal_lapse",
        key="C-13",
        strength=0.67,
        observed_at=NOW - timedelta(days=15),
        summary="Contract C-13 ends in 45 days (2027-01-04) with no renewal in motion.",
        evidence={"days_left": 45},
        watcher="w",
    )
    signals = [contract, _signal("n", "support_spike", 0.9, "volume")]
    (cand,) = _alerts([account], signals, _default_rules()).values()
    assert sum("2027-01-04" in line for line in cand.why_now) == 1
    assert len(cand.why_now) == len(set(cand.why_now))


def test_a_raise_step_below_the_rule_and_an_empty_range_are_refused_with_the_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n"
        "  - name: r\n"
        "    title: R\n"
        "    severity: high\n"
        "    any_of: [usage_drop]\n"
        "    raise:\n"
        "      - {to: warning, arr_at_least: 1000}\n"
        "  - name: s\n"
        "    title: S\n"
        "    any_of: [renewal_lapse]\n"
        "    where: {days_left: {}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    text = str(info.value)
    assert f"{path}:7: rules[0].raise[0].to" in text
    assert "not above the rule's severity high" in text
    assert "give at_least, at_most or both" in text and "rules[1].where.days_left" in text


def test_the_leaders_digest_counts_each_account_once_at_arr_times_score() -> None:
    from swanwatch.delivery.leaders import leaders_report
    from swanwatch.model import Alert, AlertState, account_alert_fingerprint
    from swanwatch.settings import LeadersDigestConfig

    slot = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    started = slot - timedelta(days=3)
    acme = Account(id="acme", name="Acme Corp", arr=120000)

    def alert(fp: str, rule: str, score: float, **extra: object) -> Alert:
        return Alert(
            fingerprint=fp,
            account_id="acme",
            rule=rule,
            title=rule.title(),
            severity=Severity.HIGH,
            score=score,
            started_at=started,
            updated_at=started,
            **extra,
        )

    alerts = [
        alert(account_alert_fingerprint("acme"), "pair", 0.5),
        # An alert of before the upgrade, merged into the account's: history, told nothing.
        alert(
            "old-per-rule",
            "sag",
            0.4,
            state=AlertState.RESOLVED,
            resolved_at=slot - timedelta(days=1),
            acted_by=f"merged into {account_alert_fingerprint('acme')}",
        ),
    ]
    spec = LeadersDigestConfig(name="all", channels=["c"])
    report = leaders_report(spec, alerts, {"acme": acme}, [], slot)
    assert (report.arr_at_risk, report.arr_of_accounts) == (60000, 120000)
    assert report.accounts_at_risk == 1
    assert [(i.label, i.at_risk, i.arr) for i in report.new] == [("Acme Corp", 60000, 120000)]
    assert report.resolved == ()


def test_a_replay_names_each_rule_as_it_joins_an_account_alert() -> None:
    """Review judges every rule: one that joins an open alert as a further reason is a
    line of the backtest though nothing is told."""
    from swanwatch.alerts import Notice
    from swanwatch.backtest import alert_events
    from swanwatch.model import Alert, NoticeEvent, Reason, account_alert_fingerprint

    earlier = NOW - timedelta(days=1)
    alert = Alert(
        fingerprint=account_alert_fingerprint("acme"),
        account_id="acme",
        rule="pair",
        title="Pair",
        severity=Severity.HIGH,
        score=0.7,
        started_at=earlier,
        updated_at=NOW,
        reasons=(
            Reason(rule="pair", title="Pair", severity=Severity.HIGH, since=earlier),
            Reason(rule="sag", title="Sag", severity=Severity.WARNING, since=NOW),
        ),
    )
    assert [(e.name, e.severity) for e in alert_events([], [alert], NOW)] == [
        ("sag", Severity.WARNING)
    ]
    escalated = [Notice(alert, NoticeEvent.ESCALATED)]
    told = [(e.name, e.severity) for e in alert_events(escalated, [alert], NOW)]
    assert told == [("pair", Severity.HIGH), ("sag", Severity.WARNING)]


def _account_alert(acted_by: str | None = None) -> object:
    from swanwatch.model import Alert, Reason, account_alert_fingerprint

    return Alert(
        fingerprint=account_alert_fingerprint("acme"),
        account_id="acme",
        rule="pair",
        title="Pair",
        severity=Severity.HIGH,
        score=0.7,
        started_at=NOW,
        updated_at=NOW,
        acted_by=acted_by,
        at_stake={"segment": "enterprise"},
        reasons=(
            Reason(rule="pair", title="Pair", severity=Severity.HIGH, since=NOW),
            Reason(rule="sag", title="Sag", severity=Severity.WARNING, since=NOW),
        ),
    )


def test_rule_statistics_count_every_rule_of_an_account_alert() -> None:
    from swanwatch.model import Alert
    from swanwatch.reports import rule_stats

    alert = _account_alert(acted_by="ack:ann")
    assert isinstance(alert, Alert)
    acme = Account(id="acme", arr=1000, renewal_date=date(2027, 1, 10))
    stats = {s.rule: (s.fired, s.acted_on) for s in rule_stats([alert], [], {"acme": acme})}
    assert stats == {"pair": (1, 1), "sag": (1, 1)}
    merged = alert.model_copy(update={"acted_by": "merged into x"})
    acted = {s.rule: s.acted_on for s in rule_stats([merged], [], {"acme": acme})}
    assert acted == {"pair": 0, "sag": 0}  # merged by the upgrade: nobody acted


def test_a_route_on_a_rule_takes_the_account_alert_it_is_a_reason_of() -> None:
    from swanwatch.delivery.routing import route
    from swanwatch.model import Alert
    from swanwatch.settings import NotifyConfig

    alert = _account_alert()
    assert isinstance(alert, Alert)
    config = NotifyConfig.model_validate(
        {
            "console": False,
            "channels": {"cs": {"url": "json://localhost/cs"}, "usage": {"url": "json://x/u"}},
            "route": {
                "channels": ["cs"],
                "routes": [{"name": "usage-team", "match": {"rule": "sag"}, "channels": ["usage"]}],
            },
        }
    )
    assert [t.channel for t in route(alert, None, config).targets] == ["usage"]
