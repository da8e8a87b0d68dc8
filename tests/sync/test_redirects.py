"""A central URL that redirects (a proxy sending http to https, a moved server, a
hijacked name): the device token never follows, and the self-check says what to fix."""

from __future__ import annotations

import http.server
import json
import threading

import pytest

from kiosk.cli import main
from kiosk.sync.client import CentralClient, CentralNotCentral
from tests.helpers import write_config


@pytest.fixture
def elsewhere():
    """Another HTTP server on loopback that writes down what it was sent."""
    seen: list[dict[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(dict(self.headers))
            body = b'{"device_id": "stolen"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_POST = do_GET

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed_with_the_token(central, elsewhere, status):
    url, seen = elsewhere
    central.inject("answer", status=status, headers={"Location": url + "/api/v1/whoami"}, content_type="text/plain")
    client = CentralClient(central.url, central.issue_token("kiosk-1"), 0.5, 2.0)
    try:
        with pytest.raises(CentralNotCentral) as e:
            client.whoami()
    finally:
        client.close()
    assert seen == []  # not even a request without the token
    assert str(status) in str(e.value) and url in str(e.value)


def selftest(capsys, path):
    code = main(["selftest", "--config", str(path), "--json"])
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["rows"]}
    return code, rows


def test_a_redirecting_central_url_is_a_required_failure(tmp_path, central, capsys):
    token = central.issue_token("demo-kiosk")
    path = write_config(tmp_path, {"central": {"url": central.url, "allow_http": True}}, token=token)
    central.inject("answer", status=301, headers={"Location": "https://central.example/api/v1/whoami"}, count=5)
    code, rows = selftest(capsys, path)
    assert code == 1 and rows["central"]["verdict"] == "fail" and rows["central"]["required"]
    assert "https://central.example" in rows["central"]["detail"] and "central.url" in rows["central"]["detail"]


def test_a_web_page_instead_of_the_central_is_a_required_failure(tmp_path, central, capsys):
    token = central.issue_token("demo-kiosk")
    path = write_config(tmp_path, {"central": {"url": central.url, "allow_http": True}}, token=token)
    central.inject("answer", body="<html><body>政务服务网</body></html>", content_type="text/html", count=5)
    code, rows = selftest(capsys, path)
    assert code == 1 and rows["central"]["verdict"] == "fail" and rows["central"]["required"]
    assert "not a central" in rows["central"]["detail"] and "central.url" in rows["central"]["detail"]


def test_an_endless_answer_is_cut_at_its_size_not_only_its_time(central):
    """9 MiB of JSON-looking text, fast: within any deadline, but no answer of the
    contract is that big. Cut at the limit, a plain error, and the next call works."""
    from kiosk.sync.client import MAX_ANSWER_BYTES

    central.inject("answer", body="[" + "0," * (MAX_ANSWER_BYTES // 2 + 1024) + "0]", path="/api/v1/whoami")
    client = CentralClient(central.url, central.issue_token("kiosk-1"), 0.5, 10.0)
    try:
        with pytest.raises(CentralNotCentral) as e:
            client.whoami()
        assert "more than 8 MiB" in str(e.value)
        assert client.whoami()["device_id"] == "kiosk-1"  # the fault was one answer
    finally:
        client.close()
