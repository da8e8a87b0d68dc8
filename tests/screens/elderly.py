"""The 适老化 numbers (DOMAIN.md), measured on the widgets the real app drew.

Sizes are converted to dp at the configured panel's dpi (display.dpi), so the
figures hold at the panel size and density the device is configured for. Colours are read
from what the widgets draw: a label's text colour, and for its ground the
nearest drawn fill behind it (a Color followed by a rectangle covering the
widget, in the label's own canvas or an ancestor's), as on the screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from kivy.graphics import BorderImage, Color, Rectangle, RoundedRectangle
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen
from kivy.uix.scrollview import ScrollView

# 工信部《移动互联网应用(APP)适老化通用设计规范》(2021), see DOMAIN.md
MAIN_TEXT_DP = 18  # every text in large-text mode
HEADING_DP = 30  # the largest text of a screen in large-text mode
CONTRAST = 4.5
CONTRAST_LARGE = 3.0  # for text over 18 dp
LARGE_TEXT_OVER_DP = 18
TARGET_LARGE_DP = 60
TARGET_DP = 44
LINE_SPACING = 1.3


@dataclass
class Where:
    screen: str
    state: str
    lang: str
    mode: str  # "normal" | "large"

    def __str__(self) -> str:
        return f"{self.screen}/{self.state} [{self.lang}, {self.mode}]"


# The configured panel's density (display.dpi), set by the walk for each device. A dp
# is 1/160 in on the panel itself: measured from the config, not from what Kivy
# was told, so an app that ignored display.dpi would be caught on a dense panel.
panel = {"dpi": 160}


def at_panel_dpi(dpi: int) -> None:
    panel["dpi"] = dpi


def to_dp(px: float) -> float:
    return px * 160 / panel["dpi"]


def luminance(rgb) -> float:
    def lin(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (lin(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg, bg) -> float:
    a, b = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def over(fg, bg):
    """fg with its alpha, composited over an opaque bg."""
    a = fg[3] if len(fg) > 3 else 1.0
    return tuple(fg[i] * a + bg[i] * (1 - a) for i in range(3))


def ancestors(w):
    while w is not None:
        yield w
        if w.parent is w:
            break
        w = w.parent


def shown(w) -> bool:
    """Drawn and visible to a citizen: every ancestor opaque, a real size, not disabled-and-hidden."""
    if w.width < 1 or w.height < 1:
        return False
    return all(getattr(a, "opacity", 1) > 0.01 for a in ancestors(w))


def _fills(w):
    """The fills a widget draws under its children, last (topmost) first: (rgba, instruction)."""
    out = []
    for canvas in (w.canvas.before, w.canvas):
        if canvas is None:
            continue
        colour = None
        for ins in canvas.children:
            if isinstance(ins, Color):
                colour = tuple(ins.rgba)
            elif isinstance(ins, (Rectangle, RoundedRectangle, BorderImage)) and colour is not None:
                out.append((colour, ins))
    return list(reversed(out))


def _is_background(ins, owner) -> bool:
    """A fill the size of its widget is that widget's ground (Card, button, screen,
    header); smaller shapes (a step's dot, an icon ring) are drawn beside text, not under it."""
    iw, ih = ins.size
    return abs(iw - owner.width) <= 1 and abs(ih - owner.height) <= 1


def ground(w, window_bg=(0, 0, 0, 1)):
    """The colour behind widget w's text, composited from the fills under it."""
    layers = []
    for a in ancestors(w):
        for rgba, ins in _fills(a):
            if not _is_background(ins, a):
                continue
            if isinstance(a, Label) and isinstance(ins, Rectangle) and ins.texture is a.texture:
                continue  # the label's own text, not its ground
            if isinstance(ins, BorderImage) and not isinstance(a, ButtonBehavior):
                continue  # only a Kivy Button's BorderImage is a (tinted, white) fill
            layers.append(rgba)
            if rgba[3] >= 0.99:
                break
        if layers and layers[-1][3] >= 0.99:
            break
    colour = tuple(window_bg[:3])
    for rgba in reversed(layers):
        colour = over(rgba, colour)
    return colour


def in_scroll(w) -> bool:
    return any(isinstance(a, ScrollView) for a in list(ancestors(w))[1:])


def _plain(text: str, markup: bool) -> str:
    if markup:
        text = re.sub(r"\[/?[a-z_]+(=[^\]]*)?\]", "", text)
        text = text.replace("&bl;", "[").replace("&br;", "]").replace("&amp;", "&")
    return text


def rendered_text(label) -> str:
    """The text Kivy actually laid out in the label's texture, line by line."""
    core = label._label
    lines = getattr(core, "_cached_lines", None) or []
    out = []
    for line in lines:
        out.append("".join(getattr(word, "text", "") for word in line.words))
    return "\n".join(out)


def _rgb(c) -> tuple:
    return tuple(round(v, 3) for v in c[:3])


def _dp2(w: float, h: float) -> str:
    return f"{to_dp(w):.0f}x{to_dp(h):.0f}"


def _latin(ch: str) -> bool:
    return ch.isascii() and ch.isalpha()


_HAN = re.compile(r"^[\u3400-\u9fff\uf900-\ufaff][，。、；：！？）”’,.;:!?)…]*$")


def lone_last_line(got: str) -> bool:
    """The last of several lines is one Chinese character (maybe with its punctuation): "…中" / "心"."""
    lines = [ln.strip() for ln in got.split("\n")]
    return len(lines) > 1 and bool(lines[-2]) and bool(_HAN.match(lines[-1]))


def label_problems(label, where: Where, large: bool) -> list[str]:
    """Every 适老化 rule one label breaks, each naming the place and the widget."""
    out = []
    name = f"{where}: {type(label).__name__} {label.text[:40]!r}"
    size_dp = to_dp(label.font_size)
    if large and size_dp < MAIN_TEXT_DP - 0.01:
        out.append(f"{name}: text {size_dp:.1f} dp < {MAIN_TEXT_DP} dp in large-text mode")
    fg = label.color
    bg = ground(label)
    need = CONTRAST_LARGE if size_dp > LARGE_TEXT_OVER_DP else CONTRAST
    c = contrast(over(fg, bg), bg)
    if c < need:
        out.append(f"{name}: contrast {c:.2f}:1 < {need}:1 (text {_rgb(fg)} on {_rgb(bg)})")
    # Line spacing: the pitch Kivy lays lines at, against the font size.
    lines = getattr(label._label, "_cached_lines", None) or []
    if lines:
        pitch = max(line.h for line in lines)
        if pitch / label.font_size < LINE_SPACING - 0.01:
            out.append(f"{name}: line spacing {pitch / label.font_size:.2f}x < {LINE_SPACING}x")
    # Clipping: the texture must fit the widget, and every character of the text
    # must be in it (Kivy silently drops lines that do not fit a fixed text_size).
    tw, th = label.texture_size
    if tw > label.width + 1 or th > label.height + 1:
        out.append(f"{name}: text {_dp2(tw, th)} dp overflows its {_dp2(label.width, label.height)} dp box")
    want = re.sub(r"\s+", "", _plain(label.text, label.markup))
    got = rendered_text(label)
    if want and re.sub(r"\s+", "", got) != want:
        out.append(f"{name}: clipped, the screen shows only {got!r}")
    elif lone_last_line(got):
        out.append(f"{name}: one character alone on the last line: {got!r}")
    else:
        # A Latin word split over two lines ("Dissatisf" / "ied") reads as two words.
        flat = _plain(label.text, label.markup)
        pos = 0
        for line in got.split("\n")[:-1]:
            pos = flat.find(line.strip(), pos) + len(line.strip()) if line.strip() else pos
            if (
                0 < pos < len(flat)
                and flat[pos - 1].isascii()
                and flat[pos - 1].isalpha()
                and flat[pos].isalpha()
                and flat[pos].isascii()
            ):
                out.append(f"{name}: the word at {flat[max(0, pos - 8) : pos + 8]!r} is broken across lines")
                break
    return out


# A button's words fitted below this share of their asked size, and to less than
# SMALL_DP, are too small for their key (a long word on a big key may shrink further).
SHRUNK = 2 / 3
SMALL_DP = 24


def target_problems(w, where: Where, large: bool) -> list[str]:
    need = TARGET_LARGE_DP if large else TARGET_DP
    wdp, hdp = to_dp(w.width), to_dp(w.height)
    out = []
    if wdp < need - 0.5 or hdp < need - 0.5:
        out.append(f"{where}: button {w.text[:40]!r}: touch target {wdp:.0f}x{hdp:.0f} dp < {need}x{need} dp")
    # A key whose word had to shrink far below its neighbours' ("Delete" on the
    # 7" pad in English) is a key too small for its word, whatever its box.
    want = getattr(w, "want_size", 0)
    if want and w.text.strip() and w.font_size < want * SHRUNK - 0.5 and to_dp(w.font_size) < SMALL_DP:
        out.append(
            f"{where}: button {w.text[:40]!r}: its words shrunk to {to_dp(w.font_size):.0f} dp "
            f"of the {to_dp(want):.0f} dp asked (< {SHRUNK:.0%}): the key is too small for them"
        )
    return out


def fold_problems(w, where: Where, window_size) -> list[str]:
    """Outside a scroll view, nothing may be drawn beyond the window, nor, on a
    screen, beyond the screen's own area (it would be under the header)."""
    if in_scroll(w):
        return []
    W, H = window_size
    x0, y0 = w.to_window(w.x, w.y)
    x1, y1 = w.to_window(w.right, w.top)
    if x0 < -1 or y0 < -1 or x1 > W + 1 or y1 > H + 1:
        return [f"{where}: {w.text[:40]!r} drawn outside the window at {tuple(round(v) for v in (x0, y0, x1, y1))}"]
    screen = next((a for a in ancestors(w) if isinstance(a, Screen)), None)
    if screen is not None:
        _, sy0 = screen.to_window(screen.x, screen.y)
        _, sy1 = screen.to_window(screen.right, screen.top)
        # Text, not its box: a label's box may be taller than the lines it draws.
        th = min(w.height, w.texture_size[1]) if w.texture_size[1] else w.height
        cy = (y0 + y1) / 2
        if cy + th / 2 > sy1 + 1 or cy - th / 2 < sy0 - 1:
            return [f"{where}: {w.text[:40]!r} drawn beyond its screen (under the header or off its foot)"]
    return []


def screen_problems(root, where: Where, large: bool, window_size) -> tuple[list[str], int]:
    """All problems of the visible tree under root, and how many widgets were checked."""
    out, checked, largest = [], 0, 0.0
    stack = [root]
    while stack:
        w = stack.pop()
        stack.extend(w.children)
        if not shown(w):
            continue
        if isinstance(w, ButtonBehavior) and not w.disabled:
            checked += 1
            out += target_problems(w, where, large)
        if isinstance(w, Label) and w.text.strip():
            checked += 1
            out += label_problems(w, where, large)
            out += fold_problems(w, where, window_size)
            largest = max(largest, to_dp(w.font_size))
    if large and largest < HEADING_DP - 0.01:
        out.append(f"{where}: largest text {largest:.1f} dp < {HEADING_DP} dp (heading) in large-text mode")
    return out, checked
