"""One masking rule per kind of personal data, whichever way it reaches a reader.

A phone number is shown on the pad, put in a technician's error text and
written in a log line; the same number must look the same in all three, so
one table of cases runs through every public path.
"""

import io
import json
import logging
import re
from pathlib import Path

import pytest

from kiosk.core import logs, privacy
from kiosk.core.privacy import mask_phone, scrub

PHONES = [
    # as written                 shown as
    ("13812345678", "138****5678"),
    ("138 1234 5678", "138****5678"),
    ("+86 138-1234-5678", "138****5678"),
    ("057187654321", "********4321"),
    ("0571-87654321", "********4321"),
    ("0108765432", "******5432"),
    ("010-87654321", "*******4321"),
]


@pytest.mark.parametrize("written, shown", PHONES)
def test_mask_phone(written, shown):
    assert mask_phone(written) == shown


@pytest.mark.parametrize("written, shown", PHONES)
def test_free_text_masks_a_phone_as_mask_phone_does(written, shown):
    assert scrub(f"callback {written} failed") == f"callback {shown} failed"
    assert scrub(f"callback {written} failed", codes=False) == f"callback {shown} failed"


@pytest.fixture
def log_lines():
    buf = io.StringIO()
    handler = logs.setup(fmt="json", stream=buf)
    yield lambda: [json.loads(line)["msg"] for line in buf.getvalue().splitlines()]
    logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize("written, shown", PHONES)
def test_a_log_line_masks_a_phone_as_mask_phone_does(log_lines, written, shown):
    logging.getLogger("kiosk.test").warning("callback %s failed", written)
    assert log_lines() == [f"callback {shown} failed"]


def test_the_pad_screen_uses_the_same_mask():
    # The kv file imports its mask by dotted path; it must be this one.
    kv = (Path(__file__).parents[2] / "screens" / "pad.kv").read_text(encoding="utf-8")
    (path,) = re.findall(r"^#:import mask_phone (\S+)$", kv, re.M)
    assert path == "kiosk.core.privacy.mask_phone"
    import screens.pad

    assert screens.pad.mask_phone is privacy.mask_phone


def test_no_other_module_defines_a_mask():
    root = Path(__file__).parents[2]
    defined = [
        str(p.relative_to(root))
        for d in ("kiosk", "screens", "devices")
        for p in (root / d).rglob("*.py")
        if re.search(r"^def (mask_\w+|scrub)\(", p.read_text(encoding="utf-8"), re.M)
    ]
    assert defined == ["kiosk/core/privacy.py"]


def test_declared_and_given_values_are_masked_whole():
    privacy.forget_in_logs("ZW-330100-2025-000777")
    try:
        assert scrub("case ZW-330100-2025-000777 for 张三丰", ["张三丰"], codes=False) == "case *** for ***"
    finally:
        privacy._forgotten.clear()


def test_other_peoples_names_in_free_text_are_masked_and_ordinary_words_kept():
    from kiosk.core.privacy import mask_names_in_text as mask

    assert mask("配偶李四的身份证原件") == "配偶李*的身份证原件"
    assert mask("代理人：赵六，身份证复印件") == "代理人：赵*，身份证复印件"
    assert mask("李明和王芳的结婚证") == "李*和王*的结婚证"
    assert mask("委托人欧阳娜娜签字") == "委托人欧**娜签字"
    for ordinary in (
        "营业执照复印件",
        "申请人本人签字",
        "法定代表人的身份证",
        "夫妻双方的身份证",
        "父母的户口本",
        "购房合同原件",
        "请到 08 号窗口",
        "不动产权证书",
    ):
        assert mask(ordinary) == ordinary
