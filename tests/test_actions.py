"""A person acting on an alert (swanwatch.actions), on a real store (SQLite and PostgreSQL):
by id or fingerprint prefix, checked against the episode seen, recorded with its person,
and refused with an ActionError (never a bare ValueError) when it cannot be done."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from swanwatch.actions import (
    Acknowledge,
    AlertActions,
    Mark,
    Resolve,
    SilenceSimilar,
    Snooze,
    find_alert,
)
from swanwatch.alerts import silence_matches
from swanwatch.clock import FrozenClock
from swanwatch.correlate import Candidate
from swanwatch.errors import (
    ActionError,
    AlertClosed,
    AlertNotFound,
    AmbiguousAlert,
    InvalidAction,
    SilenceNotFound,
    StaleEpisode,
)
from swanwatch.model import Alert, AlertState, Severity, Verdict

NOW = "2026-11-20T12:00:00Z"


def _alert(fingerprint: str, account: str = "acme", rule: str = "pair", **extra: object) -> Alert:
    clock = FrozenClock(NOW)
    fields: dict[str, object] = {
        "fingerprint": fingerprint,
        "account_id": account,
        "rule": rule,
        "title": "Champion left and usage fell",
        "severity": Severity.HIGH,
        "score": 0.8,
        "at_stake": {"owner": "ann@csm.example", "segment": "enterprise"},
        "started_at": clock.now(),
        "updated_at": clock.now(),
        **extra,
    }
    return Alert.model_validate(fields)


@pytest.fixture
def desk(store):
    """Actions on a store holding three alerts; two share the fingerprint prefix abcd."""
    store.save_alerts(
        [
            _alert("abcd1111" + "0" * 24),
            _alert("abcd2222" + "0" * 24, account="globex"),
            _alert("0001" + "f" * 28, account="initech", rule="tickets"),
        ],
        [],
    )
    return AlertActions(store, FrozenClock(NOW))


def _by_account(desk: AlertActions) -> dict[str, Alert]:
    return {a.account_id: a for a in desk.store.alerts()}


def test_acknowledge_by_id_and_by_the_shortest_unique_prefix(desk) -> None:
    acme = _by_account(desk)["acme"]
    done = desk.act(str(acme.id), Acknowledge(), by="ann")
    assert done.alert.state == AlertState.ACKNOWLEDGED and done.by == "ann"
    stored = desk.store.alerts(fingerprints=[acme.fingerprint])[0]
    assert stored.state == AlertState.ACKNOWLEDGED and stored.acted_by == "ack:ann"
    assert find_alert(desk.store, "abcd2").account_id == "globex"  # 5 characters are unique
    assert find_alert(desk.store, "ABCD1").account_id == "acme"  # case does not matter
    assert find_alert(desk.store, acme.fingerprint).account_id == "acme"


def test_unknown_ambiguous_and_malformed_references(desk) -> None:
    with pytest.raises(AlertNotFound, match="'beef'"):
        desk.find("beef")
    for ref in ("abc", "acme", "", "zz11"):
        with pytest.raises(AlertNotFound, match="4 or more characters"):
            desk.find(ref)
    with pytest.raises(AmbiguousAlert, match="more than one alert") as info:
        desk.act("abcd", Acknowledge(), by="ann")
    assert sorted(fp[:8] for fp in info.value.matches) == ["abcd1111", "abcd2222"]
    assert all(a.state == AlertState.FIRING for a in desk.store.alerts())


def test_an_id_that_is_also_a_fingerprint_prefix_is_ambiguous_until_written_as_hash_id(
    desk,
) -> None:
    first = min(desk.store.alerts(), key=lambda a: a.id or 0)
    assert first.id == 1 and first.account_id == "acme"
    with pytest.raises(AmbiguousAlert, match="#ID"):
        desk.find("0001")  # id 1, and the start of initech's fingerprint
    assert desk.find("#1").account_id == "acme"
    assert desk.find("1").account_id == "acme"  # too short to be a prefix
    assert desk.find("0001f").account_id == "initech"


def test_a_reference_of_digits_beyond_any_id_is_a_prefix_or_nothing(desk) -> None:
    """Digits past the id column's range (PostgreSQL's integer, SQLite's 64 bits) name no
    id: a fingerprint that starts with 10 digits is found by them, and a longer number
    names no alert, never a database error's traceback."""
    desk.store.save_alerts([_alert("2999999999" + "a" * 22, account="umbrella")], [])
    assert desk.find("2999999999").account_id == "umbrella"
    assert desk.act("2999999999a", Acknowledge(), by="ann").alert.account_id == "umbrella"
    for ref in ("3000000000", "#3000000000", "9" * 20, "#" + "9" * 20, "9" * 5000, "²", "#²"):
        with pytest.raises(AlertNotFound, match="no alert has"):
            desk.find(ref)


