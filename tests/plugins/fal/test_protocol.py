"""Unit tests for the pure protocol rules (no I/O) and the provider's declaration."""

from __future__ import annotations

import pytest

from talkinghead.errors import InputError
from talkinghead.models import JobStatus
from talkinghead_fal import FalProvider
from talkinghead_fal import protocol as p
from tests import fake_secrets

RID = "5b2f1c7e-8d4a-4f3b-9e21-0c6a7d8e9f10"


# -- URLs ----------------------------------------------------------------------------------

def test_endpoints_by_mode_and_the_app_path_rule():
    assert p.endpoint_for("std") == "fal-ai/kling-video/ai-avatar/v2/standard"
    assert p.endpoint_for("pro") == "fal-ai/kling-video/ai-avatar/v2/pro"
    for mode in ("std", "pro"):
        assert p.app_path(p.endpoint_for(mode)) == "fal-ai/kling-video"
    assert p.request_path(p.endpoint_for("pro"), RID, "status") == f"/fal-ai/kling-video/requests/{RID}/status"
    assert p.request_path(p.endpoint_for("std"), RID) == f"/fal-ai/kling-video/requests/{RID}"
    with pytest.raises(ValueError):
        p.app_path("fal-ai")


def test_bodies():
    assert p.submit_body(image_url="i", audio_url="a", prompt=None) == {"image_url": "i", "audio_url": "a"}
    assert p.submit_body(image_url="i", audio_url="a", prompt="")["prompt"] == ""
    assert p.submit_params(None) == {} and p.submit_params("https://h/x") == {"fal_webhook": "https://h/x"}
    assert p.initiate_body("face.jpg", "image/jpeg") == {"file_name": "face.jpg", "content_type": "image/jpeg"}


# -- statuses ------------------------------------------------------------------------------

@pytest.mark.parametrize("payload, status, progress, message", [
    ({"status": "IN_QUEUE", "queue_position": 3}, JobStatus.QUEUED, 5.0, "in queue (position 3)"),
    ({"status": "IN_QUEUE"}, JobStatus.QUEUED, 5.0, "in queue"),
    ({"status": "IN_PROGRESS", "logs": None}, JobStatus.RUNNING, 40.0, "in progress"),
    ({"status": "IN_PROGRESS", "logs": [{"message": "a"}, {"message": "Generating video..."}]},
     JobStatus.RUNNING, 40.0, "Generating video..."),
    ({"status": "COMPLETED", "metrics": {}}, JobStatus.COMPLETED, None, "completed"),
    ({"status": "SOMETHING_NEW"}, JobStatus.RUNNING, None, "unrecognised status 'SOMETHING_NEW'"),
    ({}, JobStatus.RUNNING, None, "no status"),
    (None, JobStatus.RUNNING, None, "no status"),
])
def test_status_update(payload, status, progress, message):
    update = p.status_update(payload, RID)
    assert (update.status, update.progress, update.message, update.task_id) == (status, progress, message, RID)
    assert update.output_url is None  # a COMPLETED status is not success until the result is read


def test_status_error():
    assert p.status_error({"status": "COMPLETED", "error": "Runner disconnected",
                           "error_type": "runner_disconnected"}) == ("Runner disconnected", "runner_disconnected")
    assert p.status_error({"status": "COMPLETED"}) == (None, None)
    assert p.status_error("x") == (None, None)


@pytest.mark.parametrize("output, url, seconds", [
    ({"video": {"url": "https://v3.fal.media/o.mp4"}, "duration": 9.43}, "https://v3.fal.media/o.mp4", 9.43),
    ({"video": {"url": "https://v3.fal.media/o.mp4"}, "duration": "7"}, "https://v3.fal.media/o.mp4", 7.0),
    ({"video": "https://v3.fal.media/o.mp4"}, "https://v3.fal.media/o.mp4", None),
    ({"video": {"url": "u"}, "duration": True}, "u", None),
    ({"video": {"url": "u"}, "duration": -1}, "u", None),
])
def test_result_update(output, url, seconds):
    update = p.result_update(output, RID)
    assert update.status is JobStatus.COMPLETED and update.output_url == url and update.duration_s == seconds


@pytest.mark.parametrize("output", [None, {}, {"video": {}}, {"video": {"url": ""}}, [1]])
def test_result_without_a_video_is_none(output):
    assert p.result_update(output, RID) is None


def test_failure_update_kinds():
    cancelled = p.failure_update(RID, "Request cancelled by client", error_type="client_cancelled", status_code=499)
    assert cancelled.status is JobStatus.CANCELLED and cancelled.error_kind == "cancelled"
    timeout = p.failure_update(RID, "Request timed out", error_type="request_timeout", status_code=504)
    assert timeout.status is JobStatus.FAILED and timeout.error_kind == "request_timeout"
    assert p.failure_update(RID, "bad", status_code=422).error_kind == "input"
    assert p.failure_update(RID, "nsfw content detected", status_code=422).error_kind == "content_policy"
    assert p.failure_update(RID, "User is locked. Reason: Exhausted balance").error_kind == "billing"


# -- errors --------------------------------------------------------------------------------

