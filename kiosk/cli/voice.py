"""`kiosk voice-pack`: make the default voice pack with espeak-ng (Mandarin and English voices).

Run at install (systemd/install.sh) and by `kiosk demo`; a hall may replace
the folder by its own recordings with the same manifest keys.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from kiosk.core.voice import CLIP_TEXT, LANGUAGES, MANIFEST

# espeak-ng's voice per language: "cmn" is its Mandarin.
ESPEAK_VOICES = {"zh": "cmn", "en": "en"}


def make_pack(out: Path, languages: tuple[str, ...] = LANGUAGES, espeak: str = "espeak-ng") -> int:
    """Write every clip and the manifest; returns the number of clips. Raises OSError with advice."""
    binary = shutil.which(espeak)
    if binary is None:
        raise OSError("espeak-ng is not installed (apt-get install espeak-ng)")
    clips: dict[str, dict[str, str]] = {}
    n = 0
    for lang in languages:
        table: dict[str, str] = {}
        (out / lang).mkdir(parents=True, exist_ok=True)
        for key, text in CLIP_TEXT[lang].items():
            if not text:
                table[key] = ""  # this language says nothing here
                continue
            rel = f"{lang}/{key}.wav"
            proc = subprocess.run(
                [binary, "-v", ESPEAK_VOICES[lang], "-s", "150", "-w", str(out / rel), text],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if proc.returncode != 0:
                raise OSError(f"espeak-ng failed for {key!r}: {proc.stderr.strip()[:200]}")
            table[key] = rel
            n += 1
        clips[lang] = table
    manifest = {"format": 1, "name": "espeak-ng default", "clips": clips}
    tmp = out / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
    tmp.replace(out / MANIFEST)  # a half-made pack never has a manifest
    return n


def cmd_voice_pack(args: argparse.Namespace) -> int:
    out = Path(args.out)
    try:
        n = make_pack(out, tuple(args.lang or LANGUAGES))
    except OSError as e:
        print(f"kiosk voice-pack: {e}", file=sys.stderr)
        return 1
    print(f"{out}: {n} clips and {MANIFEST}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("voice-pack", help="make the default voice pack with espeak-ng")
    p.add_argument("--out", required=True, help="folder to write (e.g. /var/lib/kiosk/voice)")
    p.add_argument("--lang", action="append", choices=LANGUAGES, help="only these languages (repeatable)")
    p.set_defaults(func=cmd_voice_pack)
