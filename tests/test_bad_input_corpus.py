"""The bad-input corpus: every input here must be refused with an ``InputError`` naming the field,
before any HTTP request (the inference.sh provider points at the loopback fake, whose record
must stay empty; the mock-derived ``picky`` provider's calls must stay empty) and before any
money is reserved (the journal stays empty). Through the CLI, each exits 2 with exactly one
readable line on stderr and no traceback.

``picky`` is the mock with a narrower route, like Kling's own API: sides of at least 300 px,
aspect between 1:2.5 and 2.5:1, text (spoken by its TTS) of at most 200 characters, ``std``
only, 16:9 and 1:1 only.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import wave
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
from click.testing import CliRunner
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import FakeInferenceSh, serve

from talkinghead import AsyncClient, plugins
from talkinghead.cli import main as cli_main
from talkinghead.errors import InputError
from talkinghead.hookspecs import hookimpl
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import MB, AvatarRequest, Limits

from . import media_factory as mf

ROOT = Path(__file__).resolve().parent.parent
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
    return {
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


def ok(m: dict[str, Any], **kw: Any) -> dict[str, Any]:
    """A good request, with ``kw`` replacing fields."""
    return {"image": str(FACE), "audio": str(MP3), **kw}


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
    inferencesh = InferenceShProvider({"api_key": KEY, "base_url": fake.url, "timeout": 2.0})
    client = AsyncClient(providers=[inferencesh, Picky({})], ledger=SQLiteLedger(tmp_path / "journal.db"))
    yield client
    await client.aclose()


def assert_nothing_sent_or_reserved(fake: FakeInferenceSh, client: AsyncClient | None = None) -> None:
    assert fake.requests == [], [f"{r.method} {r.path}" for r in fake.requests]
    assert Picky.attempts == []
    if client is not None:
        assert client.providers["picky"].calls == []
        assert client.ledger.jobs() == []
        assert client.ledger.totals() == {"spent_usd": 0.0, "reserved_usd": 0.0, "today_usd": 0.0}


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 40 and len({b.name for b in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("bad", CORPUS, ids=[b.name for b in CORPUS])
async def test_refused_before_any_request_or_reservation(bad, media, client, fake):
    with pytest.raises(InputError) as info:
        request = AvatarRequest(**bad.request(media))
        await client.submit(request, provider=bad.provider)
    err = info.value
    assert err.field == bad.field, f"{bad.name}: names {err.field!r}: {err}"
    assert str(err).startswith(f"{bad.field}: ") and len(str(err)) < 400 and "\n" not in str(err)
    str(err).encode("utf-8")  # printable as it is: no lone surrogate copied into the message
    assert_nothing_sent_or_reserved(fake, client)


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
                        ("mode", "--mode"), ("aspect_ratio", "--aspect-ratio")):
        if fields.get(key) is not None:
            args += [option, str(fields[key])]
    return args


@pytest.fixture
def cli_env(fake: FakeInferenceSh, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("TALKINGHEAD_HOME", str(home))
    monkeypatch.setenv("INFERENCE_API_KEY", KEY)
    monkeypatch.setenv("INFERENCE_BASE_URL", fake.url)
    monkeypatch.delenv("TALKINGHEAD_LOG_LEVEL", raising=False)
    plugins.register(PickyPlugin(), name="bad-input-picky")
    Picky.attempts.clear()
    yield home
    plugins.pm.unregister(name="bad-input-picky")


def assert_one_line_exit_2(code: int, stderr: str, field: str, stdout: str = "") -> None:
    lines = stderr.strip().splitlines()
    assert code == 2, f"exit {code}: {stderr}"
    assert "Traceback" not in stderr and len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and field.replace("_", "") in lines[0].replace("_", "").replace("-", ""), lines
    assert stdout == ""


def assert_no_job(home: Path) -> None:
    db = home / "talkinghead.db"
    if db.exists():
        assert SQLiteLedger(db).jobs() == []


@pytest.mark.parametrize("bad", [b for b in CORPUS if b.cli], ids=[b.name for b in CORPUS if b.cli])
def test_cli_exits_2_with_one_line(bad, media, fake, cli_env, tmp_path):
    args = cli_args(bad.request(media), bad.provider) + ["--output", str(tmp_path / "out.mp4")]
    result = CliRunner().invoke(cli_main, args, catch_exceptions=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert_one_line_exit_2(result.exit_code, result.stderr, bad.field, result.stdout)
    assert_nothing_sent_or_reserved(fake)
    assert_no_job(cli_env)
    assert not (tmp_path / "out.mp4").exists()


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
