"""Media probing and validation: one test per rule, all offline, media made at run time."""

from __future__ import annotations

import base64
import builtins
import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead import media
from talkinghead.errors import InputError
from talkinghead.media import check_route, inspect_audio, inspect_image, prepare
from talkinghead.models import MB, AvatarRequest, Limits, Route
from tests import media_factory as mf

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
FACE = EXAMPLES / "face.jpg"
HELLO_SECONDS = 6.94


def rejects(call, field: str, *parts: str) -> InputError:
    """Assert ``call`` raises InputError on ``field`` with a message holding every part."""
    with pytest.raises(InputError) as info:
        call()
    err = info.value
    assert err.field == field
    message = str(err)
    assert message.startswith(f"{field}: ")
    for part in parts:
        assert part in message, message
    return err


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- image format -------------------------------------------------------------------------

@pytest.mark.parametrize("codec, label", [("gif", "GIF"), ("libwebp", "WebP"), ("bmp", "BMP"),
                                          ("tiff", "TIFF")])
def test_image_other_format_renamed_png_is_named(tmp_path, codec, label):
    path = write(tmp_path / "face.png", mf.still_image(codec, 40, 30))
    err = rejects(lambda: inspect_image(path), "image", f"{label} content (file face.png)",
                  "expected jpeg or png")
    assert err.value == label


@pytest.mark.parametrize("data, label", [
    (b"%PDF-1.7\n" + b"\0" * 64, "PDF"),
    (b"\0\0\0\x18ftypheic" + b"\0" * 64, "HEIC"),
    (b"\0\0\0\x18ftypisom" + b"\0" * 64, "MP4"),
    (b"just some text, not a picture", "unrecognised"),
])
def test_image_non_picture_content_is_named(tmp_path, data, label):
    path = write(tmp_path / "face.jpg", data)
    rejects(lambda: inspect_image(path), "image", label, "expected jpeg or png")


def test_image_format_judged_by_content_not_extension(tmp_path):
    path = write(tmp_path / "face.gif", mf.png(20, 10))
    image = inspect_image(path)
    assert (image.format, image.content_type, image.path) == ("png", "image/png", path)
    assert image.filename == "face.png"  # the upload is named for what it is
    assert inspect_image(write(tmp_path / "FACE.JPEG", mf.jpeg(8, 8))).filename == "FACE.JPEG"


# -- image header -------------------------------------------------------------------------

@pytest.mark.parametrize("make, width, height", [(mf.jpeg, 640, 360), (mf.png, 37, 1000)])
def test_image_dimensions_read_from_header(tmp_path, make, width, height):
    image = inspect_image(write(tmp_path / "face", make(width, height)))
    assert (image.width, image.height) == (width, height)


def test_example_face_dimensions():
    image = inspect_image(FACE)
    assert (image.kind, image.format, image.width, image.height) == ("path", "jpeg", 512, 512)
    assert image.size == FACE.stat().st_size and image.filename == "face.jpg"


def test_truncated_png_header(tmp_path):
    path = write(tmp_path / "face.png", mf.png(64, 64)[:20])
    rejects(lambda: inspect_image(path), "image", "truncated or corrupt PNG header", "face.png")


def test_corrupt_png_header_fails_its_crc(tmp_path):
    data = bytearray(mf.png(64, 64))
    data[18] ^= 0x01  # inside the width field
    path = write(tmp_path / "face.png", bytes(data))
    rejects(lambda: inspect_image(path), "image", "truncated or corrupt PNG header")


def test_truncated_jpeg_header(tmp_path):
    path = write(tmp_path / "face.jpg", FACE.read_bytes()[:120])  # cut before the frame header
    rejects(lambda: inspect_image(path), "image", "truncated or corrupt JPEG header", "face.jpg")


# -- sizes ----------------------------------------------------------------------------------

@pytest.mark.parametrize("inspect, field", [(inspect_image, "image"), (inspect_audio, "audio")])
def test_zero_byte_file(tmp_path, inspect, field):
    path = write(tmp_path / "empty.bin", b"")
    rejects(lambda: inspect(path), field, "file empty.bin is empty (0 bytes)")


