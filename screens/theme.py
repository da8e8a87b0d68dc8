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
ACCENT = (0.784, 0.063, 0.180, 1)  # China red: priority, warnings
OK = (0.086, 0.529, 0.259, 1)
WARN = (0.886, 0.522, 0.016, 1)
TEXT = (0.102, 0.118, 0.153, 1)
MUTED = (0.345, 0.373, 0.431, 1)
ON_DARK = (1, 1, 1, 1)
DISABLED = (0.70, 0.72, 0.76, 1)

TOUCH_MIN = 96  # dp: the smallest button a citizen has to hit
HEADER_H = 84  # dp
RADIUS = 18  # dp
LARGE_TEXT_SCALE = 1.3
