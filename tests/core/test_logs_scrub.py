"""Structured, scrubbed logging: known personal data never reaches the captured log."""

import io
import json
import logging

import pytest

from kiosk.core import logs, privacy
from kiosk.core.logs import Personal

NAME = "张三丰"
ID_NO = "11010519491231002X"
ID_NO2 = "330102198001011234"
PHONE = "13812345678"
PHONE_SPACED = "+86 139 1234 5678"


@pytest.fixture
def capture():
    buf = io.StringIO()
    handler = logs.setup(fmt="json", stream=buf)
    yield buf
    logging.getLogger().removeHandler(handler)
    privacy._forgotten.clear()


def lines(buf):
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_one_json_object_per_record_with_extra_fields(capture):
    log = logging.getLogger("kiosk.test")
    log.info("ticket %s issued", "A012", extra={"category": "A", "people_ahead": 3})
    (rec,) = lines(capture)
    assert rec["msg"] == "ticket A012 issued"
    assert rec["level"] == "INFO" and rec["logger"] == "kiosk.test"
    assert rec["category"] == "A" and rec["people_ahead"] == 3


def test_patterns_and_personal_values_are_masked_everywhere(capture):
    log = logging.getLogger("kiosk.test")
    log.info("lookup by %s with id %s phone %s", Personal(NAME), ID_NO, PHONE)
    log.warning("applicant %s called from %s", NAME, PHONE_SPACED, extra={"personal": [NAME], "who": NAME})
    log.info("old id 110105491231002 and x-id %s", ID_NO2.lower())
    try:
        raise ValueError(f"bad record for {NAME} {ID_NO2}")
    except ValueError:
        log.exception("failed", extra={"personal": NAME})
    text = capture.getvalue()
    for secret in (NAME, ID_NO, ID_NO2, PHONE, "139 1234 5678", "110105491231002"):
        assert secret not in text, secret
    assert len(lines(capture)) == 4  # a traceback stays inside its record
    assert "***" in lines(capture)[3]["exc"]


def test_declared_values_stay_masked_in_later_lines(capture):
    logs.forget_in_logs("ZW-330100-2025-000777")
    logging.getLogger("kiosk.lookup").info("case ZW-330100-2025-000777 not found")
    assert "000777" not in capture.getvalue()


def test_harmless_numbers_survive(capture):
    logging.getLogger("kiosk.test").info("port 8765 year 2025 ticket A0012 uuid 5f0c2b1e-0000-4000-8000-000000000001")
    msg = lines(capture)[0]["msg"]
    assert msg == "port 8765 year 2025 ticket A0012 uuid 5f0c2b1e-0000-4000-8000-000000000001"


def test_key_value_lines_and_journal_priority(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "8:1234")
    buf = io.StringIO()
    handler = logs.setup(stream=buf)  # journal present: JSON with a syslog prefix
    try:
        logging.getLogger("kiosk.test").error("printer %s offline", "kiosk-printer")
        line = buf.getvalue().strip()
        assert line.startswith("<3>{")
        assert json.loads(line[3:])["msg"] == "printer kiosk-printer offline"
    finally:
        logging.getLogger().removeHandler(handler)
    monkeypatch.delenv("JOURNAL_STREAM")
    buf = io.StringIO()
    handler = logs.setup(stream=buf)
    try:
        logging.getLogger("kiosk.test").info("paper low", extra={"printer": "kiosk printer"})
        assert buf.getvalue().strip() == 'level=INFO logger=kiosk.test msg="paper low" printer="kiosk printer"'
    finally:
        logging.getLogger().removeHandler(handler)


def test_setup_twice_keeps_one_handler():
    buf = io.StringIO()
    h1 = logs.setup(fmt="kv", stream=buf)
    h2 = logs.setup(fmt="kv", stream=buf)
    try:
        assert h1 not in logging.getLogger().handlers
        logging.getLogger("kiosk.test").info("once")
        assert buf.getvalue().count("once") == 1
    finally:
        logging.getLogger().removeHandler(h2)
