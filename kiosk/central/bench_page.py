"""The bench central's web page: plain HTML forms, no JavaScript.

What a technician needs at the bench: what devices sent (heartbeats,
tickets, ratings, events, rejections), a form to create a case and show its
receipt QR, a form to create a booking (预约) and show its QR for a phone,
and buttons that drive each window (call next, end service, pause) so a
counter pad can be exercised.

Behind the bench password the central prints at start (a login sets a
SameSite cookie, so another site cannot drive the forms; scripts may send it
as HTTP Basic). What it lists is masked as a public screen would be: applicant
names, receipt numbers, callback phones; query codes are never listed (a new
case's receipt page shows its code once, to print the receipt).
"""

from __future__ import annotations

import base64
import hmac
import io
import json
from html import escape
from urllib.parse import parse_qs, quote

from kiosk.central.faults import Fault
from kiosk.central.store import CASE_STATUSES, COLLECTION_METHODS, StoreError
from kiosk.core.privacy import mask_name, mask_phone, mask_receipt, scrub

COOKIE = "bench_session"
EVENTS_PAGE, EVENTS_PAGE_MAX = 200, 1000  # /bench/events.json

CSS = """body{font-family:sans-serif;margin:1em 2em;color:#222}table{border-collapse:collapse;margin-bottom:1em}
td,th{border:1px solid #bbb;padding:2px 6px;font-size:90%;vertical-align:top}th{background:#eee}
h2{margin-top:1.4em;border-bottom:2px solid #468}form.inline{display:inline}code{font-size:85%}"""


