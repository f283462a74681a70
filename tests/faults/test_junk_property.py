"""Junk in, no traceback out: a property test over every command a user types and the Python API.

Hypothesis drives ``generate``, ``estimate``, ``batch`` and ``preview`` (in-process, through
click's runner) and ``AsyncClient.run`` with generated junk: random bytes behind real magic
numbers, real files cut at the boundaries of their structure (JPEG markers, PNG chunks, WAV
and MP3 headers) or with bytes overwritten, numbers including nan, inf and -0, unicode paths,
prompts and text. The inference.sh and fal providers point at the loopback fake. Invariants:

- the exit code is 0, 2, 3 or 4; stderr has at most 3 lines and never a traceback; no input
  reaches the CLI's guard for unexpected errors ("run with -v for details");
- whenever the exit is 2, no HTTP request reached the fake and nothing is reserved or spent
  (for ``batch``: when every line is refused; a refused line of a batch is never sent);
- the Python API raises only ``TalkingHeadError``s, and an ``InputError`` or ``ConfigError``
  leaves the fake untouched and the journal empty.

Bounded: a fixed number of examples per command (``EXAMPLES``), about a minute in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from talkinghead import AsyncClient, plugins
from talkinghead.cli import main as cli_main
from talkinghead.errors import ConfigError, InputError, TalkingHeadError
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import AvatarRequest
from talkinghead.testing.loopback import tiny_mp4
from talkinghead_fal import FalProvider
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import FakeInferenceSh, serve

from .. import media_factory as mf

ROOT = Path(__file__).resolve().parents[2]
FACE = ROOT / "examples" / "face.jpg"
MP3 = ROOT / "examples" / "hello.mp3"
WAV = ROOT / "examples" / "hello.wav"
KEY = "junk-property-key-0123456789"
EXAMPLES = {"generate": 160, "estimate": 100, "batch": 50, "preview": 80, "api": 100}
SCALE = float(os.environ.get("TALKINGHEAD_JUNK_SCALE", "1"))  # e.g. 20 to hunt, outside `make test`
GUARD = "run with -v for details"


def junk_test(command: str) -> Callable[[Callable[..., None]], Any]:
    """A hypothesis test of ``command`` drawing its junk from ``data``, for EXAMPLES[command]
    examples (times SCALE)."""
    limits = settings(max_examples=int(EXAMPLES[command] * SCALE), deadline=None, database=None,
                      suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                             HealthCheck.data_too_large])
    return lambda test: limits(given(data=st.data())(test))


# -- real files and the boundaries inside them -------------------------------------------------

def _jpeg_boundaries(data: bytes) -> list[int]:
    # Every marker (FF followed by neither 00 nor FF): where segments, scans and EOI begin.
    return [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] not in (0x00, 0xFF)][:200]


def _png_boundaries(data: bytes) -> list[int]:
    out, pos = [8], 8
    while pos + 8 <= len(data):
        pos += 12 + int.from_bytes(data[pos:pos + 4], "big")
        out += [pos - 4, pos]  # the CRC, and the next chunk
    return out


def _real_files() -> dict[str, tuple[bytes, list[int]]]:
    folder = Path(tempfile.mkdtemp(prefix="junk-real-"))
    try:
        jpeg, png = FACE.read_bytes(), mf.png(320, 320)
        m4a = mf.encoded_audio(folder / "a.m4a", 2.5, "ipod", "aac").read_bytes()
        mp3, wav, mp4 = MP3.read_bytes(), WAV.read_bytes(), tiny_mp4()
    finally:
        shutil.rmtree(folder)
    common = [0, 1, 2, 3, 4, 8, 12, 16, 33, 44, 64, 100, 417, 1000, 2000]
    return {
        "face.jpg": (jpeg, _jpeg_boundaries(jpeg) + common + [len(jpeg) - 2]),
        "face.png": (png, _png_boundaries(png) + common),
        "hello.mp3": (mp3, common + [len(mp3) // 2, len(mp3) - 417]),
        "hello.wav": (wav, common + [44 + 32000 * 2, len(wav) // 2]),
        "tone.m4a": (m4a, common + [m4a.find(b"moov"), m4a.find(b"mdat"), len(m4a) // 2]),
        "clip.mp4": (mp4, common + [mp4.find(b"moov"), mp4.find(b"mdat"), len(mp4) // 2]),
    }


REAL = _real_files()
MAGIC = [b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xdb", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
         b"RIFF\x24\x00\x00\x00WAVEfmt ", b"ID3\x04\x00\x00\x00\x00\x00\x00", b"\x00\x00\x00\x18ftypM4A ",
         b"\x00\x00\x00\x18ftypheic", b"\xff\xfb\x90\x64", b"\xff\xf1\x50\x80", b"OggS", b"GIF89a", b"%PDF-1.7",
         b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"\x1a\x45\xdf\xa3", b""]


@st.composite
def junk_bytes(draw: Any, prefer: tuple[str, ...] = ()) -> bytes:
    """Junk, mostly; a real file whole now and then (from ``prefer`` when given), so that runs
    that pass every check, and are paid for, are exercised too."""
    kind = draw(st.sampled_from(["magic", "cut", "flipped", "whole"]))
    if kind == "magic":
        return draw(st.sampled_from(MAGIC)) + draw(st.binary(max_size=3000))
    names = prefer if prefer and draw(st.booleans()) else tuple(sorted(REAL))
    data, cuts = REAL[draw(st.sampled_from(names))]
    if kind == "cut":
        at = draw(st.sampled_from(cuts)) + draw(st.integers(-3, 3))
        return data[:max(0, min(len(data), at))]
    if kind == "flipped":
        out = bytearray(data)
        for index, value in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(0, 255)),
                                          min_size=1, max_size=8)):
            out[index] = value
        return bytes(out)
    return data


PREFER = {"image": ("face.jpg", "face.png"), "audio": ("hello.mp3", "hello.wav", "tone.m4a"),
          "video": ("clip.mp4",)}
NAMES = st.sampled_from(["face.jpg", "face.png", "hello.mp3", "hello.wav", "tone.m4a", "clip.mp4", "noext",
                         "ü名前 photo.JPG", "-dash.png", ".hidden.wav"])
SPECIAL_PATHS = ["~nosuchuser/a.jpg", "~/missing.png", "/proc/self/nope", "/proc/talkinghead.mp4", "", " ", ".",
                 "..", "/", "/dev/null", "/etc/hostname", "http://u:secret@h.example/x.jpg", "https:///x.png",
                 "ftp://h/x.jpg", "file:///etc/passwd", "data:image/png;base64,iVBORw0KGgo=", "data:,",
                 "data:image/png;base64", "a" * 300, "\udcff\udcfe.jpg", "x\x1b[31m.png"]
# Destinations that must be refused, or are relative to the example's own folder: a run that
# passes every check writes its result there, so nothing outside the folder is ever written.
OUTPUT_SPECIALS = ["~nosuchuser/o.mp4", "/proc/talkinghead.mp4", "/proc/self/nope/o.mp4", "", " ", ".", "..", "/",
                   "/dev/null", "\udcff.mp4", "x\x1b[31m.mp4", "a" * 300, "sub/dir/o.mp4", "o\0.mp4"]
NUMBERS = st.one_of(
    st.sampled_from(["nan", "NaN", "inf", "-inf", "-0", "0", "-0.0", "1e999", "-1", "abc", "", "0x10", "1_000",
                     "0.0001", "5", "1e-320"]),
    st.floats().map(repr), st.integers(-10**12, 10**12).map(str))
TEXT = st.one_of(st.text(max_size=200), st.sampled_from(["\x00", "\x1b[2J", "a\x9bb", " ", "\n", "x" * 8000]),
                 st.text(alphabet=st.characters(max_codepoint=0x9F), max_size=50))


# -- the world each example runs in -------------------------------------------------------------

@pytest.fixture(scope="module")
def fake() -> Iterator[FakeInferenceSh]:
    with serve(FakeInferenceSh(video=tiny_mp4())) as server:
        yield server


@pytest.fixture(scope="module")
def world(fake: FakeInferenceSh, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {"INFERENCE_API_KEY": KEY, "INFERENCE_BASE_URL": fake.url, "FAL_KEY": KEY,
                            "FAL_BASE_URL": fake.url, "TALKINGHEAD_BLOCK_NETWORK": "1"}.items():
            mp.setenv(name, value)
        for name in ("TALKINGHEAD_LOG_LEVEL", "TALKINGHEAD_BUDGET_USD", "TALKINGHEAD_WEBHOOK_BASE",
                     "TALKINGHEAD_CONFIG", "TALKINGHEAD_DB"):
            mp.delenv(name, raising=False)
        yield tmp_path_factory.mktemp("junk")


@contextlib.contextmanager
def example(fake: FakeInferenceSh, world: Path, data: Any) -> Iterator[tuple[Path, Any]]:
    """A fresh home (journal, config), an empty fake record and a working directory of its own
    (junk relative paths, like an output named "false", land there) for one example; with
    the example's ``draw``."""
    fake.reset(step_latency=0.0, heartbeat_interval=0.02, stream_max_seconds=2.0, retry_after=0.01)
    folder = Path(tempfile.mkdtemp(dir=world))
    old = os.environ.get("TALKINGHEAD_HOME")
    os.environ["TALKINGHEAD_HOME"] = str(folder / "home")
    try:
        with contextlib.chdir(folder):
            yield folder, data.draw
    finally:
        os.environ["TALKINGHEAD_HOME"] = old or ""
        shutil.rmtree(folder, ignore_errors=True)


