"""Masking personal data for public screens and for logs.

A lobby screen is read over the citizen's shoulder, and a log file travels
to technicians and vendors. Both show only enough for the owner to
recognise their own data: 张*三, ZW20******0101, 110***********1234,
138****5678. Every function takes anything (None, numbers, odd lengths) and
always returns a string, because a masking bug must never turn into a crash
that shows a traceback with the unmasked value in it.
"""
from __future__ import annotations

import re

STAR = "*"


def mask_name(name) -> str:
    """张小三 -> 张*三, 李四 -> 李*, 欧阳娜娜 -> 欧**娜, John Smith -> J*** S****."""
    name = "" if name is None else str(name).strip()
    if not name:
        return ""
    if " " in name:  # names in Latin letters: keep each word's initial
        return " ".join(w[0] + STAR * (len(w) - 1) for w in name.split())
    if len(name) == 1:
        return STAR
    if len(name) == 2:
        return name[0] + STAR
    return name[0] + STAR * (len(name) - 2) + name[-1]


def mask_receipt(receipt_no) -> str:
    """ZW2026000101 -> ZW20******0101: the ends let the owner compare it with the paper."""
    s = "" if receipt_no is None else str(receipt_no)
    n = len(s)
    if n <= 4:
        return STAR * n
    if n <= 8:
        return STAR * (n - 2) + s[-2:]
    return s[:4] + STAR * (n - 8) + s[-4:]


def mask_id_number(id_no) -> str:
    """Resident ID 110101199003071234 -> 110***********1234 (as vendors show it)."""
    s = "" if id_no is None else str(id_no)
    if len(s) <= 7:
        return STAR * len(s)
    return s[:3] + STAR * (len(s) - 7) + s[-4:]


def mask_phone(phone) -> str:
    """13812345678 -> 138****5678; landlines keep the last four digits only."""
    s = "" if phone is None else re.sub(r"[\s-]", "", str(phone))
    if len(s) == 11 and s.isdigit():
        return s[:3] + STAR * 4 + s[-4:]
    if len(s) <= 4:
        return STAR * len(s)
    return STAR * (len(s) - 4) + s[-4:]


# For free text (exception messages, URLs) that might carry personal data on
# its way to a log: ID numbers, mobile numbers, receipt-like codes, query strings.
_ID_RX = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PHONE_RX = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
_LONG_CODE_RX = re.compile(r"(?<![0-9A-Za-z])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{8,40}(?![0-9A-Za-z])")
_QUERY_RX = re.compile(r"\?[^\s]*")


def scrub(text) -> str:
    """Mask anything in free text that looks like personal data; safe on any input."""
    s = "" if text is None else str(text)
    s = _QUERY_RX.sub("?***", s)
    s = _ID_RX.sub(lambda m: mask_id_number(m.group()), s)
    s = _PHONE_RX.sub(lambda m: mask_phone(m.group()), s)
    s = _LONG_CODE_RX.sub(lambda m: mask_receipt(m.group()), s)
    return s
