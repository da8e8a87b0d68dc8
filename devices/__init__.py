"""Hardware adapters, each with a small interface, a real and a simulated backend.

- escpos:   ticket Document -> ESC/POS bytes, per PrinterProfile
- preview:  ESC/POS bytes -> PNG of the paper strip (what the printer would print)
- printer:  TicketPrinter over SerialBackend / FileBackend / SimBackend; PrinterWorker thread
- scanner:  SerialScanner, SimScanner, WedgeAssembler (keyboard-wedge timing)
- buttons:  ButtonBank / LedBank over a gpiozero pin factory ("native" or "mock")

Standalone on purpose: no Kivy and no `kiosk` import; constructors take plain
arguments and kiosk/app.py wires them from the config.  Callbacks arrive on
device threads; the app marshals them to the UI thread.
"""
