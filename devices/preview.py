"""Render an ESC/POS byte stream as a PNG of the paper strip.

This interprets the *bytes* (not the Document) so that `kiosk ticket-preview`
shows exactly what the printer would receive: GB18030 text with its sizes,
bold and alignment; native QR codes redrawn from their stored data; raster
images; feeds; and each cut as a dashed line.  Bytes the interpreter does not
know are never drawn as text: they are listed in `Preview.problems` and
marked in red in the left margin, because a stray escape code printed as
text is one of the commonest ticket faults in the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypedDict

from PIL import Image, ImageDraw, ImageOps

from devices import textraster
from devices.escpos import QR_ERROR_LEVELS, qr_image_from_payload

MARGIN = 24  # grey border around the paper strip, in pixels (1 px = 1 dot)
DEFAULT_LINE_SPACING = 30  # dots; ESC 2 default on most 203 dpi printers
_LEVEL_BY_CODE = {code: level for level, code in QR_ERROR_LEVELS.items()}


class _QRStore(TypedDict):
    """The printer's QR settings and stored symbol data (GS ( k functions 67, 69, 80)."""

    size: int
    level: str
    data: bytes | None


@dataclass
class Preview:
    """What the printer would print, and what looked wrong in the stream."""

    image: Image.Image
    lines: list[str] = field(default_factory=list)  # printed text rows, decoded
    qr_payloads: list[bytes] = field(default_factory=list)
    rasters: int = 0
    cuts: int = 0
    problems: list[str] = field(default_factory=list)


@dataclass
class _Style:
    align: str = "left"
    bold: bool = False
    width: int = 1
    height: int = 1
    line_spacing: int = DEFAULT_LINE_SPACING
    chinese_mode: bool = False


