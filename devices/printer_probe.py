"""`kiosk printer-probe`: find out what the connected printer does.

Two sources, because a printer says little about itself:

1. what it answers: DLE EOT 1-4 (printer, offline cause, error and paper
   sensor status), each answer byte checked against the fixed bits, and on a
   serial port whether the printer drives CTS (RTS/CTS wired);
2. what it prints: a short numbered slip — Chinese as plain GB18030, the same
   line inside FS & … FS ., a native QR, a 48-column ruler — and the
   technician says which lines came out right.

From both, `recommend` chooses the printer profile, the paper width and the
flow control to write into the device's config. Nothing here guesses a
model name: two printers of one brand can differ in every one of these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from devices.escpos import CHINESE_OFF, CHINESE_ON, INIT, LF, cut_cmd, feed_cmd, gb18030, qr_cmds
from devices.printer_status import status_byte_valid

SAMPLE_ZH = "政务服务中心 取号测试"
QR_TEXT = b"PRINTER-PROBE-3"
RULER = "".join(str(i % 10) for i in range(1, 49))  # 48 columns: one line on 80 mm, wraps on 58 mm

# DLE EOT n: what each set bit means (Epson ESC/POS; the common Chinese printers follow it).
STATUS_BITS = {
    1: {3: "offline"},
    2: {2: "cover open", 3: "feed button pressed", 5: "stopped by paper end", 6: "error"},
    3: {2: "cutter error", 3: "unrecoverable error", 5: "auto-recoverable error"},
    4: {2: "paper near end", 3: "paper near end", 5: "paper out", 6: "paper out"},
}

QUESTIONS = (
    ("plain", "Line 1: is the Chinese (政务服务中心 取号测试) printed correctly, not as odd symbols?"),
    ("fs", "Line 2: is the same Chinese printed correctly there?"),
    ("qr", "Line 3: is there a square QR code (a phone camera reads PRINTER-PROBE-3)?"),
    ("fits", "Line 4: does the ruler 1234567890… fit on ONE line (ending in …345678)?"),
)


def probe_slip() -> bytes:
    """The numbered slip the technician judges; raw commands, so each line tests one thing alone."""
    out = bytearray(INIT)
    out += b"kiosk printer-probe" + LF
    out += b"1 " + gb18030(SAMPLE_ZH) + LF
    out += b"2 " + CHINESE_ON + gb18030(SAMPLE_ZH) + CHINESE_OFF + LF
    out += b"3" + LF + qr_cmds(QR_TEXT, 4, "M") + LF
    out += b"4" + LF + RULER.encode() + LF
    out += feed_cmd(3) + cut_cmd(partial=True)
    return bytes(out)


def describe(n: int, byte: int | None) -> str:
    if byte is None:
        return f"DLE EOT {n}: no answer"
    if not status_byte_valid(byte):
        return f"DLE EOT {n}: 0x{byte:02X} (not a status answer: fixed bits wrong)"
    flags = sorted({what for bit, what in STATUS_BITS[n].items() if byte & (1 << bit)})
    return f"DLE EOT {n}: 0x{byte:02X} ({', '.join(flags) if flags else 'nothing to report'})"


@dataclass
class Recommendation:
    profile: str
    paper_width: int
    flow_control: str | None  # None: not a serial printer, the key does not apply
    answers_status: bool
    notes: list[str] = field(default_factory=list)

    def keys(self) -> dict[str, object]:
        """The [printer] keys to write."""
        out: dict[str, object] = {"profile": self.profile, "paper_width": self.paper_width}
        if self.flow_control is not None:
            out["flow_control"] = self.flow_control
        return out


def recommend(
    answers: dict[str, bool], status: dict[int, int | None], backend: str, cts: bool | None
) -> Recommendation:
    """The profile, width and flow control for what the printer printed (`answers`) and answered (`status`)."""
    notes = []
    qr = answers["qr"]
    if answers["plain"]:
        profile = "default" if qr else "no-qr"
    elif answers["fs"]:
        profile = "chinese-mode" if qr else "chinese-mode-no-qr"
        notes.append("Chinese needs FS & (Chinese mode): profile chinese-mode sends it around every Chinese line")
    else:
        profile = "no-chinese" if qr else "no-chinese-no-qr"
        notes.append(
            "no GB18030 font answered: Chinese is sent as images (several KB a ticket: about 10 s at 9600 baud); "
            "check the printer's code page / font settings first (its self-test slip lists them)"
        )
    if not qr:
        notes.append("no native QR (GS ( k): the QR is sent as an image")
    width = 80 if answers["fits"] else 58
    valid = {n: b for n, b in status.items() if b is not None and status_byte_valid(b)}
    answers_status = 1 in valid
    if not answers_status:
        notes.append(
            "the printer does not answer DLE EOT: the paper check is not available; printer.on_unknown_status "
            'decides ("issue" keeps issuing, "refuse" sends citizens to the counter) — check the paper by eye'
        )
    elif 4 not in valid:
        notes.append("it answers DLE EOT 1 but not 4: online is known, the paper sensor is not")
    flow: str | None = None
    if backend == "serial":
        if cts:
            flow = "rtscts"
            notes.append("the printer holds CTS up: RTS/CTS is wired, so hardware flow control is used")
        else:
            flow = "xonxoff"
            why = "no modem lines on this port" if cts is None else "CTS is low (not wired)"
            notes.append(f"{why}: XON/XOFF flow control (set the printer to XON/XOFF if its self-test says DTR/DSR)")
    return Recommendation(profile, width, flow, answers_status, notes)
