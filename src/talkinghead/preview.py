"""Contact sheets: a grid of evenly spaced frames of a video, each stamped with its time, so a
person can look at a result without a video player (``talkinghead preview``).

Pure numpy and PyAV: frames are decoded (seeking ahead on long videos), scaled by swscale,
tiled on a dark sheet, and the sheet is written as PNG. Timestamps are drawn with a small
built-in bitmap font, so no font files or imaging library are needed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av
    import av.container
    import numpy as np

GAP = 8                              # pixels between and around tiles
BACKGROUND = (24, 24, 24)
SEEK_AHEAD_S = 4.0                   # seek rather than decode through gaps longer than this
MAX_GRID = 50                        # columns or rows: more is not a preview (and costs memory)
MAX_WIDTH = 16384                    # sheet width in pixels
MAX_SHEET_PIXELS = 100_000_000       # the whole sheet (tall videos make tall tiles)

# 3x5 glyphs for the characters a timestamp needs, one string per row ("#" = ink).
_GLYPHS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
    ":": ("...", ".#.", "...", ".#.", "..."), ".": ("...", "...", "...", "...", ".#."),
}


def timestamp(seconds: float) -> str:
    """0:03.4 style; h:mm:ss.s past an hour."""
    tenths = round(seconds * 10)
    s, t = divmod(tenths, 10)
    m, s = divmod(s, 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}.{t}" if h else f"{m}:{s:02d}.{t}"


def _draw_text(img: np.ndarray, text: str, x: int, y: int, scale: int) -> None:
    """White text with its top-left at (x, y) on a dark box, ``scale`` pixels per dot."""
    import numpy as np

    pad = scale
    width = len(text) * 4 * scale - scale + 2 * pad
    height = 5 * scale + 2 * pad
    box = img[y:y + height, x:x + width]
    box[:] = (box.astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken what is behind
    for i, ch in enumerate(text):
        glyph = np.array([[c == "#" for c in row] for row in _GLYPHS[ch]], dtype=bool)
        dots = np.kron(glyph, np.ones((scale, scale), dtype=bool))
        gx = x + pad + i * 4 * scale
        img[y + pad:y + pad + dots.shape[0], gx:gx + dots.shape[1]][dots[:box.shape[0], :]] = 255


def contact_sheet(video: Path | str, out: Path | str, *, columns: int = 4, rows: int = 3,
                  width: int = 1280) -> Path:
    """Write a PNG of ``columns`` x ``rows`` evenly spaced frames of ``video``, ``width`` pixels
    wide, each labelled with its time. Frames are taken at the middle of equal slices of the
    video (a clip shorter than the grid gives one tile per frame). Returns ``out``."""
    from .checks import output_path
    from .errors import InputError

    for name, value, high in (("columns", columns, MAX_GRID), ("rows", rows, MAX_GRID),
                              ("width", width, MAX_WIDTH)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
            raise InputError(name, f"{value!r} is out of range; it must be a whole number from 1 to {high}",
                             value=value, limit=(1, high))
    tile_w = (width - (columns + 1) * GAP) // columns
    if tile_w < 16:
        raise InputError("width", f"{width} px is too narrow for {columns} columns (at least "
                         f"{columns * (16 + GAP) + GAP} px)", value=width, limit=columns * (16 + GAP) + GAP)
    out = output_path("output", out)
    name = Path(video).name
    try:
        return _sheet(video, out, columns, rows, tile_w)
    except InputError:
        raise
    except Exception as exc:  # FFmpegError mostly: an empty, truncated or non-video file
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InputError("video", f"{name} could not be read as a video: {reason[:80]}",
                         value=name) from None


def _sheet(video: Path | str, out: Path, columns: int, rows: int, tile_w: int) -> Path:
    import av
    import numpy as np

    from .errors import InputError

    with av.open(os.fspath(video), "r") as container:
        if not container.streams.video:
            raise InputError("video", f"{Path(video).name} has no video stream", value="no video")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        duration = _duration(container, stream)
        count = columns * rows
        targets = [duration * (k + 0.5) / count for k in range(count)]
        frames = _frames_at(container, stream, targets, 0.5 / rate)
        if not frames:
            raise InputError("video", f"{Path(video).name} has no decodable frames", value="no frames")
        tile_h = max(2, round(tile_w * frames[0][1].height / frames[0][1].width))
        if rows * tile_h * columns * tile_w > MAX_SHEET_PIXELS:
            raise InputError("width", f"a {columns}x{rows} sheet {columns * tile_w} px wide of this "
                             f"{frames[0][1].width}x{frames[0][1].height} video would be over "
                             f"{MAX_SHEET_PIXELS // 1_000_000} megapixels; give a smaller --width",
                             value=columns * tile_w, limit=MAX_SHEET_PIXELS)
        sheet = np.empty((rows * tile_h + (rows + 1) * GAP, columns * tile_w + (columns + 1) * GAP, 3),
                         dtype=np.uint8)
        sheet[:] = BACKGROUND
        scale = max(2, tile_h // 60)  # readable on small tiles too
        for k, (t, frame) in enumerate(frames):
            tile = frame.reformat(width=tile_w, height=tile_h, format="rgb24",
                                  interpolation="AREA").to_ndarray()
            r, c = divmod(k, columns)
            y, x = GAP + r * (tile_h + GAP), GAP + c * (tile_w + GAP)
            sheet[y:y + tile_h, x:x + tile_w] = tile
            label = timestamp(t)
            _draw_text(sheet, label, x + 2 * scale, y + tile_h - 7 * scale - 2 * scale, scale)
    _write_png(sheet, out)
    return out


def _duration(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    import av

    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return float(container.duration / av.time_base)
    return 0.0


def _frames_at(container: av.container.InputContainer, stream: av.VideoStream, targets: list[float],
               tolerance: float) -> list[tuple[float, av.VideoFrame]]:
    """(time, frame) for the first frame at or after each target (less ``tolerance``), each
    frame at most once. Seeks to the keyframe before a target that is far ahead."""
    chosen: list[tuple[float, av.VideoFrame]] = []
    time_base = stream.time_base
    assert time_base is not None  # a demuxed stream always has one
    decoder = None
    position = 0.0
    last = None
    for target in targets:
        if decoder is None or target - position > SEEK_AHEAD_S:
            container.seek(int(target / time_base), stream=stream, backward=True)
            decoder = container.decode(stream)
        for frame in decoder:
            position = float(frame.time if frame.time is not None else position)
            last = (position, frame)
            if position >= target - tolerance:
                break
        else:  # ran off the end: keep the last frame, if it is new
            decoder = iter(())
        if last is not None and (not chosen or chosen[-1][0] != last[0]):
            chosen.append(last)
    return chosen


def _write_png(rgb: np.ndarray, out: Path) -> None:
    """Encode with PyAV's PNG encoder; written beside ``out`` and renamed into place."""
    import av
    import numpy as np

    ctx = av.CodecContext.create("png", "w")
    ctx.width, ctx.height, ctx.pix_fmt = rgb.shape[1], rgb.shape[0], "rgb24"
    from fractions import Fraction

    ctx.time_base = Fraction(1, 1)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
    data = b"".join(bytes(p) for p in ctx.encode(frame) + ctx.encode(None))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["contact_sheet", "timestamp"]
