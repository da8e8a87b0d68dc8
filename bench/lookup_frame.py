"""The lookup's result frame against a bare Kivy frame with as many labels, same run.

    .venv/bin/python bench/lookup_frame.py [--frames 60]

The real app (SDL offscreen, the machine's GL: Mesa llvmpipe on the build
machine) shows a sample result (the lookup screen's "reviewing" state, as
`kiosk lookup-screenshot` renders it); then each frame is forced: the
window's whole canvas is drawn again and glFinish() waits for the pixels.
The reference is a bare Kivy window in the same process afterwards, holding
as many Labels with the same texts and font sizes on the window's clear
colour. In between, the old frame: the same result with the stencil that Kivy's
ScreenManager drew before screens/widgets.py PlainScreens put back on the
app's screen manager, so the fix is measured against what it replaced in the
same run. The scene is described too: canvas instructions, how many of them
are rectangles covering a large part of the window (each one is a full pass
of pixels for a software renderer), and the textures bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def walk(w):
    yield w
    for c in w.children:
        yield from walk(c)


def describe(root, win_area: float) -> dict[str, int]:
    from kivy.graphics import Rectangle, RoundedRectangle
    from kivy.uix.label import Label

    labels = [w for w in walk(root) if isinstance(w, Label) and w.text and w.opacity > 0]
    instr = big = 0
    for w in walk(root):
        for canvas in (w.canvas.before, w.canvas, w.canvas.after):
            for i in canvas.children:
                instr += 1
                if isinstance(i, Rectangle | RoundedRectangle) and i.size[0] * i.size[1] > 0.2 * win_area:
                    big += 1
    return {"labels": len(labels), "instructions": instr, "large_rects": big}


def force(window, frames: int) -> list[float]:
    from kivy.graphics.opengl import glFinish

    out = []
    for _ in range(frames):
        glFinish()
        t0 = time.perf_counter()
        window.dispatch("on_draw")
        glFinish()
        out.append((time.perf_counter() - t0) * 1000)
        window.dispatch("on_flip")
    return out


def with_old_stencil(sm, win, area: float, frames: int) -> tuple[dict[str, int], list[float]]:
    """Kivy's <ScreenManager> rule put back for a while: the frame as it was before PlainScreens."""
    from kivy.graphics import Rectangle, StencilPop, StencilPush, StencilUnUse, StencilUse

    before = [StencilPush(), Rectangle(pos=sm.pos, size=sm.size), StencilUse()]
    after = [StencilUnUse(), Rectangle(pos=sm.pos, size=sm.size), StencilPop()]
    for i, instr in enumerate(before):
        sm.canvas.before.insert(i, instr)
    for instr in after:
        sm.canvas.after.add(instr)
    scene = describe(win, area)
    force(win, 5)
    times = force(win, frames)
    for instr in before:
        sm.canvas.before.remove(instr)
    for instr in after:
        sm.canvas.after.remove(instr)
    return scene, times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lookup-frame-"))
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_HOME", str(tmp / "kivy-home"))
    from tests.helpers import AppHarness, write_config

    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    h = AppHarness(write_config(tmp, {"device": {"roles": ["lookup"]}, "scanner": {"backend": "sim"}}))
    try:
        from kivy.uix.floatlayout import FloatLayout
        from kivy.uix.label import Label

        from screens.states import show

        show(h.app, "lookup", "reviewing", False)
        h.pump(10)
        win = h.Window
        area = win.width * win.height
        scene = describe(win, area)
        labels = [w for w in walk(win) if isinstance(w, Label) and w.text and w.opacity > 0]
        spec = [(w.text, w.font_size, w.to_window(*w.pos), w.size) for w in labels]
        force(win, 5)
        kiosk = force(win, args.frames)
        old_scene, old = with_old_stencil(h.app.sm, win, area, args.frames)
        # The reference: the same texts at the same sizes and places, nothing else.
        for c in list(win.children):
            win.remove_widget(c)
        bare = FloatLayout()
        for text, fs, pos, size in spec:
            bare.add_widget(Label(text=text, font_size=fs, pos=pos, size=size, size_hint=(None, None)))
        win.add_widget(bare)
        h.pump(10)
        ref_scene = describe(win, area)
        force(win, 5)
        ref = force(win, args.frames)
        print(f"load average at end:   {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        k, b = statistics.median(kiosk), statistics.median(ref)
        print(f"window {win.width}x{win.height}; forced redraw + glFinish, {args.frames} frames each")
        print(f"lookup result frame: p50 {k:7.2f} ms  max {max(kiosk):7.2f} ms  {scene}")
        o = statistics.median(old)
        print(f"old (with stencil):  p50 {o:7.2f} ms  max {max(old):7.2f} ms  {old_scene}")
        print(f"bare labels frame:   p50 {b:7.2f} ms  max {max(ref):7.2f} ms  {ref_scene}")
        print(f"ratio to bare: result frame {k / b:.2f}x (target <= 2.5x), old frame {o / b:.2f}x")
    finally:
        h.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
