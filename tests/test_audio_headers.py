"""Audio durations from headers (``audio_headers``, what an estimate uses) against the
samples FFmpeg decodes (``probe.measure``, what a submit uses): for every clean file they
must be the same float, so an estimate quotes exactly what the submit reserves. Files the
headers cannot measure exactly say None, and the caller decodes them."""

from __future__ import annotations

import struct
from pathlib import Path

import av
import pytest

from talkinghead import audio_headers, media, probe
from talkinghead.mediafile import MediaFile

from . import media_factory as mf

FORMATS = {"mp3": ("mp3", "libmp3lame"), "aac": ("adts", "aac"), "m4a": ("ipod", "aac")}


def decoded(path: Path, fmt: str) -> float:
    return probe.measure(MediaFile("audio", "path", path.name, path=path, format=fmt, origin=path.name))


def encode(path: Path, fmt: str, seconds: float, rate: int, layout: str = "mono",
           options: dict[str, str] | None = None) -> Path:
    container, codec = FORMATS[fmt]
    with av.open(str(path), "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        mf._write_audio(out, stream, seconds, rate)
    return path


@pytest.mark.parametrize("fmt", ["mp3", "aac", "m4a"])
@pytest.mark.parametrize("rate, seconds", [(8000, 0.77), (16000, 2.0), (22050, 3.31), (44100, 1.013),
                                           (48000, 2.5)])
def test_encoded_files_measure_exactly_as_decoded(tmp_path, fmt, rate, seconds):
    path = encode(tmp_path / f"a.{fmt}", fmt, seconds, rate)
    found = audio_headers.seconds(path.read_bytes(), fmt)
    assert found is not None and found == decoded(path, fmt)


@pytest.mark.parametrize("case", ["no Info frame", "stereo", "ID3v1 trailer", "cover art"])
def test_mp3_shapes_measure_exactly_as_decoded(tmp_path, case):
    path = tmp_path / "a.mp3"
    if case == "cover art":
        mf.mp3_with_cover(path)
    else:
        options = {"write_xing": "0"} if case == "no Info frame" else None
        encode(path, "mp3", 1.7, 24000, "stereo" if case == "stereo" else "mono", options)
    if case == "ID3v1 trailer":
        path.write_bytes(path.read_bytes() + b"TAG" + b"title".ljust(125, b"\0"))
    found = audio_headers.seconds(path.read_bytes(), "mp3")
    assert found is not None and found == decoded(path, "mp3")


@pytest.mark.parametrize("bits, rate, seconds", [(1, 8000, 1.5), (2, 16000, 2.0001), (2, 44100, 0.5)])
def test_wav_measures_exactly_as_decoded(tmp_path, bits, rate, seconds):
    path = mf.wav(tmp_path / "a.wav", seconds, rate, sampwidth=bits)
    found = audio_headers.seconds(path.read_bytes(), "wav")
    assert found is not None and found == decoded(path, "wav")


def _ape(data: bytes) -> bytes:  # FFmpeg decodes an APE tag after the frames as a corrupt frame
    item = struct.pack("<II", 5, 0) + b"Title\0hello"
    return data + item + b"APETAGEX" + struct.pack("<IIII", 2000, len(item) + 32, 1, 0) + b"\0" * 8


def _cut(data: bytes) -> bytes:
    return data[:len(data) - 100]


def _junk(data: bytes) -> bytes:
    return data + b"\x00\x01 not a frame " * 10


def _wav_data_size(data: bytes) -> bytes:  # declares more data than the file holds
    at = data.index(b"data")
    return data[:at + 4] + struct.pack("<I", 10**8) + data[at + 8:]


def _wav_adpcm(data: bytes) -> bytes:  # a codec without fixed bytes per sample
    at = data.index(b"fmt ") + 8
    return data[:at] + struct.pack("<H", 2) + data[at + 2:]


@pytest.mark.parametrize("fmt, change", [("mp3", _cut), ("mp3", _junk), ("mp3", _ape), ("aac", _cut), ("aac", _junk),
                                         ("m4a", _cut), ("wav", _cut), ("wav", _wav_data_size),
                                         ("wav", _wav_adpcm)], ids=lambda v: getattr(v, "__name__", v))
def test_what_the_headers_cannot_say_exactly_is_left_to_the_decoder(tmp_path, fmt, change):
    path = tmp_path / f"a.{fmt}"
    if fmt == "wav":
        mf.wav(path, 1.0, 16000)
    else:
        encode(path, fmt, 1.0, 16000)
    assert audio_headers.seconds(path.read_bytes(), fmt) is not None  # clean, before the change
    assert audio_headers.seconds(change(path.read_bytes()), fmt) is None


def test_a_video_in_an_mp4_is_left_to_the_decoder_which_refuses_it(tmp_path):
    path = mf.video_mp4(tmp_path / "clip.m4a")
    assert audio_headers.seconds(path.read_bytes(), "m4a") is None
    with pytest.raises(media.InputError, match="is a video"):
        media.inspect_audio(path, decode=False)


def test_the_examples_measure_alike_from_headers_and_decoded():
    root = Path(__file__).resolve().parents[1] / "examples"
    for name, fmt in (("hello.mp3", "mp3"), ("hello.wav", "wav")):
        path = root / name
        head = media.inspect_audio(path, decode=False)
        full = media.inspect_audio(path)
        assert head.duration_s == full.duration_s == decoded(path, fmt)


@pytest.mark.parametrize("fmt", ["mp3", "wav", "m4a", "aac"])
async def test_an_estimate_quotes_what_the_submit_reserves(tmp_path, monkeypatch, fmt):
    """The estimate reads headers, the submit decodes: the same quote for a valid file, with
    the route's rounding (the mock bills exact seconds x price, rounded to 3 decimals)."""
    from talkinghead import AsyncClient, AvatarRequest, plugins

    monkeypatch.setenv("TALKINGHEAD_HOME", str(tmp_path / "home"))
    path = tmp_path / f"speech.{fmt}"
    if fmt == "wav":
        mf.wav(path, 2.3457, 22050)
    else:
        encode(path, fmt, 2.3457, 22050)
    request = AvatarRequest(image=Path(__file__).resolve().parents[1] / "examples" / "face.jpg", audio=path)
    client = AsyncClient(providers=[plugins.get_provider_classes()["mock"]({"latency": 0})])
    try:
        [quote] = await client.estimate(request, provider="mock")
        job = await client.submit(request, provider="mock")
        assert job.quote == quote and quote.seconds == round(decoded(path, fmt), 3)
    finally:
        await client.aclose()
