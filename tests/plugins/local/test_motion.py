"""Motion planning: the envelope, visemes, blinks and sway, from audio and phonemes."""

from __future__ import annotations

import numpy as np

from talkinghead.tts import Phoneme
from talkinghead_local import motion

FPS = 25


def test_envelope_attacks_fast_and_releases_slowly():
    level = np.zeros(40)
    level[10:20] = 1.0
    env = motion.envelope(level, FPS)
    assert env[10] > 0.9                      # open within the first frame of sound
    assert env[20] < env[19] and env[20] > 0.4  # closes over frames, not at once
    assert env[30] < 0.01                     # and is shut 0.4 s later


def test_silence_keeps_the_mouth_exactly_shut(clips):
    plan = motion.plan(clips["quiet"], 100, FPS)
    assert not plan.open.any() and not plan.level.any()


def test_mouth_follows_loudness_and_shuts_in_gaps(clips):
    from talkinghead.video import audio_duration

    n = round(audio_duration(clips["gaps"]) * FPS)
    plan = motion.plan(clips["gaps"], n, FPS)
    assert plan.frames == n
    assert not plan.open[:14].any()           # the leading 0.6 s of silence
    speech = plan.open[16:180]
    assert speech.mean() > 0.3 and speech.std() > 0.15  # opens, and not uniformly
    assert 0 < plan.open.max() <= 1


def test_visemes_shut_the_lips_on_m_and_open_them_on_a():
    assert motion.viseme("m") == (0.0, 0.0)
    assert motion.viseme("'a") == motion.viseme("a")     # stress marks are ignored
    assert motion.viseme("_:") == (0.0, 0.0)             # pauses are shut
    assert motion.viseme("oU")[1] > 0.5                  # rounded
    ph = [Phoneme("m", 0.0, 0.2), Phoneme("'a", 0.2, 0.5), Phoneme("b", 0.5, 0.53),
          Phoneme("a", 0.53, 0.8)]
    opening, _ = motion.viseme_track(ph, 20, FPS)
    assert opening[:4].max() == 0.0                      # "m" frames shut
    assert opening[8] > 0.9                              # "a" open
    b = int(0.515 * FPS)
    assert opening[b] == 0.0                             # a "b" shorter than a frame still shuts


def test_phonemes_shape_the_opening_within_loud_speech(clips):
    # Loud throughout, but the phonemes say: lips shut for the first half second.
    n = 50
    ph = [Phoneme("m", 0.0, 0.5), Phoneme("a", 0.5, 2.0)]
    plan = motion.plan(clips["short"], n, FPS, phonemes=ph)
    loud_only = motion.plan(clips["short"], n, FPS)
    assert plan.open[3:12].max() == 0.0
    assert loud_only.open[3:12].max() > 0.3
    assert plan.open[15:45].mean() > 0.2


def test_blinks_every_2_to_6_seconds_lasting_about_150_ms():
    n = 60 * FPS
    blink = motion.blinks(n, FPS, seed=3)
    shut = blink > 0
    starts = np.flatnonzero(shut[1:] & ~shut[:-1]) + 1
    assert 10 <= len(starts) <= 30
    gaps = np.diff(starts) / FPS
    assert gaps.min() >= 2.0 - 0.05 and gaps.max() <= 6.0 + 0.05
    lengths = [int(np.argmin(shut[s:])) for s in starts[:-1]]
    assert all(3 <= k <= 4 for k in lengths)             # 120-160 ms at 25 fps
    assert all(blink[s:s + k].max() == 1.0 for s, k in zip(starts, lengths, strict=False))
    assert np.array_equal(blink, motion.blinks(n, FPS, seed=3))      # deterministic
    assert not np.array_equal(blink, motion.blinks(n, FPS, seed=4))


def test_sway_is_slight_and_smooth():
    sway = motion.sway(30 * FPS, FPS, seed=0)
    assert np.degrees(np.abs(sway[:, 0]).max()) <= motion.SWAY_DEG
    assert np.abs(sway[:, 1]).max() <= motion.SWAY_SHIFT
    assert np.abs(np.diff(sway[:, 0])).max() < np.radians(0.1)  # no jumps between frames
    assert np.degrees(np.ptp(sway[:, 0])) > 0.3               # but it does move
