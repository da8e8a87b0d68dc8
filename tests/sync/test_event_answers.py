"""An event upload answered with valid JSON of the wrong shape: nothing is marked
delivered, nothing crashes the sync run, and the next good answer delivers it all."""

from __future__ import annotations

import json

import pytest

BAD = {
    "an id that is a list": {"results": [{"id": ["x"], "status": "accepted"}]},
    "an id that is an object": {"results": [{"id": {"a": 1}, "status": "accepted"}]},
    "entries that are not objects": {"results": [1, None, "x"]},
    "results that are an object": {"results": {"a": 1}},
    "a status that is a list": {"results": [{"id": "FIRST", "status": ["accepted"]}]},
}


@pytest.mark.parametrize("answer", BAD.values(), ids=BAD.keys())
def test_a_broken_upload_answer_delivers_nothing_and_is_retried(device, answer):
    ids = device.add_events(2)
    body = json.dumps(answer).replace('"FIRST"', json.dumps(ids[0]))  # a real event's id
    device.central.inject("answer", path="/api/v1/events", body=body)
    w = device.worker()
    s = w.run_once()
    assert not s["ok"] and s["error"]
    assert len(device.ledger.pending_events(limit=10)) == 2
    s = w.run_once()
    assert s["ok"] and device.ledger.pending_events(limit=10) == []
    assert {e["id"] for e in device.central.store.events()} >= set(ids)
