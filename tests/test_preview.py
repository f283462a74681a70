"""Contact sheets: evenly spaced frames of a video, tiled and stamped with their times."""

from __future__ import annotations

import av
import numpy as np
import pytest

from talkinghead.preview import GAP, contact_sheet, timestamp
from talkinghead.video import encode_mp4


def _video(path, frames: int, size=(320, 180), low: int = 30) -> None:
    """Each frame a flat grey whose level counts the frames up, so a tile tells its frame."""
    w, h = size
    levels = np.linspace(low, 220, frames)
    encode_mp4(path, (np.full((h, w, 3), int(v), np.uint8) for v in levels), duration_s=frames / 25,
               crf=10)


def _read_png(path) -> np.ndarray:
    with av.open(str(path)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def test_sheet_tiles_evenly_spaced_frames_with_times(tmp_path):
    _video(tmp_path / "v.mp4", 100)  # 4 s
    out = contact_sheet(tmp_path / "v.mp4", tmp_path / "sheet.png", columns=4, rows=3, width=640)
    assert out == tmp_path / "sheet.png"
    sheet = _read_png(out)
    tile_w = (640 - 5 * GAP) // 4
    tile_h = round(tile_w * 180 / 320)
    assert sheet.shape == (3 * tile_h + 4 * GAP, 640, 3)
    means = []
    for k in range(12):
        r, c = divmod(k, 4)
        y, x = GAP + r * (tile_h + GAP), GAP + c * (tile_w + GAP)
        tile = sheet[y:y + tile_h, x:x + tile_w]
        means.append(tile[:tile_h // 2].mean())           # above the label
        assert (tile[tile_h // 2:, :tile_w // 2] > 250).any()  # the white timestamp
    # Frames at the middle of 12 equal slices of 4 s: times 1/6 s, 1/2 s, ...; grey rises.
    expected = 30 + 190 * (np.array([(k + 0.5) * 100 / 12 for k in range(12)]) / 99)
    assert np.all(np.diff(means) > 0)
    assert np.abs(np.array(means) - expected).max() < 8


def test_a_clip_shorter_than_the_grid_gives_one_tile_per_frame(tmp_path):
    _video(tmp_path / "v.mp4", 5, low=100)
    sheet = _read_png(contact_sheet(tmp_path / "v.mp4", tmp_path / "s.png", width=640))
    tile_w = (640 - 5 * GAP) // 4
    tile_h = round(tile_w * 180 / 320)
    filled = [sheet[GAP + r * (tile_h + GAP) + 2, GAP + c * (tile_w + GAP) + tile_w // 2].max() > 60
              for r in range(3) for c in range(4)]
    assert filled == [True] * 5 + [False] * 7


def test_not_a_video_is_an_error(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    with pytest.raises((ValueError, av.error.FFmpegError)):
        contact_sheet(tmp_path / "a.wav", tmp_path / "s.png")
    assert not (tmp_path / "s.png").exists()


def test_timestamps():
    assert timestamp(0) == "0:00.0"
    assert timestamp(3.44) == "0:03.4"
    assert timestamp(75.25) == "1:15.2"
    assert timestamp(3725.0) == "1:02:05.0"
