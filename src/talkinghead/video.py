"""Media helpers any renderer can reuse: frame a photo, encode an MP4, probe the result.

    frame_size(aspect_ratio, height)        -> (w, h), even numbers
    frame_image(photo, aspect_ratio, size)  -> RGB uint8 array (h, w, 3): the whole photo,
                                               over a blurred, darkened cover of itself
    encode_mp4(out, frames, audio=..., duration_s=...)
                                            H.264 yuv420p + AAC, +faststart; exactly
                                               round(duration_s * fps) frames, audio trimmed
                                               or padded to duration_s
    rgb_to_yuv420p(frame)                   -> packed yuv420p planes, converted as encode_mp4 does
    probe_video(path)                       -> VideoInfo, decoding to count frames
    audio_duration(audio)                   -> seconds, by counting decoded samples

PyAV and numpy are imported inside the functions, so importing this module costs nothing;
``talkinghead/__init__`` does not import it either.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import av
    import av.container
    import numpy as np

Source = Path | str | bytes

# Width:height of each supported aspect ratio.
ASPECTS: dict[str, tuple[int, int]] = {"16:9": (16, 9), "9:16": (9, 16), "1:1": (1, 1)}

AUDIO_RATE = 48_000  # AAC-friendly and the usual rate for video
AUDIO_LAYOUT = "stereo"


def frame_size(aspect_ratio: str, height: int = 720) -> tuple[int, int]:
    """(width, height) for an aspect ratio. ``height`` is the short side, as in "720p":
    16:9 -> 1280x720, 9:16 -> 720x1280, 1:1 -> 720x720. Both are even, as yuv420p needs."""
    try:
        aw, ah = ASPECTS[aspect_ratio]
    except KeyError:
        raise ValueError(f"aspect_ratio {aspect_ratio!r} is not one of {sorted(ASPECTS)}") from None
    if height < 2:
        raise ValueError(f"height {height} is too small")
    short = _even(height)
    long = _even(short * max(aw, ah) / min(aw, ah))
    return (long, short) if aw >= ah else (short, long)


def _even(x: float) -> int:
    return max(2, int(round(x / 2)) * 2)


def _size_of(aspect_ratio: str, size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(size, int):
        return frame_size(aspect_ratio, size)
    w, h = size
    if w % 2 or h % 2:
        raise ValueError(f"size {w}x{h} must be even (yuv420p)")
    return int(w), int(h)


def _open(source: Source) -> av.container.InputContainer:
    import av

    if isinstance(source, (bytes, bytearray, memoryview)):
        return av.open(io.BytesIO(bytes(source)), "r")
    return av.open(os.fspath(source), "r")


def load_image(source: Source) -> np.ndarray:
    """Decode a jpg/png (path or bytes) to RGB or RGBA uint8 (RGBA only when the image has
    alpha), upright: EXIF rotation is applied, as a phone photo is meant to be seen."""
    import numpy as np

    with _open(source) as container:
        frame = next(container.decode(video=0))
    # Keep alpha (transparent PNGs) so the framing can composite it; palettes may hold alpha.
    alpha = frame.format.has_palette or any(c.is_alpha for c in frame.format.components)
    fmt = "rgba" if alpha else "rgb24"
    arr = frame.to_ndarray(format=fmt)
    # JPEG EXIF orientation arrives as a display-matrix rotation (CCW degrees); mirrored
    # orientations are rare in photos and not exposed by PyAV, so only rotation is undone.
    turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(arr, k=turns)) if turns else arr


def _resize(arr: np.ndarray, width: int, height: int, interpolation: str = "AREA") -> np.ndarray:
    """Resize an RGB/RGBA array with swscale (fast, and no Pillow/OpenCV dependency)."""
    import av

    fmt = "rgba" if arr.shape[2] == 4 else "rgb24"
    frame = av.VideoFrame.from_ndarray(arr, format=fmt)
    return frame.reformat(width=width, height=height, interpolation=interpolation).to_ndarray(format=fmt)


def _box_blur(arr: np.ndarray, radius: int, passes: int = 3) -> np.ndarray:
    """Repeated box blur along both axes (edges extended): three passes look Gaussian."""
    import numpy as np

    out: np.ndarray = arr.astype(np.float32)
    k = 2 * radius + 1
    for _ in range(passes):
        for axis in (0, 1):
            pad = [(0, 0)] * out.ndim
            pad[axis] = (radius + 1, radius)
            c = np.cumsum(np.pad(out, pad, mode="edge"), axis=axis)
            out = (np.take(c, range(k, c.shape[axis]), axis=axis)
                   - np.take(c, range(0, c.shape[axis] - k), axis=axis)) / k
    blurred: np.ndarray = np.clip(out, 0, 255).astype(np.uint8)
    return blurred


def frame_image(source: Source | None, aspect_ratio: str = "16:9",
                size: int | tuple[int, int] = 720, *, blur: float = 0.04,
                darken: float = 0.45) -> np.ndarray:
    """The photo framed to ``aspect_ratio`` (``auto``: the ratio nearest the photo's): whole
    ("contained") over a heavily blurred,
    darkened, cover-scaled copy of itself, so the area the photo leaves uncovered is soft
    continuation of it rather than a flat band. ``size`` is the short side (720) or an
    explicit even (width, height). ``blur`` is the blur radius as a fraction of the short
    side (three box passes, close to a Gaussian). ``source=None`` gives a neutral grey
    placeholder.

    Returns an RGB uint8 array of shape (height, width, 3).
    """
    import numpy as np

    from .models import frame_ratio

    photo = load_image(source) if source is not None else None
    if aspect_ratio == "auto":  # follow the photo: the explicit ratio nearest its shape
        aspect_ratio = frame_ratio("auto", *((photo.shape[1], photo.shape[0]) if photo is not None else (0, 0)))
    width, height = _size_of(aspect_ratio, size)
    if photo is None:
        return np.full((height, width, 3), 128, dtype=np.uint8)
    ph, pw = photo.shape[:2]
    rgb = photo[..., :3]

    # Background: crop the photo to the frame's aspect (cover), shrink it 8x, blur it there
    # (cheap on a small image), scale back up, darken so the real photo stands out.
    scale = max(width / pw, height / ph)
    cw, ch = min(pw, round(width / scale)), min(ph, round(height / scale))
    x, y = (pw - cw) // 2, (ph - ch) // 2
    crop = np.ascontiguousarray(rgb[y:y + ch, x:x + cw])
    small = _resize(crop, max(2, width // 8), max(2, height // 8), "AREA")
    small = _box_blur(small, radius=max(1, round(min(width, height) * blur / 8)))
    background = _resize(small, width, height, "BICUBIC")
    frame = (background.astype(np.float32) * darken).astype(np.uint8)

    # Foreground: the whole photo, scaled to fit and centred.
    scale = min(width / pw, height / ph)
    fw, fh = max(1, round(pw * scale)), max(1, round(ph * scale))
    fg = _resize(np.ascontiguousarray(photo), fw, fh, "LANCZOS" if scale > 1 else "AREA")
    x, y = (width - fw) // 2, (height - fh) // 2
    region = frame[y:y + fh, x:x + fw]
    if fg.shape[2] == 4:  # transparent PNG: let the background show through
        alpha = fg[..., 3:4].astype(np.float32) / 255.0
        region[:] = (fg[..., :3] * alpha + region * (1.0 - alpha)).astype(np.uint8)
    else:
        region[:] = fg
    return frame


def audio_duration(source: Source) -> float:
    """Seconds of audio in ``source`` (path or bytes), by decoding and counting samples:
    container headers guess for ADTS .aac and some mp3s."""
    samples, rate = 0, 0
    with _open(source) as container:
        for frame in container.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
    return samples / rate if rate else 0.0


def _to_yuv420p(arr: np.ndarray) -> av.VideoFrame:
    import av
    import numpy as np

    rgb = av.VideoFrame.from_ndarray(np.ascontiguousarray(arr), format="rgb24")
    # BT.709, limited range: what players assume for HD H.264; encode_mp4 tags it so.
    return rgb.reformat(format="yuv420p", dst_colorspace="ITU709", dst_color_range="MPEG")


def rgb_to_yuv420p(arr: np.ndarray) -> np.ndarray:
    """An RGB uint8 frame (even sides) as yuv420p planes packed in one (h * 3 / 2, w) uint8
    array (Y, then U, then V), converted exactly as ``encode_mp4`` converts RGB frames.

    For renderers that redraw only part of each frame: convert the still parts once, update
    the planes per frame, and hand ``encode_mp4`` ``av.VideoFrame.from_ndarray(planes,
    format="yuv420p")`` instead of paying a full-frame conversion per frame."""
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] % 2 or arr.shape[1] % 2:
        raise ValueError(f"expected an RGB array with even sides, got shape {arr.shape}")
    return _to_yuv420p(arr).to_ndarray()


def _video_frames(frames: Any, count: int, size: tuple[int, int] | None) -> Iterator[Any]:
    """Yield exactly ``count`` yuv420p VideoFrames. A single array is converted once and
    repeated (cheap); an iterable is converted frame by frame, its last frame held if it
    runs short and the rest dropped if it runs long, so the length always matches audio."""
    import av
    import numpy as np

    def convert(arr: np.ndarray | av.VideoFrame) -> av.VideoFrame:
        if isinstance(arr, av.VideoFrame):
            # Already converted by the caller (a renderer that updates only part of each
            # frame can skip a full-frame conversion): taken as BT.709 limited range.
            if arr.format.name != "yuv420p":
                raise ValueError(f"VideoFrames must be yuv420p, got {arr.format.name}")
            if size is not None and (arr.width, arr.height) != size:
                raise ValueError(f"frame is {arr.width}x{arr.height}, expected {size[0]}x{size[1]}")
            return arr
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"frames must be uint8 RGB arrays (h, w, 3), got {arr.dtype} {arr.shape}")
        if size is not None and (arr.shape[1], arr.shape[0]) != size:
            raise ValueError(f"frame is {arr.shape[1]}x{arr.shape[0]}, expected {size[0]}x{size[1]}")
        if arr.shape[0] % 2 or arr.shape[1] % 2:
            raise ValueError(f"frame size {arr.shape[1]}x{arr.shape[0]} must be even (yuv420p)")
        return _to_yuv420p(arr)

    if isinstance(frames, np.ndarray):
        still = convert(frames)
        for _ in range(count):
            yield still
        return
    last = None
    produced = 0
    for arr in frames:
        if produced == count:
            return
        last = convert(arr)
        produced += 1
        yield last
    if last is None and count:
        raise ValueError("frames is empty")
    for _ in range(count - produced):
        yield last


def _audio_chunks(audio: Source | None, duration_s: float, chunk: int) -> Iterator[Any]:
    """Audio as fltp stereo 48 kHz AudioFrames of ``chunk`` samples (the last may be
    shorter), exactly ``duration_s`` long: the source is trimmed or padded with silence,
    and ``None`` is all silence. Streams through a FIFO, so long clips stay small in memory."""
    import av
    import numpy as np

    total = round(duration_s * AUDIO_RATE)
    fifo = av.AudioFifo()
    written = 0

    def silence(n: int) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(np.zeros((2, n), dtype=np.float32), format="fltp",
                                           layout=AUDIO_LAYOUT)
        frame.sample_rate = AUDIO_RATE
        return frame

    def feed(frame: av.AudioFrame) -> None:
        nonlocal written
        frame.pts = None  # the FIFO checks continuity only when pts is set; ours is implicit
        take = min(frame.samples, total - written)
        if take < frame.samples:
            arr = frame.to_ndarray()[:, :take]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(arr, dtype=np.float32), format="fltp",
                                               layout=AUDIO_LAYOUT)
            frame.sample_rate = AUDIO_RATE
        if take:
            fifo.write(frame)
            written += take

    def drain(final: bool) -> Iterator[av.AudioFrame]:
        while fifo.samples >= chunk or (final and fifo.samples):
            out = fifo.read(min(chunk, fifo.samples))
            assert out is not None  # None only when the FIFO holds fewer samples than asked
            yield out

    if audio is not None:
        resampler = av.AudioResampler(format="fltp", layout=AUDIO_LAYOUT, rate=AUDIO_RATE)
        with _open(audio) as container:
            for decoded in container.decode(audio=0):
                for frame in resampler.resample(decoded):
                    feed(frame)
                    yield from drain(False)
                if written >= total:
                    break
            if written < total:
                for frame in resampler.resample(None):  # flush the resampler's tail
                    feed(frame)
    while written < total:
        feed(silence(min(chunk, total - written)))
        yield from drain(False)
    yield from drain(True)


def encode_mp4(out: Path | str, frames: Any, *, fps: int = 25, audio: Source | None = None,
               duration_s: float, size: tuple[int, int] | None = None,
               crf: int = 23, preset: str = "fast") -> Path:
    """Write an MP4: H.264 yuv420p (libx264) + AAC stereo 48 kHz, moov up front.

    ``frames`` is one RGB uint8 array (a still, repeated) or an iterable of them, or of
    yuv420p ``av.VideoFrame``s already in BT.709 limited range (see ``rgb_to_yuv420p``). The video
    has exactly round(duration_s * fps) frames and the audio is ``audio`` (any format PyAV
    reads, path or bytes) trimmed or padded with silence to ``duration_s``, or silence when
    ``None``, so both tracks are as long as each other within a frame. ``size`` (w, h), when
    given, is checked against the frames. Written to a temporary name and renamed into place,
    so ``out`` never holds half a file. Returns ``out``.
    """
    import av

    if duration_s <= 0:
        raise ValueError(f"duration_s must be positive, got {duration_s}")
    out = Path(out)
    count = max(1, round(duration_s * fps))
    video_frames = _video_frames(frames, count, size)
    first = next(video_frames)
    width, height = first.width, first.height
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        with av.open(str(tmp), mode="w", format="mp4",
                     options={"movflags": "+faststart"}) as container:
            vs = container.add_stream("libx264", rate=fps)
            vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
            vs.options = {"preset": preset, "crf": str(crf)}
            cc = vs.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1  # BT.709
            cc.color_range = 1  # limited ("tv") range
            as_ = container.add_stream("aac", rate=AUDIO_RATE, layout=AUDIO_LAYOUT)
            as_.bit_rate = 128_000
            # The "fast" coder is ~2.5x quicker than the default two-loop search and
            # indistinguishable for speech at 128 kb/s.
            as_.options = {"aac_coder": "fast"}
            chunk = as_.codec_context.frame_size or 1024
            audio_frames = _audio_chunks(audio, duration_s, chunk)
            audio_pts = 0

            # Feed audio up to each video frame's time so the muxer can interleave the two
            # tracks in small chunks instead of buffering one whole track.
            def audio_until(t: float) -> None:
                nonlocal audio_pts
                while audio_pts < t * AUDIO_RATE:
                    frame = next(audio_frames, None)
                    if frame is None:
                        return
                    frame.pts, frame.time_base = audio_pts, Fraction(1, AUDIO_RATE)
                    frame.sample_rate = AUDIO_RATE
                    audio_pts += frame.samples
                    container.mux(as_.encode(frame))

            for i, frame in enumerate(_chain(first, video_frames)):
                audio_until((i + 1) / fps)
                frame.pts, frame.time_base = i, Fraction(1, fps)
                container.mux(vs.encode(frame))
            audio_until(math.inf)
            container.mux(vs.encode(None))
            container.mux(as_.encode(None))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _chain(first: Any, rest: Iterable[Any]) -> Iterator[Any]:
    yield first
    yield from rest


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    duration_s: float        # the longer track, as the container reports it
    fps: float
    has_video: bool
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None
    frame_count: int         # decoded, not read from headers
    audio_duration_s: float | None = None  # decoded samples / rate
    sample_rate: int | None = None
    channels: int | None = None
    pix_fmt: str | None = None

    @property
    def aspect_ratio(self) -> float:
        return self.width / self.height if self.height else 0.0


def probe_video(path: Path | str) -> VideoInfo:
    """Open a video and decode it through, counting frames and audio samples: slower than
    reading headers, but it proves the file plays and gives exact figures."""
    import av

    with av.open(os.fspath(path)) as container:
        v = container.streams.video[0] if container.streams.video else None
        a = container.streams.audio[0] if container.streams.audio else None
        frames = samples = 0
        for s in (v, a):
            if s is not None:
                s.codec_context.thread_type = "AUTO"
        streams = [s for s in (v, a) if s is not None]
        for packet in container.demux(*streams):
            for decoded in packet.decode():
                if packet.stream is v:
                    frames += 1
                elif isinstance(decoded, av.AudioFrame):
                    samples += decoded.samples
        duration = container.duration / av.time_base if container.duration else 0.0
        rate = a.codec_context.sample_rate if a is not None else None
        return VideoInfo(
            width=v.codec_context.width if v is not None else 0,
            height=v.codec_context.height if v is not None else 0,
            duration_s=duration,
            fps=float(v.average_rate or v.guessed_rate or 0) if v is not None else 0.0,
            has_video=v is not None,
            has_audio=a is not None,
            video_codec=v.codec_context.name if v is not None else None,
            audio_codec=a.codec_context.name if a is not None else None,
            frame_count=frames,
            audio_duration_s=samples / rate if a is not None and rate else None,
            sample_rate=rate,
            channels=a.codec_context.channels if a is not None else None,
            pix_fmt=v.codec_context.pix_fmt if v is not None else None,
        )


__all__ = ["ASPECTS", "VideoInfo", "audio_duration", "encode_mp4", "frame_image", "frame_size", "load_image",
           "probe_video", "rgb_to_yuv420p"]
