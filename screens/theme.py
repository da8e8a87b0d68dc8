"""Colours and sizes shared by every screen.

High contrast (dark text on light ground, white on deep blue) and big touch
targets: the users include elderly citizens with poor eyesight and shaky
hands. 96 dp is about 15 mm on a 10" 1280x800 panel, well above the
9 mm minimum usually given for public touchscreens.
"""

BG = (0.957, 0.965, 0.980, 1)  # page ground
PANEL = (1, 1, 1, 1)  # cards
HEADER = (0.043, 0.239, 0.569, 1)  # deep government blue
PRIMARY = (0.075, 0.376, 0.780, 1)  # buttons
PRIMARY_DOWN = (0.043, 0.239, 0.569, 1)
ACCENT = (0.784, 0.063, 0.180, 1)  # China red: warnings and errors only
PRIORITY = (0.047, 0.447, 0.212, 1)  # 绿色通道 is green, as its name and the hall signs say
OK = (0.086, 0.529, 0.259, 1)
WARN = (0.660, 0.340, 0.000, 1)  # amber dark enough for white text (5.2:1)
TEXT = (0.102, 0.118, 0.153, 1)
MUTED = (0.345, 0.373, 0.431, 1)
ON_DARK = (1, 1, 1, 1)
DISABLED = (0.70, 0.72, 0.76, 1)
STAR = (0.620, 0.400, 0.000, 1)  # gold stars that still read on white (4.8:1)

MORE_TIME_S = 20  # the "more time" button shows this long before a screen clears itself
TOUCH_MIN = 96  # dp: the smallest button a citizen has to hit
HEADER_H = 84  # dp
RADIUS = 18  # dp
LARGE_TEXT_SCALE = 1.3
# Kivy lays lines at the font's own height, 1.17-1.20x the size for the CJK
# fonts we ship with (wqy-microhei, Noto CJK), Latin at small sizes nearer
# 1.12x: 1.2 more brings every line to the 1.3x spacing of the 适老化 rules (tests/screens/test_elderly.py measures it).
LINE_HEIGHT = 1.2
