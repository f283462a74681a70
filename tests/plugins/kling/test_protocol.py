"""The wire rules as pure functions: the error table (§9), statuses and results (§5), the
callback body (§8), request bodies (§4, §7) and the text-length bound for quotes."""

from __future__ import annotations

import base64
import json

import pytest

from talkinghead import errors, media
from talkinghead.models import JobStatus
from talkinghead_kling import protocol
from tests import fake_secrets

from .conftest import FACE, MP3


def _err(code, message="m", rid="r-1"):
    return {"code": code, "message": message, "request_id": rid}


# -- errors ----------------------------------------------------------------------------------

# Kling's error table (§9), by what each code becomes: the class, whether trying again may work,
# and the codes with the HTTP status each comes with.
ERROR_TABLE = [
    (errors.AuthenticationError, False, [(401, 1000), (401, 1001), (401, 1002), (401, 1003), (401, 1004), (429, 1304)]),
    (errors.BillingError, True, [(429, 1100), (429, 1101), (429, 1102), (403, 1103)]),
    (errors.RequestRefused, False, [(400, 1200), (400, 1201), (404, 1202), (404, 1203)]),
    (errors.ContentPolicyError, False, [(400, 1300), (400, 1301)]),
    (errors.RateLimitError, True, [(429, 1302), (429, 1303)]),
    (errors.ServerError, True, [(500, 5000), (503, 5001), (504, 5002)]),
]


@pytest.mark.parametrize(("status", "code", "kind", "retryable"), [
    pytest.param(status, code, kind, retryable, id=f"{code}-{kind.__name__}")
    for kind, retryable, codes in ERROR_TABLE for status, code in codes])
def test_the_error_table(status, code, kind, retryable):
    error = protocol.error_for(status, _err(code, "what Kling said"))
    assert type(error) is kind
    assert "what Kling said" in str(error) and str(code) in str(error)
    assert getattr(error, "retryable", False) is retryable


def test_auth_errors_name_both_env_vars():
    error = protocol.error_for(401, _err(1004, "Auth failed: token expired"))
    assert "KLING_ACCESS_KEY" in str(error) and "KLING_SECRET_KEY" in str(error)
    assert "KLING_API_KEY" in str(error) and error.env_vars == ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY")
    assert error.status_code == 401 and "expired" in str(error)


def test_a_code_under_http_200_is_still_an_error():
    assert isinstance(protocol.error_for(200, _err(1102, "Account balance not enough")), errors.BillingError)
    assert not protocol.is_success(200, _err(1102))
    assert protocol.is_success(200, {"code": 0, "data": {}}) and not protocol.is_success(500, {"code": 0})
    assert protocol.code_of({"code": "1303"}) == 1303 and protocol.code_of({"code": True}) is None


@pytest.mark.parametrize(("status", "kind"), [
    (401, errors.AuthenticationError), (403, errors.AuthenticationError), (429, errors.RateLimitError),
    (400, errors.RequestRefused), (502, errors.ServerError), (404, errors.ProviderError), (200, errors.ServerError)])
def test_without_a_kling_code_the_http_status_decides(status, kind):
    error = protocol.error_for(status, None, text="<html>gateway</html>")
    assert type(error) is kind and "gateway" in str(error)


def test_input_errors_name_the_field_kling_complained_about():
    assert protocol.error_for(400, _err(1201, "image: File is not in a valid base64 format")).field == "image"
    assert protocol.error_for(400, _err(1201, "sound_file is too long")).field == "audio"
    assert protocol.error_for(400, _err(1201, "something else")).field == "request"


def test_rate_limits_carry_retry_after_and_secrets_are_redacted():
    error = protocol.error_for(429, _err(1303, "parallel task over resource pack limit"), retry_after=2.0)
    assert error.retry_after == 2.0 and "concurrency" in str(error)
    token = fake_secrets.jwt()
    leaked = protocol.error_for(401, _err(1002, f"token {token} for ak-0123456789 invalid"),
                                secrets=["ak-0123456789"])
    assert token not in str(leaked) and "ak-0123456789" not in str(leaked) and "***" in str(leaked)