@pytest.mark.parametrize("payload, header, expected", [
    ({"detail": [{"loc": ["body", "image_url"], "msg": "field required", "type": "missing"}]}, None,
     ("image_url: field required", "missing", "image")),
    ({"detail": [{"loc": ["body", "audio_url"], "msg": "too long", "type": "audio_duration_out_of_range"},
                 {"loc": ["body", "prompt"], "msg": "bad", "type": "x"}]}, None,
     ("audio_url: too long; prompt: bad", "audio_duration_out_of_range", "audio")),
    ({"detail": [{"msg": "no location"}]}, None, ("no location", None, None)),
    ({"detail": "Request timed out", "error_type": "request_timeout"}, None,
     ("Request timed out", "request_timeout", None)),
    ({"detail": "Runner disconnected"}, "runner_disconnected", ("Runner disconnected", "runner_disconnected", None)),
    ({"error": "plain error"}, None, ("plain error", None, None)),
    ({"weird": 1}, None, ('{"weird": 1}', None, None)),
    (None, None, ("no error message", None, None)),
])
def test_error_info_reads_both_detail_shapes(payload, header, expected):
    assert p.error_info(payload, "", header) == expected


def test_error_info_of_a_non_json_body_is_capped():
    assert p.error_info(None, "<html>" + "x" * 2000)[0] == ("<html>" + "x" * 2000)[:500]


@pytest.mark.parametrize("status, message, billing", [
    (402, "anything", True),
    (403, "User is locked. Reason: Exhausted balance. Top up your balance", True),
    (400, "Insufficient balance", True),
    (403, "Forbidden", False),
    (422, "image_url: field required", False),
])
def test_billing_detection(status, message, billing):
    assert p.is_billing_problem(status, message) is billing


def test_webhook_update_shapes():
    ok = p.webhook_update({"request_id": RID, "status": "OK", "payload": {"video": {"url": "u"}, "duration": 2}},
                          delivery_id="d1")
    assert (ok.status, ok.output_url, ok.duration_s, ok.delivery_id) == (JobStatus.COMPLETED, "u", 2.0, "d1")
    failed = p.webhook_update({"request_id": RID, "status": "ERROR", "error": "Invalid status code: 500",
                               "payload": {"detail": "Internal error", "error_type": "runner_server_error"}})
    assert failed.status is JobStatus.FAILED and failed.error_kind == "runner_server_error"
    assert failed.error == "Invalid status code: 500: Internal error"
    bare = p.webhook_update({"request_id": RID, "status": "ERROR"})
    assert bare.error == "request failed"
    with pytest.raises(ValueError):
        p.webhook_update({"request_id": RID, "status": "PENDING"})


def test_redact_removes_the_key_and_each_half():
    key = fake_secrets.fal_key()
    key_id, secret = key.split(":")
    text = f"Key {key} / id {key_id} / secret {secret}"
    assert key_id not in p.redact(text, [key]) and secret not in p.redact(text, [key])
    assert p.redact("nothing", [None, ""]) == "nothing"


# -- declaration ---------------------------------------------------------------------------

def test_route_and_registration():
    from talkinghead import plugins

    assert plugins.get_provider_classes()["fal"] is FalProvider
    route = FalProvider({}).routes()[0]
    assert (route.provider, route.model, route.native_text, route.modes) == \
        ("fal", "kling-avatar", False, ("std", "pro"))
    assert route.price_per_second == {"std": 0.0562, "pro": 0.115} and "0.0562" in route.price_source
    assert FalProvider.env_vars == ("FAL_KEY",) and FalProvider.config_keys == {"FAL_KEY": "api_key"}
    assert FalProvider.signs_webhooks


def test_credentials_from_config_or_env(monkeypatch):
    assert FalProvider({"api_key": "cfg-key-123456"}).configured()
    assert not FalProvider({}).configured()
    monkeypatch.setenv("FAL_KEY", "env-key-123456")
    provider = FalProvider({})
    assert provider.configured() and provider.secrets() == ["env-key-123456"]
    assert "env-key" not in repr(provider)


def test_settings_defaults_and_bad_values():
    provider = FalProvider({})
    assert provider.poll_interval == (0.5, 1.5, 5.0)
    assert provider.setting("webhook_tolerance") == 300 and provider.setting("jwks_ttl") == 86400
    assert FalProvider({"poll_interval": 2, "poll_max_interval": 1}).poll_interval == (2.0, 1.5, 2.0)
    with pytest.raises(InputError, match="providers.fal.timeout"):
        FalProvider({"timeout": "soon"}).setting("timeout")


def test_audio_limit_is_configurable():
    from .conftest import prepared

    assert FalProvider({}).routes()[0].limits.audio_max_seconds == 300
    provider = FalProvider({"audio_max_seconds": 5})
    route = provider.routes()[0]  # kling-avatar: the setting is Kling's limit
    with pytest.raises(InputError, match="5 s maximum") as exc:
        provider.validate(prepared(), route)  # hello.wav is 6.9 s
    assert exc.value.field == "audio"
    quote = FalProvider({}).estimate(prepared(mode="pro"), FalProvider({}).routes()[0])
    assert quote.cost_usd == pytest.approx(quote.seconds * 0.115, abs=1e-4)


async def test_text_request_without_speech_is_refused_before_any_call(tmp_path):
    from talkinghead import media
    from talkinghead.models import AvatarRequest

    from .conftest import FACE, job_for

    bare = media.prepare(AvatarRequest(image=FACE, text="hello there"))
    with pytest.raises(InputError, match="needs audio") as exc:
        await FalProvider({"api_key": "k-123456"}).submit(job_for(), bare)
    assert exc.value.field == "audio"
