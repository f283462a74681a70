"""Probe and validate the image and audio of a request, before any network call or spend.

Formats are judged by content (magic bytes), never by extension. Inputs may be a local path,
an http(s) URL (passed through, not fetched), or base64 / a data URI (decoded and checked like
a file). Every violation raises ``InputError`` naming the field, the value found and the limit.

``inspect_image`` / ``inspect_audio`` probe one input and apply the shared rules; ``prepare``
does both for a request; ``check_route`` applies one route's narrower limits afterwards.
Image headers are parsed by hand; a submit then decodes every pixel and sample with PyAV.
An estimate (``decode=False``) stops at the headers: sizes, the image's structure and the
audio's duration from its frame or container headers (``audio_headers``; PyAV only for a
file they cannot measure exactly), so quoting loads neither PyAV nor a face detector.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from . import audio_headers, checks, probe
from .errors import InputError
from .mediafile import MediaFile, _show
from .models import ASPECT_VALUES, MB, AvatarRequest, Limits, Route
from .tts import Speech

SHARED = Limits()  # the rules every route shares; a route may only narrow them
# Images larger than this are refused from their header, before any pixel is decoded: a
# 30000x30000 PNG can be under 1 MB on disk and still take gigabytes to decode.
MAX_PIXELS = 40_000_000
# Speech faster than this is not speech: text that would need more to fit a route's longest
# audio is refused before it is synthesized (a fast reader manages about 15 to 20).
CHARS_PER_SECOND = 25

IMAGE_FORMATS = ("jpeg", "png")
AUDIO_FORMATS = ("mp3", "wav", "m4a", "aac")
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "mp3": "audio/mpeg",
                 "wav": "audio/wav", "m4a": "audio/mp4", "aac": "audio/aac"}
# File name suffixes per format, the usual one first (uploads get a name that matches).
_EXTENSIONS = {"jpeg": (".jpg", ".jpeg"), "png": (".png",), "mp3": (".mp3",),
               "wav": (".wav", ".wave"), "m4a": (".m4a", ".mp4"), "aac": (".aac", ".adts")}
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
_HEAD = 64 * 1024          # enough to sniff, and to see past a typical ID3 tag
_B64 = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose media has been probed and checked against the shared rules."""

    request: AvatarRequest
    image: MediaFile
    audio: MediaFile | None
    speech: Speech | None = None  # set when the audio was synthesized from request.text
    # False when probed for a quote only (headers read, nothing decoded): a provider's
    # validate then skips what needs the content itself (the local renderer's face check).
    # A submit always prepares again with decode=True, before anything is reserved.
    decoded: bool = True

    @property
    def seconds(self) -> float | None:
        return self.audio.duration_s if self.audio else None


# -- public entry points ------------------------------------------------------------------

def inspect_image(value: str | Path, field: str = "image", *, decode: bool = True) -> MediaFile:
    """Probe an image (format, size, width and height) and apply the shared rules; with
    ``decode``, also decode every pixel."""
    return _remembered("image", value, field, _inspect_image, decode)


def inspect_audio(value: str | Path, field: str = "audio", *, decode: bool = True) -> MediaFile:
    """Probe audio (format, size, duration) and apply the shared rules; with ``decode``, the
    duration is counted from every decoded sample (and corrupt audio refused), without it
    read from the headers where they say it exactly."""
    return _remembered("audio", value, field, _inspect_audio, decode)


def _inspect_image(value: str | Path, field: str, decode: bool = True) -> MediaFile:
    media, declared = _resolve(value, field)
    if media.kind == "url":
        return media
    media = _sniffed(media, declared, IMAGE_FORMATS, "jpeg or png")
    with media.open() as f:
        dims = probe.png_size(f.read(33)) if media.format == "png" else probe.jpeg_size(f)
        if dims is not None and media.format == "png" and not probe.png_ends(f, media.size or 0):
            raise InputError(field, f"truncated PNG ({media.origin}): no IEND chunk at its end",
                             value=media.format)
    if dims is None:
        raise InputError(field, f"truncated or corrupt {probe.LABELS[media.format or '']} header "
                         f"({media.origin})", value=media.format)
    media = replace(media, width=dims[0], height=dims[1])
    _check_image(media, SHARED)
    if dims[0] * dims[1] > MAX_PIXELS:  # from the header alone: a bomb costs nothing
        raise InputError(field, f"{dims[0]}x{dims[1]} px ({media.origin}) is more than the "
                         f"{MAX_PIXELS // 1_000_000} megapixel maximum", value=dims,
                         limit=MAX_PIXELS)
    if media.format == "jpeg":
        probe.check_jpeg_end(media)  # cheap, so an estimate refuses a cut-off JPEG too
    if decode:
        probe.decode_image(media)  # every pixel: a backend would fail on it only after the upload
    return media


