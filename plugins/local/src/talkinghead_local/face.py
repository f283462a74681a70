"""Find the one face in a photo with OpenCV's bundled Haar cascades, and place its features.

``check_face(image)`` returns a ``Face`` (box, eyes, mouth) or raises ``InputError`` on the
field ``image`` with the reason: no face, more than one, or a face too small to animate.
It is fast enough to run before any rendering or spending: detection runs on the photo
shrunk to at most 640 px, and only the face box is searched for eyes.

The cascades are a 2001-era detector, so the rules around them are deliberate:

* a detection counts as a face when the cascade is confident (its final-stage weight) and,
  unless it is very confident, an eye is found inside it: texture on clothes and walls
  fires the face cascade now and then, but seldom the eye cascade too;
* detections less than a third the width of the largest face are taken for background
  (a poster, a crowd far behind) and ignored: the renderer animates one face, the largest;
* when the eyes are not found they are placed by the usual proportions of the box, and the
  mouth is placed from the eyes and then snapped to the darkest row near that guess (the
  line between the lips is the darkest horizontal feature of the lower face).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.errors import InputError

from .lips import find_lips, line_rise

MIN_FACE_PX = 80
DETECT_SIDE = 640         # long side of the detection image; enough for a face >= 80 px
CASCADE_WINDOW = 24       # the frontal cascade's smallest window, in detection pixels
SMALLEST_FACE_PX = 40     # smaller faces are not looked for ("no face found")
MIN_WEIGHT = 2.5          # final-stage weight of a plausible face
SURE_WEIGHT = 5.0         # above this no eye is needed to believe it
BACKGROUND_RATIO = 1 / 3  # faces narrower than this share of the largest are background
MOUTH_WIDTH = 0.38        # mouth width / face box width, when the lips are not found


@dataclass(frozen=True)
class Face:
    """One face, in the pixel coordinates of the image it was found in."""

    x: float
    y: float
    w: float
    h: float
    left_eye: tuple[float, float]   # centres; "left" is the image's left
    right_eye: tuple[float, float]
    eye_size: float                 # side of an eye box (about the eye plus its lid)
    eyes_found: bool
    mouth: tuple[float, float]      # centre of the line between the lips
    mouth_width: float
    image_size: tuple[int, int]     # (width, height)
    weight: float = 0.0             # the cascade's confidence
    # Found by colour: top of the upper lip, bottom of the lower; then the height of the
    # line between the lips at the left and right corners (a smile lifts them).
    lips: tuple[float, float, float, float] | None = None

    @property
    def width(self) -> int:
        return round(self.w)

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def mapped(self, sx: float, sy: float, ox: float, oy: float,
               image_size: tuple[int, int]) -> Face:
        """This face after the image is scaled by (sx, sy) and shifted by (ox, oy)."""
        def pt(p: tuple[float, float]) -> tuple[float, float]:
            return p[0] * sx + ox, p[1] * sy + oy

        return replace(self, x=self.x * sx + ox, y=self.y * sy + oy, w=self.w * sx,
                       h=self.h * sy, left_eye=pt(self.left_eye), right_eye=pt(self.right_eye),
                       eye_size=self.eye_size * sx, mouth=pt(self.mouth),
                       mouth_width=self.mouth_width * sx, image_size=image_size,
                       lips=None if self.lips is None else (self.lips[0] * sy + oy, self.lips[1] * sy + oy,
                                                            self.lips[2] * sy + oy, self.lips[3] * sy + oy))


@functools.cache
def _cascade(name: str) -> Any:
    import cv2
    import cv2.data  # the bundled cascade files (a submodule the stubs know only by import)

    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + name)
    if cascade.empty():  # a broken OpenCV install, not a user error
        raise RuntimeError(f"OpenCV's {name} could not be loaded from {cv2.data.haarcascades}")
    return cascade


def _gray(image: np.ndarray) -> np.ndarray:
    import cv2

    if image.ndim == 2:
        return image
    code = cv2.COLOR_RGBA2GRAY if image.shape[2] == 4 else cv2.COLOR_RGB2GRAY
    return cv2.cvtColor(np.ascontiguousarray(image), code)


def _detect(gray: np.ndarray, scale: float) -> list[tuple[np.ndarray, float]]:
    """Face boxes (x, y, w, h in original pixels) with weights, found at ``scale``."""
    import cv2

    small = gray
    if scale < 1:
        small = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)),
                                  max(1, round(gray.shape[0] * scale))), interpolation=cv2.INTER_AREA)
    small = cv2.equalizeHist(small)  # evens out lighting, as the cascade was trained on
    # Faces under half the minimum are not looked for: they could only be refused, and the
    # smallest windows are most of the work.
    least = max(CASCADE_WINDOW, round(SMALLEST_FACE_PX * scale))
    boxes, _, weights = _cascade("haarcascade_frontalface_default.xml").detectMultiScale3(
        small, scaleFactor=1.1, minNeighbors=5, minSize=(least, least), outputRejectLevels=True)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4) / scale
    return list(zip(boxes, np.asarray(weights, dtype=np.float64).ravel(), strict=True))


def _eyes(gray: np.ndarray, box: np.ndarray, cascade: str = "haarcascade_eye.xml",
          equalize: bool = True, neighbours: int = 3) -> list[tuple[float, float, float]]:
    """Eyes in the upper part of a face box: (cx, cy, side), in image pixels."""
    import cv2

    x, y, w, h = (round(v) for v in box)
    x0, y0 = max(0, x), max(0, y)
    roi = gray[y0:y + int(h * 0.62), x0:x + w]
    if roi.size == 0:
        return []
    # Eye search needs some pixels: shrink big faces, enlarge small ones to ~200 px wide.
    k = 200.0 / max(1, roi.shape[1])
    roi = cv2.resize(roi, (max(1, round(roi.shape[1] * k)), max(1, round(roi.shape[0] * k))),
                     interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    found = _cascade(cascade).detectMultiScale(
        cv2.equalizeHist(roi) if equalize else roi, scaleFactor=1.1, minNeighbors=neighbours,
        minSize=(20, 20), maxSize=(110, 110))
    return [(x0 + (ex + ew / 2) / k, y0 + (ey + eh / 2) / k, ew / k)
            for ex, ey, ew, eh in np.asarray(found).reshape(-1, 4)]


Eye = tuple[float, float, float]


def _eye_pair(eyes: list[Eye], box: np.ndarray) -> tuple[Eye, Eye] | None:
    """The best left/right pair: one each side of the box's middle, at similar heights."""
    x, y, w, h = box
    mid = x + w / 2
    left = [e for e in eyes if e[0] < mid and e[1] < y + 0.55 * h]
    right = [e for e in eyes if e[0] >= mid and e[1] < y + 0.55 * h]
    best: tuple[Eye, Eye] | None = None
    best_cost = float("inf")
    for le in left:
        for re in right:
            cost = abs(le[1] - re[1]) / h + abs((re[0] - le[0]) / w - 0.45)
            if cost < best_cost and abs(le[1] - re[1]) < 0.15 * h:
                best, best_cost = (le, re), cost
    return best


