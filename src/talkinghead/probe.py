"""What media content is, read from its bytes: format sniffing by magic numbers, image
dimensions from PNG/JPEG headers parsed by hand (no pixel decoding), and audio duration
measured with PyAV (imported here, on first use, so ``import talkinghead`` stays light).

``media`` decides what is acceptable; this module only finds facts, raising ``InputError``
when the content cannot be read at all.
"""

from __future__ import annotations

import io
import struct
import zlib
from typing import IO, TYPE_CHECKING

from .errors import InputError


def preload() -> None:
    """Import PyAV now rather than on the first media check (``AsyncClient.preload``)."""
    import av  # noqa: F401

if TYPE_CHECKING:
    import av
    import av.container

    from .mediafile import MediaFile

LABELS = {"jpeg": "JPEG", "png": "PNG", "mp3": "MP3", "wav": "WAV", "m4a": "MP4/M4A",
           "aac": "AAC (ADTS)"}
DEMUXERS = {"mp3": "mp3", "wav": "wav", "m4a": "mp4", "aac": "aac"}
BAD_PACKETS = 0.01        # share of undecodable audio packets tolerated (one glitch, not a mess)


def sniff(head: bytes) -> str:
    """One of our format keys, or a readable name for what the content is instead."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head[:4] == b"RIFF" and head[8:12] in (b"WAVE", b"WEBP", b"AVI "):
        return {b"WAVE": "wav", b"WEBP": "WebP", b"AVI ": "AVI"}[head[8:12]]
    if head[4:8] == b"ftyp":  # ISO BMFF: pictures by brand; a video is told apart by its streams
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC"
        return "AVIF" if brand in (b"avif", b"avis") else "m4a"
    if head[:3] == b"ID3":
        # An ID3 tag usually fronts MP3, but HLS-style ADTS AAC carries one too.
        end = 10 + sum((b & 0x7F) << (21 - 7 * i) for i, b in enumerate(head[6:10]))  # syncsafe
        end += 10 if len(head) > 5 and head[5] & 0x10 else 0
        return "aac" if mpeg_frame(head[end:end + 4]) == "aac" else "mp3"
    simple = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"%PDF": "PDF", b"II*\0": "TIFF",
              b"MM\0*": "TIFF", b"OggS": "Ogg", b"fLaC": "FLAC", b"\x1a\x45\xdf\xa3": "Matroska/WebM",
              b"FORM": "AIFF", b"BM": "BMP", b"PK\x03\x04": "ZIP"}
    for magic, name in simple.items():
        if head.startswith(magic):
            return name
    if frame := mpeg_frame(head[:4]):
        return frame
    if head.lstrip()[:1] == b"<":
        return "HTML/XML"
    return "unrecognised"


def mpeg_frame(head: bytes) -> str | None:
    """Tell an ADTS header (12-bit sync, layer 00) from an MPEG audio frame (11-bit sync,
    layer 01..11); both start 0xFFF-ish, so the layer bits decide."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return None
    layer = (head[1] >> 1) & 3
    if layer == 0:
        return "aac" if head[1] & 0xF0 == 0xF0 else None
    version, bitrate, rate = (head[1] >> 3) & 3, head[2] >> 4, (head[2] >> 2) & 3
    if version == 1 or bitrate == 15 or rate == 3:  # reserved values: not a frame header
        return None
    return {1: "mp3", 2: "MP2", 3: "MP1"}[layer]


# -- image headers, parsed by hand ----------------------------------------------------------

SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def png_ends(f: IO[bytes], size: int) -> bool:
    """Whether the PNG's chunks run whole from the signature to IEND, walked by their declared
    lengths (their data is skipped, not read): a file cut short runs out first, and a backend
    would fail on it only after the upload. Bytes after IEND are tolerated, as decoders do."""
    pos = 8
    while pos + 12 <= size:
        f.seek(pos)
        head = f.read(8)
        if head[4:8] == b"IEND":
            return True
        pos += 12 + int.from_bytes(head[:4], "big")
    return False


def png_size(head: bytes) -> tuple[int, int] | None:
    # Signature, then the IHDR chunk: length 13, type, width, height, ..., CRC.
    if len(head) < 33 or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
        return None
    width, height = struct.unpack(">II", head[16:24])
    return (width, height) if 0 < width < 2**31 and 0 < height < 2**31 else None


def jpeg_size(f: IO[bytes]) -> tuple[int, int] | None:
    """Walk the marker segments to the first SOFn (frame header); seeks past EXIF and the like
    instead of reading them."""
    f.seek(2)
    stray = 0
    while True:
        byte = f.read(1)
        if not byte:
            return None
        if byte != b"\xff":
            stray += 1  # libjpeg skips junk between segments; a lot of it means corruption
            if stray > 64:
                return None
            continue
        marker = f.read(1)
        while marker == b"\xff":  # fill bytes
            marker = f.read(1)
        if not marker:
            return None
        m = marker[0]
        if m in (0x00, 0x01, 0xD8) or 0xD0 <= m <= 0xD7:  # no length field
            continue
        if m in (0xD9, 0xDA):  # end of image, or scan data, before any frame header
            return None
        raw = f.read(2)
        length = int.from_bytes(raw, "big") if len(raw) == 2 else 0
        if length < 2:
            return None
        if m in SOF:
            body = f.read(5)  # precision, height, width
            if len(body) < 5:
                return None
            height, width = struct.unpack(">HH", body[1:5])
            return (width, height) if width and height else None
        f.seek(length - 2, io.SEEK_CUR)
        stray = 0


