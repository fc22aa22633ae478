"""Helpers for the ops tests: real daemons in subprocesses, their JSON logs and /metrics."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from waiting import wait_until

__all__ = ["daemon", "free_port", "get", "log_records", "samples", "wait_until"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_records(path: Path) -> list[dict[str, Any]]:
    """Every line of a daemon's log, each parsed as JSON (a line that is not fails)."""
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines()
    if lines and not text.endswith("\n"):
        lines = lines[:-1]  # a line still being written
    return [json.loads(line) for line in lines]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """/metrics parsed by prometheus_client: (sample name, sorted labels) -> value."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3)
    except httpx.TransportError:
        return None


@contextmanager
def daemon(
    cmd: list[str], config: Path, env: dict[str, str], log: Path, cwd: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``swanwatch run -c config``, its standard error to ``log``; stopped with SIGTERM."""
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [*cmd, "run", "-c", str(config)],
            env=env,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