def test_a_new_episode_since_the_person_looked_is_not_acted_on(desk) -> None:
    acme = _by_account(desk)["acme"]
    with pytest.raises(StaleEpisode, match="new episode") as info:
        desk.act(acme.fingerprint, Resolve(), by="ann", episode=acme.episode + 1)
    assert "another episode" in str(info.value)
    assert _by_account(desk)["acme"].state == AlertState.FIRING
    assert desk.act(acme.fingerprint, Resolve(), by="ann", episode=acme.episode).alert.state == (
        AlertState.RESOLVED
    )


def test_snooze_resolve_and_a_resolved_alert_is_closed_to_them(desk) -> None:
    globex = _by_account(desk)["globex"]
    snoozed = desk.act("abcd2", Snooze(timedelta(days=3)), by="bob").alert
    assert snoozed.snoozed_until == desk.clock.now() + timedelta(days=3)
    assert snoozed.acted_by == "snooze:bob"
    with pytest.raises(InvalidAction, match="future"):
        desk.act("abcd2", Snooze(timedelta(0)), by="bob")
    resolved = desk.act(globex.fingerprint, Resolve(), by="bob").alert
    assert resolved.state == AlertState.RESOLVED and resolved.acted_by == "resolve:bob"
    assert resolved.resolved_at == desk.clock.now()
    for action in (Acknowledge(), Snooze(timedelta(days=1)), Resolve()):
        with pytest.raises(AlertClosed, match="already resolved") as info:
            desk.act("abcd2", action, by="bob")
        assert not isinstance(info.value, ValueError)
    # Feedback on a closed alert is still welcome.
    assert desk.act("abcd2", Mark(Verdict.ACTED), by="bob").new


def test_mark_records_the_person_once_per_verdict(desk) -> None:
    first = desk.act("abcd1", Mark(Verdict.USEFUL, "saved the renewal"), by="ann")
    again = desk.act("abcd1", Mark(Verdict.USEFUL), by="ann")
    other = desk.act("abcd1", Mark(Verdict.USEFUL), by="bob")
    assert (first.new, again.new, other.new) == (True, False, True)
    feedback = desk.store.feedback()
    assert [(f.author, f.verdict, f.note) for f in feedback] == [
        ("ann", Verdict.USEFUL, "saved the renewal"),
        ("bob", Verdict.USEFUL, ""),
    ]
    assert {f.episode for f in feedback} == {first.alert.episode}


def _candidate(account: str, rule: str, owner: str = "ann@csm.example") -> Candidate:
    return Candidate(
        fingerprint="x",
        account_id=account,
        rule=rule,
        title="t",
        severity=Severity.HIGH,
        score=0.5,
        contributions=(),
        why_now=(),
        play=(),
        at_stake={"owner": owner},
    )


def test_silence_similar_takes_the_alerts_own_values(desk) -> None:
    done = desk.act("abcd1", SilenceSimilar(timedelta(days=7), " migration ", ("rule",)), by="ann")
    silence = done.silence
    assert silence is not None and silence.id is not None
    assert silence.matchers == {"rule": "pair"} and silence.author == "ann"
    assert silence.reason == "migration"
    assert silence.ends_at == desk.clock.now() + timedelta(days=7)
    assert [s.id for s in desk.store.silences(active_at=desk.clock.now())] == [silence.id]
    assert silence_matches(silence, _candidate("globex", "pair"))
    assert not silence_matches(silence, _candidate("globex", "tickets"))
    by_owner = desk.act("abcd1", SilenceSimilar(timedelta(days=1), "away", ("owner",)), by="ann")
    assert by_owner.silence is not None
    assert silence_matches(by_owner.silence, _candidate("globex", "tickets"))
    assert not silence_matches(by_owner.silence, _candidate("acme", "pair", owner="bob@x"))


def test_silence_similar_matches_a_value_literally(store) -> None:
    store.save_alerts([_alert("beef" + "0" * 28, account="a*[b]?")], [])
    desk = AlertActions(store, FrozenClock(NOW))
    silence = desk.act("beef", SilenceSimilar(timedelta(days=1), "odd id"), by="ann").silence
    assert silence is not None
    assert silence_matches(silence, _candidate("a*[b]?", "pair"))
    assert not silence_matches(silence, _candidate("aX[b]Y", "pair"))
    assert not silence_matches(silence, _candidate("ab?", "pair"))


