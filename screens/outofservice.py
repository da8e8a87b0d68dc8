"""Shown instead of the roles after repeated crashed starts (kiosk/core/bootguard.py).

Citizens read that the device is out of service and where to go instead;
the technician reads why, and what to do. Nothing else runs, so whatever
crashed the earlier starts does not run again; the data stays as it was.
"""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder

from kiosk.core import i18n
from screens.widgets import KioskScreen

i18n.register(
    {
        "oos.title": ("暂停服务", "Out of service"),
        "oos.body": (
            "本设备暂时无法使用，请到服务窗口办理，给您带来不便敬请谅解。",
            "This device is out of service. Please go to a service counter.",
        ),
        "oos.tech": ("技术员：", "For the technician:"),
    }
)

TECH_HINT = (
    "Check `journalctl -u kiosk -b` and `kiosk selftest`; fix the cause, then Restart on the service "
    "screen (five taps on the hall name), or run `kiosk boot-guard --reset` and "
    "`systemctl restart kiosk`. Data is kept."
)


class OutOfServiceScreen(KioskScreen):
    @property
    def reason(self) -> str:
        tripped = self.app.rt.out_of_service if self.app else None
        return tripped.text() if tripped else ""

    @property
    def tech_hint(self) -> str:
        if not self.app:
            return ""
        # A config or storage problem has its own advice; a tripped boot guard the general one.
        hint = getattr(self.app.rt.out_of_service, "hint", TECH_HINT)
        return f"{self.app.rt.cfg.device.id}: {self.reason}\n{hint}"


Builder.load_file(str(Path(__file__).with_name("outofservice.kv")))
