"""What goes on a queue ticket, as a printer document (kiosk/core/ports/document.py).

Chinese first, a short English line where a visitor needs it. Text goes as
GB18030 text and the QR code as the printer's native command, so a normal
ticket stays under 1 KB: about one second on a 9600-baud line, where the
same ticket drawn as an image would take over ten.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from kiosk.core.ports import paper_columns
from kiosk.core.ports.document import Document
from kiosk.core.time import hall_now, in_hall

if TYPE_CHECKING:  # the service imports this module to lay its tickets out
    from kiosk.core.config import Config
    from kiosk.roles.dispenser.service import Ticket

# The number is the one thing a citizen must read from across the hall.
NUMBER_SIZE = 4


def queue_link(template: str, display: str, day: str) -> str:
    """cfg.dispenser.queue_url with {ticket} and {day} filled in (URL-quoted)."""
    if not template:
        return ""
    return template.replace("{ticket}", quote(display, safe="")).replace("{day}", quote(day, safe=""))


def issued_text(issued_at: str) -> str:
    try:
        return in_hall(datetime.fromisoformat(issued_at)).strftime("%Y-%m-%d %H:%M:%S")  # the hall's clock
    except (TypeError, ValueError):
        return str(issued_at)[:19]


def minutes(seconds: int) -> int:
    return max(1, round(seconds / 60))


def cells(text: str) -> int:
    """Printer cells of a line: a Chinese character (or full-width mark) takes two."""
    return sum(1 if ord(ch) < 0x2E80 else 2 for ch in text)


def pair(doc: Document, zh: str, en: str, columns: int) -> None:
    """A Chinese text and its English on one centred line when it fits the paper, else on two:
    on 58 mm paper (32 columns) a joined line would break in the middle of a word."""
    joined = f"{zh}  {en}"
    if cells(joined) <= columns:
        doc.text(joined, align="center")
    else:
        doc.text(zh, align="center")
        doc.text(en, align="center")


def ticket_document(
    ticket: Ticket, hall: str, queue_url: str = "", *, reprint: bool = False, columns: int = 48
) -> Document:
    """The document for one ticket; `columns` = half-width characters per line (paper_columns)."""
    doc = Document()
    if reprint:
        doc.text("** 补打 REPRINT **", align="center", bold=True)
    doc.text(hall, align="center", bold=True)
    doc.text(ticket.service_zh, align="center", bold=True, width=2, height=2)
    if ticket.service_en:
        doc.text(ticket.service_en, align="center")
    if ticket.appointment:
        doc.text("预约签到 Appointment", align="center", bold=True)
    if ticket.priority:
        doc.text("绿色通道 Priority", align="center", bold=True)
    doc.feed(1)
    doc.text(ticket.display, align="center", bold=True, width=NUMBER_SIZE, height=NUMBER_SIZE)
    doc.feed(1)
    if ticket.offline:
        # Offline the device cannot know the hall-wide queue: say so instead of guessing.
        doc.text("离线票 OFFLINE", align="center", bold=True, width=2, height=2)
        doc.text("等候人数请看叫号屏", align="center")
    elif ticket.people_ahead is not None:
        pair(doc, f"前面还有 {ticket.people_ahead} 人等候", f"Ahead: {ticket.people_ahead}", columns)
        if ticket.est_wait_s:
            wait = minutes(ticket.est_wait_s)
            pair(doc, f"预计等候约 {wait} 分钟", f"~{wait} min", columns)
    doc.text(f"取号时间 {issued_text(ticket.issued_at)}", align="center")
    link = queue_link(queue_url, ticket.display, ticket.day)
    if link:
        doc.qr(link, module_size=5, error_level="M")
        pair(doc, "扫码查看排队进度", "Scan for queue", columns)
    doc.text("请留意叫号，过号请重新取号", align="center")
    doc.cut()
    return doc


def ticket_for(ticket: Ticket, cfg: Config, *, reprint: bool = False) -> Document:
    """The document of one ticket for this device's hall and queue link."""
    columns = paper_columns(cfg.printer.paper_width)
    return ticket_document(ticket, cfg.device.hall, cfg.dispenser.queue_url, reprint=reprint, columns=columns)


def test_document(cfg: Config, when: datetime | None = None) -> Document:
    """The `kiosk print-test` slip: every element of a real ticket, clearly a test."""
    when = when or hall_now()
    doc = Document()
    doc.text("打印测试 PRINT TEST", align="center", bold=True, width=2, height=2)
    doc.text(cfg.device.hall, align="center", bold=True)
    doc.text(f"设备 {cfg.device.id}", align="center")
    doc.text("中文字符：社保医保 不动产登记 公积金（全角标点）", align="left")
    doc.text(f"纸宽 {cfg.printer.paper_width} mm / {paper_columns(cfg.printer.paper_width)} columns", align="center")
    doc.text("A001", align="center", bold=True, width=NUMBER_SIZE, height=NUMBER_SIZE)
    link = queue_link(cfg.dispenser.queue_url, "TEST", when.date().isoformat())
    if link:
        doc.qr(link, module_size=5, error_level="M")
    doc.text(when.strftime("%Y-%m-%d %H:%M:%S"), align="center")
    doc.text("此票无效 Not a valid ticket", align="center")
    doc.cut()
    return doc
