"""The provider against the loopback fake Kling server, over real sockets. The fake verifies
every JWT with the test secret (HS256, ``iss`` = access key, ``exp``/``nbf`` on its clock)."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from talkinghead import http
from talkinghead.errors import (
    AuthenticationError,
    BillingError,
    ContentPolicyError,
    InputError,
    RateLimitError,
    RequestRefused,
    ServerError,
    SubmitOutcomeUnknown,
)
from talkinghead.models import JobStatus
from tests.plugins.shared import submit_and_follow
from tests.plugins.suites import fake_server_tests

from .conftest import AUDIO_URL, FACE, IMAGE_URL, MP3, TEST_AK, WAV, job_for, prepared

URLS = (IMAGE_URL, AUDIO_URL)


async def run_to_end(provider, request=None, **job_fields):
    return await submit_and_follow(provider, job_for(**job_fields), request or prepared(*URLS))


globals().update(fake_server_tests(job_for, prepared, URLS, create="create", real_url="https://api-singapore.klingai.com",
                                   unknown_task=("862311975299999999", "not found")))


# -- the happy paths -------------------------------------------------------------------------

async def test_local_files_as_base64_to_completion_with_verified_jwts(fake, provider, tmp_path, video_bytes):
    fake.configure(step_latency=0.03)
    job, updates = await run_to_end(provider, prepared(FACE, WAV, mode="pro", prompt="smile"))
    assert job.status is JobStatus.COMPLETED and job.duration_s == 6.9
    assert [u.message for u in updates][-1] == "succeed" and updates[-1].progress == 100.0
    progress = [u.progress for u in updates if u.progress is not None]
    assert progress == sorted(progress)

    (create,) = fake.creates
    body = create.json
    assert base64.b64decode(body["image"], validate=True) == FACE.read_bytes()
    assert base64.b64decode(body["sound_file"], validate=True) == WAV.read_bytes()
    assert (body["mode"], body["prompt"], body["external_task_id"]) == ("pro", "smile", job.id)
    assert create.header("content-type") == "application/json"
    # every API request carried a JWT the fake verified with the secret
    api = [r for r in fake.requests if r.endpoint in ("create", "query")]
    assert api and all(r.claims and r.claims["iss"] == TEST_AK for r in api)
    assert all(r.claims["exp"] - r.claims["nbf"] == 1805 for r in api)
    assert len({r.token for r in api}) == 1  # cached, not made per request

    out = await http.download(job.output_url, tmp_path / "out.mp4", provider="kling")
    assert out.read_bytes() == video_bytes
    assert fake.requests[-1].header("authorization") is None  # the CDN never sees our token


async def test_urls_pass_through_and_callbacks_arrive_for_each_status(fake, provider):
    fake.configure(step_latency=0.03)
    hook = fake.url + "/hooks/kling/j-123"
    job, _ = await run_to_end(provider, webhook_url=hook)
    body = fake.creates[0].json
    assert (body["image"], body["sound_file"], body["callback_url"]) == (IMAGE_URL, AUDIO_URL, hook)
    for _ in range(200):
        if len(fake.requests_to("hook")) >= 2:
            break
        await asyncio.sleep(0.01)
    deliveries = fake.requests_to("hook")
    updates = [await provider.parse_webhook(d.headers, d.body) for d in deliveries]
    assert [u.message for u in updates] == ["processing", "succeed"]
    assert all(u.task_id == job.task_id for u in updates) and updates[-1].output_url == job.output_url
    assert all(d.header("authorization") is None for d in deliveries)  # unsigned (§8)


async def test_text_goes_through_kling_tts_with_the_requested_voice(fake, provider):
    text = "Good evening. Tonight's top story is a talking head."
    job, _ = await run_to_end(provider, prepared(FACE, text=text, voice="uk_boy1#en"))
    assert job.status is JobStatus.COMPLETED
    (tts,) = fake.requests_to("tts")
    assert tts.json == {"text": text, "voice_id": "uk_boy1", "voice_language": "en", "voice_speed": 1.0}
    (create,) = fake.creates
    assert create.json["audio_id"] in fake.audios and "sound_file" not in create.json
    assert fake.audios[create.json["audio_id"]]["text"] == text


async def test_too_short_speech_is_refused_before_the_avatar_is_paid_for(fake, provider):
    fake.configure(tts_duration="1.2")
    with pytest.raises(InputError, match="1.2 s") as exc:
        await provider.submit(job_for(), prepared(FACE, text="Hi."))
    assert exc.value.field == "text" and fake.creates == []


async def test_tts_refusals_are_typed_and_nothing_is_created(fake, provider):
    text = "Good evening. Tonight's top story is a talking head."
    # a voice that does not exist for its language is refused before the (paid) TTS call
    with pytest.raises(InputError, match="no zh voice 'uk_boy1'.*uk_boy1#en") as exc:
        await provider.submit(job_for(), prepared(FACE, text=text, voice="uk_boy1#zh"))
    assert exc.value.field == "voice" and fake.requests_to("tts") == []
    # Kling's own 1201 for a voice (e.g. one withdrawn since) is still typed and names the field
    fake.configure(failures={"tts": [(400, 1201, "Voice id not found")]})
    with pytest.raises(RequestRefused, match="Voice id not found") as exc:
        await provider.submit(job_for(), prepared(FACE, text=text, voice="oversea_male1#en"))
    assert exc.value.field == "voice"
    fake.configure(failures={"tts": [(400, 1301, "Trigger the content security policy")]})
    with pytest.raises(ContentPolicyError):
        await provider.submit(job_for(), prepared(FACE, text=text))
    assert fake.creates == [] and len(fake.requests_to("tts")) == 2


async def test_data_uri_inputs_are_sent_as_raw_base64(fake, provider):
    data_uri = "data:image/jpeg;base64," + base64.b64encode(FACE.read_bytes()).decode()
    await provider.submit(job_for(), prepared(data_uri, base64.b64encode(MP3.read_bytes()).decode()))
    body = fake.creates[0].json
    assert base64.b64decode(body["image"], validate=True) == FACE.read_bytes()
    assert base64.b64decode(body["sound_file"], validate=True) == MP3.read_bytes()


# -- the JWT ---------------------------------------------------------------------------------

async def test_token_is_renewed_before_it_expires(fake, provider):
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    first = fake.creates[0]
    skew = 1800 - 30  # 30 s before the first token's exp: inside the 60 s renewal margin
    provider._auth.clock = lambda: time.time() + skew
    fake.configure(clock_offset=skew)  # the fake's clock moves on just as much
    await provider.poll(job)
    (query,) = fake.requests_to("query")
    assert query.token != first.token and query.claims["exp"] > first.claims["exp"]
    assert provider._auth.minted == 2 and query.claims["iss"] == TEST_AK
    assert all(r.claims for r in fake.requests)  # no request was refused on the way


async def test_expired_token_answer_gets_one_fresh_token(fake, provider):
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    provider._auth.clock = lambda: time.time() + 2  # so the new token differs from the cached one
    fake.configure(failures={"query": [(401, 1004)]})
    update = await provider.poll(job)
    assert update.task_id == job.task_id
    tokens = [r.token for r in fake.requests_to("query")]
    assert len(tokens) == 2 and tokens[0] != tokens[1]


async def test_clock_ahead_of_kling_is_absorbed_by_a_wider_nbf(fake, provider):
    fake.configure(clock_offset=-60)  # Kling's clock is a minute behind ours
    await provider.submit(job_for(), prepared(*URLS))
    first, second = fake.creates
    assert first.claims is None and second.claims["nbf"] <= time.time() - 299
    assert len(fake.tasks) == 1


async def test_wrong_secret_is_an_authentication_error_without_secrets(fake, make_provider):
    wrong = "wrong-secret-key-0123456789abcdef0123456789"
    provider = make_provider(fake.url, secret_key=wrong)
    with pytest.raises(AuthenticationError) as exc:
        await provider.submit(job_for(), prepared(FACE, MP3))
    message = str(exc.value)
    assert "KLING_ACCESS_KEY" in message and "KLING_SECRET_KEY" in message and "1002" in message
    token = fake.requests[0].token
    for secret in (TEST_AK, wrong, token):
        assert secret not in message and secret not in repr(exc.value) and secret not in repr(provider)
    assert [r.endpoint for r in fake.requests] == ["create"] and fake.tasks == {}


async def test_wrong_access_key_is_refused_too(fake, make_provider):
    provider = make_provider(fake.url, access_key="another-access-key-0123456789")
    with pytest.raises(AuthenticationError, match="access key not found"):
        await provider.poll(job_for("862311975200000001"))


# -- the create call: money safety -----------------------------------------------------------

async def test_lost_create_answer_is_found_by_external_id_without_a_second_create(fake, make_provider):
    fake.configure(create_delay=0.6)  # the task is made at once; the answer comes too late
    provider = make_provider(fake.url, timeout=0.2)
    job = job_for()
    update = await provider.submit(job, prepared(*URLS))
    (task,) = fake.tasks.values()
    assert update.task_id == task.task_id and task.external_task_id == job.id
    assert len(fake.creates) == 1
    (lookup,) = fake.requests_to("query")
    assert lookup.path.endswith("/" + job.id)


async def test_create_not_yet_made_stays_unknown_then_resume_finds_it(fake, make_provider):
    fake.configure(create_stall=0.5)  # the server has not made the task when we ask
    provider = make_provider(fake.url, timeout=0.2)
    job = job_for()
    with pytest.raises(SubmitOutcomeUnknown, match="not resent"):
        await provider.submit(job, prepared(*URLS))
    assert len(fake.creates) == 1
    await asyncio.sleep(0.5)
    found = await provider.find_task(job)  # what `jobs resume` does
    assert found is not None and found.task_id == fake.task_by_external_id(job.id).task_id
    assert len(fake.creates) == 1 and len(fake.tasks) == 1


async def test_find_task_searches_the_list_when_the_query_path_refuses_external_ids(fake, provider):
    fake.configure(external_lookup=False)
    jobs = [job_for() for _ in range(3)]
    for job in jobs:
        await provider.submit(job, prepared(*URLS))
    found = await provider.find_task(jobs[1])
    assert found.task_id == fake.task_by_external_id(jobs[1].id).task_id
    (listing,) = fake.requests_to("list")
    assert listing.query == "pageNum=1&pageSize=500"
    assert await provider.find_task(job_for()) is None  # never created: None, not an error


async def test_answer_without_task_id_is_resolved_by_lookup(fake, provider):
    fake.configure(answer_without_task_id=True)
    job = job_for()
    update = await provider.submit(job, prepared(*URLS))
    assert update.task_id == fake.task_by_external_id(job.id).task_id and len(fake.creates) == 1


async def test_create_1303_is_resent_after_retry_after(fake, provider):
    fake.configure(failures={"create": [429, 200]}, retry_after=0.3)
    start = time.monotonic()
    update = await provider.submit(job_for(), prepared(*URLS))
    assert time.monotonic() - start >= 0.3 and update.task_id
    assert len(fake.creates) == 2 and len(fake.tasks) == 1


async def test_concurrency_limit_until_attempts_run_out(fake, provider):
    fake.configure(concurrency=1, statuses=("submitted", "processing"), step_latency=60)
    await provider.submit(job_for(), prepared(*URLS))
    with pytest.raises(RateLimitError, match="1303") as exc:
        await provider.submit(job_for(), prepared(*URLS))
    assert exc.value.retryable and len(fake.creates) == 1 + 4 and len(fake.tasks) == 1


async def test_create_503_maintenance_is_resent(fake, provider):
    fake.configure(failures={"create": [503, 503, 200]}, retry_after=0)
    await provider.submit(job_for(), prepared(*URLS))
    assert len(fake.creates) == 3 and len(fake.tasks) == 1


async def test_create_5000_not_found_is_a_server_error_sent_once(fake, provider):
    fake.configure(failures={"create": [500, 200]})
    with pytest.raises(ServerError, match="5000"):
        await provider.submit(job_for(), prepared(*URLS))
    assert len(fake.creates) == 1 and [r.endpoint for r in fake.requests][1:] == ["query", "list"]


async def test_create_5002_gateway_timeout_is_outcome_unknown(fake, provider):
    fake.configure(failures={"create": [504, 200]})
    with pytest.raises(SubmitOutcomeUnknown, match="HTTP 504"):
        await provider.submit(job_for(), prepared(*URLS))
    assert len(fake.creates) == 1


async def test_balance_and_parameter_errors_are_not_resent(fake, provider):
    fake.configure(failures={"create": [(429, 1102, "Account balance not enough")]})
    with pytest.raises(BillingError, match="balance"):
        await provider.submit(job_for(), prepared(*URLS))
    job = job_for()
    await provider.submit(job, prepared(*URLS))
    with pytest.raises(RequestRefused, match="external_task_id .* already exists"):
        await provider.submit(job, prepared(*URLS))  # the same job id twice: Kling refuses it
    assert len(fake.creates) == 3 and len(fake.tasks) == 1


# -- reads -----------------------------------------------------------------------------------

async def test_reads_retry_rate_limits_and_server_errors(fake, provider):
    job = job_for()
    job.apply(await provider.submit(job, prepared(*URLS)))
    fake.configure(failures={"query": [(429, 1303), 500, 504, 200]})
    update = await provider.poll(job)
    assert update.status is JobStatus.COMPLETED and len(fake.requests_to("query")) == 4
    fake.configure(failures={"query": [500] * 10})
    with pytest.raises(ServerError):
        await provider.poll(job)


async def test_failed_task_ends_the_stream_with_kling_reason(fake, provider):
    fake.configure(task_error="Failure to pass the risk control system", step_latency=0.02)
    job, updates = await run_to_end(provider)
    assert updates[-1].status is JobStatus.FAILED and job.error_kind == "content_policy"
    assert job.error == "Failure to pass the risk control system" and job.output_url is None
