"""Receipt payload parsing and masking: fuzzed with hypothesis, plus the cases that matter."""

from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.privacy import mask_id_number, mask_name, mask_phone, mask_receipt, scrub
from kiosk.roles.lookup.receipt import (
    CODE_RX,
    MAX_PAYLOAD,
    REASONS,
    RECEIPT_RX,
    ReceiptRef,
    Rejection,
    check_fields,
    parse_payload,
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

receipts = st.from_regex(r"[A-Za-z0-9-]{4,40}", fullmatch=True)
codes = st.from_regex(r"[A-Za-z0-9]{4,12}", fullmatch=True)


def check_outcome(result):
    """The whole contract: a valid reference, or a rejection with a known reason."""
    if isinstance(result, ReceiptRef):
        assert RECEIPT_RX.fullmatch(result.receipt_no)
        assert CODE_RX.fullmatch(result.query_code)
    else:
        assert isinstance(result, Rejection)
        assert result.reason in REASONS
        assert not result


@FUZZ
@given(st.binary(max_size=3000))
def test_any_bytes_give_a_reference_or_a_rejection(data):
    check_outcome(parse_payload(data))


@FUZZ
@given(st.text(max_size=800))
def test_any_text_gives_a_reference_or_a_rejection(text):
    check_outcome(parse_payload(text))


@FUZZ
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60), st.text(max_size=60))
def test_urls_with_any_parameter_values_are_checked(a, b):
    url = f"https://zwfw.example.gov.cn/q?slbh={quote(a)}&cxm={quote(b)}"
    result = parse_payload(url)
    check_outcome(result)
    if isinstance(result, ReceiptRef):
        assert (result.receipt_no, result.query_code) == (a, b)


@FUZZ
@given(receipts, codes, st.sampled_from(["url", "plain", "fullwidth", "crlf", "fragment"]))
def test_every_valid_receipt_round_trips(receipt_no, code, form):
    payload = {
        "url": f"https://zwfw.example.gov.cn/q?x=1&slbh={receipt_no}&cxm={code}",
        "plain": f"{receipt_no}|{code}",
        "fullwidth": f" {receipt_no}｜{code} ",
        "crlf": f"https://a.example/q?cxm={code}&slbh={receipt_no}\r\n",
        "fragment": f"https://a.example/app#/progress?slbh={receipt_no}&cxm={code}",
    }[form]
    assert parse_payload(payload.encode()) == ReceiptRef(receipt_no, code)


def test_parameter_names_come_from_config():
    url = "https://a.example/q?bh=ZW2026000101&mm=482913"
    assert parse_payload(url, "bh", "mm") == ReceiptRef("ZW2026000101", "482913")
    assert parse_payload(url).reason == "missing_field"


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"", "empty"),
        (b"\r\n", "empty"),
        (None, "empty"),
        (b"A" * (MAX_PAYLOAD + 1), "too_long"),
        (b"\xff\xfe\x00\x01", "binary"),
        ("ZW2026000101\x00|482913", "binary"),
        ("ZW2026000101|48\x1b[2J2913", "binary"),
        ("https://a.example/q?slbh=%FF%FE&cxm=482913", "binary"),
        ("6901234567892", "unknown_format"),  # an EAN barcode
        ("WIFI:S:hall;T:WPA;P:secret;;", "unknown_format"),
        ("https://a.example/q?slbh=ZW2026000101", "missing_field"),
        ("https://a.example/q?slbh=ZW1&slbh=ZW2026000101&cxm=482913", "ambiguous"),
        ("ZW2026000101|482913|x", "unknown_format"),
        ("ZW2026000101' OR '1'='1|482913", "bad_receipt_no"),
        ("ZW2026000101|1' OR '1'='1", "bad_query_code"),
        ("https://a.example/q?slbh=ZW2026000101%27%3B%20DROP%20TABLE%20cases%3B--&cxm=482913", "bad_receipt_no"),
        ("[b]ZW2026000101[/b]|482913", "bad_receipt_no"),
        ("<script>alert(1)</script>|482913", "bad_receipt_no"),
        ("ZW2026000101|[color=ff0000]1234[/color]", "bad_query_code"),
        ("https://a.example/q?slbh=ZW2026000101&cxm=%5Bsize%3D99%5D", "bad_query_code"),
        ("ZW1|482913", "bad_receipt_no"),  # too short
        ("ZW2026000101|" + "9" * 13, "bad_query_code"),  # too long
        ("javascript:alert(1)", "unknown_format"),
        ("https://", "unknown_format"),
        ("https://[::1/q?slbh=ZW2026000101&cxm=482913", "unknown_format"),
        ("ｈｔｔｐｓ://a.example/q?slbh=ZW2026000101&cxm=482913", "unknown_format"),
    ],
)
def test_hostile_and_wrong_payloads_are_rejected_with_a_reason(payload, reason):
    result = parse_payload(payload)
    assert isinstance(result, Rejection), result
    assert result.reason == reason
    assert "ZW2026000101" not in result.detail and "482913" not in result.detail