def _lip_line(gray: np.ndarray, cx: float, guess_y: float, w: float, h: float) -> float:
    """The darkest row near ``guess_y`` across the middle of the mouth, or the guess."""
    y0, y1 = int(guess_y - 0.10 * h), int(guess_y + 0.10 * h) + 1
    x0, x1 = int(cx - 0.12 * w), int(cx + 0.12 * w) + 1
    if y0 < 0 or x0 < 0 or y1 > gray.shape[0] or x1 > gray.shape[1] or y1 - y0 < 5:
        return guess_y
    rows = gray[y0:y1, x0:x1].astype(np.float32).mean(axis=1)
    rows = np.convolve(rows, np.ones(3) / 3, mode="same")[1:-1]
    i = int(np.argmin(rows))
    median = float(np.median(rows))
    # Only trust a clear dark line; a flat profile (beard, shadow) keeps the proportional guess.
    if median - rows[i] < 8:
        return guess_y
    # A smile showing teeth: the darkest row is the upper lip's edge and a bright band follows.
    # The mouth then opens below the teeth, so the upper teeth stay with the upper jaw.
    j, reach = i + 1, i + 1 + max(3, int(0.04 * h))
    while j < min(len(rows), reach) and rows[j] <= median + 12:
        j += 1
    run = j
    while run < len(rows) and rows[run] > median + 12:
        run += 1
    if run - j >= 2 and run < len(rows):
        i = run
    return float(y0 + 1 + i)


