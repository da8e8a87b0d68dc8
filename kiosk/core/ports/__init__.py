"""What devices/ and the config agree on: the allowed values of device settings.

devices/ may import this module and nothing else of kiosk/ (it holds no
behaviour, only names), so the validator in kiosk/core/config.py and the
adapters that act on a value read the same list: a value check-config
accepts is one the adapter implements, and the other way round.
"""

from __future__ import annotations

# Printer models by what they can do (devices/escpos.py PROFILES implements each).
PRINTER_PROFILES = ("default", "chinese-mode", "no-chinese", "no-qr", "chinese-mode-no-qr", "no-chinese-no-qr")

PRINTER_BACKENDS = ("serial", "usb", "file", "sim")

# How a serial printer holds the sender back while it is busy (devices/printer.py SerialBackend).
# "profile": the printer profile's own choice.
PRINTER_FLOW_CONTROLS = ("none", "xonxoff", "rtscts", "dsrdtr")

# What the dispenser does when the printer's status is unknown (no answer, one-way printer):
# issue the ticket anyway, or refuse it and send the citizen to the counter.
PRINTER_ON_UNKNOWN_STATUS = ("issue", "refuse")
# hid: a USB keyboard-mode scanner read from its /dev/input event node (devices/hid_scanner.py).
SCANNER_BACKENDS = ("serial", "hid", "wedge", "sim")

# Spoken prompts (devices/audio.py): ALSA's aplay, a recorder for tests and demos, or silence.
AUDIO_BACKENDS = ("aplay", "sim", "none")

# The rates thermal printers and serial scanners are sold with; 8N1 always.
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)

# Paper width in mm -> printable dots per line at 203 dpi (font A: 12 dots per column).
PAPER_DOTS = {58: 384, 80: 576}
PAPER_WIDTHS = tuple(PAPER_DOTS)


def paper_columns(width_mm: int) -> int:
    """Half-width characters per line at size 1 (32 on 58 mm paper, 48 on 80 mm)."""
    return PAPER_DOTS[width_mm] // 12


# gpiozero's own pin-factory names, and "default": leave the choice to
# gpiozero (GPIOZERO_PIN_FACTORY, else lgpio on Raspberry Pi OS bookworm).
# gpiozero's "native" cannot be offered in this release: it meant
# "default" here before (see PIN_FACTORY_RENAMED).
PIN_FACTORIES = ("default", "lgpio", "rpigpio", "pigpio", "mock")

# Old values still read for this release, and what they are read as.
PIN_FACTORY_RENAMED = {"native": "default"}