def test_refused_actions_change_nothing_and_are_action_errors(desk) -> None:
    refusals = [
        (lambda: desk.act("abcd1", Acknowledge(), by="  "), InvalidAction, "who acts"),
        (
            lambda: desk.act("abcd1", SilenceSimilar(timedelta(days=1), "  "), by="ann"),
            InvalidAction,
            "reason",
        ),
        (
            lambda: desk.act("abcd1", SilenceSimilar(timedelta(0), "why"), by="ann"),
            InvalidAction,
            "last a while",
        ),
        (
            lambda: desk.act("abcd1", SilenceSimilar(timedelta(days=1), "why", ()), by="ann"),
            InvalidAction,
            "say what is similar",
        ),
        (
            lambda: desk.act("abcd1", SilenceSimilar(timedelta(days=1), "x", ("kind",)), by="a"),
            InvalidAction,
            "'kind'",
        ),
        (
            lambda: desk.silence({"colour": "red"}, timedelta(days=1), reason="x", by="ann"),
            InvalidAction,
            "not colour",
        ),
        (lambda: desk.expire_silence(42, by="ann"), SilenceNotFound, "42"),
    ]
    for call, kind, message in refusals:
        with pytest.raises(kind, match=message) as info:
            call()
        assert isinstance(info.value, ActionError) and not isinstance(info.value, ValueError)
    assert desk.store.silences() == [] and desk.store.feedback() == []
    assert all(a.state == AlertState.FIRING and a.acted_by is None for a in desk.store.alerts())


def test_an_alert_without_an_owner_cannot_lend_it(store) -> None:
    store.save_alerts([_alert("cafe" + "0" * 28, at_stake={})], [])
    desk = AlertActions(store, FrozenClock(NOW))
    with pytest.raises(InvalidAction, match="has no owner"):
        desk.act("cafe", SilenceSimilar(timedelta(days=1), "x", ("owner",)), by="ann")


def test_silences_are_added_and_expired_with_their_person(desk) -> None:
    added = desk.silence({"account": "glob*"}, timedelta(days=2), reason="migration", by="ann")
    assert added.author == "ann" and added.matchers == {"account": "glob*"}
    desk.expire_silence(added.id, by="bob")
    assert desk.store.silences(active_at=desk.clock.now()) == []
    with pytest.raises(SilenceNotFound):
        desk.expire_silence(added.id, by="bob")


def test_what_people_type_with_a_nul_byte_is_kept_on_every_store(desk) -> None:
    """A person's name, note or reason pasted with a NUL byte (PostgreSQL stores none):
    the action is done and on record, the byte as U+FFFD, as a watcher's text is."""
    acked = desk.act("abcd1", Acknowledge(), by="ann\x00")
    assert acked.alert.acted_by is not None and acked.alert.acted_by.endswith("ann\ufffd")
    desk.act("abcd1", Mark(Verdict.USEFUL, "saved\x00 it"), by="ann\x00")
    (feedback,) = desk.store.feedback()
    assert (feedback.author, feedback.note) == ("ann\ufffd", "saved\ufffd it")
    added = desk.silence({"account": "glob\x00*"}, timedelta(days=2), reason="mi\x00g", by="bob")
    (silence,) = desk.store.silences(active_at=desk.clock.now())
    assert silence == added
    assert (silence.matchers, silence.reason) == ({"account": "glob\ufffd*"}, "mi\ufffdg")
    assert all("\x00" not in a.acted_by for a in desk.store.alerts() if a.acted_by)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(length=st.timedeltas(min_value=timedelta(days=2_900_000)))
def test_a_snooze_or_silence_too_long_for_a_date_is_refused_as_an_action_error(
    desk, length: timedelta
) -> None:
    """`alerts snooze --for 3000000d` ends past the year 9999: a plain refusal (exit 1 with
    its reason), never an OverflowError's traceback; what fits is kept as asked."""
    for action in (Snooze(length), SilenceSimilar(length, "why")):
        try:
            done = desk.act("0001f", action, by="ann")
        except InvalidAction as exc:
            assert "shorter" in str(exc)
            continue
        ends = done.silence.ends_at if done.silence else done.alert.snoozed_until
        assert ends == FrozenClock(NOW).now() + length
