"""Masking personal data for public screens and for logs: the one place for it.

A lobby screen is read over the citizen's shoulder, and a log file travels
to technicians and vendors. Both show only enough for the owner to
recognise their own data: 张*三, ZW20******0101, 110***********1234,
138****5678, ********4321. Every function takes anything (None, numbers,
odd lengths) and always returns a string, because a masking bug must never turn into a crash
that shows a traceback with the unmasked value in it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Iterable

STAR = "*"


def mask_name(name: object) -> str:
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


# ---- other people's names in clerks' free text ------------------------------
#
# "配偶李四的身份证", "王五签字的授权书": a clerk names someone other than the
# applicant. A name cannot be told from other words in general, so two narrow
# patterns that are names in practice: a Han word after a relation or role word
# (配偶, 代理人, 姓名: …), and a word at a phrase start that begins with a common
# surname and is followed by a personal document or a signature. Neither
# touches the words a citizen needs (营业执照, 购房合同, 08 号窗口).
_RELATIONS = (
    "法定代表人|法人代表|申请人|代理人|受托人|委托人|经办人|联系人|产权人|共有人|继承人|监护人|"
    "配偶|丈夫|妻子|父亲|母亲|儿子|女儿|户主|姓名"
)
_NOT_A_NAME_START = set("本需须应提签身户的和及或与均未已在所是为到现原复件材证")
_SURNAMES = set(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
    "姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
_AFTER_RELATION_RX = re.compile(
    rf"(?:{_RELATIONS})[:：]?\s*([\u4e00-\u9fff]{{2,4}}?)(?=的|[，,。；;、和与及\s()（）]|$|身份证|户口|签)"
)
_DOCUMENTS = "(?:身份证|户口本|户口簿|结婚证|离婚证|出生证明|出生医学证明|护照|签名|签字|手印|银行卡|社保卡)"
_BEFORE_DOCUMENT_RX = re.compile(
    r"(?:^|(?<=[，,。；;、\s(（:：和与及]))([\u4e00-\u9fff]{2,3})"
    rf"(?=的?{_DOCUMENTS}|[和与及、][\u4e00-\u9fff]{{2,3}}的?{_DOCUMENTS})"
)


def mask_names_in_text(text: str) -> str:
    """Mask the names of other people that a clerk typed into free text (张*三)."""

    def relation(m: re.Match[str]) -> str:
        name = m.group(1)
        if name[0] in _NOT_A_NAME_START:
            return m.group(0)
        return m.group(0)[: m.start(1) - m.start(0)] + mask_name(name)

    def document(m: re.Match[str]) -> str:
        name = m.group(1)
        return mask_name(name) if name[0] in _SURNAMES else name

    return _BEFORE_DOCUMENT_RX.sub(document, _AFTER_RELATION_RX.sub(relation, text))


def mask_receipt(receipt_no: object) -> str:
    """ZW2026000101 -> ZW20******0101: the ends let the owner compare it with the paper."""
    s = "" if receipt_no is None else str(receipt_no)
    n = len(s)
    if n <= 4:
        return STAR * n
    if n <= 8:
        return STAR * (n - 2) + s[-2:]
    return s[:4] + STAR * (n - 8) + s[-4:]


def mask_id_number(id_no: object) -> str:
    """Resident ID 110101199003071234 -> 110***********1234 (as vendors show it)."""
    s = "" if id_no is None else str(id_no)
    if len(s) <= 7:
        return STAR * len(s)
    return s[:3] + STAR * (len(s) - 7) + s[-4:]


def mask_phone(phone: object) -> str:
    """13812345678 -> 138****5678; a landline (057187654321, 0108765432) keeps its last four digits only.

    Spaces, dashes, brackets and a +86 / 0086 prefix are dropped first, so the
    same number masks the same way however it was written: on the pad's
    keypad, in a stored rating, or inside a log line.
    """
    s = "" if phone is None else re.sub(r"[\s()-]", "", str(phone))
    s = re.sub(r"^(?:\+?86|0086)(?=1[3-9]\d{9}$)", "", s)
    if _MOBILE_FULL.fullmatch(s):
        return s[:3] + STAR * 4 + s[-4:]
    if len(s) <= 4:
        return STAR * len(s)
    return STAR * (len(s) - 4) + s[-4:]


def mask_text(text: object, keep: int = 6) -> str:
    """A prefix and the length, for a technician to tell one scan from another: ZW20******** (12 chars)."""
    text = "" if text is None else str(text)
    return text[:keep] + STAR * min(12, max(0, len(text) - keep)) + f" ({len(text)} chars)"


_MOBILE_FULL = re.compile(r"1[3-9]\d{9}")

# ---- free text: log lines, error texts, dead-letter reasons ------------------

MASK = "***"

# An ID number is 17 digits and a digit or X; 15-digit ones are the old form.
# Any run of 15 or more digits is masked whole: bank cards and IDs alike, and
# no value the device logs on purpose (counters, ports, years) is that long.
_LONG_DIGITS_RX = re.compile(r"(?<![0-9A-Za-z])\d{14,}[\dXx](?![0-9A-Za-z])")
# Mainland mobile numbers, also written with +86 / 86 and spaces or dashes.
_PHONE_RX = re.compile(r"(?<!\d)(?:\+?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")
# Landlines with their area code (0 and a non-zero digit: 010, 0571, ...), as
# the pad accepts them; a dash before it is not allowed so UUID tails survive.
_LANDLINE_RX = re.compile(r"(?<![\w-])0[1-9]\d{1,2}[ -]?\d{3,4}[ -]?\d{4}(?![\w-])")
_LONG_CODE_RX = re.compile(r"(?<![0-9A-Za-z])(?=[A-Za-z0-9-]*\d)[A-Za-z0-9-]{8,40}(?![0-9A-Za-z])")
_QUERY_RX = re.compile(r"\?[^\s]*")


class Personal:
    """Wrap a value to log that it exists, never what it is: renders as ***."""

    __slots__ = ("value",)

    def __init__(self, value: object):
        self.value = value

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__


class _Forgotten:
    """Values to mask wherever they appear; bounded, so it cannot grow forever."""

    def __init__(self, size: int = 512):
        self._values: OrderedDict[str, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, value: object) -> None:
        text = str(value).strip()
        if len(text) < 2:  # masking single characters would shred every line
            return
        with self._lock:
            self._values[text] = None
            self._values.move_to_end(text)
            while len(self._values) > self._size:
                self._values.popitem(last=False)

    def snapshot(self) -> list[str]:
        with self._lock:
            # Longest first, so "张三丰" is masked whole before "张三" could split it.
            return sorted(self._values, key=len, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


_forgotten = _Forgotten()


def forget_in_logs(*values: object) -> None:
    """Mask these values in every later scrubbed text of this process (log lines above all)."""
    for v in values:
        if v is not None:
            _forgotten.add(v)


def scrub(text: object, personal: Iterable[object] = (), *, codes: bool = True) -> str:
    """Mask anything in free text that looks like personal data; safe on any input.

    personal: values known to be personal (masked as *** wherever they occur),
    in addition to those declared with ``forget_in_logs``. Phone numbers are
    masked exactly as ``mask_phone`` masks them, ID numbers and other long
    digit runs as ***.

    codes=True also masks query strings and receipt-like codes (8 to 40
    letters and digits), for texts a technician reads on the service screen.
    Log lines pass codes=False: they must keep event ids, timestamps and the
    JSON punctuation after a "?", and the codes a service handles reach the
    scrubber as declared values instead.
    """
    s = "" if text is None else str(text)
    values = [str(v).strip() for v in personal if v is not None and len(str(v).strip()) >= 2]
    for v in sorted(values, key=len, reverse=True) + _forgotten.snapshot():
        if v in s:
            s = s.replace(v, MASK)
    if codes:
        s = _QUERY_RX.sub("?" + MASK, s)
    s = _LONG_DIGITS_RX.sub(MASK, s)
    s = _PHONE_RX.sub(lambda m: mask_phone(m.group()), s)
    s = _LANDLINE_RX.sub(lambda m: mask_phone(m.group()), s)
    if codes:
        s = _LONG_CODE_RX.sub(lambda m: mask_receipt(m.group()), s)
    return s