def _inspect_audio(value: str | Path, field: str, decode: bool = True) -> MediaFile:
    media, declared = _resolve(value, field)
    if media.kind == "url":
        return media
    media = _sniffed(media, declared, AUDIO_FORMATS, "mp3, wav, m4a or aac")
    _check_size(media, SHARED.audio_max_bytes)  # before decoding: never chew on a huge file
    seconds = None
    if not decode:
        with media.open() as f:
            seconds = audio_headers.seconds(f.read(), media.format or "")
    media = replace(media, duration_s=seconds if seconds is not None else probe.measure(media))
    _check_audio(media, SHARED)
    return media


def prepare(request: AvatarRequest, *, decode: bool = True) -> PreparedRequest:
    """Probe the request's media and apply the shared rules (no network). ``decode=False``
    is for a quote: headers only (see the module's docstring); never submit what it returns."""
    if request.voice is not None and request.audio is not None:
        raise InputError("voice", f"{_show(request.voice)} applies to text only, and audio was "
                         "given; drop the voice or give text instead of audio",
                         value=request.voice)
    _check_text(request, SHARED)  # cheap checks first
    image = inspect_image(request.image, "image", decode=decode)
    audio = inspect_audio(request.audio, "audio", decode=decode) if request.audio is not None else None
    return PreparedRequest(request=request, image=image, audio=audio, decoded=decode)


def check_route(prepared: PreparedRequest, route: Route) -> None:
    """Apply one route's declarations: tier, resolution, aspect ratio, text and voice, and its
    own limits (formats, sides, aspect range, audio seconds at the resolution, text length).
    A request the route cannot honour as asked is refused, never quietly changed."""
    request, where = prepared.request, f" (route {route.id})"
    if request.mode not in route.modes:
        raise InputError("mode", f"{request.mode!r} is not offered{where}; it offers "
                         f"{_or(route.modes)}", value=request.mode, limit=route.modes)
    if request.resolution is not None and request.resolution not in route.resolutions:
        offers = f"it offers {_or(route.resolutions)}" if route.resolutions else "it has no resolution choice"
        raise InputError("resolution", f"{request.resolution!r} is not offered{where}; {offers}",
                         value=request.resolution, limit=route.resolutions)
    _check_aspect(prepared, route, where)
    speaks_text = request.text is not None and route.native_text
    if speaks_text:
        _check_voice(request.voice, request.language, route, where)
    elif request.language is not None:
        raise InputError("language", f"{request.language!r} cannot be chosen{where}: it does not speak "
                         "text itself (the core's text-to-speech voice sets the language)",
                         value=request.language, limit=route.languages)
    _check_text(request, route.limits, where)
    _check_image(prepared.image, route.limits, where)
    if prepared.audio is not None and not speaks_text:
        _check_audio(prepared.audio, route.limits, where, route.resolution_for(request))


def route_warnings(request: AvatarRequest, route: Route) -> list[str]:
    """What a route will leave out of an otherwise acceptable request (one line each)."""
    out = []
    if request.prompt is not None and not route.prompt:
        out.append(f"route {route.id} cannot use a prompt; it is not sent")
    if request.seed is not None and not route.seed:
        out.append(f"route {route.id} takes no seed; the result is not reproducible by seed")
    return out


