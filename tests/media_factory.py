"""Test media made at run time (PyAV + numpy), so no binary fixtures live in the repo.

Everything is small and quick to encode: a few frames, a few seconds of a sine tone.
"""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def _frame(width: int, height: int, fmt: str) -> av.VideoFrame:
    # A gradient rather than a flat colour, so encoders produce ordinary-looking output.
    x = np.linspace(0, 255, width, dtype=np.uint8)
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    rgb[..., 0] = x
    rgb[..., 1] = np.linspace(0, 255, height, dtype=np.uint8)[:, None]
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)


def still_image(codec: str, width: int, height: int) -> bytes:
    """One encoded picture: codec 'mjpeg' (a JPEG file), 'png', 'gif', 'libwebp', 'bmp', 'tiff'."""
    pix = {"mjpeg": "yuvj420p", "png": "rgb24", "gif": "rgb8", "libwebp": "yuv420p",
           "bmp": "bgr24", "tiff": "rgb24"}[codec]
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height, ctx.pix_fmt = width, height, pix
    ctx.time_base = Fraction(1, 25)
    packets = ctx.encode(_frame(width, height, pix)) + ctx.encode(None)
    data = b"".join(bytes(p) for p in packets)
    if codec == "libwebp":  # the encoder emits a bare VP8 bitstream; wrap it as a .webp file
        chunk = b"VP8 " + len(data).to_bytes(4, "little") + data + b"\0" * (len(data) & 1)
        data = b"RIFF" + (4 + len(chunk)).to_bytes(4, "little") + b"WEBP" + chunk
    if codec == "gif" and not data.startswith(b"GIF"):
        raise AssertionError("gif encoder gave no file header")
    return data


def jpeg(width: int, height: int) -> bytes:
    return still_image("mjpeg", width, height)


def png(width: int, height: int) -> bytes:
    return still_image("png", width, height)


def _tone(seconds: float, rate: int) -> np.ndarray:
    t = np.arange(int(round(seconds * rate))) / rate
    return 0.3 * np.sin(2 * np.pi * 440 * t)


def _silence_then_noise(seconds: float, rate: int) -> np.ndarray:
    # Cheap frames first, costly ones after: a bitrate-based duration guess comes out far
    # too long, which is what makes ADTS durations untrustworthy.
    half = int(round(seconds * rate / 2))
    noise = np.random.default_rng(0).uniform(-0.8, 0.8, int(round(seconds * rate)) - half)
    return np.concatenate([np.zeros(half), noise])


def wav(path: Path, seconds: float, rate: int = 16000, sampwidth: int = 2) -> Path:
    """PCM WAV by the stdlib; sampwidth 1 is unsigned 8-bit, the smallest a long clip can be."""
    tone = _tone(seconds, rate)
    if sampwidth == 1:
        pcm = ((tone + 1) * 127.5).astype(np.uint8).tobytes()
    else:
        pcm = (tone * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(sampwidth)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def encoded_audio(path: Path, seconds: float, container: str, codec: str, rate: int = 16000,
                  bit_rate: int = 32000, signal: str = "tone") -> Path:
    """Audio encoded by PyAV: ('adts', 'aac') for raw .aac, ('ipod', 'aac') for .m4a,
    ('mp3', 'libmp3lame') for .mp3. ``signal`` is "tone" or "silence_then_noise"."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        _write_audio(out, stream, seconds, rate, signal)
    return path


def mp3_with_cover(path: Path, seconds: float = 3.0) -> Path:
    """An MP3 whose ID3 tag holds cover art, which ffmpeg shows as an attached_pic video stream."""
    with av.open(str(path), "w", format="mp3") as out:
        audio = out.add_stream("libmp3lame", rate=16000, layout="mono")
        cover = out.add_stream("mjpeg")
        cover.width = cover.height = 32
        cover.pix_fmt = "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        _write_audio(out, audio, seconds, 16000)
        packet = av.Packet(jpeg(32, 32))
        packet.stream, packet.pts, packet.dts = cover, 0, 0
        out.mux(packet)
    return path


def _write_audio(out, stream, seconds: float, rate: int, signal: str = "tone") -> None:
    wave_ = _silence_then_noise(seconds, rate) if signal == "silence_then_noise" else _tone(seconds, rate)
    samples = (wave_ * 32767).astype(np.int16)
    step = 1024
    for start in range(0, len(samples), step):
        chunk = samples[start:start + step].reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
        frame.sample_rate, frame.pts = rate, start
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def video_mp4(path: Path, seconds: float = 2.5, fps: int = 10) -> Path:
    """A tiny MP4 with an MPEG-4 video stream and an AAC audio stream."""
    with av.open(str(path), "w", format="mp4") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=16000, layout="mono")
        for i in range(int(seconds * fps)):
            frame = _frame(64, 64, "yuv420p")
            frame.pts = i
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode(None):
            out.mux(packet)
        _write_audio(out, audio, seconds, 16000)
    return path


__all__ = ["encoded_audio", "jpeg", "mp3_with_cover", "png", "still_image", "video_mp4", "wav"]
