"""The espeak engine: speech within the audio rules, phoneme timings, voices and rates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import wave

import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead.media import inspect_audio
from talkinghead_local.tts import EspeakEngine, phonemes_from_events, write_wav

TEXT = ("Hello, and welcome. This short clip was spoken by espeak on this very machine, "
        "without a network.")


@pytest.fixture(scope="module")
def engine():
    e = EspeakEngine()
    if not e.available():
        pytest.fail("no espeak-ng: the espeakng-loader wheel is a dependency of the plugin")
    return e


def test_speech_passes_the_audio_rules_and_carries_phoneme_timings(engine, tmp_path):
    speech = engine.synthesize(TEXT, tmp_path / "s.wav")
    media = inspect_audio(speech.path, field="text")  # the core's check: format, size, 2-300 s
    assert media.format == "wav"
    assert 2 <= speech.duration_s <= 300
    assert abs(media.duration_s - speech.duration_s) < 0.01
    assert speech.engine == "espeak" and speech.voice == "en-us"
    ph = speech.phonemes
    assert len(ph) > 40
    starts = [p.start_s for p in ph]
    assert starts == sorted(starts)
    assert all(p.end_s > p.start_s for p in ph)
    assert ph[-1].end_s <= speech.duration_s + 1e-6
    assert all(ph[i].end_s == pytest.approx(ph[i + 1].start_s) for i in range(len(ph) - 1))
    # The timings line up with the sound: pauses are quiet, vowels are loud.
    with wave.open(str(speech.path)) as w:
        rate = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32)

    def rms(p):
        return np.sqrt(np.mean(x[int(p.start_s * rate):int(p.end_s * rate)] ** 2))

    vowels = [rms(p) for p in ph if p.symbol.strip("',").startswith(("a", "E", "e", "oU", "I"))]
    pauses = [rms(p) for p in ph if p.symbol.startswith("_") and p.end_s - p.start_s > 0.05]
    assert vowels and pauses and np.median(vowels) > 10 * np.median(pauses)


def test_voice_and_rate_are_selectable(engine, tmp_path):
    base = engine.synthesize(TEXT, tmp_path / "a.wav")
    slow = engine.synthesize(TEXT, tmp_path / "b.wav", rate=110)
    assert slow.duration_s > 1.3 * base.duration_s
    french = engine.synthesize("Bonjour à tous, et bienvenue.", tmp_path / "c.wav", voice="fr-fr")
    assert french.voice == "fr-fr" and 1 < french.duration_s < 5
    assert "en-us" in engine.voices() and "fr-fr" in engine.voices()
    assert EspeakEngine({"voice": "en-gb", "rate": 200}).synthesize(TEXT, tmp_path / "d.wav").voice == "en-gb"


def test_bad_voice_rate_and_text_are_input_errors(engine, tmp_path):
    with pytest.raises(InputError) as err:
        engine.synthesize(TEXT, tmp_path / "x.wav", voice="no-such-voice")
    assert err.value.field == "voice"
    with pytest.raises(InputError) as err:
        engine.synthesize(TEXT, tmp_path / "x.wav", rate=20)
    assert err.value.field == "rate"
    with pytest.raises(InputError):
        engine.synthesize("   ", tmp_path / "x.wav")


def test_short_text_gives_speech_the_core_refuses(engine, tmp_path):
    speech = engine.synthesize("Hi.", tmp_path / "hi.wav")
    assert speech.duration_s < 2
    with pytest.raises(InputError, match="at least|shorter|minimum|2"):
        inspect_audio(speech.path, field="text")


def test_long_speech_is_resampled_to_fit_the_size_rule(tmp_path):
    samples = (np.sin(np.arange(22050 * 290) / 7) * 8000).astype(np.int16)  # 290 s
    rate = write_wav(tmp_path / "long.wav", samples, 22050)
    assert 8000 <= rate < 22050
    media = inspect_audio(tmp_path / "long.wav")
    assert media.size <= 5 * 1024 * 1024 and abs(media.duration_s - 290) < 0.1


def test_phoneme_events_to_spans():
    spans = phonemes_from_events([("h", 10), ("@", 60), ("_", 60), ("l", 120)], 0.5)
    assert [(p.symbol, p.start_s, p.end_s) for p in spans] == [
        ("h", 0.01, 0.06), ("_", 0.06, 0.12), ("l", 0.12, 0.5)]


def test_wheel_library_works_from_a_pip_install_alone(tmp_path):
    # In a fresh process: only one libespeak-ng may be loaded per process.
    code = ("import sys; from pathlib import Path; from talkinghead_local.tts import EspeakEngine;"
            "s = EspeakEngine({'source': 'wheel'}).synthesize('Testing the bundled library, one two three.',"
            " Path(sys.argv[1])); print(s.duration_s, len(s.phonemes))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "w.wav")], capture_output=True,
                          text=True, timeout=60, check=False, env={**os.environ, "PATH": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    seconds, count = done.stdout.split()
    assert float(seconds) > 2 and int(count) > 20


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="no espeak-ng command installed")
def test_system_command_speaks_without_timings(tmp_path):
    speech = EspeakEngine({"source": "binary"}).synthesize(TEXT, tmp_path / "bin.wav")
    assert inspect_audio(speech.path, field="text").duration_s > 2
    assert speech.phonemes == ()
