"""What the face does in each video frame, decided from the audio before any pixel is drawn.

``plan(audio, frames)`` returns a ``Motion``: per frame, how far the mouth is open (0..1),
how rounded the lips are, how far the eyelids are closed, and the head's small sway. It is
pure numpy on a mono 16 kHz copy of the audio, and deterministic for a given seed.

* Mouth: the loudness per frame (dB, relative to the clip's loud speech) goes through an
  envelope follower with a fast attack (12 ms) and a slower release (80 ms), so the jaw
  snaps open on a syllable and settles over a few frames; below a floor it is exactly shut.
* Visemes: with phoneme timings (synthesized speech), each phoneme sets a target shape,
  e.g. closed lips for p/b/m, wide open for "a", rounded for "o"/"u"/"w"; the opening is
  then the loudness envelope scaled by that target, so the lips close on "m" even though
  an "m" is loud.
* Blinks every 2-6 s (uniformly drawn), each ~150 ms.
* Sway: a slow sum of sines in rotation and translation, a degree or so at most.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talkinghead.tts import Phoneme

ANALYSIS_RATE = 16_000
ATTACK_S = 0.012        # envelope time constants: open within a frame ...
RELEASE_S = 0.080       # ... close over a few frames
RANGE_DB = 30.0         # loudness goes from 0 at (loud - 30 dB) to 1 at loud speech ...
CURVE = 2.0             # ... and is squared: soft syllables open the mouth a little
SILENCE_DBFS = -55.0    # below this a frame is silent whatever the clip's level
DEAD_ZONE = 0.06        # envelope values below this leave the mouth shut
BLINK_S = 0.15
BLINK_GAP_S = (2.0, 6.0)
SWAY_DEG = 1.1          # peak head rotation
SWAY_SHIFT = 0.012      # peak head translation, as a share of the face width


@dataclass(frozen=True)
class Motion:
    fps: int
    open: np.ndarray      # (n,) mouth opening, 0 shut .. 1 widest
    round: np.ndarray     # (n,) lip rounding, -1 spread .. 0 neutral .. 1 rounded
    blink: np.ndarray     # (n,) eyelid closure, 0 open .. 1 shut
    sway: np.ndarray      # (n, 3) rotation (radians), shift x, shift y (shares of face width)
    level: np.ndarray     # (n,) loudness 0..1 before the envelope (for tests and tuning)

    @property
    def frames(self) -> int:
        return len(self.open)


def decode_mono(source: Path | str | bytes, rate: int = ANALYSIS_RATE) -> np.ndarray:
    """The audio as mono float32 at ``rate``, in -1..1."""
    import io
    import os

    import av

    opened = av.open(io.BytesIO(source), "r") if isinstance(source, bytes) else av.open(os.fspath(source), "r")
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    chunks: list[np.ndarray] = []
    with opened as container:
        for frame in container.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def frame_db(samples: np.ndarray, frames: int, fps: int, rate: int = ANALYSIS_RATE) -> np.ndarray:
    """RMS level of each video frame's slice of audio, in dBFS (floored at -100)."""
    hop = rate / fps
    edges = np.round(np.arange(frames + 1) * hop).astype(np.int64)
    padded = np.zeros(max(int(edges[-1]), len(samples)), np.float64)
    padded[:len(samples)] = samples
    energy = np.concatenate([[0.0], np.cumsum(padded ** 2)])
    counts = np.maximum(1, edges[1:] - edges[:-1])
    rms = np.sqrt((energy[edges[1:]] - energy[edges[:-1]]) / counts)
    db: np.ndarray = 20 * np.log10(np.maximum(rms, 1e-5))
    return db


def loudness(db: np.ndarray) -> np.ndarray:
    """0..1 per frame: 1 at the clip's loud speech (the 95th percentile of its non-silent
    frames), 0 at RANGE_DB below that or at SILENCE_DBFS, whichever is higher; then raised
    to CURVE, so the mouth opens wide on stressed vowels only, not on every sound."""
    voiced = db[db > SILENCE_DBFS]
    if voiced.size == 0:
        return np.zeros_like(db)
    top = float(np.percentile(voiced, 95))
    floor = max(top - RANGE_DB, SILENCE_DBFS)
    return np.clip((db - floor) / max(top - floor, 1e-6), 0.0, 1.0) ** CURVE


def envelope(level: np.ndarray, fps: int, attack_s: float = ATTACK_S,
             release_s: float = RELEASE_S) -> np.ndarray:
    """Follow ``level`` with a fast attack and a slow release (one-pole each way)."""
    up = 1 - math.exp(-1 / (fps * attack_s))
    down = 1 - math.exp(-1 / (fps * release_s))
    out = np.empty_like(level, dtype=np.float64)
    env = 0.0
    for i, x in enumerate(level):
        env += (up if x > env else down) * (x - env)
        out[i] = env
    return out