def test_image_one_byte_over_10_mb(tmp_path):
    data = mf.png(64, 64)
    at_limit = write(tmp_path / "ok.png", data + b"\0" * (10 * MB - len(data)))
    assert inspect_image(at_limit).size == 10 * MB
    over = write(tmp_path / "big.png", data + b"\0" * (10 * MB + 1 - len(data)))
    err = rejects(lambda: inspect_image(over), "image", "10485761 bytes",
                  "larger than the 10485760-byte (10 MB) maximum", "big.png")
    assert (err.value, err.limit) == (10 * MB + 1, 10 * MB)


def test_audio_one_byte_over_5_mb(tmp_path):
    data = mf.wav(tmp_path / "a.wav", 3.0).read_bytes()
    path = write(tmp_path / "big.wav", data + b"\0" * (5 * MB + 1 - len(data)))
    rejects(lambda: inspect_audio(path), "audio", "5242881 bytes",
            "larger than the 5242880-byte (5 MB) maximum")


# -- audio duration -------------------------------------------------------------------------

def test_audio_shorter_than_2_s(tmp_path):
    path = mf.wav(tmp_path / "short.wav", 1.9)
    err = rejects(lambda: inspect_audio(path), "audio", "1.9 s is shorter than the 2 s minimum")
    assert err.limit == 2.0


def test_audio_longer_than_300_s(tmp_path):
    # 8 kHz mono 8-bit keeps 300.1 s at 2.4 MB, under the 5 MB limit.
    path = mf.wav(tmp_path / "long.wav", 300.1, rate=8000, sampwidth=1)
    assert path.stat().st_size < 5 * MB
    err = rejects(lambda: inspect_audio(path), "audio", "300.1 s is longer than the 300 s maximum")
    assert err.limit == 300.0


def test_audio_just_over_limit_never_reads_as_the_limit(tmp_path):
    path = mf.wav(tmp_path / "long.wav", 300.001, rate=8000, sampwidth=1)
    rejects(lambda: inspect_audio(path), "audio", "300.001 s is longer than the 300 s maximum")


@pytest.mark.parametrize("name", ["hello.wav", "hello.mp3"])
def test_examples_accepted_with_measured_duration(name):
    audio = inspect_audio(EXAMPLES / name)
    assert audio.duration_s == pytest.approx(HELLO_SECONDS, abs=0.05)
    assert audio.content_type == {"wav": "audio/wav", "mp3": "audio/mpeg"}[audio.format]


def test_adts_aac_duration_is_decoded_not_estimated(tmp_path):
    import av

    path = mf.encoded_audio(tmp_path / "speech.aac", 6.0, "adts", "aac",
                            signal="silence_then_noise")
    with av.open(str(path)) as container:
        estimate = container.duration / av.time_base
    assert abs(estimate - 6.0) > 5  # ffmpeg's bitrate guess is far off for this file
    audio = inspect_audio(path)
    assert (audio.format, audio.content_type) == ("aac", "audio/aac")
    assert audio.duration_s == pytest.approx(6.0, abs=0.1)


def test_adts_named_mp3_is_told_apart_from_mpeg_audio(tmp_path):
    path = mf.encoded_audio(tmp_path / "speech.mp3", 2.5, "adts", "aac")
    assert inspect_audio(path).format == "aac"
    mp3 = mf.encoded_audio(tmp_path / "speech.aac", 2.5, "mp3", "libmp3lame")
    assert inspect_audio(mp3).format == "mp3"


def test_m4a_accepted(tmp_path):
    audio = inspect_audio(mf.encoded_audio(tmp_path / "speech.m4a", 3.0, "ipod", "aac"))
    assert (audio.format, audio.content_type) == ("m4a", "audio/mp4")
    assert audio.duration_s == pytest.approx(3.0, abs=0.05)


def test_mp3_with_cover_art_is_audio_not_video(tmp_path):
    audio = inspect_audio(mf.mp3_with_cover(tmp_path / "song.mp3", 3.0))
    assert audio.duration_s == pytest.approx(3.0, abs=0.1)


# -- audio content --------------------------------------------------------------------------

def test_corrupt_mp3_header_and_garbage(tmp_path):
    path = write(tmp_path / "bad.mp3", b"\xff\xfb\x90\x00" + random.Random(1).randbytes(8000))
    rejects(lambda: inspect_audio(path), "audio", "file bad.mp3 could not be decoded as MP3")


