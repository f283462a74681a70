"""Find the lips in a face: their corners and their top and bottom, by colour.

Lips are redder than the skin around them, and that difference survives lighting better in
a perceptual colour space than in RGB: in CIE L*a*b* the lips stand out on the a* (green to
red) axis whatever their brightness. Inside a box about the mouth guess (from the eyes and
the darkest row, see ``face.locate``) the a* channel is split in two by Otsu's threshold;
the red parts near the middle of the box, merged (a smile's teeth split upper from lower
lip), are the lips. Their leftmost and rightmost columns are the corners.

Measured on the example faces the corners land within a few pixels of where a person would
put them; when the split finds nothing lip-shaped (a grey photo, a beard, lipstick the
colour of the skin) ``find_lips`` returns None and the caller keeps its proportional guess.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_WIDTH, MAX_WIDTH = 0.22, 0.46   # plausible mouth width, as shares of the face box width;
# wider is lips merged with red creases beside them (seen on an older face)
MAX_RISE = 0.04                     # corners at most this share of the face height off the line
MIN_CONTRAST = 6.0                  # a* units between lips and skin, below which it is a guess


@dataclass(frozen=True)
class Lips:
    left: tuple[float, float]       # corners, image pixels
    right: tuple[float, float]
    top: float                      # top of the upper lip
    bottom: float                   # bottom of the lower lip

    @property
    def width(self) -> float:
        return self.right[0] - self.left[0]

    @property
    def centre_x(self) -> float:
        return (self.left[0] + self.right[0]) / 2


def find_lips(image: np.ndarray, face_box: tuple[float, float, float, float],
              guess: tuple[float, float]) -> Lips | None:
    """The lips of the face in ``face_box`` (x, y, w, h) of an RGB ``image``, near ``guess``
    (the mouth centre), or None when they cannot be told from the skin."""
    import cv2

    if image.ndim != 3 or image.shape[2] < 3:
        return None
    _, _, w, h = face_box
    gx, gy = guess
    x0, x1 = int(max(0, gx - 0.34 * w)), int(min(image.shape[1], gx + 0.34 * w))
    y0, y1 = int(max(0, gy - 0.13 * h)), int(min(image.shape[0], gy + 0.15 * h))
    if x1 - x0 < 20 or y1 - y0 < 10:
        return None
    patch = np.ascontiguousarray(image[y0:y1, x0:x1, :3])
    a = cv2.GaussianBlur(cv2.cvtColor(patch, cv2.COLOR_RGB2LAB)[..., 1], (3, 3), 0)
    _, mask = cv2.threshold(a, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    red, rest = a[mask > 0], a[mask == 0]
    if red.size == 0 or rest.size == 0 or float(np.median(red)) - float(np.median(rest)) < MIN_CONTRAST:
        return None
    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(mask, connectivity=8)
    area_min = 0.004 * patch.shape[0] * patch.shape[1] + 4
    keep = np.zeros(count, bool)
    for i in range(1, count):
        cx, cy = centroids[i]
        if (stats[i, cv2.CC_STAT_AREA] >= area_min and abs(x0 + cx - gx) < 0.12 * w
                and abs(y0 + cy - gy) < 0.09 * h):
            keep[i] = True
    if not keep.any():
        return None
    ys, xs = np.nonzero(keep[labels])
    left, right = np.percentile(xs, 1), np.percentile(xs, 99)
    width = right - left
    if not MIN_WIDTH * w <= width <= MAX_WIDTH * w:
        return None
    edge = max(2.0, 0.06 * width)
    ly = float(ys[xs <= left + edge].mean())
    ry = float(ys[xs >= right - edge].mean())
    middle = np.abs(xs - (left + right) / 2) < 0.25 * width
    top, bottom = np.percentile(ys[middle], 3), np.percentile(ys[middle], 97)
    return Lips(left=(x0 + float(left), y0 + ly), right=(x0 + float(right), y0 + ry),
                top=y0 + float(top), bottom=y0 + float(bottom))


def line_rise(gray: np.ndarray, centre: tuple[float, float], half_width: float, face_h: float) -> float:
    """How far the line between the lips rises at the corners above its middle (pixels,
    negative when it falls): in each column across the mouth the darkest row near the
    middle's height (the shadow between the lips, or under a smile's teeth), then the
    parabola y = y0 + rise * t^2 (t = -1 .. 1 corner to corner) fitted to them."""
    import cv2

    cx, cy = centre
    # Not into the corners themselves, where creases beside the mouth are as dark.
    x0, x1 = int(cx - 0.75 * half_width), int(cx + 0.75 * half_width) + 1
    y0, y1 = int(cy - 0.05 * face_h), int(cy + 0.03 * face_h) + 1
    if x0 < 0 or y0 < 0 or x1 > gray.shape[1] or y1 > gray.shape[0] or y1 - y0 < 5:
        return 0.0
    patch = cv2.GaussianBlur(gray[y0:y1, x0:x1].astype(np.float32), (3, 5), 0)
    rows = y0 + np.argmin(patch, axis=0)
    t = (np.arange(x0, x1) - cx) / half_width
    rise = float(np.sum(t * t * (rows - cy)) / max(np.sum(t ** 4), 1e-6))
    return float(np.clip(rise, -MAX_RISE * face_h, MAX_RISE * face_h))


__all__ = ["Lips", "find_lips", "line_rise"]
