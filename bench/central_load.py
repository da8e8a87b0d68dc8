"""The bench central under load, and under abuse: requests/s and latency per request.

N simulated devices (threads, keep-alive sessions, one token each) drive the
bench central in a child process for a few seconds each run:

- `reference: stdlib trivial`: http.server.ThreadingHTTPServer answering a fixed
  JSON (what the bench central was served by before), the floor of this machine;
- `central: whoami`: the same trivial work through the bench central's server
  (uvicorn, thread pools, token check): the plumbing's cost;
- `central: device mix`: what devices do (event batches of 5, heartbeats, queue
  reads, config with ETag, lookups across receipt numbers);
- `central: mix, 400 bad sockets`: the same while 250 sockets trickle headers
  (slow-loris) and 150 more sit idle; `mix, 2 bench pollers`: while two
  clients poll /bench/events.json (1,000 events a page) without pause; `both`;
  `1,020 idle sockets`: opened before the devices start (the central's file
  limit is set to 1,024, a distribution's usual default).

Prints requests/s, p50 and p99 per run. The mix looks a case up once a second
per device, under the per-device rate limit (a 429 would count as an error).

    .venv/bin/python bench/central_load.py [--devices 16] [--seconds 5] [--old-tree DIR]

`--old-tree DIR` (a checkout of an earlier revision, `git worktree add DIR REV`)
also runs the mix on that revision's bench central, as a second reference.
"""

from __future__ import annotations

import argparse
import base64
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CHILD = r"""
import json, resource, sys, threading
# The usual default of a distribution (and the one the issue measured the old server at).
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
if sys.argv[4]:
    sys.path.insert(0, sys.argv[4])  # an older checkout's kiosk/ (--old-tree)
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from kiosk.central.server import BenchCentral
n = int(sys.argv[2])
if sys.argv[1] == "stdlib":
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        def log_message(self, *a): pass
        def do_GET(self):
            body = b'{"device_id": "x", "roles": ["dispenser"]}'
            self.send_response(200); self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    srv = ThreadingHTTPServer(("127.0.0.1", 0), H); srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    print(json.dumps({"url": f"http://127.0.0.1:{srv.server_address[1]}", "tokens": ["t"] * n, "cases": [],
                      "password": ""}), flush=True)
else:
    c = BenchCentral(sys.argv[3], long_poll_cap=1).start()
    if not hasattr(c, "bench_password"):
        c.bench_password = ""
    tokens = [c.issue_token(f"hall01-dev{i:02d}", ["dispenser", "lookup"]) for i in range(n)]
    cases = [c.create_case() for _ in range(8)]
    print(json.dumps({"url": c.url, "tokens": tokens, "password": c.bench_password,
                      "cases": [[k["receipt_no"], k["query_code"]] for k in cases]}), flush=True)
sys.stdin.read()
"""


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def start(kind: str, devices: int, data: Path, tree: str = "") -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, kind, str(devices), str(data), tree],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())


def device(info: dict, i: int, what: str, until: float, lat: list[float], errors: list[str]) -> None:
    url, token = info["url"], info["tokens"][i]
    s = requests.Session()
    s.headers["Authorization"] = f"Bearer {token}"
    etag, seq, k, last_lookup = None, 0, 0, 0.0
    while time.monotonic() < until:
        k += 1
        t = time.perf_counter()
        try:
            if what == "whoami":
                r = s.get(f"{url}/api/v1/whoami", timeout=10)
            elif info["cases"] and time.monotonic() - last_lookup >= 1.0:  # a scan a second per kiosk
                last_lookup = time.monotonic()
                no, code = info["cases"][(i + k) % len(info["cases"])]
                r = s.post(f"{url}/api/v1/cases/lookup", json={"receipt_no": no, "query_code": code}, timeout=10)
            elif k % 5 == 0:
                r = s.post(f"{url}/api/v1/heartbeat", json={"device_id": f"hall01-dev{i:02d}"}, timeout=10)
            elif k % 5 == 1:
                r = s.get(f"{url}/api/v1/queue", timeout=10)
            elif k % 5 == 2:
                r = s.get(f"{url}/api/v1/config", headers={"If-None-Match": etag} if etag else {}, timeout=10)
                etag = r.headers.get("ETag", etag)
            else:
                events = []
                for _ in range(5):
                    seq += 1
                    events.append(
                        {
                            "id": str(uuid.uuid4()),
                            "kind": "audit.bench",
                            "device_id": f"hall01-dev{i:02d}",
                            "created_at": "2026-05-12T09:00:00+08:00",
                            "boot_id": "bench",
                            "seq": seq,
                            "body": {"n": seq},
                        }
                    )
                r = s.post(f"{url}/api/v1/events", json={"events": events}, timeout=10)
            if r.status_code >= 400:
                errors.append(str(r.status_code))
        except requests.RequestException as e:
            errors.append(type(e).__name__)
            continue
        lat.append(time.perf_counter() - t)
    s.close()


