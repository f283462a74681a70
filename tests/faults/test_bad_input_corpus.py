"""The bad-input corpus: every input here must be refused with a typed error naming the field
(``InputError``; ``ConfigError`` for the config file and the environment), before any HTTP
request (the inference.sh and fal providers point at the loopback fake, whose record must stay
empty; the mock-derived ``picky`` provider's calls must stay empty) and before any money is
reserved (the journal stays empty). Through the CLI, each exits 2 with exactly one readable
line on stderr and no traceback.

The table covers the request's media and text (``CORPUS``), the options around it: numbers,
webhook URLs, the output destination, the config file and the environment (``OPTIONS``), and
the other commands' arguments (``COMMANDS``). docs/faults.md lists the classes.

``picky`` is the mock with a narrower route, like Kling's own API: sides of at least 300 px,
aspect between 1:2.5 and 2.5:1, text (spoken by its TTS) of at most 200 characters, ``std``
only, 16:9 and 1:1 only.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
import sys
import wave
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner

from talkinghead import AsyncClient, plugins
from talkinghead.cli import main as cli_main
from talkinghead.errors import ConfigError, InputError
from talkinghead.hookspecs import hookimpl
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import MB, AvatarRequest, Limits
from talkinghead.tts import Speech, TTSEngine
from talkinghead_fal import FalProvider
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import FakeInferenceSh, serve

from .. import media_factory as mf

ROOT = Path(__file__).resolve().parents[2]
FACE = ROOT / "examples" / "face.jpg"
MP3 = ROOT / "examples" / "hello.mp3"
WAV = ROOT / "examples" / "hello.wav"
KEY = "bad-input-corpus-key-0123456789"
MOCK = plugins.get_provider_classes()["mock"]


class Picky(MOCK):
    """The mock on a route with Kling-official-like limits. Every protocol call is also counted
    on the class, since the CLI builds its own instance."""

    name = "picky"
    attempts: ClassVar[list[str]] = []

    def routes(self):
        limits = Limits(image_min_side=300, image_aspect_range=(1 / 2.5, 2.5), text_max_chars=200)
        return [r.model_copy(update={"provider": "picky", "modes": ("std",), "aspect_ratios": ("16:9", "1:1"),
                                     "limits": limits, "kind": "cloud"}) for r in super().routes()]

    async def submit(self, job, prepared):
        Picky.attempts.append("submit")
        return await super().submit(job, prepared)

    async def poll(self, job):
        Picky.attempts.append("poll")
        return await super().poll(job)


class PickyPlugin:
    @hookimpl
    def register_providers(self, register):
        register(Picky)


# -- the media, made once ----------------------------------------------------------------------

def _png_with_padding(total: int) -> bytes:
    """A valid PNG of exactly ``total`` bytes: an ancillary chunk pads it before IEND."""
    png = mf.png(320, 320)
    head, iend = png[:-12], png[-12:]
    data = b"Comment\0" + b"x" * (total - len(png) - 12 - 8)
    chunk = len(data).to_bytes(4, "big") + b"tEXt" + data + zlib.crc32(b"tEXt" + data).to_bytes(4, "big")
    out = head + chunk + iend
    assert len(out) == total
    return out


def _wav_of_size(path: Path, total: int) -> Path:
    """8-bit mono PCM at 22.05 kHz, exactly ``total`` bytes (about 238 s at 5 MB)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(22050)
        w.writeframes(b"\x80" * (total - 44))
    assert path.stat().st_size == total
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")


