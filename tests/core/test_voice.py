"""Spoken prompts: the clips each flow plays, numbers spelt as halls call them, and nothing breaks a flow."""

from __future__ import annotations

import json
import shutil
import wave
from datetime import datetime
from pathlib import Path

import pytest

from devices.audio import AplayPlayer, SimPlayer, scaled_copy
from kiosk.core.voice import PROMPTS, PackError, Voice, VoicePack, spell_number
from tests.helpers import wait_until

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


@pytest.fixture(scope="session")
def pack_dir(tmp_path_factory) -> Path:
    """The default pack, generated with espeak-ng as install does (once per test run)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    from kiosk.cli.voice import make_pack

    out = tmp_path_factory.mktemp("voice")
    assert make_pack(out) > 60
    return out


def names(played: list[str]) -> list[str]:
    return [p.removesuffix(".wav") for p in played]


def test_numbers_are_spelt_letter_then_each_digit():
    assert spell_number("A023") == ["letter.A", "digit.0", "digit.2", "digit.3"]
    assert spell_number("v105") == ["letter.V", "digit.1", "digit.0", "digit.5"]


@needs_espeak
def test_a_ticket_is_said_with_its_number_in_the_shown_language(pack_dir):
    player = SimPlayer()
    player.start()
    try:
        voice = Voice(VoicePack.load(pack_dir), player, volume=1.0)
        voice.say("ticket.issued", "zh", number="A023")
        assert wait_until(lambda: len(player.played) == 6)
        assert names(player.played) == ["ticket.take", "letter.A", "digit.0", "digit.2", "digit.3", "ticket.number"]
        player.played.clear()
        voice.say("ticket.issued", "en", number="B7")
        assert wait_until(lambda: len(player.played) == 3)
        assert names(player.played) == ["ticket.take", "letter.B", "digit.7"]  # English says no "号"
        assert all(p > 1000 for p in player.peaks)  # real sound, not silence
    finally:
        player.close()


@needs_espeak
def test_every_prompt_has_its_clips_in_both_languages(pack_dir):
    voice = Voice(VoicePack.load(pack_dir), SimPlayer())
    for prompt in PROMPTS:
        for lang in ("zh", "en"):
            assert voice.clips_for(prompt, lang, number="A1", days=3, status="reviewing"), (prompt, lang)
    assert voice._missing == set()


@needs_espeak
def test_a_missing_or_broken_clip_costs_that_clip_only(pack_dir, tmp_path, caplog):
    broken = tmp_path / "pack"
    shutil.copytree(pack_dir, broken)
    manifest = json.loads((broken / "manifest.json").read_text(encoding="utf-8"))
    del manifest["clips"]["zh"]["digit.2"]  # missing from the manifest
    (broken / "zh" / "digit.3.wav").write_bytes(b"not a wav")  # a broken file
    (broken / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    player = SimPlayer()
    player.start()
    try:
        voice = Voice(VoicePack.load(broken), player)
        queued = voice.say("ticket.issued", "zh", number="A023")
        assert [p.stem for p in queued] == ["ticket.take", "letter.A", "digit.0", "digit.3", "ticket.number"]
        assert wait_until(lambda: len(player.played) == 4)  # the broken one is not played
        assert names(player.played) == ["ticket.take", "letter.A", "digit.0", "ticket.number"]
    finally:
        player.close()
    assert any("no clip 'digit.2'" in r.getMessage() for r in caplog.records)
    assert any("cannot play digit.3.wav" in r.getMessage() for r in caplog.records)


def test_no_pack_is_a_clear_message_and_silence(tmp_path):
    with pytest.raises(PackError, match="kiosk voice-pack"):
        VoicePack.load(tmp_path / "nothing")
    voice = Voice(None, SimPlayer())
    assert voice.say("pad.invite") == []


@needs_espeak
def test_quiet_hours_say_nothing(pack_dir):
    player = SimPlayer()
    at = {"now": datetime(2026, 3, 4, 12, 30)}
    voice = Voice(VoicePack.load(pack_dir), player, quiet_hours=["12:00-13:30", "20:00-08:00"], now=lambda: at["now"])
    assert voice.say("pad.invite") == []
    at["now"] = datetime(2026, 3, 4, 23, 0)  # the span over midnight
    assert voice.say("pad.invite") == []
    at["now"] = datetime(2026, 3, 4, 14, 0)
    assert voice.say("pad.invite") != []


@needs_espeak
def test_volume_scales_the_samples(pack_dir, tmp_path):
    clip = pack_dir / "zh" / "pad.invite.wav"
    half = scaled_copy(clip, 0.5, tmp_path)
    p_full, p_half = SimPlayer(), SimPlayer()
    p_full.play_file(clip)
    p_half.play_file(half)
    assert abs(p_half.peaks[0] - p_full.peaks[0] // 2) <= 1
    with wave.open(str(half)) as w, wave.open(str(clip)) as o:
        assert w.getnframes() == o.getnframes()


@needs_espeak
def test_no_sound_card_never_breaks_a_flow(pack_dir, tmp_path, caplog):
    """aplay against an ALSA device that is not there (as on a Pi without audio): logged once, no exception."""
    player = AplayPlayer(device="hw:99,0")
    player.start()
    try:
        voice = Voice(VoicePack.load(pack_dir), player)
        assert voice.say("pad.thanks") and voice.say("pad.invite")
        assert wait_until(lambda: any("cannot play" in r.getMessage() for r in caplog.records), 20)
    finally:
        player.close()
    assert sum("cannot play" in r.getMessage() for r in caplog.records) == 1
