"""Probe and validate the image and audio of a request, before any network call or spend.

Formats are judged by content (magic bytes), never by extension. Inputs may be a local path,
an http(s) URL (passed through, not fetched), or base64 / a data URI (decoded and checked like
a file). Every violation raises ``InputError`` naming the field, the value found and the limit.

``inspect_image`` / ``inspect_audio`` probe one input and apply the shared rules; ``prepare``
does both for a request; ``check_route`` applies one route's narrower limits afterwards.
Image headers are parsed by hand (no pixel decoding); audio is measured with PyAV, imported
only here so that ``import talkinghead`` stays light.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import stat
import struct
import threading
import time
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field as _field, replace
from pathlib import Path
from typing import IO, Literal
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from .errors import InputError
from .models import MB, AvatarRequest, Limits, Route
from .tts import Speech

SHARED = Limits()  # the rules every route shares; a route may only narrow them

IMAGE_FORMATS = ("jpeg", "png")
AUDIO_FORMATS = ("mp3", "wav", "m4a", "aac")
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "mp3": "audio/mpeg",
                 "wav": "audio/wav", "m4a": "audio/mp4", "aac": "audio/aac"}
# File name suffixes per format, the usual one first (uploads get a name that matches).
_EXTENSIONS = {"jpeg": (".jpg", ".jpeg"), "png": (".png",), "mp3": (".mp3",),
               "wav": (".wav", ".wave"), "m4a": (".m4a", ".mp4"), "aac": (".aac", ".adts")}
_LABELS = {"jpeg": "JPEG", "png": "PNG", "mp3": "MP3", "wav": "WAV", "m4a": "MP4/M4A",
           "aac": "AAC (ADTS)"}
# What a data URI may declare for each format; anything else is a lie about the content.
_MIME_FORMATS = {
    "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/pjpeg": "jpeg", "image/png": "png",
    "audio/mpeg": "mp3", "audio/mp3": "mp3", "audio/mpeg3": "mp3", "audio/x-mpeg-3": "mp3",
    "audio/wav": "wav", "audio/x-wav": "wav", "audio/wave": "wav", "audio/vnd.wave": "wav",
    "audio/mp4": "m4a", "audio/m4a": "m4a", "audio/x-m4a": "m4a",
    "audio/aac": "aac", "audio/x-aac": "aac", "audio/aacp": "aac",
}
_UNTYPED = ("", "application/octet-stream")
# The ffmpeg demuxer to force for each format, so ffmpeg's own probing cannot disagree.
_DEMUXERS = {"mp3": "mp3", "wav": "wav", "m4a": "mp4", "aac": "aac"}
_HEAD = 64 * 1024          # enough to sniff, and to see past a typical ID3 tag
_SHOWN = 60                # longest value quoted in a message (base64 can be megabytes)
_BAD_PACKETS = 0.01        # share of undecodable audio packets tolerated (one glitch, not a mess)
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class MediaFile:
    field: str                                   # "image" or "audio"
    kind: Literal["path", "url", "bytes"]
    filename: str                                # a sensible name for uploads ("face.jpg")
    path: Path | None = None                     # kind == "path"
    url: str | None = None                       # kind == "url"
    data: bytes | None = _field(default=None, repr=False)  # kind == "bytes" (decoded)
    format: str | None = None                    # jpeg|png|mp3|wav|m4a|aac; None for a URL
    content_type: str | None = None              # image/jpeg, audio/mpeg, ...
    size: int | None = None                      # bytes
    width: int | None = None                     # images
    height: int | None = None
    duration_s: float | None = None              # audio, measured
    origin: str = ""                             # for messages: "file face.png", "data URI", ...

    def open(self) -> IO[bytes]:
        """A binary stream of the content, read from disk in chunks for paths."""
        if self.kind == "path":
            try:
                return open(self.path, "rb")  # type: ignore[arg-type]
            except OSError as exc:
                raise InputError(self.field, f"cannot read {self.origin}: {exc.strerror or exc}",
                                 value=str(self.path)) from None
        if self.kind == "bytes":
            return io.BytesIO(self.data or b"")
        raise InputError(self.field, f"{self.origin} is passed through, not fetched, so it has no "
                         "local content to open", value=_show(self.url or ""))


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose media has been probed and checked against the shared rules."""

    request: AvatarRequest
    image: MediaFile
    audio: MediaFile | None
    speech: Speech | None = None  # set when the audio was synthesized from request.text

    @property
    def seconds(self) -> float | None:
        return self.audio.duration_s if self.audio else None


