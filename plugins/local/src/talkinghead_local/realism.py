"""Realism figures of a talking-head video, measured on the decoded MP4 alone.

Nothing here reads the renderer's state: the face is found again in the video's quiet
frame (the end of its quietest quarter second) with ``check_face``, and everything else comes
from the frames' luma and the file's own audio track. So the same figures can be put on any renderer's output (the bench
compares today's renderer with the one on ``main``).

* ``mouth_r``: Pearson r between the mouth's opening (dark pixels in a box about the lips,
  darker than the quietest frame's darkest 5% there, per pixel of mouth width) and the
  loudness (RMS dBFS of each frame's audio, floored at -60).
* ``chin_r``: Pearson r between the chin's downward shift (normalized cross-correlation of a
  patch under the lips, less the shift of the patch above them) and the same loudness.
* ``blinks_per_6s``: blinks: frames where the eye boxes differ from their own median over
  the 6 frames either side by more than 10x the clip's median difference and 30% of its
  largest (runs 3 frames apart counted apart).
* ``head_rms_px``: RMS of the upper face's shift (forehead to eyes, tracked the same way)
  about its mean, in pixels.
* ``mouth_edge_ratio`` / ``lid_edge_ratio``: "nothing pasted". The median luminance gradient
  (Sobel, per pixel) along the boundary of the most opened mouth (that darker region) and of a
  closing eyelid (the region that changed from a frame shortly before the blink), divided by
  the median gradient along the photo's own lip line (the boundary of the quiet frame's dark
  region in the same box) and lid line (same, in the eye box). A shape with a hard edge
  scores well above 1; a warp of the photo's own pixels stays near it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

FLOOR_DB = -60.0
DARKER = 40.0       # luma levels darker than the quiet frame: inside the opened mouth
SEARCH_PX = 12      # how far a tracked patch may move from the quiet frame
BLINK_WINDOW = 6    # frames either side of each frame whose median is the eye "as usual"
BLINK_RISE = 10.0   # a blinking eye differs from that by this many times the usual difference ...
BLINK_PEAK = 0.3    # ... and by this share of the clip's largest difference


@dataclass(frozen=True)
class Figures:
    seconds: float
    mouth_r: float
    chin_r: float
    blinks_per_6s: float
    head_rms_px: float
    mouth_edge_ratio: float
    lid_edge_ratio: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def decode(path: Path | str) -> tuple[np.ndarray, np.ndarray, float]:
    """(luma frames (n, h, w) float32, the first frame as RGB, fps) of a video."""
    import av

    with av.open(str(path), "r") as c:
        stream = c.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 25)
        frames, first = [], None
        for f in c.decode(video=0):
            if first is None:
                first = f.to_ndarray(format="rgb24")
            frames.append(f.to_ndarray(format="gray"))
    if first is None:
        raise ValueError(f"{path}: no video frames")
    return np.stack(frames).astype(np.float32), first, fps


def frame_loudness(path: Path | str, frames: int, fps: float) -> np.ndarray:
    """RMS level of the file's own audio per video frame, dBFS floored at FLOOR_DB."""
    import av

    with av.open(str(path)) as c:
        rate = c.streams.audio[0].rate
        samples = np.concatenate([f.to_ndarray().mean(axis=0) for f in c.decode(audio=0)])
    hop = rate / fps
    out = np.full(frames, FLOOR_DB)
    for i in range(frames):
        s = samples[int(i * hop):int((i + 1) * hop)]
        if s.size:
            out[i] = max(FLOOR_DB, 20 * math.log10(max(float(np.sqrt(np.mean(s ** 2))), 1e-6)))
    return out