def place(folder: Path, draw: Any, field: str) -> str:
    """A value for a path option: a junk file written here, or a special or random string.
    Destinations (``out``, ``results``) are never an absolute path that could be written."""
    kind = draw(st.sampled_from(["file", "file", "file", "file", "special", "random"]))
    writes = field in ("out", "results")
    if kind == "special":
        return draw(st.sampled_from(OUTPUT_SPECIALS if writes else SPECIAL_PATHS))
    if kind == "random":
        text = draw(st.text(min_size=0, max_size=40))
        return "./" + text if writes else text
    path = folder / f"{field}-{draw(NAMES)}"
    path.write_bytes(draw(junk_bytes(PREFER.get(field, ()))))
    return str(path)


def media_pair(folder: Path, draw: Any) -> tuple[str, str]:
    """Image and audio: junk, or (one time in three) good files, so that the options around
    them are what gets refused, and some runs are paid for, and the run-through is exercised."""
    if draw(st.integers(0, 2)) == 0:
        image, audio = draw(st.sampled_from(PREFER["image"])), draw(st.sampled_from(PREFER["audio"]))
        (folder / image).write_bytes(REAL[image][0])
        (folder / audio).write_bytes(REAL[audio][0])
        return str(folder / image), str(folder / audio)
    return place(folder, draw, "image"), place(folder, draw, "audio")