# -- public entry points ------------------------------------------------------------------

def inspect_image(value: str | Path, field: str = "image") -> MediaFile:
    """Probe an image (format, size, width and height) and apply the shared rules."""
    return _remembered("image", value, field, _inspect_image)


def inspect_audio(value: str | Path, field: str = "audio") -> MediaFile:
    """Probe audio (format, size, measured duration) and apply the shared rules."""
    return _remembered("audio", value, field, _inspect_audio)


def _inspect_image(value: str | Path, field: str) -> MediaFile:
    media, declared = _resolve(value, field)
    if media.kind == "url":
        return media
    media = _sniffed(media, declared, IMAGE_FORMATS, "jpeg or png")
    with media.open() as f:
        dims = _png_size(f.read(33)) if media.format == "png" else _jpeg_size(f)
        if dims is not None and media.format == "png" and not _png_ends(f, media.size or 0):
            raise InputError(field, f"truncated PNG ({media.origin}): no IEND chunk at its end",
                             value=media.format)
    if dims is None:
        raise InputError(field, f"truncated or corrupt {_LABELS[media.format]} header "
                         f"({media.origin})", value=media.format)
    media = replace(media, width=dims[0], height=dims[1])
    _check_image(media, SHARED)
    return media


def _inspect_audio(value: str | Path, field: str) -> MediaFile:
    media, declared = _resolve(value, field)
    if media.kind == "url":
        return media
    media = _sniffed(media, declared, AUDIO_FORMATS, "mp3, wav, m4a or aac")
    _check_size(media, SHARED.audio_max_bytes)  # before decoding: never chew on a huge file
    media = replace(media, duration_s=_measure(media))
    _check_audio(media, SHARED)
    return media


def prepare(request: AvatarRequest) -> PreparedRequest:
    """Probe the request's media and apply the shared rules (no network)."""
    _check_text(request, SHARED)  # cheap checks first
    image = inspect_image(request.image, "image")
    audio = inspect_audio(request.audio, "audio") if request.audio is not None else None
    return PreparedRequest(request=request, image=image, audio=audio)


def check_route(prepared: PreparedRequest, route: Route) -> None:
    """Apply one route's own limits (formats, min side, aspect range, text length, ...)."""
    request, where = prepared.request, f" (route {route.id})"
    if request.mode not in route.modes:
        raise InputError("mode", f"{request.mode!r} is not offered{where}; it offers "
                         f"{_or(route.modes)}", value=request.mode, limit=route.modes)
    if request.aspect_ratio not in route.aspect_ratios:
        raise InputError("aspect_ratio", f"{request.aspect_ratio!r} is not offered{where}; it "
                         f"offers {_or(route.aspect_ratios)}", value=request.aspect_ratio,
                         limit=route.aspect_ratios)
    _check_text(request, route.limits, where)
    _check_image(prepared.image, route.limits, where)
    if prepared.audio is not None:
        _check_audio(prepared.audio, route.limits, where)


# -- where the content comes from ---------------------------------------------------------