def _box(frames: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    h, w = frames.shape[1:3]
    return frames[:, max(0, int(y0)):min(h, int(y1)), max(0, int(x0)):min(w, int(x1))]


def _shifts(patches: np.ndarray, ref: np.ndarray, margin: int = SEARCH_PX) -> np.ndarray:
    """(dx, dy) of the middle of ``ref`` in each patch, by normalized cross-correlation
    within ``margin`` pixels, to a tenth of a pixel (a parabola through the peak)."""
    import cv2

    margin = max(2, min(margin, ref.shape[0] // 4, ref.shape[1] // 4))  # small faces: less
    template = np.ascontiguousarray(ref[margin:-margin, margin:-margin])
    out = np.zeros((len(patches), 2))
    for i, p in enumerate(patches):
        score = cv2.matchTemplate(np.ascontiguousarray(p), template, cv2.TM_CCOEFF_NORMED)
        _, _, _, (px, py) = cv2.minMaxLoc(score)
        sub = []
        h, w = score.shape
        for v, lo, hi in ((px, score[py, px - 1] if px > 0 else None, score[py, px + 1] if px + 1 < w else None),
                          (py, score[py - 1, px] if py > 0 else None, score[py + 1, px] if py + 1 < h else None)):
            c = score[py, px]
            if lo is None or hi is None or lo + hi - 2 * c == 0:
                sub.append(float(v))
            else:
                sub.append(v + 0.5 * (lo - hi) / (lo + hi - 2 * c))
        out[i] = (sub[0] - margin, sub[1] - margin)
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _gradient(image: np.ndarray) -> np.ndarray:
    import cv2

    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3) / 8
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3) / 8
    return np.hypot(gx, gy)


def _largest(mask: np.ndarray) -> np.ndarray:
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return np.zeros_like(mask, bool)
    largest: np.ndarray = labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return largest


def edge_gradient(image: np.ndarray, mask: np.ndarray) -> float:
    """Median gradient of ``image`` along the boundary of the largest region of ``mask``."""
    import cv2

    region = _largest(mask).astype(np.uint8)
    if not region.any():
        return float("nan")
    kernel = np.ones((3, 3), np.uint8)
    band = (cv2.dilate(region, kernel) - cv2.erode(region, kernel)) > 0
    return float(np.median(_gradient(image)[band]))


def measure(path: Path | str) -> Figures:
    """The figures above for one MP4 with a face and an audio track."""
    from .face import check_face

    luma, _, fps = decode(path)
    n = len(luma)
    loud = frame_loudness(path, n, fps)
    # The quiet frame: the one with the quietest quarter second up to it (the mouth closes
    # over a few frames after a sound, so the quietest single frame may still be open).
    rest = int(np.argmin([loud[max(0, i - 6):i + 1].max() for i in range(n)]))
    import av

    with av.open(str(path)) as c:
        for i, f in enumerate(c.decode(video=0)):
            if i == rest:
                face = check_face(f.to_ndarray(format="rgb24"))
                break
    x, y, w, h = face.x, face.y, face.w, face.h
    mx, my = face.mouth
    mw = face.mouth_width

    # Head: the upper face's shift against the quiet frame (brows and eyes give it texture).
    forehead = _box(luma, x + 0.15 * w, y + 0.05 * h, x + 0.85 * w, y + 0.45 * h)
    head = _shifts(forehead, forehead[rest])
    head_rms = float(np.sqrt(np.mean(np.sum((head - head.mean(axis=0)) ** 2, axis=1))))

    # Above the lips (nose to upper lip) moves with the head but not the jaw; the mouth
    # and chin are measured against it (nearer the neck, they sway less than the brows).
    upper = _box(luma, mx - 0.6 * mw, my - 0.24 * h, mx + 0.6 * mw, my - 0.05 * h)
    still = _shifts(upper, upper[rest])

    # Chin: the patch under the lips, against the quiet frame, less that shift.
    chin = _box(luma, mx - 0.35 * w, my + 0.10 * h, mx + 0.35 * w, my + 0.32 * h)
    chin_dy = _shifts(chin, chin[rest])[:, 1] - still[:, 1]

    # Mouth: the pixels about the lips much darker than in the quiet frame (moved by the
    # shift above the lips, so the sway itself darkens nothing): the opening.
    box = (mx - 0.6 * mw, my - 0.06 * h, mx + 0.6 * mw, my + 0.18 * h)
    mouth = _box(luma, *box)
    opened = np.zeros(mouth.shape, bool)
    for i in range(n):
        dx, dy = (round(float(v)) for v in still[i])
        ref = _box(luma[rest:rest + 1], box[0] - dx, box[1] - dy, box[2] - dx, box[3] - dy)[0]
        if ref.shape == mouth.shape[1:]:
            opened[i] = ref - mouth[i] > DARKER
    opening = opened.sum(axis=(1, 2)) / max(1.0, mw)
    widest = int(np.argmax(opening))
    dark = float(np.percentile(mouth[rest], 5))
    mouth_ratio = (edge_gradient(mouth[widest], opened[widest])
                   / edge_gradient(mouth[rest], mouth[rest] < dark))

    # Eyes: how far each eye box is from the same box's median over the frames around it
    # (sway moves it by a pixel or so in that time; a blink changes the whole eye).
    es = face.eye_size
    eyes = [_box(luma, ex - 0.45 * es, ey - 0.3 * es, ex + 0.45 * es, ey + 0.3 * es)
            for ex, ey in (face.left_eye, face.right_eye)]
    change = np.zeros(n)
    for e in eyes:
        for i in range(n):
            near = e[max(0, i - BLINK_WINDOW):i + BLINK_WINDOW + 1]
            change[i] += float(np.abs(e[i] - np.median(near, axis=0)).mean())
    closed = change > max(BLINK_RISE * np.median(change), BLINK_PEAK * change.max())
    starts = [i for i in range(n) if closed[i] and not closed[max(0, i - 3):i].any()]
    lid_ratio = float("nan")
    if starts:
        # A closing lid: the first changed frame of the first blink with open frames before it.
        start = next((s for s in starts if s >= 6), starts[0])
        before = max(0, start - 6)
        ratios = []
        for e in eyes:
            changed = np.abs(e[start] - e[before]) > 12
            ratios.append(edge_gradient(e[start], changed)
                          / edge_gradient(e[before], e[before] < np.percentile(e[before], 20)))
        lid_ratio = float(np.nanmean(ratios))
    return Figures(seconds=n / fps, mouth_r=_pearson(opening, loud), chin_r=_pearson(chin_dy, loud),
                   blinks_per_6s=len(starts) * 6 / (n / fps), head_rms_px=head_rms,
                   mouth_edge_ratio=float(mouth_ratio), lid_edge_ratio=lid_ratio)


__all__ = ["Figures", "decode", "edge_gradient", "frame_loudness", "measure"]
