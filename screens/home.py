"""Home: a big tile per role, for devices that play more than one role.

A device with a single role has no separate home: its role screen is home.
"""

from __future__ import annotations

from pathlib import Path

from kivy.lang import Builder
from kivy.metrics import dp

from screens.widgets import BigButton, KioskScreen

ROLE_COLOURS = {
    "dispenser": (0.075, 0.376, 0.780, 1),
    "lookup": (0.086, 0.467, 0.420, 1),
    "pad": (0.784, 0.063, 0.180, 1),
}


class HomeScreen(KioskScreen):
    def on_kv_post(self, base_widget):
        self.build_tiles()

    def build_tiles(self):
        tiles = self.ids.tiles
        tiles.clear_widgets()
        for role in self.app.roles:
            btn = BigButton(bg=ROLE_COLOURS[role], base_size=40, size_hint_max_y=dp(190), size_hint_min_y=dp(120))
            btn.role = role
            btn.bind(on_release=lambda b: self.app.go(b.role))
            tiles.add_widget(btn)
        self.refresh_text()

    def refresh_text(self, *args):
        for btn in self.ids.tiles.children:
            btn.text = (
                f"{self.app.tr('role.' + btn.role)}\n"
                f"[size={int(dp(22) * self.app.font_scale)}]{self.app.tr('role.' + btn.role + '.sub')}[/size]"
            )


Builder.load_file(str(Path(__file__).with_name("home.kv")))
