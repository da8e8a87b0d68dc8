"""HTTPS with verification on: the device trusts its configured CA and nothing else."""

import os
import shutil
import subprocess
import sys

import pytest

from kiosk.central.server import BenchCentral
from kiosk.core import keys
from kiosk.core.ledger import Ledger
from kiosk.sync.client import CentralClient, CentralUnreachable
from tests.helpers import ROOT, device_tokens, write_config

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not installed")


@pytest.fixture
def tls_central(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    c = BenchCentral(tmp_path / "central", tls_cert=str(cert), tls_key=str(key)).start()
    c.issue_token = device_tokens(c)  # each test device with its usual scope
    yield c, cert
    c.stop()


def test_client_trusts_the_configured_ca_only(tls_central):
    central, cert = tls_central
    assert central.url.startswith("https://")
    token = central.issue_token("hall01-kiosk01")
    ok = CentralClient(central.url, token, connect_timeout=1, read_timeout=3, verify=str(cert))
    assert ok.whoami()["device_id"] == "hall01-kiosk01"
    ok.close()
    # System CAs do not know the bench certificate: refused, never silently accepted.
    strict = CentralClient(central.url, token, connect_timeout=1, read_timeout=3, verify=True)
    with pytest.raises(CentralUnreachable) as e:
        strict.whoami()
    assert "certificate" in str(e.value).lower() or "ssl" in str(e.value).lower()
    strict.close()


def test_device_syncs_over_https_with_its_ca_file(tls_central, tmp_path):
    central, cert = tls_central
    cfg = write_config(
        tmp_path,
        {"central": {"url": central.url, "allow_http": False, "ca_file": str(cert)}},
        token=central.issue_token("demo-kiosk"),
    )
    led = Ledger(tmp_path / "data" / keys.LEDGER_FILE)
    with led.transaction() as tx:
        uuid = led.add_event(tx, "audit.test", {"what": "tls"})
    led.close()
    r = subprocess.run(
        [sys.executable, "-m", "kiosk", "sync", "--config", str(cfg), "--once"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SDL_VIDEODRIVER": "offscreen"},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert uuid in [e["id"] for e in central.events("audit.test")]


def test_plain_http_against_an_https_central_is_a_required_selftest_failure(tls_central, tmp_path, capsys):
    """The reverse of https against http: the TLS server closes the plain request, which
    looked like "unreachable right now" (exit 0) though waiting never fixes a scheme."""
    import json

    from kiosk.cli import main

    central, _cert = tls_central
    token = central.issue_token("demo-kiosk")
    url = central.url.replace("https://", "http://")
    path = write_config(tmp_path, {"central": {"url": url, "allow_http": True}}, token=token)
    code = main(["selftest", "--config", str(path), "--json"])
    row = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}["central"]
    assert code == 1 and row["verdict"] == "fail" and row["required"]
    assert "speaks https" in row["detail"] and central.url in row["detail"]
