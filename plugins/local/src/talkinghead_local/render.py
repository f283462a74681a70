"""Draw and encode the talking head: the per-frame warp and the MP4 (framing, where the
photo goes in the frame, is ``framing.py``).

Each frame is the static framed photo with one region rewritten: the head, through one
``cv2.remap`` of its luma and one of its half-size chroma, by a displacement field that sums

* the sway: a small rotation about the neck plus a shift, weighted 1 over the head and
  fading to 0 at the region's edge, so shoulders and background stay still;
* the jaw: everything below the line between the lips (curved like the photo's, see
  ``lips.py``) moves down by the mouth opening, fully along the lips and chin and fading
  out down the neck and out to the cheeks; along the lips the drop is an oval as wide as
  the lips, and the gap it opens is shaded from the photo's own lip-line shadow, darker to
  the back, with a hint of tongue low in a wide opening (nothing is there when the mouth
  is shut, so silent frames are the photo itself);
* the lips' rounding: a horizontal squeeze (or spread) around the mouth;
* the eyelids: the skin above each eye slides down over it, lashes and all (a second small
  remap, blended in over the lid's antialiased edge); nothing is painted.

Everything that does not change per frame (the framed background, already in yuv420p, the
grids and weight fields) is computed once. The head is warped again only when the sway has
moved it by SWAY_STEP pixels since the last warp (about one frame in three); every frame
re-warps just the jaw box over that, and the eye boxes while blinking. Pixels outside the
head are never touched, and no frame is converted from RGB.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from talkinghead import video
from talkinghead.tts import Phoneme

from .face import Face, check_face
from .framing import Layout, background, frame_dims, layout
from .motion import SWAY_DEG, SWAY_SHIFT, Motion, plan
from .threads import ahead

if TYPE_CHECKING:
    import av

FPS = 25
MAX_OPEN = 0.10               # jaw drop at full opening, as a share of the face height
EYE_RX, EYE_RY = 0.34, 0.11   # half axes of the eye opening, as shares of the eye box
LID_REACH = 2.4               # the lid's skin that slides down starts this many EYE_RY above the eye
ROUNDING = 0.22               # horizontal squeeze of the lips at full rounding
SWAY_STEP = 0.3               # pixels the head may lag its sway before it is warped again
MOUTH_EDGE_MAX_Y = 95.0       # the inner mouth's edge is the lip line's shadow, at most this bright
MOUTH_DEEP = 0.30             # the back of the mouth: the edge colour scaled by this
TONGUE = 0.45                 # how much of the lower lip's colour shows low in a wide opening
TEETH = 0.55                  # ... and of the upper teeth's colour, for the lower teeth, in a smile
ENCODER_PRESET = "veryfast"   # x264: mostly static frames keep their quality; ~1.6x quicker than "fast"


class RenderCancelled(Exception):
    """The render was stopped on request; no output was written."""


@dataclass(frozen=True)
class Rendered:
    path: Path
    duration_s: float
    frames: int
    size: tuple[int, int]
    face: Face                        # in frame coordinates
    motion: Motion


def _bump(d: np.ndarray) -> np.ndarray:
    """Raised cosine: 1 at d=0, 0 at |d|>=1."""
    bump: np.ndarray = 0.5 * (1 + np.cos(np.pi * np.clip(np.abs(d), 0, 1)))
    return bump


def _ramp(v: np.ndarray, a: float | np.ndarray, b: float | np.ndarray) -> np.ndarray:
    """Smooth step from 0 at ``a`` to 1 at ``b`` (either order)."""
    t = np.clip((v - a) / (b - a), 0, 1)
    step: np.ndarray = t * t * (3 - 2 * t)
    return step


# BT.709 limited range, as video.rgb_to_yuv420p converts: for the few colours drawn here.
_YUV = np.array([[0.2126, 0.7152, 0.0722], [-0.1146, -0.3854, 0.5], [0.5, -0.4542, -0.0458]],
                np.float32) * np.array([[219], [224], [224]], np.float32) / 255
_YUV_OFFSET = np.array([16, 128, 128], np.float32)


def yuv(rgb: np.ndarray) -> np.ndarray:
    """RGB (..., 3) floats -> Y, U, V (..., 3) floats."""
    return rgb @ _YUV.T + _YUV_OFFSET


def _even(v: float, up: bool) -> int:
    return int(2 * (math.ceil(v / 2) if up else math.floor(v / 2)))


class Animator:
    """Draws frames of one face over one static framed photo.

    Frames are made in yuv420p directly: the static frame is converted once, and per frame
    only the head region's Y plane and (half-size) U/V planes are warped and written, so no
    frame is ever converted from RGB again. Region and sub-boxes sit on even pixels so the
    half-size chroma lines up.
    """

    def __init__(self, static: np.ndarray, face: Face) -> None:
        self.static = static
        height, width = static.shape[:2]
        self.size = (width, height)
        self.face = f = face
        cx, _ = f.center
        # The head: an ellipse over face and hair; the sway weight fades out to 1.4x it.
        hx, hy, rx, ry = cx, f.y + 0.42 * f.h, 0.78 * f.w, 1.0 * f.h
        reach = 1.4
        x0, x1 = max(0, _even(hx - reach * rx, False)), min(width, _even(hx + reach * rx, True))
        y0, y1 = max(0, _even(hy - reach * ry, False)), min(height, _even(hy + reach * ry, True))
        self.box = (x0, y0, x1, y1)
        self.planes = video.rgb_to_yuv420p(static)
        y_plane, u_plane, v_plane = self._views(self.planes)
        self.src_y = np.ascontiguousarray(y_plane[y0:y1, x0:x1])
        self.src_uv = np.ascontiguousarray(np.dstack([u_plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2],
                                                      v_plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2]]))
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        r = np.hypot((xs - hx) / rx, (ys - hy) / ry)
        weight = np.where(r <= 1, 1.0, _bump((r - 1) / (reach - 1))).astype(np.float32)
        # Grids in the region's own coordinates (what remap indexes).
        self.gx, self.gy = xs - x0, ys - y0
        pivot_x, pivot_y = cx, f.y + 1.3 * f.h   # the neck
        self.w = weight
        self.wy = weight * (ys - pivot_y)
        self.wx = weight * (xs - pivot_x)
        self.map_x = np.empty_like(self.gx)
        self.map_y = np.empty_like(self.gy)
        # How far a change of angle can move a pixel: its distance from the neck, weighted.
        self.sway_radius = float(np.max(weight * np.hypot(xs - pivot_x, ys - pivot_y)))
        self._sway: tuple[float, float, float] | None = None  # what base_y/base_uv show
        self.base_y = self.src_y
        self.base_uv = self.src_uv
        self._mouth_setup(xs, ys)
        self._eyes_setup(xs, ys)

    def _views(self, planes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Y, U, V views into packed yuv420p planes."""
        width, height = self.size
        flat = planes.reshape(-1)  # by offset: a chroma plane need not be whole rows of width
        luma, chroma = width * height, (width // 2) * (height // 2)
        return (flat[:luma].reshape(height, width),
                flat[luma:luma + chroma].reshape(height // 2, width // 2),
                flat[luma + chroma:luma + 2 * chroma].reshape(height // 2, width // 2))

    # -- static fields -------------------------------------------------------------------

    def _sub(self, x0: float, y0: float, x1: float, y1: float) -> tuple[slice, slice]:
        """A sub-box of the head region on even pixels, clipped to it, as slices into
        region arrays (halve them for the chroma planes)."""
        bx0, by0, bx1, by1 = self.box
        sx0, sx1 = max(bx0, _even(x0, False)), min(bx1, _even(x1, True))
        sy0, sy1 = max(by0, _even(y0, False)), min(by1, _even(y1, True))
        return slice(max(0, sy0 - by0), max(0, sy1 - by0)), slice(max(0, sx0 - bx0), max(0, sx1 - bx0))

    @staticmethod
    def _half(box: tuple[slice, slice]) -> tuple[slice, slice]:
        rows, cols = box
        return slice(rows.start // 2, rows.stop // 2), slice(cols.start // 2, cols.stop // 2)

    def _mouth_setup(self, xs: np.ndarray, ys: np.ndarray) -> None:
        f = self.face
        mx, my = f.mouth
        chin = max(my + 0.12 * f.h, f.y + 1.05 * f.h)
        below = chin + 0.35 * f.h
        top = my - 0.16 * f.h
        self.jaw = self._sub(mx - 0.5 * f.w, top, mx + 0.5 * f.w, below)
        jx, jy = xs[self.jaw], ys[self.jaw]
        self.max_open = MAX_OPEN * f.h
        # Down: the whole lower lip and chin, fading out down the neck; as wide as the mouth
        # at the lips and as the jaw at the chin. Up: the upper lip a little, fading to the nose.
        # The line between the lips is a parabola through its middle and the corners found
        # by colour (a smile curves it up), so the opening follows it; flat without them.
        lift_corners = 0.0
        if f.lips is not None:
            lift_corners = float(np.clip((f.lips[2] + f.lips[3]) / 2 - my, -0.05 * f.h, 0.05 * f.h))
        t = np.clip((jx - mx) / (0.5 * f.mouth_width), -1, 1)
        line_y = my + lift_corners * t * t
        fall = np.where(jy < line_y, 0.0, np.where(jy <= chin, 1.0, 1 - _ramp(jy, chin, below)))
        s = _ramp(jy, my, chin)
        half = (1 - s) * 0.5 * f.mouth_width + s * 0.40 * f.w
        self._jaw_s = s  # 0 along the lips (an oval opening) .. 1 at the chin (a soft bump)
        self.jaw_dx = (jx - mx).astype(np.float32)
        self.jaw_y = (jy - line_y).astype(np.float32)   # height below the lip line
        self.lip_row = float(my - (self.box[1] + self.jaw[0].start))
        # Per column, the first row at or below the line (region rows of the jaw box).
        self.line_rows = np.ceil(line_y[0] - (self.box[1] + self.jaw[0].start)).astype(np.intp)
        self.line_span = (float(self.line_rows.min()), float(self.line_rows.max()))
        # How far sway can carry the lips, in pixels (rotation about the neck plus shift).
        self.sway_margin = 3 + (math.radians(SWAY_DEG) * 0.6 * f.w + 1.5 * SWAY_SHIFT * f.w)
        self.pad = math.ceil(self.sway_margin)
        self.lip_at = (self.jaw[0].start + int(self.lip_row), int(mx) - self.box[0])
        self._jaw_parts = (fall, half, np.where(jy < line_y, _ramp(jy, top, line_y), 0.0), 0.5 * f.mouth_width)
        self._jaw_shapes: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        # Rounding squeezes around the mouth, in a box about the lips.
        lips = _bump((jx - mx) / (0.9 * f.mouth_width)) * _bump((jy - my) / (0.16 * f.h))
        self.round_dx = (ROUNDING * lips * (jx - mx)).astype(np.float32)
        # The inner mouth darkens toward its middle (the back of the mouth) and fades out
        # toward the corners, where the lips meet.
        u = np.abs(jx - mx) / (0.5 * f.mouth_width)
        self.mouth_shade = _bump(u).astype(np.float32)
        self.mouth_fade = _ramp(u, 1.0, 0.8).astype(np.float32)
        self.mouth_dark, self.mouth_deep, self.tongue = (yuv(c) for c in self._mouth_colours())
        self.teeth = self._teeth_colour()

    def _teeth_colour(self) -> np.ndarray | None:
        """The upper teeth's colour (YUV) when the photo shows them (a smile: a band just
        above the line between the lips much brighter than the lips), else None; the
        lower teeth are hinted with it in a wide opening."""
        f = self.face
        mx, my = f.mouth
        x0, x1 = int(mx - 0.25 * f.mouth_width), int(mx + 0.25 * f.mouth_width) + 1
        rows = max(2, int(0.02 * f.h))
        band = self.static[max(0, int(my) - 1 - rows):int(my) - 1, max(0, x0):x1, :3].reshape(-1, 3)
        lips = self.static[int(my) + 2:int(my) + 2 + rows, max(0, x0):x1, :3].reshape(-1, 3)
        if band.size == 0 or lips.size == 0:
            return None
        w = np.array([0.2126, 0.7152, 0.0722], np.float32)
        if float(band.astype(np.float32).mean(axis=0) @ w) < float(lips.astype(np.float32).mean(axis=0) @ w) + 40:
            return None
        return yuv(band.astype(np.float32).mean(axis=0) * 0.8)  # in the mouth's shadow

    def _mouth_colours(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The inner mouth's colours, from the photo: at its edge the shadow along the lip
        line (the darkest quarter of it), at the back that much darker, and low in the
        opening a darker lower lip (the tongue's colour is close to the lips')."""
        f = self.face
        mx, my = f.mouth
        x0, x1 = int(mx - 0.3 * f.mouth_width), int(mx + 0.3 * f.mouth_width) + 1
        line = self.static[max(0, int(my) - 1):int(my) + 2, max(0, x0):x1, :3].reshape(-1, 3)
        line = line.astype(np.float32)
        luma = line @ np.array([0.2126, 0.7152, 0.0722], np.float32)
        edge = line[luma <= np.percentile(luma, 25)].mean(axis=0)
        edge_y = float(edge @ np.array([0.2126, 0.7152, 0.0722], np.float32))
        edge = edge * min(1.0, MOUTH_EDGE_MAX_Y / max(edge_y, 1.0))
        low = f.lips[1] if f.lips else my + 0.08 * f.h
        ly = int(my + 0.6 * (low - my))
        lip = self.static[ly - 1:ly + 2, int(mx) - 2:int(mx) + 3, :3].reshape(-1, 3).astype(np.float32)
        return edge, edge * MOUTH_DEEP, lip.mean(axis=0) * 0.55

    def _jaw_shape(self, rounding: float) -> tuple[np.ndarray, np.ndarray]:
        """(down, up) displacement per unit of opening, narrower as the lips round, padded by
        ``pad`` pixels on every side so that it can be shifted along with the swaying head;
        cached per 1/20th of rounding, since only a few distinct values occur."""
        key = round(max(rounding, 0.0) * 20)
        if key not in self._jaw_shapes:
            fall, half, lift, lip_half = self._jaw_parts
            squeeze = 1 - 0.3 * key / 20
            t = self.jaw_dx / (half * squeeze)
            # Along the lips an oval (the opening is round-ended, as wide as the lips),
            # blending into a raised cosine down the chin (the jaw moves as one).
            oval = np.clip(1 - t * t, 0, 1)
            down = fall * ((1 - self._jaw_s) * oval + self._jaw_s * _bump(t))
            up = 0.25 * lift * _bump(self.jaw_dx / (lip_half * squeeze))
            p = self.pad
            down_px, up_px = (np.pad((self.max_open * a).astype(np.float32), p, mode="edge") for a in (down, up))
            self._jaw_shapes[key] = (down_px, up_px)
        return self._jaw_shapes[key]

    def _eyes_setup(self, xs: np.ndarray, ys: np.ndarray) -> None:
        f = self.face
        # The eye opening is an ellipse about the eye box's centre. Blinking, the skin
        # between it and the brow slides down over it: nothing is painted, the lid is the
        # photo's own lid, lashes and all, stretched down to an edge that descends with
        # the blink.
        self.eye_axes = rx, ry = (EYE_RX * f.eye_size, EYE_RY * f.eye_size)
        self.eyes = [(self._sub(ex - 1.1 * rx, ey - LID_REACH * ry - 2, ex + 1.1 * rx, ey + ry + 3), ex, ey)
                     for ex, ey in (f.left_eye, f.right_eye)]

    # -- per frame -----------------------------------------------------------------------

    def _sway_to(self, sway: Sequence[float]) -> None:
        """Warp the whole head region to ``sway`` (maps and planes, kept in ``self``) unless
        the last warp is within SWAY_STEP pixels of it everywhere. Sway moves the head a
        fraction of a pixel per frame, so most frames reuse the last warp and only redraw
        the mouth and eyes over it."""
        import cv2

        theta, tx, ty = float(sway[0]), float(sway[1]) * self.face.w, float(sway[2]) * self.face.w
        if self._sway is not None:
            t0, x0, y0 = self._sway
            if abs(theta - t0) * self.sway_radius + abs(tx - x0) + abs(ty - y0) < SWAY_STEP:
                return
        self._sway = (theta, tx, ty)
        # Inverse map (output pixel -> source pixel): the head turned back by -theta.
        mx, my = self.map_x, self.map_y
        np.multiply(self.wy, theta, out=mx)
        mx += self.gx
        if tx:
            mx -= self.w * tx
        np.multiply(self.wx, -theta, out=my)
        my += self.gy
        if ty:
            my -= self.w * ty
        self.base_y = cv2.remap(self.src_y, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self.base_uv = cv2.remap(self.src_uv, mx[::2, ::2] * 0.5, my[::2, ::2] * 0.5,
                                 cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    def draw(self, opening: float, rounding: float, blink: float,
             sway: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        """The head region for one frame: its Y plane and its (half-size) U/V planes."""
        import cv2

        self._sway_to(sway)
        out_y, out_uv = self.base_y.copy(), self.base_uv.copy()
        mx, my = self.map_x, self.map_y  # the sway's maps: read, never changed here
        if opening > 1e-3 or abs(rounding) > 1e-3:
            # The jaw box is warped again from the photo, with the jaw's displacement added
            # to the sway's; the jaw's field is 0 at the box's edges, so it fits the rest.
            jaw = self.jaw
            jmx, jmy = mx[jaw].copy(), my[jaw].copy()
            if opening > 1e-3:
                # The jaw's field moves with the head: shift it by the sway at the lips
                # (whole pixels; the sway is nearly uniform across the mouth).
                ly, lx = self.lip_at
                sy = round(float(my[ly, lx]) - self.gy[ly, lx])
                sx = round(float(mx[ly, lx]) - self.gx[ly, lx])
                p, (h, w) = self.pad, self.jaw_y.shape
                sy, sx = max(-p, min(p, sy)), max(-p, min(p, sx))
                padded = self._jaw_shape(rounding)
                down, up = (a[p + sy:p + sy + h, p + sx:p + sx + w] for a in padded)
                # The opening can only be within these rows of the jaw box (the lip line, the
                # opening either side of it, the sway): the inner mouth is worked out there.
                reach = opening * self.max_open + self.sway_margin
                r0 = _even(max(0, self.line_span[0] - 1 - 0.25 * reach), False)
                r1 = _even(min(h, self.line_span[1] + reach + 1), True)
                rows = slice(r0, r1)
                # Where each pixel sampled before the jaw moved, relative to the lip line.
                b = jmy[rows] - self.gy[jaw][rows] + self.jaw_y[rows]
                jmy -= down * opening - up * opening
                # The opening between the lips is, in each column, the source band
                # [-up, down] about the lip line that the rows either side of it now skip
                # over; each pixel (a unit band about b) is covered by it by their overlap,
                # which antialiases the edges and is 0 where the mouth is shut.
                line = p + self.line_rows  # the rows either side, unshifted
                cols = p + sx + np.arange(w)
                down = opening * padded[0][line, cols]
                up = opening * padded[1][line - 1, cols]
                # (Over a two-pixel band, which softens the edge along the lips.)
                gap = np.clip((np.minimum(b + 1, down) - np.maximum(b - 1, -up)) / 2, 0, 1)
                gap *= self.mouth_fade[rows]
                depth = np.clip((b + up) / np.maximum(down + up, 1), 0, 1)  # 0 top .. 1 bottom
                wide = min(1.0, float(np.max(down)) / 10)  # a tongue shows in a wide opening
            if abs(rounding) > 1e-3:
                jmx += rounding * self.round_dx
            out_y[jaw] = cv2.remap(self.src_y, jmx, jmy, cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            out_uv[self._half(jaw)] = cv2.remap(self.src_uv, jmx[::2, ::2] * 0.5, jmy[::2, ::2] * 0.5,
                                                cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            if opening > 1e-3 and gap.any():
                near = (slice(jaw[0].start + r0, jaw[0].start + r1), jaw[1])
                shade = self.mouth_shade[rows]
                deep = np.sqrt(1 - np.abs(2 * depth - 1)) * shade
                tongue = TONGUE * wide * _ramp(depth, 0.55, 0.95) * shade
                dark, deep_c, tongue_c = self.mouth_dark, self.mouth_deep, self.tongue
                colour = dark + (deep_c - dark) * deep[..., None]
                colour += (tongue_c - colour) * tongue[..., None]
                if self.teeth is not None:
                    # Lower teeth: a soft band just above the lower lip, in the middle.
                    teeth = TEETH * wide * _ramp(depth, 0.6, 0.85) * _ramp(depth, 1.0, 0.9) * shade ** 2
                    colour += (self.teeth - colour) * teeth[..., None]
                _blend(out_y, near, gap, colour[..., 0])
                _blend(out_uv, self._half(near), gap[::2, ::2, None], colour[::2, ::2, 1:])
        if blink > 1e-3:
            for box, ex, ey in self.eyes:
                self._lid(out_y, out_uv, box, ex, ey, blink)
        return out_y, out_uv

    def _lid(self, out_y: np.ndarray, out_uv: np.ndarray, box: tuple[slice, slice],
             ex: float, ey: float, blink: float) -> None:
        """Close one eye by ``blink`` (0 open .. 1 shut): in each column the skin from
        LID_REACH above the eye down to the lid's edge is stretched down to a new edge,
        ``blink`` of the way across the opening; below it the eye is as it was. The edge
        is antialiased over a pixel; the warp fades to nothing at the eye's corners."""
        import cv2

        rx, ry = self.eye_axes
        x0, y0 = self.box[:2]
        mx, my = self.map_x[box], self.map_y[box]
        # In source coordinates, so the lid follows the eye as the head sways.
        sx, sy = mx + x0, my + y0
        half = ry * np.sqrt(np.clip(1 - ((sx - ex) / rx) ** 2, 0, 1))
        top = ey - LID_REACH * ry
        lid0 = ey - half                            # where the lid's edge is in the photo
        edge = lid0 + blink * 2 * half              # ... and where it is now
        # Output row at v (0 top .. 1 new edge) shows source row g(v) of the old lid,
        # g(v) = (v + v^k) / 2: the lashes at the edge are stretched half as much as a
        # plain scaling would (k times), so they stay lashes, not streaks.
        k = np.maximum(edge - top, 1e-3) / np.maximum(lid0 - top, 1e-3)
        v = np.clip((sy - top) / np.maximum(edge - top, 1e-3), 0, 1)
        lid_y = np.where(sy > top, top + (lid0 - top) * 0.5 * (v + v ** k), sy) - y0
        cover = np.clip(edge - sy + 0.5, 0, 1)
        cover[sy <= top] = 0
        lid_src_y = cv2.remap(self.src_y, mx, lid_y.astype(np.float32), cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
        lid_src_uv = cv2.remap(self.src_uv, mx[::2, ::2] * 0.5, lid_y[::2, ::2].astype(np.float32) * 0.5,
                               cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        _blend(out_y, box, cover, lid_src_y)
        _blend(out_uv, self._half(box), cover[::2, ::2, None], lid_src_uv)

    def frame(self, opening: float, rounding: float, blink: float, sway: Sequence[float]) -> av.VideoFrame:
        """One whole frame as a yuv420p ``av.VideoFrame`` (for ``video.encode_mp4``)."""
        import av

        out_y, out_uv = self.draw(opening, rounding, blink, sway)
        planes = self.planes.copy()
        y_plane, u_plane, v_plane = self._views(planes)
        x0, y0, x1, y1 = self.box
        y_plane[y0:y1, x0:x1] = out_y
        u_plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = out_uv[..., 0]
        v_plane[y0 // 2:y1 // 2, x0 // 2:x1 // 2] = out_uv[..., 1]
        return av.VideoFrame.from_ndarray(planes, format="yuv420p")

    def frames(self, motion: Motion, should_stop: Callable[[], bool] | None = None) -> Iterator[object]:
        """Every frame of ``motion``, as yuv420p ``av.VideoFrame``s. ``should_stop`` is asked
        before each; when it says so, ``RenderCancelled`` is raised."""
        self._sway = None  # start from an exact warp
        for i in range(motion.frames):
            if should_stop is not None and should_stop():
                raise RenderCancelled("render cancelled")
            yield self.frame(motion.open[i], motion.round[i], motion.blink[i], motion.sway[i])

    def still(self, opening: float = 0.0, rounding: float = 0.0, blink: float = 0.0,
              sway: Sequence[float] = (0.0, 0.0, 0.0)) -> np.ndarray:
        """One frame as RGB (for looking at, not for encoding)."""
        self._sway = None
        rgb: np.ndarray = self.frame(opening, rounding, blink, sway).to_ndarray(format="rgb24")
        return rgb


def _blend(plane: np.ndarray, box: tuple[slice, slice], alpha: np.ndarray, colour: np.ndarray) -> None:
    """plane[box] = plane[box] * (1 - alpha) + colour * alpha, in place, as uint8."""
    region = plane[box].astype(np.float32)
    plane[box] = (region + (colour - region) * alpha + 0.5).astype(np.uint8)


def prepare_scene(image: np.ndarray | Path | str | bytes, aspect_ratio: str,
                  resolution: int | str | tuple[int, int] | None = None,
                  face: Face | None = None) -> tuple[Animator, Layout]:
    """Load and frame the photo and set up its animator."""
    photo = image if isinstance(image, np.ndarray) else video.load_image(image)
    face = face or check_face(photo)
    size = frame_dims(aspect_ratio, resolution)
    lay = layout((photo.shape[1], photo.shape[0]), face, size)
    static = background(photo, lay, aspect_ratio)
    framed = face.mapped(lay.scale[0], lay.scale[1], lay.offset[0], lay.offset[1], size)
    return Animator(static, framed), lay


def render(image: np.ndarray | Path | str | bytes, audio: Path | str | bytes, out: Path | str, *,
           aspect_ratio: str = "16:9", resolution: int | str | tuple[int, int] | None = None,
           phonemes: Sequence[Phoneme] = (), seed: int = 0, face: Face | None = None,
           duration_s: float | None = None, should_stop: Callable[[], bool] | None = None,
           on_frame: Callable[[int, int], None] | None = None, crf: int = 23,
           preset: str = ENCODER_PRESET) -> Rendered:
    """Render the talking head for ``audio`` to ``out`` (MP4, 25 fps, H.264 + AAC).

    The video is exactly as long as the audio (``duration_s`` when known, else measured),
    within one frame. ``should_stop`` is asked before each frame; when it says so the render
    raises ``RenderCancelled`` and leaves no file. ``on_frame(done, total)`` reports progress.
    """
    animator, lay = prepare_scene(image, aspect_ratio, resolution, face)
    seconds = float(duration_s) if duration_s else video.audio_duration(audio)
    count = max(1, round(seconds * FPS))  # what encode_mp4 will ask for
    motion = plan(audio, count, FPS, phonemes=phonemes, seed=seed)

    def counted() -> Iterator[object]:
        # Counted as the encoder takes them, so progress is frames encoded, not drawn.
        for i, frame in enumerate(ahead(animator.frames(motion, should_stop)), 1):
            yield frame
            if on_frame is not None:
                on_frame(i, count)

    path = video.encode_mp4(out, counted(), fps=FPS, audio=audio, duration_s=seconds,
                            size=lay.size, crf=crf, preset=preset)
    return Rendered(path=Path(path), duration_s=seconds, frames=count, size=lay.size,
                    face=animator.face, motion=motion)


__all__ = ["FPS", "Animator", "Layout", "RenderCancelled", "Rendered", "ahead", "background",
           "frame_dims", "layout", "prepare_scene", "render", "yuv"]
