"""Two replicas on one store: one leads, the other stands by and takes over on kill -9, or
when the leader's path to PostgreSQL freezes (the frozen leader steps down, fenced)."""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from pathlib import Path

import pytest
from ops_support import daemon, free_port, get, log_records, wait_until
from sqlalchemy.engine import make_url
from tcp_proxy import FreezableProxy

from swanwatch.model import WatcherRun
from swanwatch.store import Store

CONFIG = """
watchers:
  - type: counting
    schedule: {every: 1s}
daemon:
  startup_spread: 0s
  leader_check: 0.5s
  deliver_every: 1s
notify: {console: false}
"""


@pytest.mark.slow
def test_failover_between_two_replicas(
    store_url: str, make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    config = make_config(CONFIG, store_url=store_url)
    store = Store(store_url)
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}

    def start(name: str) -> subprocess.Popen[bytes]:
        with logs[name].open("wb") as err:
            return subprocess.Popen(
                [*swanwatch_cmd, "run", "-c", str(config)],
                env=subprocess_env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def log(name: str) -> str:
        return logs[name].read_text()

    def runs() -> int:
        return len(store.runs("counting", limit=10_000))

    a = start("a")
    b: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: runs() >= 1, "a first run by a")
        b = start("b")
        # b campaigns every 0.5 s and finds a holding the lead, time and again, while a keeps
        # running the watcher: b never leads, never runs it.
        wait_until(lambda: "role: standby" in log("b"), "b to stand by")
        after_standby = runs()
        wait_until(lambda: runs() >= after_standby + 2, "two more runs by a")
        assert "leading" in log("a")
        assert "leading" not in log("b") and "watcher counting: ok" not in log("b")
        a.send_signal(signal.SIGKILL)
        a.wait(timeout=60)
        wait_until(lambda: "leading" in log("b"), "b to take the lead")
        after = runs()
        # The run is stored, then logged: once b has logged it, the store has it.
        wait_until(lambda: "watcher counting: ok" in log("b"), "a run by b")
        assert runs() > after
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
        store.close()
    assert b is not None and b.returncode == 0, log("b")


FROZEN = """
watchers:
  - type: counting
    schedule: {{every: 1s}}
    options: {{sleep_s: 0.2}}
daemon:
  startup_spread: 0s
  leader_check: 0.5s
  leader_lease: 6s
  deliver_every: 1s
server:
  listen: "127.0.0.1:{port}"
notify: {{console: false}}
"""


def _roles(log: Path) -> list[str]:
    return [r["message"] for r in log_records(log) if r["message"].startswith("role: ")]


@pytest.mark.slow
@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_frozen_leader_is_replaced_and_fenced(
    store_url: str, make_config, swanwatch_cmd, subprocess_env, tmp_path: Path
) -> None:
    direct = store_url
    target = make_url(direct)
    proxy = FreezableProxy((target.host or "127.0.0.1", target.port or 5432))
    through_proxy = target.set(host="127.0.0.1", port=proxy.port)
    ports = {"a": free_port(), "b": free_port()}
    configs = {}
    for name, url in (("a", through_proxy.render_as_string(hide_password=False)), ("b", direct)):
        path = make_config(FROZEN.format(port=ports[name]), store_url=url)
        configs[name] = path.rename(tmp_path / f"{name}.yaml")
    logs = {name: tmp_path / f"{name}.log" for name in ("a", "b")}
    store = Store(direct)

    def runs() -> list[WatcherRun]:
        return sorted(store.runs("counting", limit=100_000), key=lambda r: r.started_at)

    def health(name: str) -> int | None:
        response = get(f"http://127.0.0.1:{ports[name]}/healthz")
        return None if response is None else response.status_code

    try:
        with daemon(swanwatch_cmd, configs["a"], subprocess_env, logs["a"], tmp_path) as a:
            wait_until(lambda: any("leader" in r for r in _roles(logs["a"])), "a to lead")
            wait_until(lambda: len(runs()) >= 2, "a's first runs")
            with daemon(swanwatch_cmd, configs["b"], subprocess_env, logs["b"], tmp_path) as b:
                wait_until(lambda: "standby" in " ".join(_roles(logs["b"])), "b to stand by")
                before = len(runs())
                wait_until(lambda: len(runs()) >= before + 2, "a to go on running")
                assert health("a") == 200
                proxy.freeze()
                frozen_at = time.monotonic()
                wait_until(lambda: any("leader" in r for r in _roles(logs["b"])), "b to lead")
                assert time.monotonic() - frozen_at < 30
                wait_until(lambda: health("a") == 503, "a's /healthz to fail")
                taken = len(runs())
                wait_until(lambda: len(runs()) >= taken + 3, "b to run the watcher")
                assert a.poll() is None and b.poll() is None
                assert health("b") == 200
                a_records = log_records(logs["a"])
                proxy.close()  # a's stuck connections end, so it can stop
    finally:
        proxy.close()
    # a stepped down, and ran nothing after that.
    steps = [i for i, r in enumerate(a_records) if r["message"].startswith("lost leadership")]
    assert steps, "a never stepped down"
    later = [r for r in a_records[steps[0] :] if r["message"].startswith("watcher counting:")]
    assert later == []
    # No run was doubled: runs never overlap, and each ok run counted once in the state
    # (a run frozen between storing its state and its outcome may leave one more).
    ordered = runs()
    for earlier, run in itertools.pairwise(ordered):
        assert run.started_at >= earlier.finished_at, (earlier, run)
    ok = sum(1 for r in ordered if r.ok)
    assert store.load_state("counting")["runs"] in (ok, ok + 1)
    store.close()