def _check_aspect(prepared: PreparedRequest, route: Route, where: str) -> None:
    asked = prepared.request.aspect_ratio
    if asked == "auto":
        return
    if route.aspect == "controls":
        if asked not in route.aspect_ratios:
            raise InputError("aspect_ratio", f"{asked!r} is not offered{where}; it offers "
                             f"{_or(['auto', *route.aspect_ratios])}", value=asked,
                             limit=("auto", *route.aspect_ratios))
        return
    # The route frames the video like the photo: it honours a ratio the photo already has.
    image = prepared.image
    if image.width and image.height and abs(image.width / image.height / ASPECT_VALUES[asked] - 1) <= 0.02:
        return
    shape = f"the photo is {image.width}x{image.height} px" if image.width else "the photo's shape is unknown"
    raise InputError("aspect_ratio", f"{asked!r} cannot be honoured{where}: it has no aspect control and "
                     f"follows the photo ({shape}); ask 'auto' or use a route that sets the frame",
                     value=asked, limit=("auto",))


def _check_voice(voice: str | None, language: str | None, route: Route, where: str) -> None:
    if voice is None and route.voice_required:
        note = f" ({route.voice_note})" if route.voice_note else ""
        raise InputError("voice", f"is required with text{where}{note}",
                         value=None, limit=route.voices or None)
    if voice is not None and not route.voice_any:
        if not route.voices:
            raise InputError("voice", f"{voice!r} cannot be chosen{where}: it has no voice choice",
                             value=voice, limit=())
        if voice not in route.voices:
            shown = _or(list(route.voices[:6]) + (["..."] if len(route.voices) > 6 else []))
            raise InputError("voice", f"{voice!r} is not one of the route's voices{where} ({shown}; "
                             "see `talkinghead voices`)", value=voice, limit=route.voices)
    if language is not None and language not in route.languages:
        offers = f"it offers {_or(route.languages)}" if route.languages else "it has no language choice"
        raise InputError("language", f"{language!r} is not offered{where}; {offers}", value=language,
                         limit=route.languages)


# -- where the content comes from ---------------------------------------------------------

def _resolve(value: str | Path, field: str) -> tuple[MediaFile, str | None]:
    """Turn a user's value into a MediaFile (no format yet) and a data URI's declared type."""
    if isinstance(value, Path):
        return _local(checks.user_path(field, value), field, str(value)), None
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
        shown = _show(checks.safe_url(text))  # never a password or a signature in a message
        if not parts.hostname:
            raise InputError(field, f"URL {shown} has no host", value=shown)
        name = unquote(parts.path.rsplit("/", 1)[-1]) or field
        return MediaFile(field, "url", filename=name, url=text, origin=f"URL {shown}"), None
    if lower.startswith("data:"):
        return _data_uri(text, field)
    if scheme := _SCHEME.match(text):
        raise InputError(field, f"{scheme.group(1)}:// URLs are not supported ({_show(text)}); "
                         "give a local path, an http(s) URL, a data URI or base64 text",
                         value=scheme.group(1), limit=("http", "https", "data"))
    path = checks.user_path(field, text) if text.startswith("~") else Path(text)
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
    if "\0" in str(path):
        raise InputError(field, "a path cannot contain a NUL character", value=_show(given))
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
        return media.path.stat().st_size  # type: ignore[union-attr]  # kind "path" has a path
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
    fmt = probe.sniff(head)
    if fmt not in allowed:
        label = probe.LABELS.get(fmt, fmt)
        if fmt == "unrecognised" and media.origin.startswith("base64"):
            # A bare string that merely looked like base64: most likely a mistyped path.
            raise InputError(media.field, f"no such file, and not base64 of {expected} content: "
                             f"{media.origin[len('base64 text '):]}",
                             value=media.origin[len("base64 text "):])
        raise InputError(media.field, f"{label} content ({media.origin}) is not a supported "
                         f"format; expected {expected}", value=label, limit=allowed)
    if declared is not None and declared not in _UNTYPED and _MIME_FORMATS.get(declared) != fmt:
        raise InputError(media.field, f"data URI declares {declared} but the content is "
                         f"{probe.LABELS[fmt]}", value=probe.LABELS[fmt], limit=declared)
    # Backends may go by the upload's name, so "face.png" holding JPEG goes up as "face.jpg".
    stem, suffix = (media.path.stem, media.path.suffix.lower()) if media.path else (media.field, "")
    filename = media.filename if suffix in _EXTENSIONS[fmt] else stem + _EXTENSIONS[fmt][0]
    return replace(media, format=fmt, size=size, content_type=CONTENT_TYPES[fmt],
                   filename=filename)


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
    try:
        path = _local_path(value)
    except RuntimeError:  # ~nosuchuser: not remembered; the probe itself says what is wrong
        return None
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