def test_mp3_with_scattered_damage(tmp_path):
    # 100 bytes of noise every 2 KB: about one frame in ten no longer decodes (an isolated bad
    # frame is tolerated; this is far past the 1% allowance).
    data, rng = bytearray((EXAMPLES / "hello.mp3").read_bytes()), random.Random(2)
    for start in range(2000, len(data) - 100, 2000):
        data[start:start + 100] = rng.randbytes(100)
    path = write(tmp_path / "bad.mp3", bytes(data))
    rejects(lambda: inspect_audio(path), "audio", "could not be decoded as MP3", "frames are corrupt")


def test_mp3_with_one_damaged_frame_is_tolerated(tmp_path):
    data = bytearray((EXAMPLES / "hello.mp3").read_bytes())
    data[30000:30040] = random.Random(3).randbytes(40)
    audio = inspect_audio(write(tmp_path / "glitch.mp3", bytes(data)))
    assert audio.duration_s == pytest.approx(HELLO_SECONDS, abs=0.1)


def test_video_given_as_audio(tmp_path):
    path = mf.video_mp4(tmp_path / "clip.m4a")
    err = rejects(lambda: inspect_audio(path), "audio", "file clip.m4a is a video",
                  "expected mp3, wav, m4a or aac")
    assert err.value == "video"


def test_image_given_as_audio(tmp_path):
    path = write(tmp_path / "voice.mp3", mf.png(8, 8))
    rejects(lambda: inspect_audio(path), "audio", "PNG content (file voice.mp3)",
            "expected mp3, wav, m4a or aac")


# -- input forms ----------------------------------------------------------------------------

def test_data_uri_accepted():
    png = mf.png(30, 20)
    image = inspect_image("data:image/png;base64," + b64(png))
    assert (image.kind, image.format, image.filename, image.data) == ("bytes", "png", "image.png", png)
    assert (image.width, image.height) == (30, 20)
    audio = inspect_audio("data:audio/mpeg;base64," + b64((EXAMPLES / "hello.mp3").read_bytes()))
    assert (audio.filename, audio.content_type) == ("audio.mp3", "audio/mpeg")
    assert audio.duration_s == pytest.approx(HELLO_SECONDS, abs=0.05)
    assert audio.open().read() == (EXAMPLES / "hello.mp3").read_bytes()


def test_data_uri_lying_about_its_type():
    uri = "data:image/png;base64," + b64(FACE.read_bytes())
    err = rejects(lambda: inspect_image(uri), "image", "declares image/png", "content is JPEG")
    assert err.limit == "image/png"
    uri = "data:audio/wav;base64," + b64((EXAMPLES / "hello.mp3").read_bytes())
    rejects(lambda: inspect_audio(uri), "audio", "declares audio/wav", "content is MP3")


def test_data_uri_with_bad_base64():
    rejects(lambda: inspect_image("data:image/png;base64,@@not base64@@"), "image",
            "does not hold valid base64")


def test_base64_of_the_face_accepted():
    image = inspect_image(b64(FACE.read_bytes()))
    assert (image.kind, image.format, image.filename, image.width) == ("bytes", "jpeg", "image.jpg", 512)


def test_base64_garbage():
    text = b64(bytes(range(48)))
    err = rejects(lambda: inspect_image(text), "image", "no such file, and not base64",
                  "jpeg or png", text[:20])
    assert text not in str(err)


def test_long_base64_is_never_quoted_whole():
    text = b64(mf.still_image("gif", 200, 200))
    assert len(text) > 200
    err = rejects(lambda: inspect_image(text), "image", "GIF content (base64 text")
    assert text not in str(err) and len(str(err)) < 250


@pytest.mark.parametrize("url, scheme", [("file:///tmp/face.jpg", "file"),
                                         ("ftp://example.com/face.jpg", "ftp")])
def test_other_url_schemes_refused(url, scheme):
    err = rejects(lambda: inspect_image(url), "image", f"{scheme}:// URLs are not supported",
                  "http(s) URL")
    assert err.value == scheme


