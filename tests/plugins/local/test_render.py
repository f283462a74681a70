"""Rendering: framing, the quality test (mouth follows loudness, shut in silence), the MP4
itself, cancellation."""

from __future__ import annotations

import av
import numpy as np
import pytest

from talkinghead.video import audio_duration, probe_video
from talkinghead_local import render as R
from talkinghead_local.face import check_face

from .conftest import FACE

FPS = 25


@pytest.mark.parametrize("aspect, size", [("16:9", (1280, 720)), ("9:16", (720, 1280)),
                                          ("1:1", (720, 720))])
def test_default_frame_sizes_and_face_framing(face_rgb, aspect, size):
    assert R.frame_dims(aspect) == size
    animator, _ = R.prepare_scene(face_rgb, aspect)
    assert animator.static.shape == (size[1], size[0], 3)
    f = animator.face
    # The face is whole inside the frame, about a third of the short side, above the middle.
    assert 0 <= f.x and f.x + f.w <= size[0] and 0 <= f.y and f.y + f.h <= size[1]
    assert 0.25 <= f.h / min(size) <= 0.5
    assert f.center[1] < 0.55 * size[1]
    # The head region is what changes per frame; it is a part of the frame, not all of it.
    x0, y0, x1, y1 = animator.box
    assert (x1 - x0) * (y1 - y0) < 0.6 * size[0] * size[1]


def test_resolution_setting():
    assert R.frame_dims("16:9", 360) == (640, 360)
    assert R.frame_dims("9:16", "480") == (480, 854)
    assert R.frame_dims("1:1", "1080x1080") == (1080, 1080)
    with pytest.raises(ValueError):
        R.frame_dims("16:9", "641x360")


def test_area_the_photo_cannot_cover_is_filled_not_banded(face_rgb):
    narrow = np.ascontiguousarray(face_rgb[:, 90:350])  # a portrait crop, too narrow for 16:9
    animator, lay = R.prepare_scene(narrow, "16:9", 360)
    x, _, cw, _ = lay.crop
    assert cw == narrow.shape[1]                        # the whole width is used ...
    left = int(lay.offset[0] + x * lay.scale[0])
    assert left > 20                                    # ... and still leaves the sides
    frame = animator.static.astype(np.float32)
    fill = frame[:, :left - 2]
    assert fill.std(axis=(0, 1)).min() > 3              # not a flat band
    assert np.abs(np.diff(fill.mean(axis=(1, 2)))).max() < 12  # soft, no hard stripes
    assert fill.mean() < frame[:, left + 5:].mean()     # a little darker than the photo
    # No hard edge where the photo meets the fill (unblurred, one column steps by ~30 here):
    # columns change gradually across it.
    columns = frame[:, left - 12:left + 12].mean(axis=(0, 2))
    assert np.abs(np.diff(columns)).max() < 10, np.abs(np.diff(columns)).max()


def _luma(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="gray") for f in c.decode(video=0)]).astype(np.float32)


def _audio_db(path, frames: int) -> np.ndarray:
    """Loudness of the output's own audio track per video frame (RMS, dBFS, floor -60)."""
    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    hop = rate / FPS
    out = np.full(frames, -60.0)
    for i in range(frames):
        s = samples[int(i * hop):int((i + 1) * hop)]
        if s.size:
            out[i] = max(-60.0, 20 * np.log10(max(np.sqrt(np.mean(s ** 2)), 1e-6)))
    return out


def test_quality_mouth_follows_loudness_and_is_shut_in_silence(face_rgb, clips, tmp_path):
    """Render the example speech with silent gaps, and the same length of silence with the
    same seed (so sway and blinks are identical): the difference in the mouth region is
    what the audio did to the mouth."""
    face = check_face(face_rgb)
    spoken = R.render(face_rgb, clips["gaps"], tmp_path / "gaps.mp4", aspect_ratio="1:1",
                      resolution=360, face=face)
    silent = R.render(face_rgb, clips["quiet"], tmp_path / "quiet.mp4", aspect_ratio="1:1",
                      resolution=360, face=face)
    a, b = _luma(spoken.path), _luma(silent.path)
    assert a.shape == b.shape
    f = spoken.face
    mx, my = f.mouth
    x0, x1 = int(mx - 0.6 * f.mouth_width), int(mx + 0.6 * f.mouth_width)
    y0, y1 = int(my - 0.1 * f.h), int(my + 0.25 * f.h)
    change = np.abs(a[:, y0:y1, x0:x1] - b[:, y0:y1, x0:x1]).mean(axis=(1, 2))
    loud = _audio_db(spoken.path, len(change))

    r = np.corrcoef(change, loud)[0, 1]
    assert r >= 0.6, f"Pearson r {r:.3f}"
    # In sync: the best match is at no lag, or one frame of release behind.
    n = len(change)
    lags = {lag: np.corrcoef(change[max(0, lag):n + min(0, lag)],
                             loud[max(0, -lag):n - max(0, lag)])[0, 1] for lag in range(-3, 4)}
    assert max(lags, key=lags.get) in (0, 1), lags

    # Silent stretches (from 0.25 s after a sound to the next one): shut, i.e. no more
    # different from the silent render than encoder noise. Speech frames: clearly open.
    silent_frames = loud <= -59
    settled = np.array([silent_frames[max(0, i - 6):i + 1].all() for i in range(len(loud))])
    assert settled.sum() > 30
    assert change[settled].max() < 4.0, change[settled].max()
    assert np.median(change[loud > -30]) > 10


def test_output_is_h264_aac_as_long_as_the_audio(clips, tmp_path):
    seconds = audio_duration(clips["short"])
    out = R.render(FACE, clips["short"], tmp_path / "short.mp4", aspect_ratio="16:9")  # default 720
    info = probe_video(out.path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == (1280, 720)
    assert info.video_codec == "h264" and info.audio_codec == "aac" and info.pix_fmt == "yuv420p"
    assert info.fps == FPS
    assert abs(info.frame_count / FPS - seconds) <= 1 / FPS
    assert abs(info.audio_duration_s - seconds) <= 1 / FPS
    assert out.frames == info.frame_count
    head = out.path.read_bytes()[:64 * 1024]
    assert head.find(b"moov") != -1 and head.find(b"moov") < max(head.find(b"mdat"), 1 << 30)  # faststart


def test_phonemes_drive_the_mouth_shapes(face_rgb, clips, tmp_path):
    from talkinghead.tts import Phoneme

    shut = [Phoneme("m", 0.0, 2.5)]  # loud audio, but the lips are pressed together
    out = R.render(face_rgb, clips["short"], tmp_path / "m.mp4", aspect_ratio="1:1",
                   resolution=240, phonemes=shut)
    assert out.motion.open.max() == 0.0


def test_cancel_stops_between_frames_and_leaves_no_file(face_rgb, clips, tmp_path):
    seen = []
    out = tmp_path / "cancelled.mp4"
    with pytest.raises(R.RenderCancelled):
        R.render(face_rgb, clips["gaps"], out, aspect_ratio="1:1", resolution=240,
                 should_stop=lambda: len(seen) >= 10, on_frame=lambda done, total: seen.append(done))
    assert 10 <= len(seen) < 30 and seen == list(range(1, len(seen) + 1))
    assert not out.exists() and not list(tmp_path.glob("*.part"))