def journal(home: Path) -> tuple[int, float]:
    db = home / "talkinghead.db"
    if not db.exists():
        return 0, 0.0
    ledger = SQLiteLedger(db)
    totals = ledger.totals()
    return len(ledger.jobs()), totals["reserved_usd"] + totals["spent_usd"]


def invoke(args: list[str], fake: FakeInferenceSh, home: Path) -> Any:
    result = CliRunner().invoke(cli_main, args, catch_exceptions=True)
    err = result.stderr
    note = f"{args!r} -> exit {result.exit_code}: {err}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{note} {result.exception!r}"
    assert result.exit_code in (0, 2, 3, 4), note
    assert "Traceback" not in err and GUARD not in err, note
    assert len(err.strip().splitlines()) <= 3, note
    event(f"{args[0]} exit {result.exit_code}")  # the spread shows with --hypothesis-show-statistics
    return result


def assert_nothing_sent(fake: FakeInferenceSh, home: Path, note: Any) -> None:
    assert fake.requests == [], (note, [f"{r.method} {r.path}" for r in fake.requests])
    assert journal(home) == (0, 0.0), note


def maybe(draw: Any, option: str, values: Any) -> list[str]:
    return [option, draw(values)] if draw(st.integers(0, 2)) == 0 else []  # one time in three


# -- the commands -------------------------------------------------------------------------------

@junk_test("generate")
def test_generate_with_junk(data, fake, world):
    with example(fake, world, data) as (folder, draw):
        image, audio = media_pair(folder, draw)
        args = ["generate", "--provider", draw(st.sampled_from(["inferencesh", "mock", "fal"])), "--image", image]
        args += ["--text", draw(TEXT)] if draw(st.integers(0, 3)) == 0 else ["--audio", audio]
        args += maybe(draw, "--prompt", TEXT) + maybe(draw, "--voice", TEXT)
        args += maybe(draw, "--budget", NUMBERS) + maybe(draw, "--max-cost", NUMBERS)
        args += maybe(draw, "--timeout", NUMBERS) + maybe(draw, "--mode", st.sampled_from(["std", "pro", "x"]))
        args += maybe(draw, "--webhook", st.one_of(st.sampled_from(SPECIAL_PATHS), st.text(max_size=30)))
        output = place(folder, draw, "out") if draw(st.booleans()) else str(folder / "out.mp4")
        result = invoke(args + ["--output", output], fake, folder / "home")
        if result.exit_code == 2:
            assert_nothing_sent(fake, folder / "home", args)


@junk_test("estimate")
def test_estimate_with_junk(data, fake, world):
    with example(fake, world, data) as (folder, draw):
        args = ["estimate", "--image", place(folder, draw, "image")]
        args += ["--text", draw(TEXT)] if draw(st.booleans()) else ["--audio", place(folder, draw, "audio")]
        args += maybe(draw, "--provider", st.sampled_from(["inferencesh", "fal", "mock", "kling", "nope"]))
        result = invoke(args, fake, folder / "home")
        assert fake.requests == []  # estimating never touches the network
        assert journal(folder / "home") == (0, 0.0)
        if result.exit_code == 0:
            assert result.stdout.strip()


LINE_VALUES = st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.none(), st.booleans(),
                        st.lists(st.integers(), max_size=2), st.sampled_from(SPECIAL_PATHS))