def _png_claiming(width: int, height: int) -> bytes:
    """A small file whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 65536))
            + _chunk(b"IEND", b""))


def _jpeg_claiming(jpeg: bytes, width: int, height: int) -> bytes:
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[:sof + 5] + height.to_bytes(2, "big") + width.to_bytes(2, "big") + jpeg[sof + 9:]


def _scan_start(jpeg: bytes) -> int:
    """Where the first scan's entropy-coded data begins (after the SOS segment)."""
    sos = jpeg.index(b"\xff\xda")
    return sos + 2 + int.from_bytes(jpeg[sos + 2:sos + 4], "big")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("bad-media")

    def put(name: str, data: bytes) -> str:
        (d / name).write_bytes(data)
        return str(d / name)

    png = mf.png(320, 320)
    jpeg = FACE.read_bytes()
    mp3 = MP3.read_bytes()
    garbled = bytearray(mp3)
    for i in range(len(garbled) // 8, len(garbled), 7):  # most frames after the first few smashed
        garbled[i] ^= 0x5A
    (d / "dir").mkdir()
    (d / "dangling.png").symlink_to(d / "gone.png")
    scan = _scan_start(jpeg)
    idat = png.index(b"IDAT") - 4
    m4a = mf.encoded_audio(d / "tone.m4a", 3.0, "ipod", "aac").read_bytes()
    wav = WAV.read_bytes()
    rng = __import__("random").Random(7)
    return {
        "jpeg_2000_bytes": put("cut2000.jpg", jpeg[:2000]),
        "jpeg_cut_in_scan": put("cutscan.jpg", jpeg[:(scan + len(jpeg)) // 2]),
        "jpeg_cut_after_sos": put("cutsos.jpg", jpeg[:scan + 16]),
        "jpeg_no_eoi": put("noeoi.jpg", jpeg[:-2]),
        "jpeg_cut_100_from_end": put("cut100.jpg", jpeg[:-100]),
        "jpeg_garbage_scan": put("garbage.jpg", jpeg[:scan] + rng.randbytes(len(jpeg) - scan - 2) + b"\xff\xd9"),
        "jpeg_65535": put("huge.jpg", _jpeg_claiming(jpeg, 65535, 65535)),
        "jpeg_8000x6000": put("48mp.jpg", _jpeg_claiming(jpeg, 8000, 6000)),
        "png_garbage_idat": put("badidat.png", png[:idat] + _chunk(b"IDAT", b"\x78\x9c" + rng.randbytes(900))
                                + _chunk(b"IEND", b"")),
        "png_cut_zlib": put("cutzlib.png", png[:idat] + _chunk(b"IDAT", png[idat + 8:idat + 8 + 40])
                            + _chunk(b"IEND", b"")),
        "png_bomb": put("bomb.png", _png_claiming(30000, 30000)),
        "png_7000x6000": put("42mp.png", _png_claiming(7000, 6000)),
        "png_1x1": put("dot.png", mf.png(1, 1)),
        "png_200": put("small200.png", mf.png(200, 200)),
        "png_4000x100": put("strip.png", mf.png(4000, 100)),
        "png_100x4000": put("tower.png", mf.png(100, 4000)),
        "png_1x1_uri": "data:image/png;base64," + base64.b64encode(mf.png(1, 1)).decode(),
        "png_300x100": put("band.png", mf.png(300, 100)),
        "mp3_1000_bytes": put("cut.mp3", mp3[:1000]),
        "m4a_no_index": put("cut.m4a", m4a[:len(m4a) // 3] if m4a.find(b"moov") > len(m4a) // 2
                            else m4a[:32] + m4a[len(m4a) // 2:]),
        "wav_claims_more": put("claims.wav", wav[:44 + 16000]),
        "mp3_sync_noise": put("sync.mp3", b"\xff\xfb\x90\x64" + rng.randbytes(5000)),
        "a_file": put("plain.txt", b"just a file"),
        "dir": d,
        "truncated_png": put("truncated.png", png[:len(png) // 2]),
        "png_header_only": put("header.png", png[:20]),
        "png_bad_crc": put("badcrc.png", png[:29] + b"\0\0\0\0" + png[33:]),
        "truncated_jpeg": put("truncated.jpg", jpeg[:3]),
        "gif_as_png": put("gif.png", mf.still_image("gif", 320, 320)),
        "webp_as_png": put("webp.png", mf.still_image("libwebp", 320, 320)),
        "bmp_as_jpg": put("bmp.jpg", mf.still_image("bmp", 320, 320)),
        "heic_as_jpg": put("heic.jpg", b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64),
        "pdf_as_jpg": put("doc.jpg", b"%PDF-1.7\n" + b"0" * 200),
        "html_as_jpg": put("page.jpg", b"<!doctype html><html><body>404</body></html>"),
        "empty_png": put("empty.png", b""),
        "empty_mp3": put("empty.mp3", b""),
        "image_10mb_plus_1": put("big.png", _png_with_padding(10 * MB + 1)),
        "image_10mb": put("just.png", _png_with_padding(10 * MB)),
        "image_299": put("small.png", mf.png(299, 299)),
        "image_300": put("edge.png", mf.png(300, 300)),
        "image_too_wide": put("wide.png", mf.png(800, 300)),
        "audio_1_9": str(mf.wav(d / "short.wav", 1.9)),
        "audio_300_1": str(mf.wav(d / "long.wav", 300.1, rate=8000, sampwidth=1)),
        "audio_5mb_plus_1": str(_wav_of_size(d / "big.wav", 5 * MB + 1)),
        "audio_5mb": str(_wav_of_size(d / "just.wav", 5 * MB)),
        "corrupt_mp3": put("corrupt.mp3", bytes(garbled)),
        "id3_then_noise": put("noise.mp3", b"ID3\x04\0\0\0\0\0\0" + os.urandom(4000)),
        "empty_wav": put("silent.wav", WAV.read_bytes()[:44]),
        "video_as_audio": str(mf.video_mp4(d / "clip.m4a")),
        "ogg_as_mp3": put("voice.mp3", b"OggS\0\x02" + b"\0" * 200),
        "jpeg_as_audio": put("photo.mp3", jpeg),
        "png_b64": base64.b64encode(png).decode(),
        "jpeg_b64": base64.b64encode(jpeg).decode(),
        "wav_b64": base64.b64encode(WAV.read_bytes()).decode(),
    }


# -- the corpus --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bad:
    name: str
    field: str                                   # the field the error must name
    request: Callable[[dict[str, Any]], dict[str, Any]]  # media -> AvatarRequest fields
    provider: str = "inferencesh"
    cli: bool = True                              # expressible as CLI options
    run: Callable[[dict[str, Any]], dict[str, Any]] = lambda m: {}  # media -> AsyncClient.run kwargs
    client: dict[str, Any] = dc_field(default_factory=dict)         # AsyncClient kwargs
    args: Callable[[dict[str, Any]], list[str]] = lambda m: []      # media -> extra CLI arguments
    cli_field: str | None = None                  # what the CLI line names, when not ``field``
    env: dict[str, str] = dc_field(default_factory=dict)
    config: str | None = None                     # config.toml text
    error: type[Exception] = InputError
    hidden: str | None = None                     # must not appear in the message (a secret)


def ok(m: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A good request, with ``kw`` replacing fields."""
    return {"image": str(FACE), "audio": str(MP3), **kw}


PLATFORMS = {"inferencesh": "inference.sh", "fal": "fal", "mock": "mock"}


def on_each(bad: Bad, *providers: str) -> list[Bad]:
    """The same case on each of ``providers``, its name saying which."""
    return [dataclasses.replace(bad, name=f"{bad.name} on {PLATFORMS[p]}", provider=p) for p in providers]


BIN = "\udcff\udcfe"  # what Python makes of the bytes ff fe in argv ("$(cat latin1.txt)")

CORPUS = [
    # image: content and size
    Bad("truncated PNG", "image", lambda m: ok(m, image=m["truncated_png"])),
    Bad("PNG cut inside its header", "image", lambda m: ok(m, image=m["png_header_only"])),
    Bad("PNG with a corrupt header CRC", "image", lambda m: ok(m, image=m["png_bad_crc"])),
    Bad("JPEG of three bytes", "image", lambda m: ok(m, image=m["truncated_jpeg"])),
    Bad("GIF renamed .png", "image", lambda m: ok(m, image=m["gif_as_png"])),
    Bad("WebP renamed .png", "image", lambda m: ok(m, image=m["webp_as_png"])),
    Bad("BMP renamed .jpg", "image", lambda m: ok(m, image=m["bmp_as_jpg"])),
    Bad("HEIC renamed .jpg", "image", lambda m: ok(m, image=m["heic_as_jpg"])),
    Bad("PDF renamed .jpg", "image", lambda m: ok(m, image=m["pdf_as_jpg"])),
    Bad("HTML page saved as .jpg", "image", lambda m: ok(m, image=m["html_as_jpg"])),
    Bad("zero-byte image", "image", lambda m: ok(m, image=m["empty_png"])),
    Bad("image of 10 MB + 1 byte", "image", lambda m: ok(m, image=m["image_10mb_plus_1"])),
    Bad("MP3 given as the image", "image", lambda m: ok(m, image=str(MP3))),
    Bad("299x299 image for a 300 px minimum", "image", lambda m: ok(m, image=m["image_299"]), "picky"),
    Bad("image wider than 2.5:1", "image", lambda m: ok(m, image=m["image_too_wide"]), "picky"),
    # image: where it comes from
    Bad("image path that does not exist", "image", lambda m: ok(m, image=str(m["dir"] / "nope.jpg"))),
    Bad("dangling symlink", "image", lambda m: ok(m, image=str(m["dir"] / "dangling.png"))),
    Bad("a directory as the image", "image", lambda m: ok(m, image=str(m["dir"] / "dir"))),
    Bad("file:// URL", "image", lambda m: ok(m, image=f"file://{FACE}")),
    Bad("ftp:// URL", "image", lambda m: ok(m, image="ftp://example.com/face.jpg")),
    Bad("http URL without a host", "image", lambda m: ok(m, image="http:///face.jpg")),
    Bad("empty image value", "image", lambda m: ok(m, image="")),
    Bad("data URI typed image/png holding JPEG", "image",
        lambda m: ok(m, image="data:image/png;base64," + m["jpeg_b64"])),
    Bad("data URI typed image/jpeg holding WAV", "image",
        lambda m: ok(m, image="data:image/jpeg;base64," + m["wav_b64"])),
    Bad("data URI with broken base64", "image", lambda m: ok(m, image="data:image/png;base64,iVBOR!!w0KGgo=")),
    Bad("data URI without a comma", "image", lambda m: ok(m, image="data:image/png;base64")),
    Bad("base64 garbage", "image", lambda m: ok(m, image=base64.b64encode(b"\x01\x02garbage" * 20).decode())),
    Bad("not a path, not base64", "image", lambda m: ok(m, image="%%% definitely not an image %%%")),
    Bad("image of the wrong type (Python)", "image", lambda m: ok(m, image=12345), cli=False),
    # audio
    Bad("audio of 1.9 s", "audio", lambda m: ok(m, audio=m["audio_1_9"])),
    Bad("audio of 300.1 s", "audio", lambda m: ok(m, audio=m["audio_300_1"])),
    Bad("audio of 5 MB + 1 byte", "audio", lambda m: ok(m, audio=m["audio_5mb_plus_1"])),
    Bad("corrupt MP3", "audio", lambda m: ok(m, audio=m["corrupt_mp3"])),
    Bad("ID3 tag then noise", "audio", lambda m: ok(m, audio=m["id3_then_noise"])),
    Bad("WAV header with no samples", "audio", lambda m: ok(m, audio=m["empty_wav"])),
    Bad("a video file given as audio", "audio", lambda m: ok(m, audio=m["video_as_audio"])),
    Bad("Ogg renamed .mp3", "audio", lambda m: ok(m, audio=m["ogg_as_mp3"])),
    Bad("JPEG given as the audio", "audio", lambda m: ok(m, audio=m["jpeg_as_audio"])),
    Bad("zero-byte audio", "audio", lambda m: ok(m, audio=m["empty_mp3"])),
    Bad("audio path that does not exist", "audio", lambda m: ok(m, audio=str(m["dir"] / "nope.mp3"))),
    Bad("ftp:// audio URL", "audio", lambda m: ok(m, audio="ftp://example.com/hello.mp3")),
    Bad("data URI typed audio/mpeg holding PNG", "audio",
        lambda m: ok(m, audio="data:audio/mpeg;base64," + m["png_b64"])),
    # text and prompt
    Bad("prompt of 2501 characters", "prompt", lambda m: ok(m, prompt="a" * 2501)),
    Bad("non-UTF-8 prompt", "prompt", lambda m: ok(m, prompt=f"smile {BIN} and nod")),
    Bad("non-UTF-8 text", "text", lambda m: ok(m, audio=None, text=f"Hello {BIN} world")),
    Bad("non-UTF-8 text, native-text route", "text",
        lambda m: ok(m, audio=None, text=f"Hello {BIN} world"), "picky"),
    Bad("text too long for the route's TTS", "text", lambda m: ok(m, audio=None, text="word " * 41), "picky"),
    Bad("whitespace-only text", "text", lambda m: ok(m, audio=None, text="   \n\t ")),
    Bad("audio and text both", "audio", lambda m: ok(m, text="hello there")),
    Bad("neither audio nor text", "audio", lambda m: ok(m, audio=None)),
    # mode and aspect ratio
    Bad("unknown mode", "mode", lambda m: ok(m, mode="ultra")),
    Bad("unknown aspect ratio", "aspect_ratio", lambda m: ok(m, aspect_ratio="4:3")),
    Bad("mode the route does not offer", "mode", lambda m: ok(m, image=m["image_300"], mode="pro"), "picky"),
    Bad("aspect ratio the route does not offer", "aspect_ratio",
        lambda m: ok(m, image=m["image_300"], aspect_ratio="9:16"), "picky"),
    Bad("unknown request field (Python)", "voices", lambda m: ok(m, voices="x"), cli=False),
    # image: decodes whole, or is refused (a backend would fail on it only after the upload)
    *on_each(Bad("JPEG truncated to 2000 bytes", "image", lambda m: ok(m, image=m["jpeg_2000_bytes"])),
             "inferencesh", "mock"),
    Bad("JPEG cut inside its scan data", "image", lambda m: ok(m, image=m["jpeg_cut_in_scan"])),
    Bad("JPEG cut just after its scan header", "image", lambda m: ok(m, image=m["jpeg_cut_after_sos"])),
    Bad("JPEG without its end-of-image marker", "image", lambda m: ok(m, image=m["jpeg_no_eoi"])),
    Bad("JPEG cut 100 bytes before its end", "image", lambda m: ok(m, image=m["jpeg_cut_100_from_end"])),
    Bad("JPEG with random scan data", "image", lambda m: ok(m, image=m["jpeg_garbage_scan"])),
    Bad("JPEG whose SOF claims 65535x65535", "image", lambda m: ok(m, image=m["jpeg_65535"])),
    Bad("JPEG whose SOF claims 8000x6000 (48 MP)", "image", lambda m: ok(m, image=m["jpeg_8000x6000"])),
    Bad("PNG with garbage IDAT and valid CRCs", "image", lambda m: ok(m, image=m["png_garbage_idat"])),
    Bad("PNG whose zlib stream is cut short", "image", lambda m: ok(m, image=m["png_cut_zlib"])),
    *on_each(Bad("30000x30000 PNG bomb", "image", lambda m: ok(m, image=m["png_bomb"])), "inferencesh", "mock"),
    Bad("7000x6000 PNG (42 MP)", "image", lambda m: ok(m, image=m["png_7000x6000"])),
    Bad("JPEG truncated to 2000 bytes, base64", "image",
        lambda m: ok(m, image=base64.b64encode(Path(m["jpeg_2000_bytes"]).read_bytes()).decode())),
    # image: Kling Avatar's own limits, on every route of the model
    *on_each(Bad("1x1 PNG", "image", lambda m: ok(m, image=m["png_1x1"])), "inferencesh", "fal"),
    Bad("1x1 PNG data URI on inference.sh", "image", lambda m: ok(m, image=m["png_1x1_uri"])),
    *on_each(Bad("4000x100", "image", lambda m: ok(m, image=m["png_4000x100"])), "inferencesh", "fal"),
    Bad("100x4000 on inference.sh", "image", lambda m: ok(m, image=m["png_100x4000"])),
    *on_each(Bad("200 px face", "image", lambda m: ok(m, image=m["png_200"])), "inferencesh", "fal"),
    Bad("300x100 (3:1) on inference.sh", "image", lambda m: ok(m, image=m["png_300x100"])),
    # paths that cannot be resolved
    Bad("image under ~nosuchuser/", "image", lambda m: ok(m, image="~nosuchuser/face.jpg")),
    Bad("audio under ~nosuchuser/", "audio", lambda m: ok(m, audio="~nosuchuser/hello.mp3")),
    Bad("image path with a NUL (Python)", "image", lambda m: ok(m, image=Path("face\0.jpg")), cli=False),
    Bad("image path string with a NUL (Python)", "image", lambda m: ok(m, image=f"{FACE}\0.jpg"), cli=False),
    Bad("image URL with a password and no host", "image", lambda m: ok(m, image="http://bob:hunter2@/x.jpg"),
        hidden="hunter2"),
    # audio that does not decode, or is too short once measured
    Bad("MP3 truncated to 1000 bytes", "audio", lambda m: ok(m, audio=m["mp3_1000_bytes"])),
    Bad("M4A without its index", "audio", lambda m: ok(m, audio=m["m4a_no_index"])),
    Bad("WAV whose header claims more than it holds", "audio", lambda m: ok(m, audio=m["wav_claims_more"])),
    Bad("MP3 frame sync then noise", "audio", lambda m: ok(m, audio=m["mp3_sync_noise"])),
    # control characters, and text too long to speak within the route's audio limit
    Bad("prompt with a NUL", "prompt", lambda m: ok(m, prompt="smile\0 and nod")),
    Bad("prompt with an ANSI colour escape", "prompt", lambda m: ok(m, prompt="\x1b[31mred\x1b[0m")),
    Bad("prompt with a terminal title escape", "prompt", lambda m: ok(m, prompt="\x1b]0;owned\x07")),
    Bad("prompt with a bell", "prompt", lambda m: ok(m, prompt="ding\x07")),
    Bad("prompt with DEL", "prompt", lambda m: ok(m, prompt="oops\x7f")),
    Bad("prompt with a C1 CSI", "prompt", lambda m: ok(m, prompt="\x9b2J")),
    Bad("prompt with a backspace", "prompt", lambda m: ok(m, prompt="a\x08b")),
    Bad("text with a NUL", "text", lambda m: ok(m, audio=None, text="Hello\0 world")),
    Bad("text with an ANSI escape", "text", lambda m: ok(m, audio=None, text="Hello \x1b[2J world")),
    Bad("text with a form feed", "text", lambda m: ok(m, audio=None, text="Hello\x0cworld")),
    Bad("text with an ANSI escape, native-text route", "text",
        lambda m: ok(m, audio=None, text="Hello \x1b[2J world"), "picky"),
    Bad("text of 100,000 characters", "text", lambda m: ok(m, audio=None, text="talk " * 20000)),
    Bad("text just over what 300 s can hold", "text", lambda m: ok(m, audio=None, text="x" * 7501)),
    Bad("voice with a control character", "voice", lambda m: ok(m, audio=None, text="hi there", voice="en\x1b[0m")),
    Bad("voice together with audio", "voice", lambda m: ok(m, voice="en-us")),
]


def at(m: dict[str, Any], *parts: str) -> str:
    return str(Path(m["dir"], *parts))


NUMBERS = [  # (CLI option, AsyncClient or run keyword, value)
    ("--budget", "budget_usd", value) for value in ("nan", "inf", "-inf", "-1", "-0.01", "abc")
] + [
    ("--max-cost", "max_cost_usd", value) for value in ("nan", "inf", "-0.5", "1e999")
] + [
    ("--timeout", "timeout", value) for value in ("0", "-5", "nan", "inf", "-0")
]

OPTIONS = [
    *(Bad(f"{option} {value}", keyword, lambda m: ok(m),
          client={keyword: value} if keyword == "budget_usd" else {},
          run=(lambda m, k=keyword, v=value: {k: v}) if keyword != "budget_usd" else (lambda m: {}),
          args=lambda m, o=option, v=value: [o, v], cli_field=option)
      for option, keyword, value in NUMBERS),
    Bad("--budget nan (Python float)", "budget_usd", lambda m: ok(m), client={"budget_usd": float("nan")}, cli=False),
    Bad("timeout of -0.0 (Python float)", "timeout", lambda m: ok(m), run=lambda m: {"timeout": -0.0}, cli=False),
    Bad("max cost given as a list (Python)", "max_cost_usd", lambda m: ok(m), run=lambda m: {"max_cost_usd": [1]},
        cli=False),
    # webhook URLs
    *(Bad(f"webhook {url!r}", "webhook_url", lambda m: ok(m), run=lambda m, u=url: {"webhook_url": u},
          args=lambda m, u=url: ["--webhook", u], cli_field="webhook")
      for url in ("not a url", "file:///etc/passwd", "ftp://example.com/hook", "http:///nohost",
                  "https://example.com/a hook", "/relative/hook", "javascript:alert(1)", "https://host:99999/x")),
    Bad("TALKINGHEAD_WEBHOOK_BASE not a URL", "webhook_base", lambda m: ok(m),
        env={"TALKINGHEAD_WEBHOOK_BASE": "receiver.example.com"}),
    # the output destination, before anything is paid for
    Bad("output under a regular file", "output", lambda m: ok(m), run=lambda m: {"output": at(m, "plain.txt", "o.mp4")},
        args=lambda m: ["--output", at(m, "plain.txt", "o.mp4")]),
    Bad("output deep under a regular file", "output", lambda m: ok(m),
        run=lambda m: {"output": at(m, "plain.txt", "a", "b", "o.mp4")},
        args=lambda m: ["--output", at(m, "plain.txt", "a", "b", "o.mp4")]),
    Bad("output in /proc", "output", lambda m: ok(m), run=lambda m: {"output": "/proc/talkinghead.mp4"},
        args=lambda m: ["--output", "/proc/talkinghead.mp4"]),
    Bad("output naming a directory", "output", lambda m: ok(m), run=lambda m: {"output": at(m, "dir")},
        args=lambda m: ["--output", at(m, "dir")]),
    Bad("output naming the current directory", "output", lambda m: ok(m), run=lambda m: {"output": "."},
        args=lambda m: ["--output", "."]),
    Bad("output under ~nosuchuser/", "output", lambda m: ok(m), run=lambda m: {"output": "~nosuchuser/o.mp4"},
        args=lambda m: ["--output", "~nosuchuser/o.mp4"]),
    Bad("output onto a device", "output", lambda m: ok(m), run=lambda m: {"output": "/dev/null"},
        args=lambda m: ["--output", "/dev/null"]),
    Bad("output with a NUL", "output", lambda m: ok(m), run=lambda m: {"output": "o\0.mp4"},
        args=lambda m: ["--output", "o\0.mp4"]),  # argv cannot hold a NUL; main(args) can
    # the environment and the config file
    *(Bad(f"TALKINGHEAD_BUDGET_USD={value}", "TALKINGHEAD_BUDGET_USD", lambda m: ok(m),
          env={"TALKINGHEAD_BUDGET_USD": value}, error=ConfigError)
      for value in ("nan", "inf", "-5", "ten")),
    *(Bad(f"config {text.splitlines()[-1]}", key, lambda m: ok(m), config=text, error=ConfigError)
      for key, text in (
          ("budget.total_usd", "[budget]\ntotal_usd = nan"),
          ("budget.total_usd", "[budget]\ntotal_usd = inf"),
          ("budget.total_usd", "[budget]\ntotal_usd = \"lots\""),
          ("budget.daily_usd", "[budget]\ndaily_usd = nan"),
          ("budget.daily_usd", "[budget]\ndaily_usd = -1"),
          ("budget.providers.inferencesh", "[budget]\nproviders = { inferencesh = nan }"),
          ("budget", "budget = 3"),
          ("prices.inferencesh.std", "[prices.inferencesh]\nstd = nan"),
          ("prices.inferencesh.std", "[prices.inferencesh]\nstd = -0.1"),
          ("routing.cooldown_s", "[routing]\ncooldown_s = nan"),
          ("routing.failure_threshold", "[routing]\nfailure_threshold = 0"),
      )),
]


# -- the library -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeInferenceSh]:
    with serve(FakeInferenceSh()) as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeInferenceSh) -> FakeInferenceSh:
    return fake_server.reset()


@pytest.fixture
async def client(fake: FakeInferenceSh, tmp_path: Path) -> Any:
    Picky.attempts.clear()
    client = AsyncClient(providers=providers(fake), ledger=SQLiteLedger(tmp_path / "journal.db"))
    yield client
    await client.aclose()


def providers(fake: FakeInferenceSh) -> list[Any]:
    """inference.sh and fal both pointed at the fake: a request from either is on its record."""
    return [InferenceShProvider({"api_key": KEY, "base_url": fake.url, "timeout": 2.0}),
            FalProvider({"api_key": KEY, "base_url": fake.url, "timeout": 2.0}), Picky({}), MOCK({})]


def assert_nothing_sent_or_reserved(fake: FakeInferenceSh, client: AsyncClient | None = None) -> None:
    assert fake.requests == [], [f"{r.method} {r.path}" for r in fake.requests]
    assert Picky.attempts == []
    if client is not None:
        assert client.providers["picky"].calls == []
        assert client.providers["mock"].calls == []
        assert client.ledger.jobs() == []
        assert client.ledger.totals() == {"spent_usd": 0.0, "reserved_usd": 0.0, "today_usd": 0.0}


ALL = CORPUS + OPTIONS


@dataclass(frozen=True)
class Command:
    """A refused invocation of another command: media, the test's folder -> arguments."""

    name: str
    field: str
    args: Callable[[dict[str, Any], Path], list[str]]


def jobs_file(folder: Path, data: bytes | None = None) -> str:
    line = json.dumps({"image": str(FACE), "audio": str(MP3), "provider": "inferencesh"})
    (folder / "jobs.jsonl").write_bytes(data if data is not None else line.encode() + b"\n")
    return str(folder / "jobs.jsonl")


def sheet(m: dict[str, Any], t: Path, *extra: str, video: str | None = None) -> list[str]:
    return ["preview", video or m["video_as_audio"], "-o", str(t / "sheet.png"), *extra]


def with_config(t: Path, text: str, args: list[str]) -> list[str]:
    """``args``, run with ``text`` as the config file (the CLI's home is ``t/home``)."""
    (t / "home").mkdir(exist_ok=True)
    (t / "home" / "config.toml").write_text(text)
    return args


def generate_args(t: Path) -> list[str]:
    return ["generate", "--provider", "inferencesh", "--image", str(FACE), "--audio", str(MP3), "-o", str(t / "o.mp4")]


COMMANDS = [
    *(Command(f"config {key} = {value}", key,
              lambda m, t, k=key, v=value: with_config(t, f"[{k.rsplit('.', 1)[0]}]\n{k.rsplit('.', 1)[1]} = {v}\n",
                                                        generate_args(t)))
      for key, value in (("providers.inferencesh.timeout", "nan"), ("providers.inferencesh.retry_attempts", "-1"),
                         ("providers.fal.timeout", "inf"), ("providers.kling.price_std", '"cheap"'))),
    *(Command(f"preview {option} {value}", option[2:], lambda m, t, o=option, v=value: sheet(m, t, o, v))
      for option, value in (("--columns", "0"), ("--columns", "-3"), ("--columns", "100000"), ("--rows", "0"),
                            ("--rows", "1000"), ("--width", "-5"), ("--width", "0"), ("--width", "40"),
                            ("--width", "1000000000"), ("--columns", "nan"))),
    Command("preview of a path with a NUL", "video", lambda m, t: sheet(m, t, video="v\0.mp4")),
    Command("batch --results with a NUL", "results", lambda m, t: ["batch", jobs_file(t), "--results", "r\0.jsonl"]),
    Command("preview of a 0-byte file", "video", lambda m, t: sheet(m, t, video=m["empty_mp3"])),
    Command("preview of an MP3", "video", lambda m, t: sheet(m, t, video=str(MP3))),
    Command("preview of a text file", "video", lambda m, t: sheet(m, t, video=m["a_file"])),
    Command("preview of a truncated PNG", "video", lambda m, t: sheet(m, t, video=m["png_cut_zlib"])),
    Command("preview to a path under a file", "output", lambda m, t: ["preview", m["video_as_audio"], "-o",
                                                                        at(m, "plain.txt", "s.png")]),
    Command("preview to /proc", "output", lambda m, t: ["preview", m["video_as_audio"], "-o", "/proc/s.png"]),
    Command("batch of a non-UTF-8 file", "batch file",
            lambda m, t: ["batch", jobs_file(t, '{"image": "Köln.jpg"}\n'.encode("latin-1"))]),
    Command("batch of a UTF-16 file", "batch file",
            lambda m, t: ["batch", jobs_file(t, '{"image": "a.jpg"}\n'.encode("utf-16"))]),
    Command("batch -c 0", "concurrency", lambda m, t: ["batch", jobs_file(t), "-c", "0"]),
    Command("batch --budget nan", "budget", lambda m, t: ["batch", jobs_file(t), "--budget", "nan"]),
    Command("batch --budget -1", "budget", lambda m, t: ["batch", jobs_file(t), "--budget", "-1"]),
    Command("batch --results under a file", "results",
            lambda m, t: ["batch", jobs_file(t), "--results", at(m, "plain.txt", "r.jsonl")]),
    Command("batch --results a directory", "results", lambda m, t: ["batch", jobs_file(t), "--results", at(m, "dir")]),
    Command("batch --output-dir a file", "output-dir", lambda m, t: ["batch", jobs_file(t), "--output-dir",
                                                                     m["a_file"]]),
    Command("batch --output-dir in /proc", "output_dir", lambda m, t: ["batch", jobs_file(t), "--output-dir",
                                                                       "/proc/out"]),
    *(Command(f"serve --port {port}", "port", lambda m, t, p=port: ["serve", "--port", p])
      for port in ("99999", "0", "-1", "http")),
    Command("jobs resume --timeout nan", "timeout", lambda m, t: ["jobs", "resume", "--timeout", "nan"]),
    Command("jobs resume --timeout 0", "timeout", lambda m, t: ["jobs", "resume", "--timeout", "0"]),
    Command("estimate of a truncated JPEG", "image",
            lambda m, t: ["estimate", "--image", m["jpeg_2000_bytes"], "--audio", str(MP3)]),
    Command("estimate of a 1x1 PNG on inference.sh", "image",
            lambda m, t: ["estimate", "--provider", "inferencesh", "--image", m["png_1x1"], "--audio", str(MP3)]),
    Command("estimate under ~nosuchuser/", "image",
            lambda m, t: ["estimate", "--image", "~nosuchuser/f.jpg", "--audio", str(MP3)]),
    Command("estimate with 100,000 characters of text", "text",
            lambda m, t: ["estimate", "--image", str(FACE), "--text", "talk " * 20000]),
]


def test_the_corpus_is_big_enough():
    names = [b.name for b in ALL] + [c.name for c in COMMANDS]
    assert len(names) >= 120 and len(set(names)) == len(names)


def assert_names_field(err: Exception, bad: Bad) -> None:
    assert isinstance(err, bad.error), f"{bad.name}: {type(err).__name__}: {err}"
    assert err.field == bad.field, f"{bad.name}: names {err.field!r}: {err}"
    text = str(err)
    assert bad.field in text and len(text) < 400 and "\n" not in text, text
    text.encode("utf-8")  # printable as it is: no lone surrogate copied into the message
    assert not any(ch in text for ch in "\0\x1b\x07\x9b"), f"control characters echoed: {text!r}"
    if bad.hidden:
        assert bad.hidden not in text


@pytest.mark.parametrize("bad", ALL, ids=[b.name for b in ALL])
async def test_refused_before_any_request_or_reservation(bad, media, client, fake, tmp_path, monkeypatch):
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value)
    if bad.config is not None:
        (tmp_path / "config.toml").write_text(bad.config)
        monkeypatch.setenv("TALKINGHEAD_CONFIG", str(tmp_path / "config.toml"))
    with pytest.raises(bad.error) as info:
        target = client
        if bad.client or bad.env or bad.config is not None:  # a client made with these settings
            target = AsyncClient(providers=providers(fake), ledger=client.ledger, **bad.client)
        request = AvatarRequest(**bad.request(media))
        await target.run(request, provider=bad.provider, **{"output": tmp_path / "out.mp4", **bad.run(media)})
    assert_names_field(info.value, bad)
    assert_nothing_sent_or_reserved(fake, client)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("name, request_fields, provider", [
    ("image of exactly 10 MB", lambda m: ok(m, image=m["image_10mb"]), "inferencesh"),
    ("audio of exactly 5 MB", lambda m: ok(m, audio=m["audio_5mb"]), "inferencesh"),
    ("300x300 image for a 300 px minimum", lambda m: ok(m, image=m["image_300"]), "picky"),
    ("text of exactly the route's limit", lambda m: ok(m, image=m["image_300"], audio=None, text="x" * 200), "picky"),
    ("prompt of 2500 characters", lambda m: ok(m, prompt="a" * 2500), "inferencesh"),
    ("UTF-8 text with accents and emoji", lambda m: ok(m, image=m["image_300"], audio=None,
                                                        text="Grüße, café 👋"), "picky"),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
async def test_the_limits_themselves_are_accepted(name, request_fields, provider, media, client, fake):
    """The other side of each boundary: quoted without complaint (estimate: no network)."""
    quotes = await client.estimate(AvatarRequest(**request_fields(media)), provider=provider)
    assert [q.provider for q in quotes] == [provider]
    assert_nothing_sent_or_reserved(fake, client)


# -- the CLI -----------------------------------------------------------------------------------

def cli_args(fields: dict[str, Any], provider: str) -> list[str]:
    args = ["generate", "--provider", provider, "--image", str(fields["image"])]
    for key, option in (("audio", "--audio"), ("text", "--text"), ("prompt", "--prompt"),
                        ("mode", "--mode"), ("aspect_ratio", "--aspect-ratio"), ("voice", "--voice")):
        if fields.get(key) is not None:
            args += [option, str(fields[key])]
    return args


@pytest.fixture
def cli_env(fake: FakeInferenceSh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("TALKINGHEAD_HOME", str(home))
    monkeypatch.setenv("INFERENCE_API_KEY", KEY)
    monkeypatch.setenv("INFERENCE_BASE_URL", fake.url)
    monkeypatch.setenv("FAL_KEY", KEY)
    monkeypatch.setenv("FAL_BASE_URL", fake.url)
    monkeypatch.delenv("TALKINGHEAD_LOG_LEVEL", raising=False)
    plugins.register(PickyPlugin(), name="bad-input-picky")
    Picky.attempts.clear()
    yield home
    plugins.pm.unregister(name="bad-input-picky")


def assert_one_line_exit_2(code: int, stderr: str, field: str, stdout: str = "") -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, f"exit {code}: {stderr}"
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    key = field.replace("_", "").replace("-", "").lower()
    assert lines[0].startswith("error: ") and key in lines[0].replace("_", "").replace("-", "").lower(), lines
    assert stdout == ""


def assert_no_job(home: Path) -> None:
    db = home / "talkinghead.db"
    if db.exists():
        assert SQLiteLedger(db).jobs() == []


@pytest.mark.parametrize("bad", [b for b in ALL if b.cli], ids=[b.name for b in ALL if b.cli])
def test_cli_exits_2_with_one_line(bad, media, fake, cli_env, tmp_path, monkeypatch):
    for name, value in bad.env.items():
        monkeypatch.setenv(name, value)
    if bad.config is not None:
        (tmp_path / "config.toml").write_text(bad.config)
        monkeypatch.setenv("TALKINGHEAD_CONFIG", str(tmp_path / "config.toml"))
    args = cli_args(bad.request(media), bad.provider) + ["--output", str(tmp_path / "out.mp4"), *bad.args(media)]
    result = CliRunner().invoke(cli_main, args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert_one_line_exit_2(result.exit_code, result.stderr, bad.cli_field or bad.field, result.stdout)
    if bad.hidden:
        assert bad.hidden not in result.stderr
    assert_nothing_sent_or_reserved(fake)
    assert_no_job(cli_env)
    assert not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("case", COMMANDS, ids=[c.name for c in COMMANDS])
def test_other_commands_exit_2_with_one_line(case, media, fake, cli_env, tmp_path):
    result = CliRunner().invoke(cli_main, case.args(media, tmp_path), catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert_one_line_exit_2(result.exit_code, result.stderr, case.field, result.stdout)
    assert_nothing_sent_or_reserved(fake)
    assert_no_job(cli_env)
    assert not (tmp_path / "sheet.png").exists()


def _command() -> list[str]:
    script = Path(sys.executable).with_name("talkinghead")
    return [str(script)] if script.exists() else [sys.executable, "-m", "talkinghead.cli"]


def test_cli_in_real_processes(media, fake, tmp_path):
    """A handful through the installed ``talkinghead`` command, in parallel, as a shell would run
    it: non-UTF-8 bytes arrive as argv bytes (``--text "$(cat latin1.txt)"``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INFERENCE_", "TALKINGHEAD_", "FAL_", "KLING_"))}
    env.update(INFERENCE_API_KEY=KEY, INFERENCE_BASE_URL=fake.url, TALKINGHEAD_HOME=str(tmp_path / "home"),
               TALKINGHEAD_BLOCK_NETWORK="1")
    base = [*_command(), "generate", "--provider", "inferencesh", "--output", str(tmp_path / "out.mp4")]
    latin1 = "Grüße aus Köln".encode("latin-1")
    cases = {
        "image": [*base, "--image", media["truncated_png"], "--audio", str(MP3)],
        "audio": [*base, "--image", str(FACE), "--audio", media["audio_1_9"]],
        "prompt": [*base, "--image", str(FACE), "--audio", str(MP3), "--prompt", "p" * 2501],
        "text": [*[a.encode() for a in base], b"--image", str(FACE).encode(), b"--text", latin1],
        "mode": [*base, "--image", str(FACE), "--audio", str(MP3), "--mode", "ultra"],
        "aspect_ratio": [*base, "--image", "ftp://example.com/a.jpg", "--audio", str(MP3)],
    }
    cases["image (ftp)"] = cases.pop("aspect_ratio")
    procs = {field: subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
             for field, cmd in cases.items()}
    for field, proc in procs.items():
        out, err = proc.communicate(timeout=60)
        text = err.decode("utf-8", errors="replace")
        assert_one_line_exit_2(proc.returncode, text, field.split(" ")[0], out.decode())
    assert_nothing_sent_or_reserved(fake)
    assert_no_job(tmp_path / "home")


def test_a_backend_refusal_on_create_exits_4_not_2(fake, cli_env, tmp_path):
    """2 means nothing was sent; a 422 from the backend comes after the upload and the create,
    so it exits 4 and says the backend refused it. Nothing is charged for it."""
    fake.configure(failures={"create": [422]})
    args = ["generate", "--provider", "inferencesh", "--image", str(FACE), "--audio", str(MP3),
            "--output", str(tmp_path / "out.mp4")]
    result = CliRunner().invoke(cli_main, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 4 and len(lines) == 1 and "refused" in lines[0], result.stderr
    assert [r.path for r in fake.requests if r.method == "POST" and r.path.endswith("/run")]
    (job,) = SQLiteLedger(cli_env / "talkinghead.db").jobs()
    assert job.status.value == "failed" and job.settled_usd == 0


class OverlongSpeech(TTSEngine):
    """A text-to-speech engine whose speech always runs past the 300 s maximum (silence, 8 kHz,
    8-bit: quick to write). Text within the characters-per-second bound still gets here."""

    name = "overlong"
    priority = -1  # chosen before any installed engine

    def synthesize(self, text, out, *, voice=None, rate=None):
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(1)
            w.setframerate(8000)
            w.writeframes(b"\x80" * 8000 * 301)
        return Speech(path=Path(out), duration_s=301.0, engine=self.name)


class OverlongPlugin:
    @hookimpl
    def register_tts(self, register):
        register(OverlongSpeech)


async def test_speech_refused_after_synthesis_leaves_no_file(fake, client, tmp_path, monkeypatch):
    plugins.register(OverlongPlugin(), name="overlong-tts")
    try:
        with pytest.raises(InputError) as info:
            await client.run(AvatarRequest(image=FACE, text="Good evening."), provider="inferencesh",
                             output=tmp_path / "out.mp4")
    finally:
        plugins.pm.unregister(name="overlong-tts")
    assert info.value.field == "text" and "300" in str(info.value)
    assert list((client.settings.home / "speech").glob("*")) == []
    assert_nothing_sent_or_reserved(fake, client)


def test_userinfo_and_signatures_never_reach_the_journal(tmp_path):
    """A URL input keeps its credentials out of the journal's input summary and the logs."""
    from talkinghead import Client, log

    url = "https://bob:hunter2@cdn.example/face.jpg?X-Amz-Signature=s3cr3tsig&X-Amz-Credential=AKIA"
    with Client(providers=[MOCK({})], ledger=SQLiteLedger(tmp_path / "j.db")) as client:
        job = client.submit(AvatarRequest(image=url, audio=MP3), provider="mock")
        stored = client.ledger.get(job.id)
    summary = json.dumps(stored.input_summary)
    assert "cdn.example/face.jpg" in summary
    for secret in ("hunter2", "bob", "s3cr3tsig", "AKIA"):
        assert secret not in summary
    assert "hunter2" not in log.redact(f"fetching {url}")