def test_plain_bytes_from_a_scanner_and_a_text_from_the_keypad_agree():
    assert parse_payload(b"ZW2026000101|482913\r") == check_fields("ZW2026000101", "482913")
    assert check_fields("ZW20", "12").reason == "bad_query_code"
    assert check_fields("Z", "123456").reason == "bad_receipt_no"


def test_a_reference_never_prints_itself_whole():
    ref = ReceiptRef("ZW2026000101", "482913")
    assert "ZW2026000101" not in repr(ref) and "482913" not in repr(ref)
    assert "ZW2026000101" not in f"{ref!r}"


# ---- masking -----------------------------------------------------------


def test_masks_look_the_way_citizens_know_them():
    assert mask_name("张小三") == "张*三"
    assert mask_name("李四") == "李*"
    assert mask_name("欧阳娜娜") == "欧**娜"
    assert mask_name("王") == "*"
    assert mask_name("John Smith") == "J*** S****"
    assert mask_name("张*三") == "张*三"  # masking an already masked name changes nothing
    assert mask_receipt("ZW2026000101") == "ZW20****0101"
    assert mask_receipt("AB12345") == "*****45"
    assert mask_id_number("110101199003071234") == "110***********1234"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("0571-8888 1234") == "********1234"


@FUZZ
@given(st.text(max_size=50))
def test_masks_never_crash_and_never_show_a_long_name_whole(s):
    for fn in (mask_name, mask_receipt, mask_id_number, mask_phone, scrub):
        assert isinstance(fn(s), str)
    name = s.strip()
    if name and " " not in name:
        masked = mask_name(s)
        assert len(masked) == len(name)
        assert sum(c != "*" for c in masked) <= min(2, len(name) - 1)  # at most the two ends show
    masked = mask_receipt(s)
    assert len(masked) == len(s)
    if len(s) > 8:
        assert masked[4:-4] == "*" * (len(s) - 8) and masked[:4] + masked[-4:] == s[:4] + s[-4:]
    elif len(s) > 4:
        assert masked[:-2] == "*" * (len(s) - 2)
    else:
        assert masked == "*" * len(s)


def test_scrub_removes_personal_data_from_free_text():
    line = (
        "lookup of ZW2026000101 for 110101199003071234 tel 13812345678 "
        "url https://a.example/q?slbh=ZW2026000101&cxm=482913 failed"
    )
    out = scrub(line)
    for secret in ("ZW2026000101", "110101199003071234", "13812345678", "482913"):
        assert secret not in out
    assert "failed" in out and "ZW20****0101" in out


# ---- the technician's command ---------------------------------------------------


def test_lookup_parse_command_masks_and_explains(capsys):
    from kiosk.cli import main

    assert main(["lookup-parse", "--defaults", "https://a.example/q?slbh=ZW2026000101&cxm=482913"]) == 0
    out = capsys.readouterr().out
    assert "ZW20****0101" in out and "ZW2026000101" not in out and "482913" not in out
    assert main(["lookup-parse", "--defaults", "ZW2026000101|<b>"]) == 1
    assert "bad_query_code" in capsys.readouterr().out


def test_a_utf8_byte_order_mark_in_front_is_not_content():
    from kiosk.roles.lookup.receipt import ReceiptRef, parse_payload

    want = ReceiptRef("ZW2026000101", "482913")
    assert parse_payload(b"\xef\xbb\xbfZW2026000101|482913") == want
    assert parse_payload("\ufeffhttps://zwfw.example.gov.cn/q?slbh=ZW2026000101&cxm=482913\r\n") == want
    assert not parse_payload("ZW2026\ufeff000101|482913")  # inside, it is still refused