def locate(gray: np.ndarray, box: np.ndarray, weight: float,
           image: np.ndarray | None = None) -> Face:
    """Eyes and mouth for one face box; the lips' corners and extent too when ``image``
    (RGB) is given and they can be told from the skin by colour (see ``lips.py``)."""
    x, y, w, h = (float(v) for v in box)
    pair = _eye_pair(_eyes(gray, box), box)
    if pair is None:
        # Glasses: their rims and tint hide the eyes from the plain cascade; OpenCV's
        # eyeglasses cascade, on the unequalized face (equalizing brightens the lens glare),
        # finds them, less surely: any single hit counts, as the pair must still line up.
        pair = _eye_pair(_eyes(gray, box, "haarcascade_eye_tree_eyeglasses.xml", False, 1), box)
    if pair is not None:
        (lx, ly, ls), (rx, ry, rs) = pair
        eye_size = (ls + rs) / 2
    else:  # the usual proportions of a frontal-face cascade box
        lx, rx, ly = x + 0.30 * w, x + 0.70 * w, y + 0.38 * h
        ry, eye_size = ly, 0.25 * w
    cx, eye_y = (lx + rx) / 2, (ly + ry) / 2
    guess = min(eye_y + 0.95 * (rx - lx), y + 0.90 * h)
    mouth_y = _lip_line(gray, cx, guess, w, h)
    lips = find_lips(image, (x, y, w, h), (cx, mouth_y)) if image is not None else None
    mouth_x, width, extent = cx, MOUTH_WIDTH * w, None
    if lips is not None:
        mouth_x, width = lips.centre_x, lips.width
        mouth_y = _lip_line(gray, mouth_x, mouth_y, w, h)
        corner = mouth_y + line_rise(gray, (mouth_x, mouth_y), width / 2, h)
        extent = (lips.top, lips.bottom, corner, corner)
    return Face(x=x, y=y, w=w, h=h, left_eye=(lx, ly), right_eye=(rx, ry), eye_size=eye_size,
                eyes_found=pair is not None, mouth=(mouth_x, mouth_y), mouth_width=width,
                image_size=(gray.shape[1], gray.shape[0]), weight=float(weight), lips=extent)


def find_faces(image: np.ndarray) -> list[Face]:
    """Every face the rules above accept, largest first (no size check)."""
    gray = _gray(image)
    long_side = max(gray.shape)
    scale = min(1.0, DETECT_SIDE / long_side)
    found = _detect(gray, scale)
    if not found and scale < 1:
        # A big photo with a small face: look again where a 40 px face is cascade-sized.
        retry = min(1.0, CASCADE_WINDOW / SMALLEST_FACE_PX)
        if retry > scale:
            found = _detect(gray, retry)
    found = [(b, wt) for b, wt in found if wt >= MIN_WEIGHT]
    found.sort(key=lambda bw: -bw[0][2])
    kept: list[tuple[np.ndarray, float]] = []
    for box, wt in found:  # drop a box nested in a bigger one: the same face seen twice
        cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
        if not any(k[0] <= cx <= k[0] + k[2] and k[1] <= cy <= k[1] + k[3] for k, _ in kept):
            kept.append((box, wt))
    faces = []
    for box, wt in kept:
        face = locate(gray, box, wt, image if image.ndim == 3 else None)
        if face.eyes_found or wt >= SURE_WEIGHT:
            faces.append(face)
    if faces:
        largest = faces[0].w
        faces = [f for f in faces if f.w >= BACKGROUND_RATIO * largest]
    return faces


def check_face(image: np.ndarray | Path | str | bytes, *, min_width: int = MIN_FACE_PX) -> Face:
    """The one face in ``image`` (an RGB/RGBA/gray array, or a jpg/png path or bytes).

    Raises ``InputError`` (field ``image``) when there is no face, more than one, or the face
    is narrower than ``min_width`` pixels of the original photo.
    """
    if not isinstance(image, np.ndarray):
        from talkinghead.video import load_image

        image = load_image(image)
    faces = find_faces(image)
    if not faces:
        raise InputError("image", "no face found", value=0, limit=1)
    if len(faces) > 1:
        raise InputError("image", f"{len(faces)} faces found; exactly one is needed",
                         value=len(faces), limit=1)
    face = faces[0]
    if face.width < min_width:
        raise InputError("image", f"the face is {face.width} px wide; at least {min_width} px "
                         "is needed", value=face.width, limit=min_width)
    return face


__all__ = ["MIN_FACE_PX", "Face", "check_face", "find_faces", "locate"]