def test_http_url_passed_through_without_io(monkeypatch):
    def no_io(*args, **kwargs):
        raise AssertionError("a URL must not be read")

    monkeypatch.setattr(builtins, "open", no_io)
    monkeypatch.setattr(os, "stat", no_io)
    monkeypatch.setattr(socket, "create_connection", no_io)
    image = inspect_image("https://cdn.example.com/people/face%201.jpg?sig=abc")
    audio = inspect_audio("http://cdn.example.com/hello.mp3")
    monkeypatch.undo()
    assert (image.kind, image.url, image.filename) == (
        "url", "https://cdn.example.com/people/face%201.jpg?sig=abc", "face 1.jpg")
    assert (image.format, image.size, image.width, audio.duration_s) == (None, None, None, None)
    with pytest.raises(InputError):
        image.open()


@pytest.mark.parametrize("value", ["no/such/face.jpg", Path("no/such/face.jpg")])
def test_nonexistent_path(value):
    rejects(lambda: inspect_image(value), "image", "no such file", "no/such/face.jpg")


def test_directory(tmp_path):
    rejects(lambda: inspect_audio(str(tmp_path)), "audio", "is a directory")


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path / "face.jpg", FACE.read_bytes())

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    from talkinghead import mediafile

    for module in (media, mediafile):  # shadows the builtin where files are opened
        monkeypatch.setattr(module, "open", denied, raising=False)
    rejects(lambda: inspect_image(path), "image", "cannot read file face.jpg", "Permission denied")


def test_wrong_type():
    rejects(lambda: inspect_image(b"\xff\xd8\xff"), "image", "got bytes")  # type: ignore[arg-type]


def test_open_streams_the_content(tmp_path):
    image = inspect_image(FACE)
    with image.open() as f:
        assert f.read() == FACE.read_bytes()


# -- prepare --------------------------------------------------------------------------------

def test_prepare_valid_request():
    prepared = prepare(AvatarRequest(image=str(FACE), audio=str(EXAMPLES / "hello.mp3")))
    assert prepared.seconds == pytest.approx(HELLO_SECONDS, abs=0.05)
    assert (prepared.image.format, prepared.audio.format) == ("jpeg", "mp3")


def test_prepare_text_request_has_no_audio():
    prepared = prepare(AvatarRequest(image=FACE, text="Hello there."))
    assert prepared.audio is None and prepared.seconds is None


def test_prepare_checks_prompt_length():
    request = AvatarRequest.model_construct(image=str(FACE), text="hi", prompt="x" * 2501,
                                            mode="std", aspect_ratio="16:9")
    rejects(lambda: prepare(request), "prompt", "2501 characters", "2500 maximum")


def test_prepare_rejects_bad_audio():
    request = AvatarRequest(image=str(FACE), audio=str(FACE))
    rejects(lambda: prepare(request), "audio", "JPEG content (file face.jpg)")


# -- check_route ----------------------------------------------------------------------------

def route(**limits) -> Route:
    return Route(provider="kling", model="kling-avatar", modes=("std",), aspect="controls",
                 aspect_ratios=("16:9", "1:1"), price_per_second={"std": 0.05},
                 limits=Limits(**limits))


def prepared_with(tmp_path, width=512, height=512, **request) -> media.PreparedRequest:
    image = write(tmp_path / "face.jpg", mf.jpeg(width, height))
    request.setdefault("text", "Hello there.")
    return prepare(AvatarRequest(image=image, **request))


def test_route_image_min_side(tmp_path):
    rejects(lambda: check_route(prepared_with(tmp_path, 299, 299), route(image_min_side=300)),
            "image", "299x299 px has a side shorter than the 300 px minimum", "kling/kling-avatar")
    check_route(prepared_with(tmp_path, 300, 300), route(image_min_side=300))


@pytest.mark.parametrize("width, height, ok", [(1000, 400, True), (400, 1000, True),
                                               (1000, 399, False), (398, 1000, False)])
def test_route_image_aspect_range(tmp_path, width, height, ok):
    prepared, kling = prepared_with(tmp_path, width, height), route(image_aspect_range=(0.4, 2.5))
    if ok:
        check_route(prepared, kling)
    else:
        rejects(lambda: check_route(prepared, kling), "image", f"{width}x{height} px",
                "outside the allowed 0.4 to 2.5")