def _resolve(value: str | Path, field: str) -> tuple[MediaFile, str | None]:
    """Turn a user's value into a MediaFile (no format yet) and a data URI's declared type."""
    if isinstance(value, Path):
        return _local(value.expanduser(), field, str(value)), None
    if not isinstance(value, str):
        raise InputError(field, f"expected a path, URL, data URI or base64 text, got "
                         f"{type(value).__name__}", value=type(value).__name__)
    text = value.strip()
    if not text:
        raise InputError(field, "is empty; expected a path, URL, data URI or base64 text",
                         value="")
    lower = text[:8].lower()
    if lower.startswith(("http://", "https://")):
        try:
            parts = urlsplit(text)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            parts = urlsplit("http://")
        if not parts.hostname:
            raise InputError(field, f"URL {_show(text)} has no host", value=_show(text))
        name = unquote(parts.path.rsplit("/", 1)[-1]) or field
        return MediaFile(field, "url", filename=name, url=text, origin=f"URL {_show(text)}"), None
    if lower.startswith("data:"):
        return _data_uri(text, field)
    if scheme := _SCHEME.match(text):
        raise InputError(field, f"{scheme.group(1)}:// URLs are not supported ({_show(text)}); "
                         "give a local path, an http(s) URL, a data URI or base64 text",
                         value=scheme.group(1), limit=("http", "https", "data"))
    path = Path(text).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError):  # e.g. base64 text longer than a file name may be
        exists = False
    if exists:
        return _local(path, field, text), None
    data = _b64decode(text) if len(text) >= 16 else None
    if data is not None:
        return MediaFile(field, "bytes", filename=field, data=data,
                         origin=f"base64 text {_show(text)}"), None
    raise InputError(field, f"no such file: {_show(text)}", value=_show(text))


def _local(path: Path, field: str, given: str) -> MediaFile:
    if path.is_dir():
        raise InputError(field, f"{_show(given)} is a directory, not a file", value=_show(given))
    if not path.is_file():
        what = "no such file" if not path.exists() else "not a regular file"
        raise InputError(field, f"{what}: {_show(given)}", value=_show(given))
    media = MediaFile(field, "path", filename=path.name, path=path.absolute(),
                      origin=f"file {path.name}")
    media.open().close()  # unreadable files fail here, with a message naming them
    return media


def _data_uri(text: str, field: str) -> tuple[MediaFile, str]:
    header, comma, payload = text[5:].partition(",")
    if not comma:
        raise InputError(field, f"malformed data URI {_show(text)}: no ',' before the data",
                         value=_show(text))
    params = [p.strip().lower() for p in header.split(";")]
    if "base64" in params[1:]:
        data = _b64decode(payload)
    else:  # RFC 2397 also allows percent-encoded bytes
        data = unquote_to_bytes(payload)
    if data is None:
        raise InputError(field, f"data URI {_show(text)} does not hold valid base64",
                         value=_show(text))
    return MediaFile(field, "bytes", filename=field, data=data, origin="data URI"), params[0]


def _b64decode(text: str) -> bytes | None:
    """Standard or URL-safe base64, padded or not, with line breaks; None if it is not."""
    text = re.sub(r"\s+", "", text)
    if not _B64.fullmatch(text):
        return None
    text = text.rstrip("=")
    if len(text) % 4 == 1:
        return None
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, altchars=b"-_" if re.search("[-_]", text) else None,
                                validate=True)
    except (binascii.Error, ValueError):
        return None


def _size(media: MediaFile) -> int:
    if media.kind == "bytes":
        return len(media.data or b"")
    try:
        return media.path.stat().st_size  # type: ignore[union-attr]
    except OSError as exc:
        raise InputError(media.field, f"cannot read {media.origin}: {exc.strerror or exc}",
                         value=str(media.path)) from None


# -- what the content is ------------------------------------------------------------------

