"""Framing: where the photo goes in the frame, and the static frame around the face.

Framing crops the photo around the face to the aspect ratio (the face about a third of the
frame's short side, a little above the middle), shrinking the crop to stay inside the photo
while the face is not too big for it; what the photo still cannot cover is filled by
``talkinghead.video.frame_image`` with a blurred, slightly darkened continuation of the
photo, and the seams between the two are blurred.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from talkinghead import video

from .face import Face

DEFAULT_RESOLUTION = 720      # short side: 1280x720, 720x1280, 720x720
FACE_SHARE = 0.30             # face box height / frame's short side, when the photo allows
MAX_FACE_SHARE = 0.50         # zoom in this far to avoid filling, no further
FACE_CENTRE = 0.45            # face centre height in the frame (a little headroom) ...
FACE_CENTRE_PORTRAIT = 0.36   # ... and higher in a portrait frame, with the chest below
FILL_DARKEN = 0.75            # brightness of the fill beside a photo that does not cover the frame
SEAM = 0.02                   # half-width of the blur across the photo's edge, of the short side


@dataclass(frozen=True)
class Layout:
    crop: tuple[int, int, int, int]   # x, y, width, height of the photo's part shown
    size: tuple[int, int]             # frame (width, height)
    scale: tuple[float, float]        # photo px -> frame px
    offset: tuple[float, float]       # where the crop's corner lands in the frame


def frame_dims(aspect_ratio: str, resolution: int | str | tuple[int, int] | None = None) -> tuple[int, int]:
    """(width, height) for an aspect ratio: ``resolution`` is the short side (720 gives
    1280x720, 720x1280, 720x720), or an explicit "WxH" / (w, h) of even numbers."""
    if resolution is None:
        resolution = DEFAULT_RESOLUTION
    if isinstance(resolution, str):
        text = resolution.strip().lower()
        if "x" in text:
            w, _, h = text.partition("x")
            resolution = (int(w), int(h))
        else:
            resolution = int(text.rstrip("p"))
    if isinstance(resolution, tuple):
        width, height = (int(v) for v in resolution)
        if width < 16 or height < 16 or width % 2 or height % 2:
            raise ValueError(f"resolution {width}x{height}: both sides must be even and at least 16")
        return width, height
    if resolution < 16:
        raise ValueError(f"resolution {resolution}: the short side must be at least 16 px")
    return video.frame_size(aspect_ratio, int(resolution))


def layout(photo_size: tuple[int, int], face: Face, size: tuple[int, int]) -> Layout:
    """Where the photo goes in a frame of ``size`` so the face is framed like a presenter."""
    pw, ph = photo_size
    width, height = size
    aspect, short = width / height, min(width, height)
    cx, cy = face.center
    # The crop window (photo px) at the preferred face size, then shrunk (zooming in) while
    # it is bigger than the photo, as long as the face stays within MAX_FACE_SHARE.
    win_h = face.h * height / (FACE_SHARE * short)
    fit = min(pw / (win_h * aspect), ph / win_h, 1.0)
    win_h = max(win_h * fit, face.h * height / (MAX_FACE_SHARE * short))
    cw, ch = min(pw, round(win_h * aspect)), min(ph, round(win_h))
    centre = FACE_CENTRE if width >= height else FACE_CENTRE_PORTRAIT
    x = round(min(max(cx - cw / 2, 0), pw - cw))
    y = round(min(max(cy - centre * ch, 0), ph - ch))
    # frame_image contains the crop: scaled to fit, centred (same arithmetic as there).
    s = min(width / cw, height / ch)
    fw, fh = max(1, round(cw * s)), max(1, round(ch * s))
    return Layout(crop=(x, y, cw, ch), size=size, scale=(fw / cw, fh / ch),
                  offset=((width - fw) // 2 - x * fw / cw, (height - fh) // 2 - y * fh / ch))


def background(photo: np.ndarray, lay: Layout, aspect_ratio: str) -> np.ndarray:
    """The static frame: the crop framed by ``video.frame_image`` (which fills what the crop
    leaves uncovered with a blurred continuation of it), the fill only a little darker than
    the photo and the seams between them blurred, so the fill reads as out-of-focus
    surroundings rather than as bands."""
    import cv2

    x, y, cw, ch = lay.crop
    crop = np.ascontiguousarray(photo[y:y + ch, x:x + cw])
    code = cv2.COLOR_RGBA2BGRA if crop.shape[2] == 4 else cv2.COLOR_RGB2BGR
    ok, png = cv2.imencode(".png", cv2.cvtColor(crop, code), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise RuntimeError("could not encode the cropped photo")
    frame = video.frame_image(png.tobytes(), aspect_ratio, lay.size, darken=FILL_DARKEN)
    width, height = lay.size
    left, top = round(lay.offset[0] + x * lay.scale[0]), round(lay.offset[1] + y * lay.scale[1])
    right, bottom = left + round(cw * lay.scale[0]), top + round(ch * lay.scale[1])
    f = max(2, round(SEAM * min(width, height)))
    for edge, size, axis in ((left, width, 1), (right, width, 1), (top, height, 0), (bottom, height, 0)):
        if 0 < edge < size:
            _soften_seam(frame, edge, f, axis)
    return frame


def _soften_seam(frame: np.ndarray, edge: int, f: int, axis: int) -> None:
    """Blur across a straight seam at ``edge`` along ``axis`` (1: a vertical seam), fully at
    the seam and not at all ``f`` pixels either side."""
    import cv2

    lo, hi = max(0, edge - f), min(frame.shape[axis], edge + f)
    band = frame[:, lo:hi] if axis == 1 else frame[lo:hi]
    kernel = (2 * f + 1, 1) if axis == 1 else (1, 2 * f + 1)
    blurred = cv2.blur(band, kernel, borderType=cv2.BORDER_REFLECT).astype(np.float32)
    w = 1 - np.abs(np.arange(lo, hi) + 0.5 - edge) / f
    w = (w[None, :, None] if axis == 1 else w[:, None, None]).astype(np.float32)
    band[:] = (band * (1 - w) + blurred * w + 0.5).astype(np.uint8)


__all__ = ["DEFAULT_RESOLUTION", "Layout", "background", "frame_dims", "layout"]
