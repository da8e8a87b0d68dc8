"""Chinese-first strings with English beside them.

Each screen module registers its own strings, so a screen and its words
live together. A missing key shows the key itself: ugly, but visible in a
screenshot rather than a crash in front of a citizen.
"""

from __future__ import annotations

LANGUAGES = ("zh", "en")
_STRINGS: dict[str, tuple[str, str]] = {}


def register(strings: dict[str, tuple[str, str]]) -> None:
    for key, pair in strings.items():
        if key in _STRINGS and _STRINGS[key] != pair:
            raise ValueError(f"string {key!r} registered twice with different text")
        _STRINGS[key] = pair


def tr(key: str, lang: str = "zh", **values: object) -> str:
    pair = _STRINGS.get(key)
    if pair is None:
        return key
    text = pair[1] if lang == "en" else pair[0]
    return text.format(**values) if values else text


def has(key: str) -> bool:
    return key in _STRINGS


register(
    {
        "app.title": ("政务服务大厅", "Government Service Hall"),
        "lang.switch": ("English", "中文"),
        "text.large": ("大字", "Large text"),
        "text.normal": ("标准字", "Normal text"),
        "net.online": ("已联网", "Online"),
        "net.offline": ("离线", "Offline"),
        "net.syncing": ("同步中", "Syncing"),
        "net.starting": ("连接中", "Connecting"),
        "net.auth_error": ("授权失败", "Not authorised"),
        "net.busy": ("中心繁忙", "Central busy"),
        "net.pending": ("待上传 {n}", "{n} to upload"),
        "home.choose": ("请选择您要办理的业务", "Please choose a service"),
        "role.dispenser": ("取号", "Take a ticket"),
        "role.dispenser.sub": ("排队取号，等候叫号", "Queue ticket for a counter"),
        "role.lookup": ("办件查询", "Case progress"),
        "role.lookup.sub": ("扫描受理通知书二维码", "Scan the QR code on your receipt"),
        "role.pad": ("服务评价", "Rate our service"),
        "role.pad.sub": ("办完业务，请为窗口服务打分", "Tell us how the counter served you"),
        "common.back": ("返回", "Back"),
        "common.home": ("首页", "Home"),
        "common.ok": ("确定", "OK"),
        "common.cancel": ("取消", "Cancel"),
        "demo.roles": ("演示", "Demo"),
        # short labels for the demo's role switcher, which shares the header with the hall name
        "demo.home": ("首页", "Home"),
        "demo.dispenser": ("取号", "Ticket"),
        "demo.lookup": ("查询", "Lookup"),
        "demo.pad": ("评价", "Rate"),
        "idle.countdown": ("{s} 秒后返回首页", "Back to start in {s} s"),
        "idle.more_time": ("延长时间（{s} 秒）", "More time ({s} s)"),
    }
)