@pytest.mark.parametrize(("status", "code", "read", "create"), [
    (429, 1303, True, True), (429, 1302, True, True), (429, None, True, True),
    (429, 1102, False, False), (401, 1004, False, False), (400, 1201, False, False),
    (500, 5000, True, False), (503, 5001, True, True), (504, 5002, True, False), (502, None, True, False),
])
def test_what_is_resent(status, code, read, create):
    payload = _err(code) if code is not None else None
    assert protocol.is_retryable(status, payload, create=False) is read
    assert protocol.is_retryable(status, payload, create=True) is create


@pytest.mark.parametrize(("status", "code", "unknown"), [
    (500, 5000, True), (504, 5002, True), (502, None, True), (504, None, True),
    (503, 5001, False), (503, None, False), (429, 1303, False), (400, 1201, False), (401, 1002, False),
])
def test_which_create_answers_leave_the_outcome_unknown(status, code, unknown):
    payload = _err(code) if code is not None else None
    assert protocol.create_outcome_unknown(status, payload) is unknown


# -- tasks -----------------------------------------------------------------------------------

def _task(status, **extra):
    return {"task_id": "862311975201234567", "task_status": status, "task_status_msg": "",
            "task_info": {"external_task_id": "job-7f3a"}, "created_at": 1760000000000,
            "updated_at": 1760000012000, **extra}


@pytest.mark.parametrize(("status", "job_status", "progress"), [
    ("submitted", JobStatus.QUEUED, 5.0), ("processing", JobStatus.RUNNING, 50.0),
    ("something_new", JobStatus.RUNNING, None), ("", JobStatus.RUNNING, None),
])
def test_statuses(status, job_status, progress):
    update = protocol.task_update(_task(status))
    assert (update.status, update.progress, update.task_id) == (job_status, progress, "862311975201234567")
    assert update.output_url is None and update.error is None


def test_succeed_with_the_video_and_its_string_duration():
    video = {"id": "862311975999000111", "url": "https://cdn.klingai.com/x/output.mp4", "duration": "9.433"}
    update = protocol.task_update(_task("succeed", task_result={"videos": [video]}, final_unit_deduction="3.8"))
    assert update.status is JobStatus.COMPLETED and update.output_url == video["url"]
    assert update.duration_s == 9.433 and isinstance(update.duration_s, float)


def test_succeeded_spelling_and_succeed_without_url_are_not_done():
    assert protocol.task_update(_task("succeed", task_result={"videos": []})).status is JobStatus.RUNNING
    assert protocol.task_update(_task("succeed")).message == "succeed (no video URL yet)"
    assert protocol.task_update(_task("SUCCEED", task_result={"videos": [{"url": "https://x/v.mp4"}]})).status \
        is JobStatus.COMPLETED
    assert protocol.seconds("abc") is None and protocol.seconds(None) is None and protocol.seconds("-1") is None


@pytest.mark.parametrize(("message", "kind"), [
    ("Failure to pass the risk control system", "content_policy"),
    ("Trigger the content security policy of the platform", "content_policy"),
    ("Account balance not enough", "billing"), ("internal error", None), ("", None),
])
def test_failed_task_error_and_kind(message, kind):
    update = protocol.task_update(_task("failed", task_status_msg=message))
    assert update.status is JobStatus.FAILED and update.error_kind == kind
    assert update.error == (message or "task failed (no reason given)")


def test_callback_bodies():
    bare = json.dumps(_task("succeed", task_result={"videos": [{"url": "https://x/v.mp4", "duration": "1.5"}]}))
    assert protocol.parse_callback(bare)["task_status"] == "succeed"
    wrapped = json.dumps({"code": 0, "message": "SUCCEED", "data": _task("processing")})
    assert protocol.parse_callback(wrapped.encode())["task_status"] == "processing"


