"""Fixtures for the local provider's tests: the example face and speech, and clips made here."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FACE = EXAMPLES / "face.jpg"
SPEECH = EXAMPLES / "hello.wav"
RATE = 16_000


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def speech_samples() -> np.ndarray:
    from talkinghead_local.motion import decode_mono

    return decode_mono(SPEECH, RATE)


@pytest.fixture(scope="session")
def face_rgb() -> np.ndarray:
    from talkinghead.video import load_image

    return load_image(FACE)


@pytest.fixture(scope="session")
def clips(tmp_path_factory) -> dict[str, Path]:
    """Speech with silent gaps (0.6 s, the example, 1.2 s, its first 2.5 s, 1 s), the same
    length of silence, and 2.5 s of speech."""
    folder = tmp_path_factory.mktemp("clips")
    speech = speech_samples()

    def silence(s: float) -> np.ndarray:
        return np.zeros(int(s * RATE), np.float32)

    gaps = np.concatenate([silence(0.6), speech, silence(1.2), speech[:int(2.5 * RATE)], silence(1.0)])
    return {"gaps": write_wav(folder / "gaps.wav", gaps),
            "quiet": write_wav(folder / "quiet.wav", np.zeros_like(gaps)),
            "short": write_wav(folder / "short.wav", speech[:int(2.5 * RATE)])}