def abuse(info: dict, until: float, stop: threading.Event, kinds: str, held: list[int]) -> list[threading.Thread]:
    host, port = info["url"].rsplit("/", 1)[-1].split(":")

    def loris() -> None:
        socks: list[socket.socket] = []
        while not stop.is_set() and time.monotonic() < until:
            while len(socks) < 250:
                try:
                    sk = socket.create_connection((host, int(port)), timeout=2)
                    sk.send(b"GET /api/v1/whoami HTTP/1.1\r\n")
                    socks.append(sk)
                except OSError:
                    break
            for sk in list(socks):
                try:
                    sk.send(b"X")  # one byte of a header that never ends
                except OSError:
                    socks.remove(sk)  # cut off at the header deadline: open another
                    sk.close()
            time.sleep(0.5)
        for sk in socks:
            sk.close()

    def idle(n: int = 150) -> None:
        socks = []
        for _ in range(n):
            try:
                socks.append(socket.create_connection((host, int(port)), timeout=2))
            except OSError:
                break
        held.append(len(socks))
        stop.wait(max(0.0, until - time.monotonic()))
        for sk in socks:
            sk.close()

    def poll() -> None:
        auth = {"Authorization": "Basic " + base64.b64encode(f"x:{info['password']}".encode()).decode()}
        with requests.Session() as s:
            while not stop.is_set() and time.monotonic() < until:
                try:
                    s.get(f"{info['url']}/bench/events.json?limit=1000", headers=auth, timeout=10)
                except requests.RequestException:
                    pass

    def flood() -> None:
        idle(1020)

    chosen = {
        "sockets": (loris, idle),
        "pages": (poll, poll),
        "all": (loris, idle, poll, poll),
        "flood": (flood,),
    }[kinds]
    threads = [threading.Thread(target=f, daemon=True) for f in chosen]
    for t in threads:
        t.start()
    return threads


def run(name: str, kind: str, what: str, devices: int, seconds: float, with_abuse: str = "", tree: str = "") -> None:
    data = Path(tempfile.mkdtemp(prefix="central-load-"))
    proc, info = start(kind, devices, data / "central", tree)
    try:
        # warm up: every device's connection made, the first requests answered
        warm: list[float] = []
        device(info, 0, what, time.monotonic() + 0.5, warm, [])
        stop = threading.Event()
        until = time.monotonic() + seconds + (1.5 if with_abuse else 0)
        held: list[int] = []  # idle sockets each idle thread got connected
        bad = abuse(info, until, stop, with_abuse, held) if with_abuse else []
        if with_abuse:
            time.sleep(1.5)  # the attack in place before the devices start
        lat: list[float] = []
        errors: list[str] = []
        began = time.monotonic()
        threads = [
            threading.Thread(target=device, args=(info, i, what, began + seconds, lat, errors)) for i in range(devices)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.monotonic() - began
        stop.set()
        for t in bad:
            t.join(5)
        ms = [x * 1000 for x in lat]
        print(
            f"{name:<34} {devices:>3} devices  {len(ms) / took:8.0f} req/s  "
            f"p50={statistics.median(ms):6.1f} ms  p99={pct(ms, 99):7.1f} ms  errors={len(errors)}"
            + (f" ({', '.join(sorted(set(errors)))})" if errors else "")
            + (f"  [idle sockets connected: {'+'.join(map(str, held))}]" if with_abuse in ("flood", "sockets") else "")
        )
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument(
        "--old-tree",
        default="",
        help="a checkout of an earlier revision (git worktree add DIR REV): its bench central runs the mix too",
    )
    args = ap.parse_args()
    n, sec = args.devices, args.seconds
    run("reference: stdlib trivial", "stdlib", "whoami", n, sec)
    if args.old_tree:
        run("reference: old central, mix", "central", "mix", n, sec, tree=args.old_tree)
        run("reference: old central, 2 pollers", "central", "mix", n, sec, with_abuse="pages", tree=args.old_tree)
    run("central: whoami", "central", "whoami", n, sec)
    run("central: device mix", "central", "mix", n, sec)
    run("central: mix, 400 bad sockets", "central", "mix", n, sec, with_abuse="sockets")
    run("central: mix, 2 bench pollers", "central", "mix", n, sec, with_abuse="pages")
    run("central: mix, both", "central", "mix", n, sec, with_abuse="all")
    run("central: mix, 1,020 idle sockets", "central", "mix", n, sec, with_abuse="flood")
    return 0


if __name__ == "__main__":
    sys.exit(main())
