"""What a scanned or typed receipt payload means: a case reference, or a reason why not.

The QR code on a 受理通知书 holds either a URL whose query string carries the
受理编号 and the 查询码 (parameter names from [lookup] receipt_param and
code_param), or the plain text ``受理编号|查询码``. Anything can reach the
scanner, though: another QR code, a barcode, a phone screen, a crafted code
with SQL or markup in it, random bytes. ``parse_payload`` never raises: it
returns a ``ReceiptRef`` whose fields match strict patterns, or a
``Rejection`` with a reason code the screen turns into a friendly message.

Only letters, digits and '-' get through, so nothing that leaves here can
carry markup, quotes or control characters into a label, a log or a query.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus, urlsplit

# A receipt QR is a short URL; anything much longer is not one of ours, and a
# bound keeps a hostile payload from costing time anywhere downstream.
MAX_PAYLOAD = 512
RECEIPT_RX = re.compile(r"[A-Za-z0-9-]{4,40}")  # as the central contract: 4..40 letters, digits, '-'
CODE_RX = re.compile(r"[A-Za-z0-9]{4,12}")  # 查询码: 4..12 letters or digits
# Control characters other than the line ends a scanner appends mean binary data.
_CONTROL_RX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SEPARATORS = ("|", "｜")  # the full-width bar, as a Chinese IME would type it

# Reason codes; the screen has a message for each (lookup.reject.<code>).
REASONS = (
    "empty",
    "too_long",
    "binary",
    "unknown_format",
    "missing_field",
    "ambiguous",
    "bad_receipt_no",
    "bad_query_code",
)


@dataclass(frozen=True)
class ReceiptRef:
    receipt_no: str
    query_code: str

    def __repr__(self) -> str:  # a case reference must not end up whole in a log line
        from kiosk.core.privacy import mask_receipt

        return f"ReceiptRef({mask_receipt(self.receipt_no)}, query_code=***)"


@dataclass(frozen=True)
class Rejection:
    reason: str  # one of REASONS
    detail: str = ""  # for technicians; never contains the payload itself

    def __bool__(self) -> bool:  # `if parse_payload(...)` reads as "if it is a receipt"
        return False


def parse_payload(
    data: bytes | str | None, receipt_param: str = "slbh", code_param: str = "cxm"
) -> ReceiptRef | Rejection:
    try:
        return _parse(data, receipt_param, code_param)
    except Exception as e:  # a parser bug must not reach the citizen as a crash
        return Rejection("unknown_format", f"parser error {type(e).__name__}")


def check_fields(receipt_no: str, query_code: str) -> ReceiptRef | Rejection:
    """Validate a typed-in pair (the on-screen keypad) the same way as a scanned one."""
    receipt_no, query_code = receipt_no.strip(), query_code.strip()
    if not RECEIPT_RX.fullmatch(receipt_no):
        return Rejection("bad_receipt_no", f"{len(receipt_no)} characters")
    if not CODE_RX.fullmatch(query_code):
        return Rejection("bad_query_code", f"{len(query_code)} characters")
    return ReceiptRef(receipt_no, query_code)


def _parse(data: object, receipt_param: str, code_param: str) -> ReceiptRef | Rejection:
    if data is None:
        return Rejection("empty")
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > MAX_PAYLOAD * 4:
            return Rejection("too_long", f"{len(raw)} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return Rejection("binary", "not UTF-8 text")
    elif isinstance(data, str):
        text = data
    else:
        return Rejection("binary", f"unexpected type {type(data).__name__}")

    # Scanners end a code with CR, LF or both; people add spaces.
    text = text.strip(" \t\r\n\u3000")
    if not text:
        return Rejection("empty")
    if len(text) > MAX_PAYLOAD:
        return Rejection("too_long", f"{len(text)} characters")
    if _CONTROL_RX.search(text) or "\r" in text or "\n" in text or "\t" in text:
        return Rejection("binary", "control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return Rejection("binary", "lone surrogates")

    lowered = text[:8].lower()
    if lowered.startswith(("http://", "https://")):
        return _parse_url(text, receipt_param, code_param)
    for sep in _SEPARATORS:
        if sep in text:
            parts = re.split("[|｜]", text)
            if len(parts) != 2:
                return Rejection("unknown_format", f"{len(parts)} fields")
            return _fields(parts[0].strip(), parts[1].strip())
    return Rejection("unknown_format", "neither a receipt URL nor receipt|code")


def _parse_url(text: str, receipt_param: str, code_param: str) -> ReceiptRef | Rejection:
    if any(c.isspace() for c in text):
        return Rejection("unknown_format", "space inside a URL")
    try:
        parts = urlsplit(text)
    except ValueError:
        return Rejection("unknown_format", "malformed URL")
    if not parts.netloc:
        return Rejection("unknown_format", "URL without a host")
    # The query string, and a fragment too: some platforms put the parameters
    # after '#' for their single-page apps.
    found: dict[str, list[str]] = {}
    for chunk in (parts.query, parts.fragment.split("?", 1)[-1] if parts.fragment else ""):
        for pair in chunk.split("&"):
            if not pair:
                continue
            key, _, value = pair.partition("=")
            try:
                key, value = unquote_plus(key, errors="strict"), unquote_plus(value, errors="strict")
            except UnicodeDecodeError:
                return Rejection("binary", "percent-escapes that are not UTF-8")
            found.setdefault(key, []).append(value)
    receipts, codes = found.get(receipt_param, []), found.get(code_param, [])
    if not receipts or not codes:
        return Rejection("missing_field", "receipt or code parameter missing")
    if len(receipts) > 1 or len(codes) > 1:
        # Two different values would be a forged code trying to confuse us; even
        # two equal ones are not something a real receipt does.
        return Rejection("ambiguous", "parameter given twice")
    return _fields(receipts[0], codes[0])


def _fields(receipt_no: str, query_code: str) -> ReceiptRef | Rejection:
    if not RECEIPT_RX.fullmatch(receipt_no):
        return Rejection("bad_receipt_no", f"{len(receipt_no)} characters")
    if not CODE_RX.fullmatch(query_code):
        return Rejection("bad_query_code", f"{len(query_code)} characters")
    return ReceiptRef(receipt_no, query_code)