def _sniffed(media: MediaFile, declared: str | None, allowed: tuple[str, ...],
             expected: str) -> MediaFile:
    """Fill in format, size, content type and filename, or say what the content really is."""
    size = _size(media)
    if size == 0:
        raise InputError(media.field, f"{media.origin} is empty (0 bytes)", value=0)
    with media.open() as f:
        head = f.read(_HEAD)
    fmt = _sniff(head)
    if fmt not in allowed:
        label = _LABELS.get(fmt, fmt)
        if fmt == "unrecognised" and media.origin.startswith("base64"):
            # A bare string that merely looked like base64: most likely a mistyped path.
            raise InputError(media.field, f"no such file, and not base64 of {expected} content: "
                             f"{media.origin[len('base64 text '):]}",
                             value=media.origin[len("base64 text "):])
        raise InputError(media.field, f"{label} content ({media.origin}) is not a supported "
                         f"format; expected {expected}", value=label, limit=allowed)
    if declared is not None and declared not in _UNTYPED and _MIME_FORMATS.get(declared) != fmt:
        raise InputError(media.field, f"data URI declares {declared} but the content is "
                         f"{_LABELS[fmt]}", value=_LABELS[fmt], limit=declared)
    # Backends may go by the upload's name, so "face.png" holding JPEG goes up as "face.jpg".
    stem, suffix = (media.path.stem, media.path.suffix.lower()) if media.path else (media.field, "")
    filename = media.filename if suffix in _EXTENSIONS[fmt] else stem + _EXTENSIONS[fmt][0]
    return replace(media, format=fmt, size=size, content_type=CONTENT_TYPES[fmt],
                   filename=filename)


def _sniff(head: bytes) -> str:
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
        return "aac" if _mpeg_frame(head[end:end + 4]) == "aac" else "mp3"
    simple = {b"GIF87a": "GIF", b"GIF89a": "GIF", b"%PDF": "PDF", b"II*\0": "TIFF",
              b"MM\0*": "TIFF", b"OggS": "Ogg", b"fLaC": "FLAC", b"\x1a\x45\xdf\xa3": "Matroska/WebM",
              b"FORM": "AIFF", b"BM": "BMP", b"PK\x03\x04": "ZIP"}
    for magic, name in simple.items():
        if head.startswith(magic):
            return name
    if frame := _mpeg_frame(head[:4]):
        return frame
    if head.lstrip()[:1] == b"<":
        return "HTML/XML"
    return "unrecognised"


def _mpeg_frame(head: bytes) -> str | None:
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

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _png_ends(f: IO[bytes], size: int) -> bool:
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


def _png_size(head: bytes) -> tuple[int, int] | None:
    # Signature, then the IHDR chunk: length 13, type, width, height, ..., CRC.
    if len(head) < 33 or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
        return None
    width, height = struct.unpack(">II", head[16:24])
    return (width, height) if 0 < width < 2**31 and 0 < height < 2**31 else None


def _jpeg_size(f: IO[bytes]) -> tuple[int, int] | None:
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
        if m in _SOF:
            body = f.read(5)  # precision, height, width
            if len(body) < 5:
                return None
            height, width = struct.unpack(">HH", body[1:5])
            return (width, height) if width and height else None
        f.seek(length - 2, io.SEEK_CUR)
        stray = 0


# -- remembered probes ----------------------------------------------------------------------

# Probes of local files, remembered: 200 jobs from the same photo and speech read and decode
# them once, not 200 times. The key is the file's identity and state (path as given and as
# resolved, device, inode, size, mtime, ctime); only a file whose mtime and ctime are at
# least two seconds old is remembered, so any later change to it, even within the file
# system's timestamp granularity, gets a new ctime and a new key (git's "racy" rule).
# Failures are never remembered: a bad file is probed, and refused, every time.
_PROBES: OrderedDict[tuple, MediaFile] = OrderedDict()
_PROBES_MAX = 256
_SETTLED_NS = 2_000_000_000
_probes_lock = threading.Lock()


def _local_path(value: str | Path) -> Path | None:
    """The local file ``value`` names, as ``_resolve`` would read it; None for URLs, data
    URIs and other schemes (base64 text is told apart by the file not existing)."""
    if isinstance(value, Path):
        return value.expanduser()
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or text[:8].lower().startswith(("http://", "https://", "data:")) or _SCHEME.match(text):
        return None
    return Path(text).expanduser()


def _probe_key(kind: str, value: str | Path, field: str) -> tuple[tuple, os.stat_result] | None:
    path = _local_path(value)
    if path is None:
        return None
    try:
        where = str(path.absolute())
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return (kind, field, type(value).__name__, str(value), where, st.st_dev, st.st_ino, st.st_size,
            st.st_mtime_ns, st.st_ctime_ns), st


