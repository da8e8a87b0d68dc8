"""Real flows through the role services with known personal data, logged at DEBUG:
none of it may appear in the log, neither after the scrubbing handler nor in the
raw records our code hands to logging (the scrubber is a safety net, not the rule)."""

import io
import logging
import time

import pytest

from kiosk.central.server import BenchCentral
from kiosk.core import logs, privacy
from kiosk.core.config import load_config
from kiosk.roles.lookup.service import Scan
from kiosk.wiring import build_runtime
from tests.helpers import at_service_time, device_tokens, write_config

NAME = "欧阳娜娜"
RECEIPT = "ZW2026731904"
CODE = "582046"
WRONG_CODE = "194857"
PHONE = "15011112222"
CASE_NO = "330100-2026-731904"


class Raw(logging.Handler):
    """Every record as our code made it, before any scrubbing."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines = []

    def emit(self, record):
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        extras = {
            k: v for k, v in record.__dict__.items() if k not in logging.LogRecord("", 0, "", 0, "", (), None).__dict__
        }
        self.lines.append(f"{record.name} {text} {extras!r}")


@pytest.fixture
def central(tmp_path):
    c = BenchCentral(tmp_path / "central", long_poll_cap=1).start()
    c.issue_token = device_tokens(c)  # each test device with its usual scope
    yield c
    c.stop()


def test_role_flows_and_a_sync_round_log_no_personal_data(tmp_path, central):
    buf = io.StringIO()
    handler = logs.setup(verbose=True, fmt="json", stream=buf)  # DEBUG, as `kiosk run -v`
    raw = Raw()
    logging.getLogger().addHandler(raw)
    cfg = load_config(
        write_config(
            tmp_path,
            {
                "central": {"url": central.url, "connect_timeout": 0.5, "read_timeout": 2.0},
                "pad": {"window": "01", "poll_wait": 1},
            },
            token=central.issue_token("demo-kiosk"),
        )
    )
    rt = build_runtime(cfg)
    at_service_time(rt)
    rt.start(without=["sync"])
    try:
        # Lookup: the receipt's QR through the scanner path, then a wrong code typed in.
        case = central.create_case(
            "个体工商户设立登记",
            NAME,
            receipt_no=RECEIPT,
            query_code=CODE,
            status="needs_materials",
            missing_materials=[f"{NAME}的身份证复印件"],
        )
        found = rt.lookup.service.lookup_scan(Scan(case["qr_payload"], "sim"))
        assert found.outcome == "ok", found
        assert rt.lookup.service.lookup_fields(RECEIPT, WRONG_CODE).outcome == "wrong_code"

        # Pad: the window's session comes from the central; a ★1 with a callback number.
        central.call_next("01", case_no=CASE_NO, item_code="11330100MB00001", item_version="2")
        central.end_service("01")
        deadline = time.monotonic() + 8
        while rt.pad.service.current() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rt.pad.service.current() is not None, "the pad was not invited"
        reason = cfg.pad.reasons[0]["code"]
        rating = rt.pad.service.submit(1, [reason], PHONE)
        assert rating["phone"] == PHONE

        # Dispenser: a ticket, numbered by the central and printed on the simulated printer.
        ticket = rt.dispenser.service.issue("A")
        assert ticket is not None

        # Sync: one round delivers all of it to the central.
        summary = rt.sync.run_once(pull=True)
        assert summary["ok"], summary
    finally:
        rt.stop()
        logging.getLogger().removeHandler(raw)
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(logging.WARNING)
        privacy._forgotten.clear()

    # The personal data really travelled: the central has the rating with its phone and case.
    delivered = central.events()
    ratings = [e["body"] for e in delivered if e["kind"].startswith("rating")]
    assert any(r.get("phone") == PHONE and r.get("case_no") == CASE_NO for r in ratings), ratings
    kinds = {e["kind"] for e in delivered}
    assert "ticket.issued" in kinds and "lookup.performed" in kinds, kinds

    text = buf.getvalue()
    assert "DEBUG" in text or '"level": "debug"' in text.lower()  # DEBUG lines were written
    assert len(text.splitlines()) > 10 and "rating" in text and "sync" in text
    secrets = {
        "name": NAME,
        "surname+given": NAME[2:],
        "receipt": RECEIPT,
        "receipt digits": RECEIPT[2:],
        "query code": CODE,
        "wrong code": WRONG_CODE,
        "phone": PHONE,
        "case no": CASE_NO,
        "qr payload": case["qr_payload"],
    }
    for what, value in secrets.items():
        assert value not in text, f"{what} in the log: " + next(ln for ln in text.splitlines() if value in ln)
    raw_text = "\n".join(raw.lines)
    for what, value in secrets.items():
        assert value not in raw_text, f"{what} handed to logging: " + next(ln for ln in raw.lines if value in ln)
