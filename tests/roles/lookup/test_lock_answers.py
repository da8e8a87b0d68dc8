"""A central's lockout answer with a wait that is not a number, or absurd: the kiosk
locks for a sane time (the config's, or at most a day), never crashes or locks for years."""

from __future__ import annotations

import json

import pytest

from tests.roles.lookup.test_service import make_runtime

LOCKS = {
    "a wait that is text": ({"error": "locked", "retry_after_s": "soon"}, {}),
    "a wait of 30,000 years": ({"error": "locked", "retry_after_s": 10**12}, {}),
    "a negative wait": ({"error": "locked", "retry_after_s": -5}, {}),
    "a header of 3,000 years": ({"error": "locked"}, {"Retry-After": "99999999999"}),
}


@pytest.mark.parametrize(("body", "headers"), LOCKS.values(), ids=LOCKS.keys())
def test_a_lockout_wait_of_the_wrong_shape_gives_a_sane_lock(tmp_path, central, body, headers):
    rt = make_runtime(tmp_path, central)
    try:
        central.inject("answer", status=423, path="/api/v1/cases/lookup", body=json.dumps(body), headers=headers)
        result = rt.lookup.service.lookup_fields("ZW2026000777", "482913")
        assert result.outcome == "locked"
        assert 1 <= result.locked_minutes <= 24 * 60
    finally:
        rt.stop()


@pytest.mark.parametrize("left", [True, -5, 10**9, "2"])
def test_a_wrong_code_answer_with_a_bad_count_shows_no_count(tmp_path, central, left):
    rt = make_runtime(tmp_path, central)
    try:
        body = {"error": "wrong_code", "message": "wrong", "attempts_left": left}
        central.inject("answer", status=403, path="/api/v1/cases/lookup", body=json.dumps(body))
        result = rt.lookup.service.lookup_fields("ZW2026000777", "111111")
        assert result.outcome == "wrong_code"
        assert result.attempts_left is None or 0 <= result.attempts_left <= 3  # the device's own count
    finally:
        rt.stop()