def _remembered(kind: str, value: str | Path, field: str, probe) -> MediaFile:
    found = _probe_key(kind, value, field)
    if found is None:
        return probe(value, field)
    key, before = found
    with _probes_lock:
        media = _PROBES.get(key)
        if media is not None:
            _PROBES.move_to_end(key)
            return media
    media = probe(value, field)
    settled = time.time_ns() - max(before.st_mtime_ns, before.st_ctime_ns) >= _SETTLED_NS
    after = _probe_key(kind, value, field)
    if settled and after is not None and after[0] == key:
        with _probes_lock:
            _PROBES[key] = media
            while len(_PROBES) > _PROBES_MAX:
                _PROBES.popitem(last=False)
    return media


# -- audio, measured with PyAV -------------------------------------------------------------

def _measure(media: MediaFile) -> float:
    """Seconds of audio. ADTS and MP3 durations in the container are estimates from the
    bitrate, so those (and WAV, whose header can lie and which costs nothing) are decoded and
    their samples counted; MP4/M4A carries an exact duration in its index."""
    import av  # heavy: only when audio is actually inspected

    source = str(media.path) if media.kind == "path" else io.BytesIO(media.data or b"")
    label = _LABELS[media.format or ""]
    try:
        with av.open(source, format=_DEMUXERS[media.format or ""], metadata_errors="ignore") as c:
            # Cover art shows up as a video stream flagged attached_pic: that is still audio.
            videos = [s for s in c.streams.video
                      if not s.disposition & av.stream.Disposition.attached_pic]
            if videos:
                codec = videos[0].codec_context.name
                raise InputError(media.field, f"{media.origin} is a video ({codec} video stream), "
                                 "not audio; expected mp3, wav, m4a or aac", value="video",
                                 limit=AUDIO_FORMATS)
            if not c.streams.audio:
                raise InputError(media.field, f"{media.origin} has no audio stream",
                                 value=label)
            stream = c.streams.audio[0]
            if media.format == "m4a":
                if stream.duration and stream.time_base:
                    return float(stream.duration * stream.time_base)
                if c.duration:
                    return c.duration / av.time_base
            return _decoded_seconds(c, stream, media, av.FFmpegError)
    except InputError:
        raise
    except Exception as exc:  # PyAV raises FFmpegError, but also ValueError, EOFError, ...
        raise InputError(media.field, f"{media.origin} could not be decoded as {label}: "
                         f"{_av_reason(exc)}", value=label) from None


def _decoded_seconds(container, stream, media: MediaFile, ffmpeg_error: type) -> float:
    seconds, packets, bad = 0.0, 0, 0
    codec = stream.codec_context
    for packet in container.demux(stream):
        if packet.size == 0:  # the demuxer's end-of-stream marker
            continue
        packets += 1
        try:
            frames = codec.decode(packet)
        except ffmpeg_error:
            bad += 1
            continue
        seconds += sum(fr.samples / fr.sample_rate for fr in frames if fr.sample_rate)
    try:
        seconds += sum(fr.samples / fr.sample_rate for fr in codec.decode(None) if fr.sample_rate)
    except ffmpeg_error:
        bad += 1
    if seconds == 0:
        raise InputError(media.field, f"{media.origin} holds no decodable audio",
                         value=_LABELS[media.format or ""])
    if bad > packets * _BAD_PACKETS:
        raise InputError(media.field, f"{media.origin} could not be decoded as "
                         f"{_LABELS[media.format or '']}: {bad} of {packets} frames are corrupt",
                         value=bad, limit=int(packets * _BAD_PACKETS))
    return seconds


def _av_reason(exc: Exception) -> str:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return reason if len(reason) <= _SHOWN else reason[:_SHOWN - 3] + "..."


# -- limits ----------------------------------------------------------------------------------