@junk_test("batch")
def test_batch_with_junk(data, fake, world):
    with example(fake, world, data) as (folder, draw):
        lines = []
        for _ in range(draw(st.integers(1, 3))):
            if draw(st.booleans()):
                lines.append(draw(st.binary(max_size=80)))
                continue
            line: dict[str, Any] = {"image": place(folder, draw, "image")}
            line.update(draw(st.dictionaries(st.sampled_from(["audio", "text", "prompt", "mode", "aspect_ratio",
                                                              "voice", "provider", "output", "extra"]),
                                             LINE_VALUES, max_size=4)))
            if draw(st.booleans()):
                line["audio"] = place(folder, draw, "audio")
            if isinstance(line.get("output"), str):
                line["output"] = "./" + line["output"]  # relative to the jobs file's folder: stays inside
            lines.append(json.dumps(line).encode())
        jobs = folder / "jobs.jsonl"
        jobs.write_bytes(b"\n".join(lines) + b"\n")
        args = ["batch", str(jobs), "--provider", draw(st.sampled_from(["inferencesh", "mock"]))]
        args += maybe(draw, "--budget", NUMBERS) + maybe(draw, "-c", st.sampled_from(["0", "-1", "2", "x"]))
        if draw(st.booleans()):
            args += ["--results", place(folder, draw, "results")]
        result = invoke(args, fake, folder / "home")
        if result.exit_code == 2:
            results = folder / "jobs.results.jsonl"
            rows = [json.loads(r) for r in results.read_text().splitlines()] if results.exists() else []
            if all(r["status"] == "invalid" for r in rows):  # every line refused: nothing was sent
                assert_nothing_sent(fake, folder / "home", args)


@junk_test("preview")
def test_preview_with_junk(data, fake, world):
    with example(fake, world, data) as (folder, draw):
        video = folder / f"video-{draw(NAMES)}"
        video.write_bytes(draw(junk_bytes(PREFER["video"])))
        args = ["preview", str(video), "-o", str(folder / "sheet.png")]
        for option in ("--columns", "--rows", "--width"):
            args += maybe(draw, option, st.one_of(st.integers(-5, 70).map(str),
                                                  st.sampled_from(["100000", "0", "-5", "nan", "2.5", "99999999999"])))
        result = invoke(args, fake, folder / "home")
        assert (folder / "sheet.png").exists() == (result.exit_code == 0)


# -- the Python API -----------------------------------------------------------------------------

API_VALUES = st.one_of(st.text(max_size=40), st.integers(), st.floats(), st.none(), st.binary(max_size=10),
                       st.sampled_from(SPECIAL_PATHS))
API_NUMBERS = st.one_of(st.none(), st.floats(), st.integers(-5, 10**6), st.sampled_from(["nan", "1", [], -0.0]))


@junk_test("api")
def test_the_python_api_with_junk(data, fake, world):
    with example(fake, world, data) as (folder, draw):
        image, audio = media_pair(folder, draw)
        fields: dict[str, Any] = {"image": image}
        if draw(st.integers(0, 3)):
            fields["audio"] = audio
        else:
            fields["text"] = draw(TEXT)
        fields.update(draw(st.dictionaries(st.sampled_from(["prompt", "mode", "aspect_ratio", "voice"]),
                                           API_VALUES, max_size=3)))
        run = {"max_cost_usd": draw(API_NUMBERS), "timeout": draw(API_NUMBERS),
               "webhook_url": draw(st.one_of(st.none(), st.sampled_from(SPECIAL_PATHS), st.text(max_size=20))),
               "output": draw(st.one_of(st.just(str(folder / "out.mp4")), st.sampled_from(OUTPUT_SPECIALS)))}
        budget = draw(API_NUMBERS)
        provider = draw(st.sampled_from(["inferencesh", "fal", "mock"]))
        ledger = SQLiteLedger(folder / "home" / "talkinghead.db")

        async def go() -> None:
            providers = [InferenceShProvider({"api_key": KEY, "base_url": fake.url, "timeout": 2.0}),
                         FalProvider({"api_key": KEY, "base_url": fake.url, "timeout": 2.0}),
                         plugins.get_provider_classes()["mock"]({})]
            async with AsyncClient(providers=providers, ledger=ledger, budget_usd=budget) as client:
                await client.run(AvatarRequest(**fields), provider=provider, **run)

        note = (fields, run, budget, provider)
        try:
            asyncio.run(go())
            event("api ok")
        except (InputError, ConfigError) as exc:
            event(f"api {type(exc).__name__}")
            assert str(exc) and "\n" not in str(exc), note
            assert_nothing_sent(fake, folder / "home", (note, exc))
        except TalkingHeadError as exc:
            event(f"api {type(exc).__name__}")