def remembered(request: AvatarRequest, *, decode: bool = True) -> bool:
    """Whether ``prepare(request)`` would only find its files' probes here: nothing to read
    or decode, a few ``stat`` calls, cheap enough for an event loop (the client then skips
    the worker-thread hop, about a quarter of a millisecond per job)."""
    return all(_cached(kind, value, kind, decode)[0] is not None
               for kind, value in (("image", request.image), ("audio", request.audio)) if value is not None)


def _cached(kind: str, value: str | Path, field: str, decode: bool
            ) -> tuple[MediaFile | None, tuple[tuple, os.stat_result] | None]:
    """The remembered probe of ``value`` (or None) and the file's key (None: not a file that
    can be remembered). A decoded probe answers a headers-only one too, not the reverse."""
    kinds = (kind,) if decode else (kind, f"{kind} headers")
    found = _probe_key(kinds[-1], value, field)
    if found is not None:
        with _probes_lock:
            for candidate in kinds:
                media = _PROBES.get((candidate, *found[0][1:]))
                if media is not None:
                    _PROBES.move_to_end((candidate, *found[0][1:]))
                    return media, found
    return None, found


def _remembered(kind: str, value: str | Path, field: str,
                probe: Callable[[str | Path, str, bool], MediaFile], decode: bool) -> MediaFile:
    media, found = _cached(kind, value, field, decode)
    if media is not None:
        return media
    if found is None:
        return probe(value, field, decode)
    key, before = found
    media = probe(value, field, decode)
    settled = time.time_ns() - max(before.st_mtime_ns, before.st_ctime_ns) >= _SETTLED_NS
    after = _probe_key(key[0], value, field)
    if settled and after is not None and after[0] == key:
        with _probes_lock:
            _PROBES[key] = media
            while len(_PROBES) > _PROBES_MAX:
                _PROBES.popitem(last=False)
    return media


# -- limits ----------------------------------------------------------------------------------

def _check_text(request: AvatarRequest, limits: Limits, where: str = "") -> None:
    fields = (("prompt", request.prompt, limits.prompt_max_chars),
              ("text", request.text, limits.text_max_chars),
              ("voice", request.voice, 200))
    for name, text, limit in fields:
        if text is not None and not where:
            checks.plain_text(name, text)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:  # lone surrogates: bytes that were not UTF-8
                raise InputError(name, f"is not valid UTF-8 text (undecodable bytes at character "
                                 f"{exc.start + 1}); give it as UTF-8", value=exc.start,
                                 limit="UTF-8") from None
        if text is not None and limit is not None and len(text) > limit:
            raise InputError(name, f"{len(text)} characters is longer than the {limit} maximum"
                             f"{where}", value=len(text), limit=limit)
    spoken = int(limits.audio_max_seconds * CHARS_PER_SECOND)
    if request.text is not None and len(request.text) > spoken:
        # Before synthesis: 100,000 characters would take minutes to speak, then be refused.
        raise InputError("text", f"{len(request.text)} characters cannot be spoken within the "
                         f"{limits.audio_max_seconds:g} s audio maximum{where} (at most {spoken} "
                         f"characters, {CHARS_PER_SECOND} a second)", value=len(request.text),
                         limit=spoken)


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
    if limits.image_max_side and max(width, height) > limits.image_max_side:
        raise InputError(media.field, f"{width}x{height} px has a side longer than the "
                         f"{limits.image_max_side} px maximum{where}", value=(width, height),
                         limit=limits.image_max_side)
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


def _check_audio(media: MediaFile, limits: Limits, where: str = "", resolution: str | None = None) -> None:
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
    high = limits.audio_max_at(resolution)
    if seconds > high:
        at = f" at {resolution}" if high < limits.audio_max_seconds else ""
        raise InputError(media.field, f"{_num(seconds, high)} s is longer than the {high:g} s "
                         f"maximum{at}{where}", value=seconds, limit=high)


# -- wording ---------------------------------------------------------------------------------

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
           "inspect_image", "prepare", "route_warnings"]