def _check_text(request: AvatarRequest, limits: Limits, where: str = "") -> None:
    checks = (("prompt", request.prompt, limits.prompt_max_chars),
              ("text", request.text, limits.text_max_chars))
    for name, text, limit in checks:
        if text is not None and not where:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogates: bytes that were not UTF-8
                raise InputError(name, f"is not valid UTF-8 text (undecodable bytes at character "
                                 f"{exc.start + 1}); give it as UTF-8", value=exc.start,
                                 limit="UTF-8") from None
        if text is not None and limit is not None and len(text) > limit:
            raise InputError(name, f"{len(text)} characters is longer than the {limit} maximum"
                             f"{where}", value=len(text), limit=limit)


def _check_size(media: MediaFile, limit: int, where: str = "") -> None:
    size = media.size or 0
    if size > limit:
        # Exact bytes, since 10 MB + 1 byte would read as "10 MB"; a rounded figure is added
        # only where it helps.
        approx = f"{_approx(size)}, " if _approx(size) != _approx(limit) else ""
        rounded = f" ({_approx(limit)})" if limit >= 1024 else ""
        raise InputError(media.field, f"{size} bytes ({approx}{media.origin}) is larger than the "
                         f"{limit}-byte{rounded} maximum{where}", value=size, limit=limit)


def _check_format(media: MediaFile, allowed: tuple[str, ...], where: str) -> None:
    if media.format not in allowed:
        raise InputError(media.field, f"{media.format} is not accepted{where}; expected "
                         f"{_or(allowed)}", value=media.format, limit=allowed)


def _check_image(media: MediaFile, limits: Limits, where: str = "") -> None:
    if media.kind == "url":  # nothing known about its content
        return
    _check_format(media, limits.image_formats, where)
    _check_size(media, limits.image_max_bytes, where)
    width, height = media.width or 0, media.height or 0
    if limits.image_min_side and min(width, height) < limits.image_min_side:
        raise InputError(media.field, f"{width}x{height} px has a side shorter than the "
                         f"{limits.image_min_side} px minimum{where}", value=(width, height),
                         limit=limits.image_min_side)
    if limits.image_aspect_range and height:
        low, high = limits.image_aspect_range
        ratio = width / height
        if not low - 1e-9 <= ratio <= high + 1e-9:  # inclusive, whatever the float rounding
            shown = _num(ratio, low if ratio < low else high)
            raise InputError(media.field, f"{width}x{height} px has aspect ratio {shown} "
                             f"(width/height), outside the allowed {low:g} to {high:g}{where}",
                             value=ratio, limit=(low, high))


def _check_audio(media: MediaFile, limits: Limits, where: str = "") -> None:
    if media.kind == "url":
        return
    _check_format(media, limits.audio_formats, where)
    _check_size(media, limits.audio_max_bytes, where)
    seconds = media.duration_s
    if seconds is None:
        return
    if seconds < limits.audio_min_seconds:
        low = limits.audio_min_seconds
        raise InputError(media.field, f"{_num(seconds, low)} s is shorter than the {low:g} s "
                         f"minimum{where}", value=seconds, limit=low)
    if seconds > limits.audio_max_seconds:
        high = limits.audio_max_seconds
        raise InputError(media.field, f"{_num(seconds, high)} s is longer than the {high:g} s "
                         f"maximum{where}", value=seconds, limit=high)


# -- wording ---------------------------------------------------------------------------------

def _show(text: str) -> str:
    """Quote a value for a message, cut short: base64 may be megabytes long."""
    if len(text) <= _SHOWN:
        return repr(text)
    return repr(text[:_SHOWN - 3] + "...") + f" ({len(text)} chars)"


def _num(value: float, limit: float) -> str:
    # As few decimals as read well, but never so few that the value reads as the limit.
    for digits in range(2, 10):
        text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
        if float(text) != limit:
            return text
    return repr(value)


def _approx(size: int) -> str:
    value, unit = (size / MB, "MB") if size >= MB else (size / 1024, "KB")
    return f"{value:.2f}".rstrip("0").rstrip(".") + f" {unit}"


def _or(items: tuple[str, ...] | list[str]) -> str:
    items = list(items)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


__all__ = ["MediaFile", "PreparedRequest", "SHARED", "check_route", "inspect_audio",
           "inspect_image", "prepare"]