def check_jpeg_end(media: MediaFile) -> None:
    """FFmpeg pads a JPEG cut near its end and decodes it; the end-of-image marker must follow
    the last scan (scan data cannot hold FFD9 or FFDA: an FF there is stuffed as FF00). Reads
    the bytes but decodes nothing, so an estimate makes this check too."""
    with media.open() as f:
        data = f.read()
    if data.rfind(b"\xff\xd9") < data.rfind(b"\xff\xda"):
        raise InputError(media.field, f"truncated JPEG ({media.origin}): no end-of-image marker "
                         "after its last scan", value=LABELS["jpeg"])


# -- images, decoded with PyAV ---------------------------------------------------------------

def decode_image(media: MediaFile) -> None:
    """Decode every pixel of a JPEG or PNG, strictly (``err_detect=explode``: a JPEG cut short
    in its scan data or a PNG with garbage in IDAT fails here, where a lenient decoder would
    fill in grey). The caller has already bounded the pixel count from the header."""
    import av

    with media.open() as f:
        data = f.read()
    label = LABELS[media.format or ""]
    try:
        ctx = av.CodecContext.create("mjpeg" if media.format == "jpeg" else "png", "r")
        ctx.options = {"err_detect": "explode"}
        frames = ctx.decode(av.Packet(data)) + ctx.decode(None)
    except Exception as exc:  # FFmpegError mostly; PyAV raises ValueError and others too
        raise InputError(media.field, f"{media.origin} could not be decoded as {label}: "
                         f"{av_reason(exc)}", value=label) from None
    if not frames or (frames[0].width, frames[0].height) != (media.width, media.height):
        got = f"{frames[0].width}x{frames[0].height}" if frames else "no picture"
        raise InputError(media.field, f"{media.origin} could not be decoded as {label}: {got}, "
                         f"where its header says {media.width}x{media.height}", value=label)


# -- audio, measured with PyAV -------------------------------------------------------------

def measure(media: MediaFile) -> float:
    """Seconds of audio. ADTS and MP3 durations in the container are estimates from the
    bitrate, so those (and WAV, whose header can lie and which costs nothing) are decoded and
    their samples counted; MP4/M4A carries an exact duration in its index."""
    import av  # heavy: only when audio is actually inspected

    source = str(media.path) if media.kind == "path" else io.BytesIO(media.data or b"")
    label = LABELS[media.format or ""]
    try:
        with av.open(source, "r", format=DEMUXERS[media.format or ""], metadata_errors="ignore") as c:
            # Cover art shows up as a video stream flagged attached_pic: that is still audio.
            videos = [s for s in c.streams.video
                      if not s.disposition & av.stream.Disposition.attached_pic]
            if videos:
                codec = videos[0].codec_context.name
                raise InputError(media.field, f"{media.origin} is a video ({codec} video stream), "
                                 "not audio; expected mp3, wav, m4a or aac", value="video",
                                 limit=("mp3", "wav", "m4a", "aac"))
            if not c.streams.audio:
                raise InputError(media.field, f"{media.origin} has no audio stream",
                                 value=label)
            stream = c.streams.audio[0]
            if media.format == "m4a":
                if stream.duration and stream.time_base:
                    return float(stream.duration * stream.time_base)
                if c.duration:
                    return c.duration / av.time_base
            return decoded_seconds(c, stream, media, av.FFmpegError)
    except InputError:
        raise
    except Exception as exc:  # PyAV raises FFmpegError, but also ValueError, EOFError, ...
        raise InputError(media.field, f"{media.origin} could not be decoded as {label}: "
                         f"{av_reason(exc)}", value=label) from None


def decoded_seconds(container: av.container.InputContainer, stream: av.AudioStream, media: MediaFile,
                    ffmpeg_error: type[Exception]) -> float:
    # Samples are counted per rate and divided once, so the figure is exactly what the
    # headers give (``audio_headers``), not a float sum that drifts in the last digits.
    samples: dict[int, int] = {}
    packets, bad = 0, 0
    codec = stream.codec_context

    def count(frames: list[av.AudioFrame]) -> None:
        for fr in frames:
            if fr.sample_rate:
                samples[fr.sample_rate] = samples.get(fr.sample_rate, 0) + fr.samples

    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        packets += 1
        try:
            count(codec.decode(packet))
        except ffmpeg_error:
            bad += 1
    try:
        count(codec.decode(None))
    except ffmpeg_error:
        bad += 1
    seconds = sum(n / rate for rate, n in samples.items())
    if seconds == 0:
        raise InputError(media.field, f"{media.origin} holds no decodable audio",
                         value=LABELS[media.format or ""])
    if bad > packets * BAD_PACKETS:
        raise InputError(media.field, f"{media.origin} could not be decoded as "
                         f"{LABELS[media.format or '']}: {bad} of {packets} frames are corrupt",
                         value=bad, limit=int(packets * BAD_PACKETS))
    return seconds


def av_reason(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return reason if len(reason) <= 60 else reason[:57] + "..."
