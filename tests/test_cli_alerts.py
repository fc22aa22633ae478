"""The alert commands a CSM and a team lead use: act, silence, give feedback, see the risk."""

from __future__ import annotations

import json
import subprocess

import pytest

CONFIG = """
watchers:
  - type: static
    options:
      signals:
        - {account: acme, kind: champion_departure, strength: 0.9}
        - {account: acme, kind: usage_drop, strength: 0.9}
        - {account: globex, kind: usage_drop, strength: 0.9}
        - {account: globex, kind: support_spike, strength: 0.9}
correlation:
  rules:
    - {name: pair, title: Champion left and usage fell, severity: high,
       all_of: [champion_departure, usage_drop], play: ["CSM: call the buyer."]}
notify: {console: false}
"""


@pytest.fixture
def sw(make_config, run_cli):
    config = make_config(CONFIG)

    def run(*args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        # In-process: a dozen commands, each a Python start-up less.
        done: subprocess.CompletedProcess[str] = run_cli(
            *args[:2], "-c", str(config), *args[2:], env={"SWANWATCH_USER": "ann"}
        )
        if ok:
            assert done.returncode == 0, done.stderr
        return done

    run("run", "--once")
    return run


def _alerts(sw) -> dict[str, dict[str, object]]:
    return {a["account_id"]: a for a in json.loads(sw("alerts", "list", "--json").stdout)}


@pytest.mark.slow
def test_ack_mark_and_rule_stats(sw) -> None:
    alerts = _alerts(sw)
    assert set(alerts) == {"acme", "globex"}
    assert alerts["globex"]["rule"] == "risk_score"  # no named rule: the catch-all speaks
    acme = str(alerts["acme"]["id"])
    assert "acknowledged by ann" in sw("alerts", "ack", acme).stdout
    assert _alerts(sw)["acme"]["state"] == "acknowledged"
    sw("alerts", "mark", acme, "useful")
    assert "already marked" in sw("alerts", "mark", acme, "useful").stdout
    stats = {r["rule"]: r for r in json.loads(sw("rules", "stats", "--json").stdout)}
    assert stats["pair"] == {
        "rule": "pair",
        "fired": 1,
        "acted_on": 1,
        "useful": 1,
        "noise": 0,
        "median_lead_days": stats["pair"]["median_lead_days"],
    }
    assert isinstance(stats["pair"]["median_lead_days"], float | int)
    shown = sw("alerts", "show", acme)
    assert "Champion left and usage fell" in shown.stdout and "call the buyer" in shown.stdout
    missing = sw("alerts", "ack", "999999", ok=False)
    assert missing.returncode == 1 and "no alert has the id" in missing.stderr
    assert "swanwatch alerts list" in missing.stderr


@pytest.mark.slow
def test_snooze_resolve_and_silence_similar_by_fingerprint_prefix(sw) -> None:
    alerts = _alerts(sw)
    globex = str(alerts["globex"]["fingerprint"])[:4]  # the shortest prefix taken
    snoozed = sw("alerts", "snooze", globex, "--for", "3", "--by", "bob")  # a bare 3: days
    assert "snoozed for 3 days, until" in snoozed.stdout
    assert _alerts(sw)["globex"]["acted_by"] == "snooze:bob"
    assert "resolved by ann" in sw("alerts", "resolve", globex).stdout
    closed = sw("alerts", "ack", globex, ok=False)
    assert closed.returncode == 1 and "already resolved" in closed.stderr
    acme = str(alerts["acme"]["id"])
    silenced = sw("alerts", "silence", acme, "--on", "rule", "--for", "7d", "--reason", "known")
    assert silenced.stdout.startswith("silence 1 for 7 days, until")
    assert "rule=pair" in silenced.stdout
    (silence,) = json.loads(sw("silences", "list", "--json").stdout)
    assert silence["matchers"] == {"rule": "pair"} and silence["author"] == "ann"
    no_reason = sw("alerts", "silence", acme, ok=False)
    assert no_reason.returncode == 2 and "--reason" in no_reason.stderr
    sw("run", "--once")  # the silence applies from the next pass
    assert str(_alerts(sw)["acme"]["muted_by"]).startswith("silence 1 by ann")


@pytest.mark.slow
def test_silences_and_risk_report(sw) -> None:
    added = sw(
        "silences", "add", "--match", "account=glob*", "--for", "2d", "--reason", "migration"
    )
    assert added.stdout.startswith("silence 1 for 2 days, until")
    (silence,) = json.loads(sw("silences", "list", "--json").stdout)
    assert silence["matchers"] == {"account": "glob*"} and silence["author"] == "ann"
    bad = sw("silences", "add", "--match", "colour=red", "--reason", "x", ok=False)
    assert bad.returncode == 2 and "FIELD=GLOB" in bad.stderr
    sw("run", "--once")  # the silence applies from the next pass
    assert str(_alerts(sw)["globex"]["muted_by"]).startswith("silence 1 by ann")
    report = json.loads(sw("risk", "report", "--by", "owner", "--json").stdout)
    assert [a["account"] for a in report["accounts"]] == ["acme"]  # muted risk left out
    (total,) = report["totals"]
    assert total["group"] == "ann@csm.example" and total["arr"] == 120000
    assert report["total_revenue_at_risk"] == report["accounts"][0]["revenue_at_risk"] > 0
    assert "expired" in sw("silences", "expire", "1").stdout
    assert sw("silences", "expire", "1", ok=False).returncode == 1


def test_unknowns_are_listed_never_healthy(make_config, run_cli):
    config = make_config(
        "watchers:\n  - type: static\n    options: {unknown: [globex]}\nnotify: {console: false}\n"
    )
    done = run_cli("run", "-c", str(config), "--once")
    assert done.returncode == 0, done.stderr
    assert "1 could not be judged (swanwatch unknowns list)" in done.stderr
    listed = run_cli("unknowns", "list", "-c", str(config), "--json")
    assert listed.returncode == 0, listed.stderr
    (unknown,) = json.loads(listed.stdout)
    assert (unknown["account_id"], unknown["watcher"], unknown["reason"]) == (
        "globex",
        "static",
        "the registry did not answer",
    )
