"""A flow through the real app with known personal data: none of it may reach the log."""

import io
import logging

from kiosk.core import logs, privacy
from kiosk.core.bootguard import BootGuard
from kiosk.technician import selftest
from tests.helpers import AppHarness, write_config

NAME = "欧阳娜娜"
ID_NO = "44030619900101123X"
PHONE = "15011112222"
CASE = "SZ-440306-2025-0042"


def test_flow_logs_contain_no_personal_data(tmp_path, central):
    case = central.create_case(applicant_name=NAME, receipt_no=CASE)
    token = central.issue_token("demo-kiosk")
    buf = io.StringIO()
    handler = logs.setup(fmt="json", stream=buf)
    try:
        h = AppHarness(write_config(tmp_path, {"central": {"url": central.url}}, token=token))
        try:
            rt = h.rt
            # A citizen asks about the case: from now on the lookup role has the
            # number masked wherever it shows up in a log line.
            assert rt.lookup.service.lookup_fields(CASE, case["query_code"]).outcome == "ok"
            with rt.ledger.transaction() as tx:
                eid = rt.ledger.add_event(tx, "rating", {"name": NAME, "id": ID_NO, "phone": PHONE, "case": CASE})
            rt.ledger.mark_dead(eid, f"rejected: case {CASE} of {ID_NO} unknown")
            log = logging.getLogger("kiosk.lookup")
            log.info("lookup for case %s by %s", CASE, logs.Personal(NAME))
            log.warning("central answered: %s", f"applicant {NAME} id {ID_NO} tel {PHONE}", extra={"personal": [NAME]})
            try:
                raise RuntimeError(f"printer choked on {NAME} {ID_NO}")
            except RuntimeError:
                logging.getLogger("kiosk.dispenser").exception("print failed", extra={"personal": NAME})
            # technician flow: service screen with a wrong and a right PIN, self-check
            h.app.go("service")
            h.pump(2)
            gate = h.app.screen("service").gate
            assert gate.check("0000") == (False, "wrong")
            assert gate.check("246810") == (True, "ok")
            h.app.screen("service").unlock()
            h.wait_until(lambda: len(h.app.screen("service").ids.info.children) > 4, 5)
            selftest.run_into(rt)
            g = BootGuard(rt.cfg.storage.dir)
            g.begin()
            g.record_error(ValueError(f"row {ID_NO} {PHONE}"))
            logging.getLogger("kiosk.bootguard").error("last error %s", g.state()["last_error"])
        finally:
            h.close()
    finally:
        logging.getLogger().removeHandler(handler)
        privacy._forgotten.clear()
    text = buf.getvalue()
    assert "service PIN" in text and "self-check" in text  # the flow did log
    for secret in (NAME, ID_NO, PHONE, CASE, "0042", "246810"):
        assert secret not in text, secret