def test_route_text_max_chars(tmp_path):
    prepared = prepared_with(tmp_path, text="a" * 501)
    rejects(lambda: check_route(prepared, route(text_max_chars=500)), "text",
            "501 characters is longer than the 500 maximum")


def test_route_unsupported_mode(tmp_path):
    prepared = prepared_with(tmp_path, mode="pro")
    err = rejects(lambda: check_route(prepared, route()), "mode", "'pro' is not offered", "std")
    assert err.limit == ("std",)


def test_route_unsupported_aspect_ratio(tmp_path):
    prepared = prepared_with(tmp_path, aspect_ratio="9:16")
    rejects(lambda: check_route(prepared, route()), "aspect_ratio", "'9:16'", "auto, 16:9 or 1:1")


def test_a_route_that_follows_the_photo_honours_only_the_photos_own_ratio(tmp_path):
    follows = route().model_copy(update={"aspect": "follows_photo", "aspect_ratios": ()})
    square = prepared_with(tmp_path, aspect_ratio="1:1")
    check_route(square, follows)  # the photo is square: the video will be too
    check_route(prepared_with(tmp_path, aspect_ratio="auto"), follows)
    rejects(lambda: check_route(prepared_with(tmp_path, aspect_ratio="16:9"), follows), "aspect_ratio",
            "'16:9' cannot be honoured", "follows the photo", "512x512")
    wide = prepared_with(tmp_path, width=1280, height=720, aspect_ratio="16:9")
    check_route(wide, follows)


def test_route_resolution_voice_language_and_audio_by_resolution(tmp_path):
    r = route().model_copy(update={"resolutions": ("720p", "1080p"), "native_text": True,
                                   "voices": ("Kore (Female)", "Puck (Male)"), "languages": ("Spanish",)})
    rejects(lambda: check_route(prepared_with(tmp_path, resolution="480p"), r), "resolution", "'480p'",
            "720p or 1080p")
    rejects(lambda: check_route(prepared_with(tmp_path, resolution="480p"), route()), "resolution",
            "no resolution choice")
    rejects(lambda: check_route(prepared_with(tmp_path, voice="Nobody"), r), "voice", "'Nobody'", "Kore (Female)")
    rejects(lambda: check_route(prepared_with(tmp_path, language="Klingon"), r), "language", "Spanish")
    check_route(prepared_with(tmp_path, voice="Puck (Male)", language="Spanish", resolution="1080p"), r)
    # A route that takes audio only cannot choose the language of the core's speech.
    rejects(lambda: check_route(prepared_with(tmp_path, language="Spanish"), route()), "language",
            "does not speak text itself")
    wav = mf.wav(tmp_path / "a.wav", 40.0)
    timed = route().model_copy(update={"resolutions": ("720p", "1080p"), "tier_resolution": {"std": "1080p"},
                                       "limits": Limits(audio_max_seconds_by_resolution={"1080p": 30.0})})
    rejects(lambda: check_route(prepared_with(tmp_path, text=None, audio=wav), timed), "audio",
            "30 s maximum at 1080p")
    check_route(prepared_with(tmp_path, text=None, audio=wav, resolution="720p"), timed)


def test_route_narrower_audio_rules(tmp_path):
    m4a = mf.encoded_audio(tmp_path / "a.m4a", 3.0, "ipod", "aac")
    prepared = prepared_with(tmp_path, text=None, audio=m4a)
    rejects(lambda: check_route(prepared, route(audio_formats=("mp3", "wav"))), "audio",
            "m4a is not accepted", "mp3 or wav")
    rejects(lambda: check_route(prepared, route(audio_max_seconds=2.5)), "audio",
            "3 s is longer than the 2.5 s maximum")
    rejects(lambda: check_route(prepared, route(audio_max_bytes=2048)), "audio",
            "KB, file a.m4a) is larger than the 2048-byte (2 KB) maximum")
    check_route(prepared, route())


def test_route_url_inputs_skip_content_checks():
    prepared = prepare(AvatarRequest(image="https://example.com/f.jpg",
                                     audio="https://example.com/a.mp3"))
    assert prepared.seconds is None
    check_route(prepared, route(image_min_side=300, image_aspect_range=(0.4, 2.5),
                                audio_formats=("wav",)))


def test_importing_media_does_not_load_pyav():
    code = "import sys, talkinghead.media; sys.exit('av' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