def _page(title: str, body: str):
    from kiosk.central.server import Response

    html = (
        f"<!doctype html><html lang=zh><head><meta charset=utf-8><title>{escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return Response(200, html.encode("utf-8"), "text/html")


def _table(headers: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{c if isinstance(c, Raw) else escape(str(c if c is not None else ''))}</td>" for c in r)
        + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body or '<tr><td colspan=99>(none)</td></tr>'}</table>"


class Raw(str):
    """Already-escaped HTML for a table cell."""


def _form(action: str, label: str) -> Raw:
    return Raw(f'<form class=inline method=post action="{escape(action)}"><button>{escape(label)}</button></form>')


def _short(obj, n: int = 160) -> str:
    if isinstance(obj, dict) and obj.get("phone"):
        obj = dict(obj, phone=mask_phone(obj["phone"]))
    # Event bodies are the devices' free-form data: mask whatever looks personal.
    s = scrub(json.dumps(obj, ensure_ascii=False), codes=False)
    return s if len(s) <= n else s[:n] + "…"


def index(central) -> str:
    st = central.store
    parts = [f"<p>API: <code>{escape(central.url)}/api/v1</code> — day {escape(st.today())}</p>"]
    parts.append("<h2>Windows</h2>")
    rows = []
    for w in st.windows():
        acts = Raw(
            "".join(
                _form(f"/bench/windows/{w['window']}/{a}", lbl)
                for a, lbl in (
                    ("call-next", "叫号 call next"),
                    ("end", "结束服务 end service"),
                    ("pause", "暂停 pause"),
                    ("resume", "恢复 resume"),
                )
            )
        )
        rows.append(
            [
                w["window"],
                ",".join(w["categories"]),
                w["staff_id"],
                w["state"],
                w["ticket"],
                w["session_id"],
                w["rev"],
                acts,
            ]
        )
    parts.append(_table(["window", "categories", "staff", "state", "ticket", "session", "rev", ""], rows))

    parts.append("<h2>Heartbeats</h2>")
    parts.append(
        _table(
            ["device", "received", "health"],
            [[h["device_id"], h["received_at"], _short(h["health"], 400)] for h in st.latest_heartbeats()],
        )
    )
    parts.append("<h2>Tickets today</h2>")
    parts.append(
        _table(
            ["display", "category", "source", "device", "issued", "state", "window"],
            [
                [t["display"], t["category"], t["source"], t["device_id"], t["issued_at"], t["state"], t["window"]]
                for t in st.tickets()[-200:]
            ],
        )
    )
    parts.append("<h2>Leases</h2>")
    parts.append(
        _table(
            ["day", "category", "first", "last", "device"],
            [[ln["day"], ln["category"], ln["first"], ln["last"], ln["device_id"]] for ln in st.leases()[-50:]],
        )
    )
    ratings = st.latest_ratings(100)
    parts.append("<h2>Ratings</h2>")
    parts.append(
        _table(
            ["kind", "device", "created", "level", "reasons", "body"],
            [
                [
                    e["kind"],
                    e["device_id"],
                    e["created_at"],
                    e["body"].get("level"),
                    ",".join(map(str, e["body"].get("reasons") or [])),
                    _short(e["body"]),
                ]
                for e in ratings
            ],
        )
    )
    parts.append("<h2>Events (latest 100)</h2>")
    evs = st.events(limit=100, latest=True)
    parts.append(
        _table(
            ["received", "kind", "device", "seq", "id", "body"],
            [[e["received_at"], e["kind"], e["device_id"], e["seq"], e["id"], _short(e["body"])] for e in evs],
        )
    )
    parts.append("<h2>Rejected events (dead letters on the device side)</h2>")
    parts.append(
        _table(
            ["at", "device", "kind", "event id", "reason"],
            [[r["at"], r["device_id"], r["kind"], r["event_id"], r["reason"]] for r in st.rejections()],
        )
    )

    parts.append("<h2>Cases</h2>")
    parts.append(
        _table(
            ["receipt no", "query code", "item", "applicant", "status", "QR (holds the code)"],
            [
                [
                    mask_receipt(c["receipt_no"]),
                    "******",
                    c["item_name"],
                    mask_name(c["applicant_name"]),
                    c["status"],
                    Raw(f'<a href="/bench/cases/{quote(c["receipt_no"])}/qr.png">QR</a>'),
                ]
                for c in st.cases()[:50]
            ],
        )
    )
    status_opts = "".join(f"<option value={k}>{escape(v[0])} {k}</option>" for k, v in CASE_STATUSES.items())
    coll_opts = "".join(f"<option>{k}</option>" for k in COLLECTION_METHODS)
    parts.append(f"""<form method=post action="/bench/cases">
      事项名称 item <input name=item_name value="个体工商户设立登记" size=24>
      申请人 applicant <input name=applicant_name value="王小明" size=8>
      状态 <select name=status>{status_opts}</select>
      时限(工作日) <input name=time_limit_days value=5 size=3>
      领取 <select name=collection>{coll_opts}</select>
      窗口 <input name=window value="08" size=3>
      <button>创建 create case</button></form>""")
    parts.append("<h2>Bookings today 预约</h2>")
    parts.append(
        _table(
            ["slot", "service", "code", "by ID card", "state", "checked in", "QR"],
            [
                [
                    f"{b['slot_start']}-{b['slot_end']}",
                    b["category"],
                    b["code"],
                    "yes" if b["person"] else "",
                    b["state"],
                    b["checked_in_at"] or "",
                    Raw(f'<a href="/bench/bookings/{quote(b["code"])}/qr.png">QR</a>'),
                ]
                for b in st.bookings()[:200]
            ],
        )
    )
    cat_opts = "".join(
        f"<option value={escape(c['code'])}>{escape(c['code'])} {escape(c['name_zh'])}</option>"
        for c in st.device_config()[0]["categories"]
    )
    parts.append(f"""<form method=post action="/bench/bookings">
      业务 service <select name=category>{cat_opts}</select>
      日期 day <input name=day value="{escape(st.today())}" size=10>
      时段 slot <input name=slot_start value="{escape(st.now().strftime("%H:%M"))}" size=5>
      - <input name=slot_end size=5 placeholder="+30 min">
      预约码 code <input name=code size=12 placeholder="random">
      <button>创建预约 create booking</button></form>""")
    parts.append("<h2>Device tokens</h2>")
    parts.append(
        _table(
            ["device", "roles", "window", "issued", "state", "hash", ""],
            [
                [
                    t["device_id"],
                    ",".join(t["roles"]) or "(none: reissue)",
                    t["window"],
                    t["issued_at"],
                    "revoked" if t["revoked"] else "valid",
                    t["hash_prefix"],
                    "" if t["revoked"] else _form(f"/bench/tokens/{quote(t['device_id'])}/revoke", "revoke device"),
                ]
                for t in st.token_list()[-100:]
            ],
        )
    )
    parts.append("""<form method=post action="/bench/tokens">device id <input name=device_id>
      roles <label><input type=checkbox name=role_dispenser value=1>dispenser</label>
      <label><input type=checkbox name=role_lookup value=1>lookup</label>
      <label><input type=checkbox name=role_pad value=1>pad</label>
      window (a pad's) <input name=window size=3>
      <button>issue token</button></form>""")
    parts.append("<h2>Fault injection</h2>")
    parts.append(
        f"<p>pending: <code>{escape(json.dumps(central.faults.pending()))}</code> — "
        'POST JSON to /bench/faults, e.g. <code>{"kind": "error", "count": 3, "retry_after": 2}</code>'
        "; DELETE /bench/faults clears.</p>"
    )
    return "".join(parts)


def _redirect(to: str = "/bench/"):
    from kiosk.central.server import Response

    return Response(303, b"", "text/plain", {"Location": to})


def qr_png(payload: str) -> bytes:
    import qrcode

    img = qrcode.make(payload, box_size=6, border=2)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def signed_in(central, headers) -> bool:
    """The bench session cookie, or the password as HTTP Basic (any user name)."""
    for part in (headers.get("Cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and hmac.compare_digest(value.encode(), central.bench_session.encode()):
            return True
    auth = headers.get("Authorization") or ""
    if auth.startswith("Basic "):
        try:
            _, _, pw = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(pw.encode(), central.bench_password.encode())
    return False


def _login(central, method: str, query: dict, form: dict):
    from kiosk.central.server import Response

    given = form.get("password") if method == "POST" else query.get("password")
    if given is not None and hmac.compare_digest(given.encode(), central.bench_password.encode()):
        cookie = f"{COOKIE}={central.bench_session}; Path=/bench; HttpOnly; SameSite=Strict"
        return Response(303, b"", "text/plain", {"Location": "/bench/", "Set-Cookie": cookie})
    page = _page(
        "Bench central 测试中心",
        ("<p>Wrong password.</p>" if given is not None else "")
        + "<p>The bench password is printed where the bench central was started.</p>"
        '<form method=post action="/bench/login">password <input type=password name=password autofocus>'
        "<button>sign in</button></form>",
    )
    page.status = 401
    return page


def route(central, method: str, path: str, query: dict, body: bytes, headers):
    from kiosk.central.server import Response, error_response, json_response

    st = central.store
    form = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
    parts = [p for p in path.split("/") if p][1:]
    if parts == ["login"]:
        return _login(central, method, query, form)
    if not signed_in(central, headers):
        if method == "GET" and not parts:
            return _login(central, method, query, form)
        return error_response(401, "bench_login", "sign in at /bench/login with the bench password first")
    try:
        if method == "GET" and not parts:
            return _page("Bench central 测试中心", index(central))
        if parts == ["faults"]:
            if method == "GET":
                return json_response(200, central.faults.pending())
            if method == "DELETE":
                central.clear_faults()
                return json_response(200, [])
            if method == "POST":
                spec = json.loads(body or b"{}")
                central.faults.add(Fault(**spec))
                return json_response(200, central.faults.pending())
        if parts == ["events.json"] and method == "GET":
            # A page at a time (`after` = the last `n` seen): a client polling it
            # costs the device API one bounded read on its own connection.
            after = int(query.get("after") or 0)
            limit = min(max(1, int(query.get("limit") or EVENTS_PAGE)), EVENTS_PAGE_MAX)
            return json_response(200, st.events(query.get("kind"), limit=limit, after=after))
        if parts == ["cases"] and method == "POST":
            case = st.create_case(
                form.get("item_name", "").strip() or "个体工商户设立登记",
                form.get("applicant_name", "").strip() or "张小三",
                status=form.get("status", "accepted"),
                time_limit_days=int(form.get("time_limit_days") or 5),
                collection=form.get("collection", "window"),
                window=form.get("window", "08"),
            )
            no = escape(case["receipt_no"])
            return _page(
                "受理通知书 receipt",
                f"""<p>受理编号 <b>{no}</b> — 查询码 <b>{escape(case["query_code"])}</b></p>
                <p><img src="/bench/cases/{quote(case["receipt_no"])}/qr.png" alt="receipt QR"></p>
                <p><code>{escape(case["qr_payload"])}</code></p><p><a href="/bench/">back</a></p>""",
            )
        if len(parts) == 3 and parts[0] == "cases" and parts[2] == "qr.png" and method == "GET":
            for c in st.cases():
                if c["receipt_no"] == parts[1]:
                    return Response(200, qr_png(st.qr_payload(c["receipt_no"], c["query_code"])), "image/png")
            return error_response(404, "not_found", "no such case")
        if parts == ["bookings"] and method == "POST":
            b = st.create_booking(
                form.get("category", "").strip(),
                form.get("slot_start", "").strip(),
                form.get("slot_end", "").strip() or None,
                day=form.get("day", "").strip() or None,
                code=form.get("code", "").strip() or None,
            )
            code = escape(b["code"])
            return _page(
                "预约 booking",
                f"""<p>预约码 booking code <b>{code}</b> — {escape(b["day"])} {escape(b["slot_start"])}-"""
                f"""{escape(b["slot_end"])}, {escape(b["category"])}</p>
                <p><img src="/bench/bookings/{quote(b["code"])}/qr.png" alt="booking QR"></p>
                <p><code>{escape(b["qr_payload"])}</code></p><p><a href="/bench/">back</a></p>""",
            )
        if len(parts) == 3 and parts[0] == "bookings" and parts[2] == "qr.png" and method == "GET":
            from kiosk.central.appointments import CODE_RX, qr_payload

            if not CODE_RX.fullmatch(parts[1]):
                return error_response(404, "not_found", "no such booking")
            return Response(200, qr_png(qr_payload(parts[1])), "image/png")
        if len(parts) == 3 and parts[0] == "windows" and method == "POST":
            action = {
                # The bench's counter works on the newest case of its window, so ratings carry a case.
                "call-next": lambda w: st.call_next(w, auto_case=True),
                "end": st.end_service,
                "pause": st.pause,
                "resume": st.resume,
            }.get(parts[2])
            if action:
                action(parts[1])
                return _redirect()
        if len(parts) == 3 and parts[0] == "tokens" and parts[2] == "revoke" and method == "POST":
            st.revoke_tokens(parts[1])
            return _redirect()
        if parts == ["tokens"] and method == "POST":
            roles = [r for r in ("dispenser", "lookup", "pad") if form.get(f"role_{r}")]
            token = st.issue_token(form.get("device_id", "").strip(), roles, form.get("window", "").strip() or None)
            return _page(
                "Device token",
                f"<p>Token for <b>{escape(form['device_id'])}</b> (shown once; "
                f"put it in the device's token file, mode 0600):</p>"
                f"<pre>{escape(token)}</pre><p><a href='/bench/'>back</a></p>",
            )
    except StoreError as e:
        return error_response(e.status, e.code, e.message)
    except (ValueError, TypeError, KeyError) as e:
        return error_response(400, "invalid", str(e))
    return error_response(404, "not_found", f"no bench page {path}")