# Viseme targets for espeak-ng phoneme mnemonics: (opening, rounding). Matched on the symbol
# with stress and length marks removed, longest prefix first; unknown consonants are "other".
_VISEMES: dict[str, tuple[float, float]] = {
    # lips shut, or lip to teeth
    "p": (0.0, 0.0), "b": (0.0, 0.0), "m": (0.0, 0.0),
    "f": (0.12, 0.0), "v": (0.12, 0.0),
    # rounded consonants
    "w": (0.18, 1.0), "S": (0.3, 0.6), "Z": (0.3, 0.6), "tS": (0.3, 0.6), "dZ": (0.3, 0.6),
    "r": (0.3, 0.4),
    # open vowels
    "a": (1.0, 0.0), "A": (1.0, 0.0), "V": (0.85, 0.0), "&": (0.95, -0.2), "aI": (1.0, 0.0),
    "aU": (1.0, 0.3),
    # mid vowels
    "e": (0.65, -0.3), "E": (0.7, -0.2), "3": (0.55, 0.2), "@": (0.5, 0.0), "eI": (0.6, -0.3),
    "O": (0.75, 0.7), "o": (0.6, 0.8), "oU": (0.6, 0.8), "OI": (0.7, 0.6),
    # close vowels
    "i": (0.35, -0.6), "I": (0.4, -0.4), "u": (0.35, 1.0), "U": (0.4, 0.8), "y": (0.35, 0.9),
}
_OTHER = (0.3, 0.0)      # tongue and throat consonants: mouth slightly open
CLOSURE = 0.12           # targets at or below this are lip closures
_MARKS = re.compile(r"[ˈˌ'`,%=!:;#\-\d]")
_LONGEST = sorted(_VISEMES, key=len, reverse=True)


def viseme(symbol: str) -> tuple[float, float]:
    """(opening, rounding) target for one phoneme symbol; pauses ("_") are shut."""
    bare = _MARKS.sub("", symbol)
    if not bare or bare.startswith("_"):
        return 0.0, 0.0
    for key in _LONGEST:
        if bare.startswith(key):
            return _VISEMES[key]
    return _OTHER


def viseme_track(phonemes: Sequence[Phoneme], frames: int, fps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame (opening, rounding) targets: each phoneme held over the frames whose centre
    it covers, then blended a little with the neighbours (coarticulation). Lip closures
    (p, b, m, f, v) are kept exact, even one shorter than a frame: a "b" must shut the lips.
    Frames outside every phoneme are shut."""
    opening = np.zeros(frames)
    rounding = np.zeros(frames)
    centres = (np.arange(frames) + 0.5) / fps
    short: list[tuple[int, float, float]] = []
    for ph in phonemes:
        o, r = viseme(ph.symbol)
        inside = (centres >= ph.start_s) & (centres < ph.end_s)
        if inside.any():
            opening[inside], rounding[inside] = o, r
        elif frames:
            short.append((min(frames - 1, max(0, int((ph.start_s + ph.end_s) / 2 * fps))), o, r))
    for i, o, r in short:  # after the long ones, so they are not overwritten
        if o <= CLOSURE:
            opening[i], rounding[i] = o, r
    kernel = np.array([0.2, 0.6, 0.2])
    smooth_open = np.convolve(opening, kernel, mode="same")
    return (np.where(opening <= CLOSURE, opening, smooth_open),
            np.convolve(rounding, kernel, mode="same"))


def blinks(frames: int, fps: int, seed: int = 0) -> np.ndarray:
    """Eyelid closure per frame: a blink every 2-6 s, each BLINK_S long, fully shut in its
    middle (at 25 fps, two frames or more)."""
    rng = np.random.default_rng([seed, 1])
    out = np.zeros(frames)
    t = rng.uniform(0.8, 2.5)  # the first soon, so a short clip shows one
    times = (np.arange(frames) + 0.5) / fps
    while t < frames / fps:
        phase = (times - t) / BLINK_S
        inside = (phase >= 0) & (phase <= 1)
        out[inside] = np.maximum(out[inside], np.clip(1.8 * np.sin(np.pi * phase[inside]), 0, 1))
        t += rng.uniform(*BLINK_GAP_S)
    return out


def sway(frames: int, fps: int, seed: int = 0) -> np.ndarray:
    """(rotation rad, shift x, shift y) per frame: sums of slow sines with seeded phases."""
    rng = np.random.default_rng([seed, 2])
    t = np.arange(frames) / fps
    out = np.zeros((frames, 3))
    peaks = (math.radians(SWAY_DEG), SWAY_SHIFT, SWAY_SHIFT * 0.5)
    for axis, peak in enumerate(peaks):
        freqs = rng.uniform(0.08, 0.35, 3)
        phases = rng.uniform(0, 2 * np.pi, 3)
        weights = np.array([0.55, 0.3, 0.15])
        out[:, axis] = peak * (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t
                                                          + phases[:, None])).sum(axis=0)
    return out


def plan(audio: Path | str | bytes | None, frames: int, fps: int = 25, *,
         phonemes: Sequence[Phoneme] = (), seed: int = 0) -> Motion:
    """The motion for ``frames`` video frames of ``audio`` (None: silence)."""
    samples = decode_mono(audio) if audio is not None else np.zeros(0, np.float32)
    level = loudness(frame_db(samples, frames, fps))
    env = envelope(level, fps)
    rounding = np.zeros(frames)
    if phonemes:
        shape, rounding = viseme_track(phonemes, frames, fps)
        # Loudness still gates and scales it, so silence and soft speech stay near shut.
        env = env * (0.25 + 0.75 * shape) * np.minimum(1.0, shape * 4)
        rounding = rounding * np.minimum(1.0, env * 3)
    opening = np.clip((env - DEAD_ZONE) / (1 - DEAD_ZONE), 0.0, 1.0)
    return Motion(fps=fps, open=opening, round=np.clip(rounding, -1, 1),
                  blink=blinks(frames, fps, seed), sway=sway(frames, fps, seed), level=level)


__all__ = ["Motion", "blinks", "decode_mono", "envelope", "frame_db", "loudness", "plan", "sway",
           "viseme", "viseme_track"]
