"""Shared fixtures for the device adapter tests."""

import pytest

from devices.escpos import Document

TICKET_URL = "https://hall.example.gov.cn/q/status?t=A023&d=20240501&h=110105"  # 64 chars


def make_ticket(url: str = TICKET_URL) -> Document:
    """A normal queue ticket, as the dispenser prints it."""
    return (
        Document()
        .text("北京市朝阳区政务服务中心", align="center", bold=True)
        .text("社保医保综合窗口", align="center", width=2, height=2)
        .feed(1)
        .text("A023", align="center", width=4, height=4)
        .feed(1)
        .text("前面还有 5 人等候，请留意叫号。")
        .text("取号时间：2024-05-01 09:31:07")
        .qr(url, module_size=5, error_level="M")
        .text("扫码查看排队进度", align="center")
        .cut()
    )


@pytest.fixture
def ticket_url() -> str:
    return TICKET_URL


@pytest.fixture
def ticket() -> Document:
    return make_ticket()
