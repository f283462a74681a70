"""Audio durations read from container and frame headers, in pure Python: what an estimate
needs without importing PyAV (``import av`` alone is about 39 MiB) or decoding a sample.

Each reader returns the exact number of samples FFmpeg's decoder would put out for a file of
the shape it knows (the count ``probe.measure`` gets by decoding), or None when the file is
not of such a shape, and the caller decodes it instead. Only clean files are read here: MP3
frames that run contiguously to the end (or to an ID3v1 tag), a WAV whose PCM data
chunk lies whole in the file, ADTS frames that run to the end, an MP4/M4A whose first audio
track has a plain edit list. Nothing here decides whether a file is acceptable: a corrupt
file may be measured here and still be refused when it is decoded at submit.
"""

from __future__ import annotations

import struct

# MPEG audio, layer III only (the ``mp3`` format key): kbit/s by [MPEG-1?][bitrate index].
_MP3_KBPS = {True: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
             False: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
_DECODER_DELAY = 529  # samples FFmpeg's MP3 decoder adds, taken off with LAME's own delay
_ENCODERS = (b"LAME", b"Lavf", b"Lavc")  # Info tags whose delay and padding FFmpeg applies
_ADTS_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
_WAV_CODECS = {1, 3, 6, 7}  # PCM, IEEE float, A-law, mu-law: fixed bytes per sample frame


def seconds(data: bytes, fmt: str) -> float | None:
    """Seconds of audio in ``data`` (a whole file of format ``fmt``), or None when its
    headers alone cannot say exactly."""
    reader = {"mp3": mp3_samples, "wav": wav_samples, "aac": adts_samples, "m4a": mp4_samples}.get(fmt)
    found = reader(data) if reader else None
    if found is None:
        return None
    samples, rate = found
    return samples / rate if samples > 0 and rate > 0 else None


# -- MP3 -------------------------------------------------------------------------------------

def _mp3_frame(data: bytes, pos: int) -> tuple[int, int, int, int] | None:
    """(frame length, samples, sample rate, version bits) of a layer III header at ``pos``."""
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[pos + 1], data[pos + 2]
    version, layer = (b1 >> 3) & 3, (b1 >> 1) & 3
    index, rate_index, padding = b2 >> 4, (b2 >> 2) & 3, (b2 >> 1) & 1
    if version == 1 or layer != 1 or index in (0, 15) or rate_index == 3:
        return None  # reserved, not layer III, free-format or bad bitrate, reserved rate
    mpeg1 = version == 3
    rate = _MP3_RATES[version][rate_index]
    length = (144 if mpeg1 else 72) * _MP3_KBPS[mpeg1][index] * 1000 // rate + padding
    return length, (1152 if mpeg1 else 576), rate, version


def _id3v2_end(data: bytes) -> int:
    if data[:3] != b"ID3" or len(data) < 10:
        return 0
    size = sum((b & 0x7F) << (21 - 7 * i) for i, b in enumerate(data[6:10]))
    return 10 + size + (10 if data[5] & 0x10 else 0)


def _trailer_start(data: bytes) -> int:
    """Where an ID3v1 tag (the last 128 bytes) starts, or the end. FFmpeg skips only that one:
    an APE tag after the frames reads as a corrupt frame, so the decoder has the last word."""
    return len(data) - 128 if len(data) >= 128 and data[-128:-125] == b"TAG" else len(data)


def mp3_samples(data: bytes) -> tuple[int, int] | None:
    start, end = _id3v2_end(data), _trailer_start(data)
    first = _mp3_frame(data, start)
    if first is None or end < start:
        return None
    length, spf, rate, version = first
    frames, pos = 0, start
    while pos < end:
        frame = _mp3_frame(data, pos)
        if frame is None or frame[1:] != (spf, rate, version) or pos + frame[0] > end:
            return None  # junk, a change of stream, or a frame cut short: decode instead
        frames += 1
        pos += frame[0]
    tag = _info_tag(data, start, version, data[start + 3] >> 6 == 3)
    if tag is None:
        return frames * spf, rate
    counted, pad = tag
    frames -= 1  # FFmpeg skips the Info frame itself; it holds no audio
    if counted is not None and counted != frames:
        return None  # the tag disagrees with the file: FFmpeg's trimming would too
    if pad is None:
        return frames * spf, rate
    start_pad, end_pad = pad
    # FFmpeg skips start_pad + 529 samples, and drops end_pad - 529 at the end when positive.
    return frames * spf - start_pad - _DECODER_DELAY - max(0, end_pad - _DECODER_DELAY), rate


def _info_tag(data: bytes, start: int, version: int, mono: bool
              ) -> tuple[int | None, tuple[int, int] | None] | None:
    """A Xing/Info (or VBRI) header in the first frame: (frame count, (start pad, end pad) when
    an encoder FFmpeg trusts wrote them); None when the first frame is audio."""
    side = (17 if mono else 32) if version == 3 else (9 if mono else 17)
    at = start + 4 + side
    if data[start + 36:start + 40] == b"VBRI":
        return struct.unpack(">I", data[start + 50:start + 54])[0], None
    if data[at:at + 4] not in (b"Xing", b"Info"):
        return None
    flags = struct.unpack(">I", data[at + 4:at + 8])[0]
    at += 8
    counted = None
    if flags & 1:
        counted = struct.unpack(">I", data[at:at + 4])[0]
        at += 4
    at += (4 if flags & 2 else 0) + (100 if flags & 4 else 0) + (4 if flags & 8 else 0)
    if data[at:at + 4] not in _ENCODERS or counted is None:
        return counted, None
    delays = int.from_bytes(data[at + 21:at + 24], "big")
    return counted, (delays >> 12, delays & 0xFFF)


# -- WAV -------------------------------------------------------------------------------------

def wav_samples(data: bytes) -> tuple[int, int] | None:
    pos, fmt = 12, None
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if kind == b"fmt " and len(body) >= 16:
            codec, channels, rate, _, align, bits = struct.unpack("<HHIIHH", body[:16])
            if codec == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the GUID's first two bytes
                codec = struct.unpack("<H", body[24:26])[0]
            fmt = (codec, channels, rate, align, bits)
        elif kind == b"data":
            if fmt is None or len(body) != size:
                return None  # no format yet, or a data chunk cut short (or of unknown length)
            codec, channels, rate, align, bits = fmt
            if codec not in _WAV_CODECS or not channels or align != channels * ((bits + 7) // 8) or size % align:
                return None
            return size // align, rate
        pos += 8 + size + (size & 1)
    return None


# -- ADTS AAC --------------------------------------------------------------------------------

def adts_samples(data: bytes) -> tuple[int, int] | None:
    start = _id3v2_end(data)
    pos, frames, rate = start, 0, None
    while pos < len(data):
        head = data[pos:pos + 7]
        if len(head) < 7 or head[0] != 0xFF or head[1] & 0xF6 != 0xF0:
            return None
        this = _ADTS_RATES[(head[2] >> 2) & 0xF] if (head[2] >> 2) & 0xF < len(_ADTS_RATES) else None
        length = ((head[3] & 3) << 11) | (head[4] << 3) | (head[5] >> 5)
        if this is None or (rate is not None and this != rate) or length < 7 or pos + length > len(data):
            return None
        rate = this
        frames += (head[6] & 3) + 1
        pos += length
    return (frames * 1024, rate) if rate else None


# -- MP4/M4A ---------------------------------------------------------------------------------

def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, body start, body end) of the boxes in data[start:end]; [] when they do not tile it."""
    out, pos = [], start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1 and pos + 16 <= end:
            size, head = struct.unpack(">Q", data[pos + 8:pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return []
        out.append((kind, pos + head, pos + size))
        pos += size
    return out if pos == end else []


def _child(data: bytes, box: tuple[bytes, int, int], *path: bytes) -> tuple[bytes, int, int] | None:
    for kind in path:
        box = next((b for b in _boxes(data, box[1], box[2]) if b[0] == kind), None)  # type: ignore[assignment]
        if box is None:
            return None
    return box


def mp4_samples(data: bytes) -> tuple[int, int] | None:
    """The first audio track's length as FFmpeg's MP4 reader gives it (the media header's
    duration, cut to a single plain edit); other layouts (fragments, several edits, a
    video track) are left to the decoder."""
    top = _boxes(data, 0, len(data))
    if any(kind == b"moof" for kind, _, _ in top):
        return None
    moov = next((b for b in top if b[0] == b"moov"), None)
    if moov is None:
        return None
    tracks = [b for b in _boxes(data, moov[1], moov[2]) if b[0] == b"trak"]
    handlers = []
    for trak in tracks:
        hdlr = _child(data, trak, b"mdia", b"hdlr")
        handlers.append(data[hdlr[1] + 8:hdlr[1] + 12] if hdlr else b"")
    if b"soun" not in handlers or any(h not in (b"soun", b"text", b"meta") for h in handlers):
        return None
    trak = tracks[handlers.index(b"soun")]
    mdhd, mvhd = _child(data, trak, b"mdia", b"mdhd"), _child(data, moov, b"mvhd")
    if mdhd is None or mvhd is None:
        return None
    timescale, duration = _times(data, mdhd[1])
    movie_scale, _ = _times(data, mvhd[1])
    elst = _child(data, trak, b"edts", b"elst")
    if elst is not None:
        edit = _single_edit(data, elst[1])
        if edit is None or not movie_scale:
            return None
        span, media_time = edit
        # FFmpeg rescales the edit's span to the track's timescale rounding to nearest (av_rescale).
        duration = min(duration, (span * timescale + movie_scale // 2) // movie_scale)
    return duration, timescale


def _times(data: bytes, at: int) -> tuple[int, int]:
    """(timescale, duration) of an mvhd or mdhd body."""
    if data[at] == 1:
        return struct.unpack(">IQ", data[at + 20:at + 32])
    return struct.unpack(">II", data[at + 12:at + 20])


def _single_edit(data: bytes, at: int) -> tuple[int, int] | None:
    version, count = data[at], struct.unpack(">I", data[at + 4:at + 8])[0]
    if count != 1:
        return None
    if version == 1:
        span, media_time, rate = struct.unpack(">QqI", data[at + 8:at + 28])
    else:
        span, media_time, rate = struct.unpack(">IiI", data[at + 8:at + 20])
    return (span, media_time) if span and media_time >= 0 and rate == 0x10000 else None
