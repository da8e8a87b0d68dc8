"""An on-screen keypad with big keys, for typing 受理编号 and 查询码 without a system keyboard.

Digits first (most receipt numbers and all query codes are digits); one key
switches to capital letters for prefixes like ZW. Keys dispatch ``on_key``
with the character, or "back" / "clear"; the keypad keeps no text itself, so
it never holds anything to forget.
"""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.properties import BooleanProperty
from kivy.uix.gridlayout import GridLayout

from kiosk.core import i18n
from screens.widgets import BigButton

i18n.register(
    {
        "keypad.letters": ("字母", "ABC"),
        "keypad.digits": ("数字", "123"),
        "keypad.back": ("退格", "Delete"),
        "keypad.clear": ("清空", "Clear"),
    }
)

DIGITS = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "letters", "0", "back"]
LETTERS = [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["-", "digits", "back"]


class KeypadKey(BigButton):
    pass


class Keypad(GridLayout):
    letters = BooleanProperty(False)
    __events__ = ("on_key",)

    def on_kv_post(self, base_widget):
        self.build()

    def on_letters(self, *args):
        self.build()

    def build(self, *args):
        self.clear_widgets()
        keys = LETTERS if self.letters else DIGITS
        self.cols = 7 if self.letters else 3
        for k in keys:
            btn = KeypadKey()
            btn.key = k
            if k in ("letters", "digits", "back"):
                btn.bg = (0.345, 0.373, 0.431, 1)
                btn.base_size = 28
                btn.bind(on_release=self._press)
                btn.text = self._label(k)
            else:
                btn.text = k
                btn.bind(on_release=self._press)
            self.add_widget(btn)

    def _label(self, k: str) -> str:
        from kivy.app import App

        app = App.get_running_app()
        return app.tr("keypad." + k) if app else k

    def refresh_text(self, *args):
        for btn in self.children:
            if btn.key in ("letters", "digits", "back"):
                btn.text = self._label(btn.key)

    def _press(self, btn):
        if btn.key in ("letters", "digits"):
            self.letters = btn.key == "letters"
            return
        self.dispatch("on_key", btn.key)

    def on_key(self, key):
        pass


Builder.load_file(str(Path(__file__).with_name("keypad.kv")))