@pytest.mark.parametrize("body", [b"", b"not json", b"[1, 2]", b'{"task_status": "succeed"}',
                                  b'{"task_id": "1"}', json.dumps(_err(1002)).encode(),
                                  b'{"code": 1002, "message": "x", "data": null}'])
def test_callback_garbage_is_an_input_error(body):
    with pytest.raises(errors.InputError, match="webhook"):
        protocol.parse_callback(body)


def test_ids_of_tasks():
    assert protocol.external_id_of(_task("submitted")) == "job-7f3a"
    assert protocol.external_id_of({"task_id": "1"}) is None and protocol.task_id_of({"task_id": 5}) == "5"
    assert protocol.task_of({"code": 0, "data": [1]}) is None


# -- requests --------------------------------------------------------------------------------

def test_media_values_are_urls_or_raw_base64():
    url = media.inspect_image("https://images.example.org/a.png")
    assert protocol.media_value(url) == "https://images.example.org/a.png"
    path = media.inspect_image(FACE)
    assert base64.b64decode(protocol.media_value(path), validate=True) == FACE.read_bytes()
    data_uri = "data:audio/mpeg;base64," + base64.b64encode(MP3.read_bytes()).decode()
    value = protocol.media_value(media.inspect_audio(data_uri))
    assert not value.startswith("data:") and base64.b64decode(value, validate=True) == MP3.read_bytes()


def test_create_body():
    body = protocol.create_body(image="https://i/a.png", sound_file="https://a/b.mp3", mode="pro",
                                external_task_id="j1", callback_url="https://hooks/x", prompt="smile")
    assert list(body) == ["image", "sound_file", "prompt", "mode", "callback_url", "external_task_id"]
    plain = protocol.create_body(image="x", audio_id="123", mode="std", external_task_id="j2")
    assert plain == {"image": "x", "audio_id": "123", "prompt": "", "mode": "std", "external_task_id": "j2"}
    with pytest.raises(ValueError):
        protocol.create_body(image="x", audio_id="1", sound_file="y", mode="std", external_task_id="j")
    with pytest.raises(ValueError):
        protocol.create_body(image="x", mode="std", external_task_id="j")


@pytest.mark.parametrize(("voice", "expected"), [
    (None, ("oversea_male1", "en")), ("", ("oversea_male1", "en")), ("uk_boy1", ("uk_boy1", "en")),
    ("genshin_vindi2#zh", ("genshin_vindi2", "zh")), ("Friendly#oversea_male1#EN", ("oversea_male1", "en")),
])
def test_voices(voice, expected):
    assert protocol.parse_voice(voice) == expected


@pytest.mark.parametrize("voice", ["x#fr", "#en", "a#b#"])
def test_bad_voices(voice):
    with pytest.raises(errors.InputError, match="voice"):
        protocol.parse_voice(voice)


def test_tts_body_and_answer():
    assert protocol.tts_body("hi", "v", "en", 2.54) == {"text": "hi", "voice_id": "v", "voice_language": "en",
                                                      "voice_speed": 2.0}
    assert protocol.tts_body("hi", "v", "zh", 0.5)["voice_speed"] == 0.8
    answer = {"code": 0, "data": {"task_status": "succeed", "task_result": {"audios": [{"id": "9", "duration": "2"}]}}}
    assert protocol.tts_audio(answer) == {"id": "9", "duration": "2"}
    assert protocol.tts_audio({"code": 0, "data": {"task_status": "failed"}}) is None


def test_speech_bound_is_generous_and_grows_with_the_text():
    short = protocol.speech_seconds_bound("Hello there.")
    assert 2.0 <= short <= 3.0
    long = protocol.speech_seconds_bound("word " * 200)
    assert long == pytest.approx(101.0)
    assert protocol.speech_seconds_bound("你好世界" * 30) == pytest.approx(41.0)
    assert protocol.speech_seconds_bound("word " * 200, speed=2.0) < long


def test_redact():
    assert protocol.redact("a secret-value-1 b", ["secret-value-1", None, "ab"]) == "a *** b"
    assert protocol.redact(f"t={fake_secrets.jwt()} end") == "t=*** end"
