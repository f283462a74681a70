"""Short text still makes a valid clip: synthesized speech is padded to the shared minimum."""

from __future__ import annotations

import wave

import pytest

from talkinghead import AsyncClient, AvatarRequest, InputError, media, tts

RATE = 22050


def write_wav(path, frames: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(b"\x01\x00" * frames)


@pytest.mark.parametrize("frames", [RATE * 2 - 1, RATE * 2 - 3, RATE, RATE * 2])
def test_padding_measures_the_file_not_the_reported_duration(tmp_path, frames):
    """An engine reports its duration rounded (1.99995 s as 2.0); padding from that left the
    clip 1.9999999 s long and the 2 s minimum refused it."""
    path = tmp_path / "s.wav"
    write_wav(path, frames)
    reported = tts.Speech(path=path, duration_s=round(frames / RATE, 4), engine="test")
    padded = tts.pad_to(reported, media.SHARED.audio_min_seconds)
    audio = media.inspect_audio(padded.path, field="text")  # raises when under the minimum
    assert audio.duration_s >= media.SHARED.audio_min_seconds
    assert abs(padded.duration_s - audio.duration_s) < 1e-3


def test_long_speech_is_left_alone(tmp_path):
    path = tmp_path / "s.wav"
    write_wav(path, RATE * 3)
    before = path.read_bytes()
    assert tts.pad_to(tts.Speech(path=path, duration_s=3.0, engine="t"), 2.0).path == path
    assert path.read_bytes() == before


@pytest.mark.parametrize("line", ["Hello there.", "Thanks for watching."])
async def test_short_text_is_quoted_on_every_route(face, line):
    """``--text "Hello there."`` on each installed route, one provider at a time."""
    if tts.default_engine() is None:
        pytest.skip("no text-to-speech engine installed")
    client = AsyncClient()
    names = sorted({p.name for p, _ in client.routes()})
    assert {"local", "inferencesh", "kling", "fal"} <= set(names)
    quoted = set()
    for name in names:  # quoted whether configured or not: what `estimate --provider NAME` shows
        try:
            found = await client.quotes(AvatarRequest(image=face, text=line), provider=name)
        except InputError as exc:
            # A backend speaking the text itself (native text) may judge a line too short for
            # its own speech before any paid call; that is its rule, not the core's padding.
            assert exc.field == "text" and "shorter than the 2 s minimum" not in str(exc), name
            assert all(r.native_text for p, r in client.routes() if p.name == name), name
            continue
        assert found and all(c.quote.seconds >= 2.0 for c in found), name
        quoted.add(name)
    assert {"local", "inferencesh", "fal", "mock"} <= quoted
