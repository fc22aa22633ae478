"""Logs: one JSON object per line off a terminal, with the ids in scope and tracebacks in
one field; uvicorn and APScheduler through the same handler."""

from __future__ import annotations

import io
import json
import logging

import pytest

from swanwatch import logs


@pytest.fixture
def captured():
    stream = io.StringIO()
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    # Not an explicit level: it would stay in force for later tests of this process.
    logs.configure(None, "auto", default_level="INFO", stream=stream)  # no terminal: JSON
    yield stream
    for handler in root.handlers[:]:
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_lines_carry_ids_and_one_field_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("swanwatch.test")
    with logs.log_context(watcher="domains"):
        log.info("ran")
        try:
            raise RuntimeError("boom\nsecond line")
        except RuntimeError:
            log.exception("failed")
    log.info("alert firing", extra={"alert": "fp1", "account": "acme"})
    logging.getLogger("uvicorn.error").warning("from uvicorn")
    logging.getLogger("apscheduler.scheduler").warning("from apscheduler")
    lines = captured.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == 5
    ran, failed, alert, uvicorn, apscheduler = records
    assert ran["watcher"] == "domains" and ran["ts"].endswith("Z") and ran["level"] == "INFO"
    assert "Traceback" in failed["exc"] and "second line" in failed["exc"]
    assert failed["watcher"] == "domains"
    assert alert["alert"] == "fp1" and alert["account"] == "acme" and "watcher" not in alert
    assert uvicorn["logger"] == "uvicorn.error" and apscheduler["logger"].startswith("apsch")


def test_text_when_asked(captured: io.StringIO) -> None:
    logs.configure(None, "text", stream=captured)
    with logs.log_context(alert="fp2"):
        logging.getLogger("swanwatch.test").warning("looked")
    line = captured.getvalue().strip()
    assert line.endswith("WARNING swanwatch.test: looked [alert=fp2]")
    assert line[:24].endswith("Z")
