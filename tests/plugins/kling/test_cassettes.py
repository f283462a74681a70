"""The provider driven against the hand-authored cassettes (cassettes/kling/).

Replayed with ``--record-mode=none --block-network``: a request the cassette does not hold
fails the test, and ``vcr.all_played`` checks that every recorded request was made. Tests
marked ``live`` are re-recordable with both keys and ``-m live --record-mode=rewrite``; they
assert only what any real answer must satisfy. The others are failures the live service
cannot be made to produce on demand, and stay hand-authored.
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from talkinghead.client import AsyncClient
from talkinghead.errors import (
    AuthenticationError,
    BillingError,
    ContentPolicyError,
    RateLimitError,
    RequestRefused,
)
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import JobStatus
from tests.plugins.shared import follow

from .conftest import (
    API,
    AUDIO_URL,
    FACE,
    IMAGE_URL,
    MP3,
    TEST_AK,
    TEST_SK,
    hand_authored,
    job_for,
    prepared,
    spy,
)

pytestmark = pytest.mark.vcr
AVATAR = "/v1/videos/avatar/image2video"


def _requests(vcr) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in vcr.requests]


def _bearer(request) -> str:
    auth = request.headers["authorization"]
    assert auth.startswith("Bearer ") and auth.count(".") == 2  # a JWT, one space after Bearer
    return auth[7:]


# -- dual-mode: replayed offline, re-recorded live ---------------------------------------------

@pytest.mark.live
@pytest.mark.default_cassette("happy_std_url.yaml")
async def test_happy_path_std_with_urls_and_callback(vcr, cassette_provider, live, tmp_path):
    image = os.environ.get("KLING_LIVE_IMAGE_URL", IMAGE_URL)
    audio = os.environ.get("KLING_LIVE_AUDIO_URL", AUDIO_URL)
    if live and "KLING_LIVE_IMAGE_URL" not in os.environ:
        pytest.skip("set KLING_LIVE_IMAGE_URL and KLING_LIVE_AUDIO_URL to public files Kling can fetch")
    provider = cassette_provider
    sent = spy(provider)
    specific = not live and hand_authored("happy_std_url.yaml")
    job = job_for(webhook_url="https://hooks.example.com/kling/jexamplestdurl0001")
    if specific:
        job.id = "jexamplestdurl0001"
    update = await provider.submit(job, prepared(image, audio, mode="std"))
    assert update.status is JobStatus.QUEUED and update.task_id and update.message == "submitted"
    job.apply(update)
    updates = await follow(provider, job)
    assert updates[-1].status is JobStatus.COMPLETED and job.output_url.startswith("http")
    assert job.duration_s and job.duration_s > 0
    create = json.loads(sent[0].content)
    assert create == {"image": image, "sound_file": audio, "prompt": "", "mode": "std",
                      "callback_url": job.webhook_url, "external_task_id": job.id}
    assert sent[0].headers["content-type"] == "application/json"
    _bearer(sent[0])
    assert {r.url.path for r in sent[1:]} == {f"{AVATAR}/{job.task_id}"}
    if specific:
        assert job.duration_s == 6.941 and [u.message for u in updates] == ["processing", "succeed"]
        # the core downloads from Kling's CDN with a client of its own: no Authorization there
        async with AsyncClient(providers=[provider], ledger=SQLiteLedger(tmp_path / "j.db")) as client:
            job.status = JobStatus.COMPLETED
            path = await client.download(job, tmp_path / "out.mp4")
        assert path.read_bytes()[4:8] == b"ftyp"
        cdn = vcr.requests[-1]
        assert cdn.host == "cdn.klingai.com" and "authorization" not in {k.lower() for k in cdn.headers}
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("happy_pro_base64.yaml")
async def test_happy_path_pro_with_local_files_as_raw_base64(vcr, cassette_provider, live):
    provider = cassette_provider
    sent = spy(provider)
    job = job_for()
    prompt = "Speaks warmly to camera, slight nods, gentle smile"
    job.apply(await provider.submit(job, prepared(FACE, MP3, mode="pro", prompt=prompt)))
    assert job.task_id
    await follow(provider, job)
    assert job.status is JobStatus.COMPLETED and job.output_url.startswith("http")
    body = json.loads(sent[0].content)
    assert not body["image"].startswith("data:") and not body["sound_file"].startswith("data:")
    assert base64.b64decode(body["image"], validate=True) == FACE.read_bytes()
    assert base64.b64decode(body["sound_file"], validate=True) == MP3.read_bytes()
    assert (body["mode"], body["prompt"], body["external_task_id"]) == ("pro", prompt, job.id)
    assert "callback_url" not in body and "audio_id" not in body
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("text_tts.yaml")
async def test_text_is_spoken_by_kling_tts_then_animated(vcr, cassette_provider, live):
    image = (os.environ.get("KLING_LIVE_IMAGE_URL") or FACE) if live else IMAGE_URL
    provider = cassette_provider
    sent = spy(provider)
    job = job_for()
    text = "Good evening. Here are tonight's headlines, read by a talking head."
    job.apply(await provider.submit(job, prepared(image, text=text)))
    await follow(provider, job)
    assert job.status is JobStatus.COMPLETED and job.output_url
    tts, create = json.loads(sent[0].content), json.loads(sent[1].content)
    assert sent[0].url.path == "/v1/audio/tts"
    assert tts == {"text": text, "voice_id": "oversea_male1", "voice_language": "en", "voice_speed": 1.0}
    assert create["audio_id"] and "sound_file" not in create
    if not live and hand_authored("text_tts.yaml"):
        assert create["audio_id"] == "862311900000000002" and job.duration_s == 4.52
    assert live or vcr.all_played


@pytest.mark.live
@pytest.mark.default_cassette("unauthorized.yaml")
async def test_401_names_both_env_vars_and_never_a_secret(vcr, make_provider, live):
    ak, sk = ("not-a-valid-access-key-000000", "not-a-valid-secret-key-0000000000000000") if live \
        else (TEST_AK, TEST_SK)
    provider = make_provider(os.environ.get("KLING_BASE_URL") or API, access_key=ak, secret_key=sk)
    sent = spy(provider)
    with pytest.raises(AuthenticationError) as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    err, token = exc.value, _bearer(sent[0])
    assert "KLING_ACCESS_KEY" in str(err) and "KLING_SECRET_KEY" in str(err) and err.status_code == 401
    for secret in (ak, sk, token):
        assert secret not in str(err) and secret not in repr(err) and secret not in repr(provider)
    assert len(sent) == 1  # 1002 is not a token-age problem: nothing is resent
    if not live and hand_authored("unauthorized.yaml"):
        assert "Authorization is invalid" in str(err) and "1002" in str(err)
    assert live or vcr.all_played


# -- hand-authored only ------------------------------------------------------------------------

@pytest.mark.default_cassette("task_failed.yaml")
async def test_failed_task_carries_kling_reason_and_kind(vcr, make_provider):
    provider = make_provider(API)
    job = job_for()
    job.apply(await provider.submit(job, prepared(IMAGE_URL, AUDIO_URL)))
    updates = await follow(provider, job)
    assert updates[-1].status is JobStatus.FAILED and job.status is JobStatus.FAILED
    assert job.error == "Failure to pass the risk control system" and job.error_kind == "content_policy"
    assert job.output_url is None and vcr.all_played


@pytest.mark.default_cassette("read_rate_limited.yaml")
async def test_1303_on_a_read_is_retried(vcr, make_provider):
    provider = make_provider(API)
    update = await provider.poll(job_for("862311975201234571"))
    assert update.status is JobStatus.COMPLETED and update.duration_s == 9.433
    assert len(vcr.requests) == 2 and vcr.all_played


@pytest.mark.default_cassette("create_rate_limited.yaml")
async def test_1303_on_create_was_refused_so_it_is_resent(vcr, make_provider):
    provider = make_provider(API)
    job = job_for()
    update = await provider.submit(job, prepared(IMAGE_URL, AUDIO_URL))
    assert update.task_id == "862311975201234572" and update.status is JobStatus.QUEUED
    assert _requests(vcr) == [("POST", AVATAR), ("POST", AVATAR)] and vcr.all_played


@pytest.mark.default_cassette("create_rate_limited.yaml")
async def test_1303_on_create_until_attempts_run_out_is_a_rate_limit(vcr, make_provider):
    provider = make_provider(API, retry_attempts=1)
    with pytest.raises(RateLimitError) as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    assert exc.value.retryable
    assert "1303" in str(exc.value) and "parallel task over resource pack limit" in str(exc.value)
    assert exc.value.retry_after is not None


@pytest.mark.default_cassette("token_expired_renewed.yaml")
async def test_expired_token_is_regenerated_once_and_resent(vcr, make_provider):
    provider = make_provider(API)
    sent = spy(provider)
    update = await provider.poll(job_for("862311975201234573"))
    assert update.status is JobStatus.RUNNING
    assert len(sent) == 2 and provider._auth.minted == 2  # a fresh JWT made for the second try
    assert _bearer(sent[1]) == provider._auth.token()
    assert vcr.all_played


@pytest.mark.default_cassette("balance.yaml")
async def test_1102_is_a_billing_error_and_not_retried(vcr, make_provider):
    provider = make_provider(API)
    with pytest.raises(BillingError, match="Account balance not enough") as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    assert exc.value.retryable and exc.value.status_code == 429 and "1102" in str(exc.value)
    assert len(vcr.requests) == 1 and vcr.all_played


@pytest.mark.default_cassette("content_policy.yaml")
async def test_1301_is_a_content_policy_error(vcr, make_provider):
    provider = make_provider(API)
    with pytest.raises(ContentPolicyError, match="content security policy") as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL, prompt="anything"))
    assert not exc.value.retryable and vcr.all_played


@pytest.mark.default_cassette("invalid_parameter.yaml")
async def test_1201_is_refused_with_kling_message(vcr, make_provider):
    provider = make_provider(API)
    with pytest.raises(RequestRefused, match="File is not in a valid base64 format") as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    assert "1201" in str(exc.value) and exc.value.status_code == 400 and vcr.all_played


@pytest.mark.default_cassette("lost_create_resolved.yaml")
async def test_lost_create_answer_is_resolved_by_external_id_without_a_second_create(vcr, make_provider):
    provider = make_provider(API)
    job = job_for()
    job.id = "jexamplelost0010"
    update = await provider.submit(job, prepared(IMAGE_URL, AUDIO_URL))
    assert update.task_id == "862311975201234574" and update.status is JobStatus.QUEUED
    assert _requests(vcr) == [("POST", AVATAR), ("GET", f"{AVATAR}/jexamplelost0010")]
    assert vcr.all_played


@pytest.mark.default_cassette("find_task_via_list.yaml")
async def test_resume_finds_an_unanswered_create_in_the_task_list(vcr, make_provider, tmp_path):
    """``jobs resume`` of a job journaled as ``unknown`` (its create never answered): found by
    its external id in the task list, followed to the end and downloaded; no create sent."""
    provider = make_provider(API)
    ledger = SQLiteLedger(tmp_path / "journal.db")
    job = job_for(status=JobStatus.UNKNOWN)
    job.id = "jexampleresume0011"
    ledger.open(job, session="s1")
    ledger.record(job)
    async with AsyncClient(providers=[provider], ledger=ledger, timeout=30) as client:
        result = await client.resume(job, output=tmp_path / "out.mp4")
    assert result.path.read_bytes()[4:8] == b"ftyp"
    assert (job.task_id, job.status, job.duration_s) == ("862311975201234575", JobStatus.COMPLETED, 6.941)
    assert all(r.method == "GET" for r in vcr.requests) and vcr.all_played
    stored = ledger.get(job.id)
    assert stored.task_id == "862311975201234575" and stored.status is JobStatus.COMPLETED