class _Interpreter:
    def __init__(self, data: bytes, dots: int, font_path: str):
        self.data = data
        self.dots = dots
        self.font_path = font_path
        self.style = _Style()
        self.chinese_mode_used = False
        self.y = 0
        self.placed: list[tuple[int, int, Image.Image]] = []
        self.cut_ys: list[int] = []
        self.problem_ys: list[int] = []
        self.line: list[tuple[bytes, int, int, bool]] = []  # (char bytes, w, h, bold)
        self.qr: _QRStore = {"size": 3, "level": "L", "data": None}
        self.result = Preview(image=Image.new("L", (1, 1)))

    # -- helpers --------------------------------------------------------------

    def problem(self, offset: int | None, text: str) -> None:
        self.result.problems.append(text if offset is None else f"byte {offset}: {text}")
        self.problem_ys.append(self.y)

    def x_for(self, width: int) -> int:
        free = max(0, self.dots - width)
        return {"left": 0, "center": free // 2, "right": free}[self.style.align]

    def place(self, image: Image.Image, advance: int | None = None) -> None:
        self.placed.append((self.x_for(image.width), self.y, image))
        self.y += image.height if advance is None else advance

    def feed(self, lines: int) -> None:
        self.y += lines * self.style.line_spacing

    # -- text -------------------------------------------------------------------

    def flush_line(self, empty_feeds: bool) -> None:
        """Print the line buffer like LF does; wrap if wider than the paper."""
        if not self.line:
            if empty_feeds:
                self.feed(1)
            return
        rows: list[list[tuple[str, int, int, bool]]] = [[]]
        used = 0
        for raw, w, h, bold in self.line:
            ch = raw.decode("gb18030", errors="replace")
            if "\ufffd" in ch:
                self.problem(None, f"bytes {raw.hex(' ')} are not valid GB18030 text")
            dots = textraster.text_cells(ch) * textraster.HALF_CELL * w
            if used + dots > self.dots and rows[-1]:
                rows.append([])
                used = 0
            rows[-1].append((ch, w, h, bold))
            used += dots
        self.line = []
        for row in rows:
            self.draw_row(row)

    def draw_row(self, row: list[tuple[str, int, int, bool]]) -> None:
        # group runs of the same style, render each, bottom-align them
        runs: list[tuple[str, int, int, bool]] = []
        for ch, w, h, bold in row:
            if runs and runs[-1][1:] == (w, h, bold):
                runs[-1] = (runs[-1][0] + ch, w, h, bold)
            else:
                runs.append((ch, w, h, bold))
        images = [textraster.render_line(t, w, h, b, self.font_path) for t, w, h, b in runs]
        height = max(img.height for img in images)
        line_img = Image.new("L", (sum(img.width for img in images), height), 255)
        x = 0
        for img in images:
            line_img.paste(img, (x, height - img.height))
            x += img.width
        self.result.lines.append("".join(r[0] for r in runs))
        line_img = line_img.point(lambda v: 0 if v < 128 else 255)  # dots are on or off
        self.place(line_img, advance=max(self.style.line_spacing, height))

    def text_byte(self, i: int) -> int:
        """Consume one character (1, 2 or 4 GB18030 bytes); return its length."""
        b = self.data[i]
        if b < 0x80:
            n = 1
        elif i + 1 < len(self.data) and 0x30 <= self.data[i + 1] <= 0x39:
            n = 4
        else:
            n = 2
        raw = self.data[i : i + n]
        if len(raw) < n:
            self.problem(i, f"stream ends inside a multi-byte character {raw.hex(' ')}")
            return len(raw)
        if n > 1 and self.chinese_mode_used and not self.style.chinese_mode:
            self.problem(i, "Chinese bytes outside FS & Chinese mode would print as garbage")
        s = self.style
        self.line.append((raw, s.width, s.height, s.bold))
        return n

    # -- commands -------------------------------------------------------------

    def need(self, i: int, n: int, what: str) -> bool:
        if i + n > len(self.data):
            self.problem(i, f"stream ends inside {what}")
            return False
        return True

    def esc(self, i: int) -> int:
        if not self.need(i, 2, "an ESC command"):
            return len(self.data)
        c = self.data[i + 1]
        if c == 0x40:  # ESC @
            self.flush_line(empty_feeds=False)
            self.style = _Style()
            return i + 2
        if c == 0x32:  # ESC 2
            self.style.line_spacing = DEFAULT_LINE_SPACING
            return i + 2
        if c in (0x61, 0x45, 0x64, 0x33):
            if not self.need(i, 3, f"ESC {chr(c)}"):
                return len(self.data)
            n = self.data[i + 2]
            if c == 0x61:
                self.style.align = {0: "left", 1: "center", 2: "right", 48: "left", 49: "center", 50: "right"}.get(
                    n, "left"
                )
            elif c == 0x45:
                self.style.bold = bool(n & 1)
            elif c == 0x64:
                self.flush_line(empty_feeds=False)
                self.feed(n)
            else:
                self.style.line_spacing = n
            return i + 3
        self.problem(i, f"unknown command ESC 0x{c:02x}")
        return i + 2

    def gs(self, i: int) -> int:
        if not self.need(i, 2, "a GS command"):
            return len(self.data)
        c = self.data[i + 1]
        if c == 0x21:  # GS ! n
            if not self.need(i, 3, "GS !"):
                return len(self.data)
            n = self.data[i + 2]
            self.style.width, self.style.height = (n >> 4 & 7) + 1, (n & 7) + 1
            return i + 3
        if c == 0x28:  # GS ( k
            return self.qr_function(i)
        if c == 0x76:  # GS v 0
            return self.raster(i)
        if c == 0x56:  # GS V
            if not self.need(i, 3, "GS V"):
                return len(self.data)
            m = self.data[i + 2]
            end = i + 3
            self.flush_line(empty_feeds=False)
            if m in (65, 66):  # feed n then cut
                if not self.need(i, 4, "GS V m n"):
                    return len(self.data)
                self.y += self.data[i + 3]  # n is in motion units (dots here)
                end = i + 4
            elif m not in (0, 1, 48, 49):
                self.problem(i, f"unknown cut mode {m}")
                return end
            self.cut_ys.append(self.y + 4)
            self.y += 12
            self.result.cuts += 1
            return end
        self.problem(i, f"unknown command GS 0x{c:02x}")
        return i + 2

    def qr_function(self, i: int) -> int:
        if not self.need(i, 5, "GS ( k"):
            return len(self.data)
        if self.data[i + 2] != 0x6B:
            self.problem(i, f"unknown command GS ( 0x{self.data[i + 2]:02x}")
            return i + 3
        length = self.data[i + 3] | self.data[i + 4] << 8
        if not self.need(i + 5, length, "GS ( k data"):
            return len(self.data)
        body = self.data[i + 5 : i + 5 + length]
        end = i + 5 + length
        if length < 2 or body[0] != 49:
            self.problem(i, "2D code other than QR (GS ( k cn != 49)")
            return end
        fn, params = body[1], body[2:]
        if fn == 65:
            pass  # model: only model 2 is emitted; the redraw uses it anyway
        elif fn == 67 and params:
            self.qr["size"] = params[0]
        elif fn == 69 and params:
            self.qr["level"] = _LEVEL_BY_CODE.get(params[0], "L")
        elif fn == 80:
            self.qr["data"] = bytes(params[1:])
        elif fn == 81:
            self.flush_line(empty_feeds=False)
            data = self.qr["data"]
            if not data:
                self.problem(i, "QR print without stored data")
            else:
                self.result.qr_payloads.append(data)
                self.place(qr_image_from_payload(data, self.qr["size"], self.qr["level"]))
        else:
            self.problem(i, f"unknown QR function {fn}")
        return end

    def raster(self, i: int) -> int:
        if not self.need(i, 8, "GS v 0 header") or self.data[i + 2] != 0x30:
            self.problem(i, "malformed GS v command")
            return i + 2
        xb = self.data[i + 4] | self.data[i + 5] << 8
        rows = self.data[i + 6] | self.data[i + 7] << 8
        size = xb * rows
        if not self.need(i + 8, size, "raster image data"):
            return len(self.data)
        self.flush_line(empty_feeds=False)
        bits = Image.frombytes("1", (xb * 8, rows), bytes(self.data[i + 8 : i + 8 + size]))
        self.place(ImageOps.invert(bits.convert("L")))  # set bit = dot = black
        self.result.rasters += 1
        return i + 8 + size

    def run(self) -> Preview:
        i = 0
        data = self.data
        while i < len(data):
            b = data[i]
            if b == 0x1B:
                i = self.esc(i)
            elif b == 0x1D:
                i = self.gs(i)
            elif b == 0x1C:
                c = data[i + 1] if i + 1 < len(data) else None
                if c in (0x26, 0x2E):
                    self.style.chinese_mode = c == 0x26
                    self.chinese_mode_used = True
                else:
                    self.problem(i, "unknown command FS" + (f" 0x{c:02x}" if c is not None else ""))
                i += 2
            elif b == 0x10 and data[i + 1 : i + 2] == b"\x04":  # DLE EOT n: status query
                i += 3
            elif b == 0x0A:
                self.flush_line(empty_feeds=True)
                i += 1
            elif b == 0x0D:  # CR is ignored by printers with auto line feed off
                i += 1
            elif b < 0x20 or b == 0x7F:
                self.problem(i, f"unknown control byte 0x{b:02x}")
                i += 1
            else:
                i += self.text_byte(i)
        if self.line:
            self.problem(len(data), "text at the end without LF stays in the printer's buffer")
            self.flush_line(empty_feeds=False)
        return self.compose()

    def compose(self) -> Preview:
        top = MARGIN
        height = top + max(self.y, 1) + MARGIN
        page = Image.new("RGB", (self.dots + 2 * MARGIN, height), (200, 200, 200))
        draw = ImageDraw.Draw(page)
        draw.rectangle((MARGIN, 0, MARGIN + self.dots - 1, height - 1), fill="white")
        for x, y, img in self.placed:
            page.paste(img.convert("RGB"), (MARGIN + x, top + y))
        for y in self.cut_ys:
            for x in range(0, self.dots + 2 * MARGIN, 16):
                draw.line((x, top + y, x + 8, top + y), fill=(0, 0, 0), width=2)
        for y in self.problem_ys:
            draw.rectangle((2, top + y, MARGIN - 4, top + y + 20), fill=(220, 0, 0))
        self.result.image = page
        return self.result


def interpret(data: bytes, dots: int = 576, *, font_path: str) -> Preview:
    """Interpret the stream into a `Preview` (image in memory, texts, problems).

    ``font_path`` is the CJK font to draw text with ("file.ttc#2" for a face):
    the caller finds it (kiosk/core/fonts.py), so that the preview draws with
    the same font the screens use."""
    return _Interpreter(bytes(data), dots, font_path).run()


def render_png(data: bytes, out_path, dots: int = 576, *, font_path: str) -> Preview:
    """Write the preview PNG of what the printer would print; return the details."""
    preview = interpret(data, dots, font_path=font_path)
    preview.image.save(out_path, format="PNG")
    return preview
