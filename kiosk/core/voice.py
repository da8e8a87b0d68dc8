"""Spoken prompts from a voice pack: which clips say what, in which language.

Kivy has no screen reader, so the app speaks its key prompts itself, the way
vendors' dispensers and 评价器 do ("请取走您的号票，A023号"). Every prompt that
is spoken is also shown on the screen.

A voice pack is a folder with ``manifest.json``::

    {"format": 1, "name": "espeak-ng default",
     "clips": {"zh": {"ticket.take": "zh/ticket.take.wav", "digit.0": "zh/digit.0.wav", ...},
               "en": {...}}}

A hall replaces the generated pack by its own recordings with the same keys,
without a code change. Numbers are composed from clips the way halls say
them: A023 is "A 零 二 三" (letter, then each digit), never "二十三".

Nothing here plays sound: ``Voice.clips_for`` turns a prompt into clip files
and hands them to a player port (devices/audio.py, chosen by kiosk/wiring.py).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("kiosk.voice")

MANIFEST = "manifest.json"
LANGUAGES = ("zh", "en")

# The words each prompt is made of; "{number}" is spelt clip by clip, "{days}" as a count.
PROMPTS: dict[str, tuple[str, ...]] = {
    "ticket.issued": ("ticket.take", "{number}", "ticket.number"),
    "ticket.paper_out": ("ticket.paper_out",),
    "ticket.fault": ("ticket.fault",),
    "pad.invite": ("pad.invite",),
    "pad.thanks": ("pad.thanks",),
    "lookup.status": ("lookup.status_is", "{status}"),
    "lookup.days_left": ("lookup.days_left", "{days}", "lookup.working_days"),
    "lookup.due_today": ("lookup.due_today",),
    "lookup.overdue": ("lookup.overdue",),
}

# What each clip says, for generating a pack (a hall's recordings say the same).
CLIP_TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "ticket.take": "请取走您的号票",
        "ticket.number": "号",
        "ticket.paper_out": "取号机缺纸，请到服务台人工取号",
        "ticket.fault": "取号机故障，请到服务台人工取号",
        "pad.invite": "请您对我的服务进行评价",
        "pad.thanks": "感谢您的评价",
        "lookup.status_is": "您的办件状态是",
        "lookup.days_left": "距办结期限还有",
        "lookup.working_days": "个工作日",
        "lookup.due_today": "今天是办结期限",
        "lookup.overdue": "已超过承诺办结时间，请到服务窗口咨询",
        "status.accepted": "已受理",
        "status.reviewing": "审查中",
        "status.needs_materials": "待补正",
        "status.deciding": "待决定",
        "status.completed": "已办结",
        "status.ready_for_pickup": "可领取",
        "status.delivered": "已送达",
        "status.refused": "不予受理",
        "status.withdrawn": "已撤回",
        "status.unknown": "状态待确认，请到服务窗口咨询",
        **{f"digit.{d}": w for d, w in zip("0123456789", "零一二三四五六七八九", strict=True)},
    },
    "en": {
        "ticket.take": "Please take your ticket,",
        "ticket.number": "",
        "ticket.paper_out": "The printer is out of paper. Please ask at the service desk.",
        "ticket.fault": "The ticket printer is not working. Please ask at the service desk.",
        "pad.invite": "Please rate our service.",
        "pad.thanks": "Thank you for your rating.",
        "lookup.status_is": "Your case is",
        "lookup.days_left": "Working days left:",
        "lookup.working_days": "",
        "lookup.due_today": "It is due today.",
        "lookup.overdue": "The promised time has passed. Please ask at a service counter.",
        "status.accepted": "accepted",
        "status.reviewing": "under review",
        "status.needs_materials": "waiting for documents",
        "status.deciding": "awaiting a decision",
        "status.completed": "completed",
        "status.ready_for_pickup": "ready for pick-up",
        "status.delivered": "delivered",
        "status.refused": "not accepted",
        "status.withdrawn": "withdrawn",
        "status.unknown": "not clear yet. Please ask at a service counter.",
        **{
            f"digit.{d}": w
            for d, w in zip(
                "0123456789",
                ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
                strict=True,
            )
        },
    },
}
for _lang in LANGUAGES:
    CLIP_TEXT[_lang].update({f"letter.{c}": c for c in "ABCDEFGHJKLMNPQRSTUVWXYZ"})


class Player(Protocol):
    """What the voice needs of an audio device: queue clips, return at once."""

    def play(self, files: Sequence[Path], volume: float) -> None: ...


class PackError(Exception):
    """A voice pack that cannot be used at all (no manifest, not JSON)."""


@dataclass(frozen=True)
class VoicePack:
    root: Path
    clips: dict[str, dict[str, str]]  # language -> clip key -> file relative to root

    @classmethod
    def load(cls, root: str | Path) -> VoicePack:
        root = Path(root)
        try:
            doc = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PackError(
                f"{root / MANIFEST}: no voice pack manifest (run `kiosk voice-pack --out {root}`)"
            ) from None
        except (OSError, ValueError) as e:
            raise PackError(f"{root / MANIFEST}: cannot be read ({e}); replace the voice pack") from None
        clips = doc.get("clips") if isinstance(doc, dict) else None
        if not isinstance(clips, dict):
            raise PackError(f'{root / MANIFEST}: no "clips" table; replace the voice pack')
        good: dict[str, dict[str, str]] = {}
        for lang, table in clips.items():
            if isinstance(lang, str) and isinstance(table, dict):
                good[lang] = {k: v for k, v in table.items() if isinstance(k, str) and isinstance(v, str)}
        return cls(root, good)

    def file(self, lang: str, key: str) -> Path | None:
        rel = self.clips.get(lang, {}).get(key)
        if not rel:
            return None
        path = (self.root / rel).resolve()
        # A manifest may not point outside its own folder.
        if self.root.resolve() not in path.parents:
            return None
        return path


def spell_number(display: str) -> list[str]:
    """A023 -> letter.A, digit.0, digit.2, digit.3: each character on its own, as halls call numbers."""
    out = []
    for ch in display.upper():
        if ch.isdigit():
            out.append(f"digit.{ch}")
        elif "A" <= ch <= "Z":
            out.append(f"letter.{ch}")
    return out


def count_words(n: int) -> list[str]:
    """A small count (days left) said digit by digit: 12 -> digit.1, digit.2 (clear, and needs no grammar)."""
    return [f"digit.{d}" for d in str(max(0, int(n)))]


def _in_spans(now: time, spans: Sequence[str]) -> bool:
    for span in spans:
        m = re.fullmatch(r"(\d\d):(\d\d)-(\d\d):(\d\d)", span.strip())
        if not m:
            continue
        a = time(int(m.group(1)), int(m.group(2)))
        b = time(int(m.group(3)), int(m.group(4)))
        if (a <= now < b) if a <= b else (now >= a or now < b):  # a span may cross midnight
            return True
    return False


class Voice:
    """Says prompts through a player, on the player's own thread; never raises into a flow."""

    def __init__(
        self,
        pack: VoicePack | None,
        player: Player,
        *,
        volume: float = 0.8,
        quiet_hours: Sequence[str] = (),
        now: Callable[[], datetime] = datetime.now,
    ):
        self.pack = pack
        self.player = player
        self.volume = volume
        self.quiet_hours = tuple(quiet_hours)
        self.now = now
        self._missing: set[tuple[str, str]] = set()

    def clips_for(self, prompt: str, lang: str, **values: Any) -> list[Path]:
        """The files that say the prompt; a clip the pack lacks is left out (and logged once)."""
        if self.pack is None:
            return []
        keys: list[str] = []
        for word in PROMPTS.get(prompt, ()):
            if word == "{number}":
                keys += spell_number(str(values.get("number", "")))
            elif word == "{days}":
                keys += count_words(int(values.get("days", 0)))
            elif word == "{status}":
                keys.append(f"status.{values.get('status', '')}")
            else:
                keys.append(word)
        files = []
        for key in keys:
            if self.pack.clips.get(lang, {}).get(key) == "":
                continue  # a word this language does not say ("号" has no English clip)
            path = self.pack.file(lang, key)
            if path is None or not path.is_file():
                if (lang, key) not in self._missing:
                    self._missing.add((lang, key))
                    log.warning("voice pack %s has no clip %r for %s: that word is left out", self.pack.root, key, lang)
                continue
            files.append(path)
        return files

    def say(self, prompt: str, lang: str = "zh", **values: Any) -> list[Path]:
        """Queue the prompt and return at once; nothing during quiet hours. Returns what was queued."""
        try:
            if _in_spans(self.now().time(), self.quiet_hours):
                return []
            files = self.clips_for(prompt, lang, **values)
            if files:
                self.player.play(files, self.volume)
            return files
        except Exception:  # a voice problem must never break issuing, rating or a lookup
            log.exception("voice prompt %s failed", prompt)
            return []
