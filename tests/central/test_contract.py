"""Contract test: schemathesis drives the running bench central from docs/central-api.yaml.

Through schemathesis' CLI (its stable interface) in a subprocess, against a
bench central in this process on 127.0.0.1. Bounded: a fixed seed and a few
examples per operation, one worker (hypothesis generating in several threads
trips a CPython 3.11 ast bug), so it runs in about half a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from kiosk.central.server import BenchCentral
from kiosk.sync.client import CentralClient

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "central-api.yaml"


def _schemathesis() -> list[str]:
    exe = Path(sys.executable).with_name("schemathesis")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("schemathesis") or shutil.which("st")
    if not found:
        pytest.skip("schemathesis is not installed (pip install hall-kiosk[test])")
    return [found]


def _run(central, token: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        *_schemathesis(),
        "run",
        str(SPEC),
        "--url",
        f"{central.url}/api/v1",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--seed",
        "20260512",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--no-shrink",
        *extra,
    ]
    env = dict(os.environ, NO_COLOR="1", SCHEMATHESIS_HOOKS="")
    return subprocess.run(cmd, capture_output=True, text=True, timeout=170, env=env, cwd=central.data_dir.parent)


def _contract_central(tmp_path):
    # Long-polls are cut short (the contract allows an early answer), the lookup
    # lockout and the per-device lookup rate are out of reach, so random inputs
    # cannot stall or lock the run.
    from kiosk.central.limits import Limits

    limits = Limits(lookup_burst=10**6, lookup_interval=0.001)
    return BenchCentral(tmp_path / "central", long_poll_cap=0.2, max_code_attempts=10**6, limits=limits).start()


@pytest.mark.parametrize(
    "roles, window",
    [(["dispenser"], None), (["lookup"], None), (["pad"], "02")],
    ids=["dispenser", "lookup", "pad-of-another-window"],
)
def test_each_role_gets_what_the_document_says_for_every_operation(tmp_path, roles, window):
    """With a token of one role (and a pad of window 02, whose paths name window
    01 in the examples), every operation of another role or window must answer
    as documented: a 403 in the Error shape, never a 2xx, a 5xx or an undocumented
    status. Acceptance of valid data is not asked of a token out of scope."""
    central = _contract_central(tmp_path)
    try:
        token = central.issue_token(f"contract-{roles[0]}", roles, window)
        proc = _run(
            central,
            token,
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "3",
            "--phases",
            "examples,fuzzing",
        )
        tail = "\n".join(proc.stdout.splitlines()[-60:])
        assert proc.returncode == 0, f"schemathesis found contract violations:\n{tail}\n{proc.stderr[-2000:]}"
        assert "13/13" in proc.stdout  # every operation of the document, check-in included
    finally:
        central.stop()


def test_bench_central_conforms_to_the_api_document(tmp_path):
    central = _contract_central(tmp_path)
    try:
        token = central.issue_token("contract-test", ["dispenser", "lookup", "pad"], "01")
        proc = _run(central, token, "--max-examples", "8", "--phases", "examples,coverage,fuzzing")
        tail = "\n".join(proc.stdout.splitlines()[-60:])
        assert proc.returncode == 0, f"schemathesis found contract violations:\n{tail}\n{proc.stderr[-2000:]}"
        assert "13/13" in proc.stdout  # every operation in the document was exercised
        # After the random inputs the central still does its job: a device's
        # well-formed event is acknowledged and stored exactly once.
        client = CentralClient(central.url, token, 2.0, 5.0)
        before = central.store.event_count()
        ev = {
            "id": str(uuid.uuid4()),
            "kind": "lookup.performed",
            "device_id": "contract-test",
            "created_at": "2026-05-12T09:00:00+08:00",
            "boot_id": "b",
            "seq": 1,
            "body": {"outcome": "ok", "source": "scanner"},
        }
        assert [r["status"] for r in client.upload_events([ev])] == ["accepted"]
        assert [r["status"] for r in client.upload_events([ev])] == ["duplicate"]
        client.close()
        assert central.store.event_count() == before + 1
    finally:
        central.stop()
