"""Protocol fidelity, round two: the single API key, what Kling billed (final_unit_deduction),
text checked before the paid TTS call, and the 1201 "cannot fetch the file" answer. Each point
against the loopback fake and against a hand-authored cassette (cassettes/make_kling.py)."""

from __future__ import annotations

import pytest

from talkinghead.errors import AuthenticationError, InputError, RequestRefused
from talkinghead.ledger import settled_cost
from talkinghead.models import Job, JobStatus, Quote
from talkinghead_kling import KlingProvider

from .conftest import API, AUDIO_URL, FACE, IMAGE_URL, MP3, TEST_AK, TEST_API_KEY, job_for, prepared, spy

TEXT = "Good evening. Here are tonight's headlines, read by a talking head."


async def _follow(provider, job):
    async for update in provider.stream(job):
        job.apply(update)
    return job


# -- the single API key --------------------------------------------------------------------------

async def test_the_single_api_key_is_the_bearer_token_and_wins_over_the_pair(fake, make_provider):
    fake.configure(api_key=TEST_API_KEY)
    both = make_provider(fake.url, api_key=TEST_API_KEY)  # the pair is set too (the fixture's)
    assert both.credentials_in_use() == ["KLING_API_KEY"] and both.configured()
    job = job_for()
    job.apply(await both.submit(job, prepared(IMAGE_URL, AUDIO_URL)))
    await _follow(both, job)
    assert job.status is JobStatus.COMPLETED
    assert {r.token for r in fake.requests if r.endpoint != "output"} == {TEST_API_KEY}  # as-is, no JWT
    assert all(r.claims == {"api_key": True} for r in fake.creates)
    assert TEST_API_KEY not in repr(both) and TEST_API_KEY in both.secrets()


async def test_without_the_key_the_pair_signs_a_jwt(fake, provider):
    assert provider.credentials_in_use() == ["KLING_ACCESS_KEY", "KLING_SECRET_KEY"]
    await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    assert fake.creates[0].claims["iss"] == TEST_AK


def test_only_the_single_key_is_enough(monkeypatch):
    for var in ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    assert KlingProvider({"api_key": TEST_API_KEY}).configured()
    assert not KlingProvider({"access_key": TEST_AK}).configured()
    monkeypatch.setenv("KLING_API_KEY", TEST_API_KEY)
    assert KlingProvider({}).credentials_in_use() == ["KLING_API_KEY"]


async def test_a_refused_key_names_every_credential_and_no_secret(fake, make_provider):
    fake.configure(api_key="the-right-key-0000000000000000", access_key=None, secret_key=None)
    provider = make_provider(fake.url, api_key="wrong-key-11111111111111111111", access_key=None, secret_key=None)
    with pytest.raises(AuthenticationError) as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    message = str(exc.value)
    assert "KLING_API_KEY, or KLING_ACCESS_KEY and KLING_SECRET_KEY" in message
    assert exc.value.env_vars == ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY")
    assert "wrong-key" not in message and len(fake.creates) == 1  # a 401 with a static key is final


@pytest.mark.vcr
@pytest.mark.default_cassette("api_key_auth.yaml")
async def test_cassette_single_key_and_billed_units(vcr, make_provider):
    provider = make_provider(API, api_key=TEST_API_KEY)
    sent = spy(provider)
    job = job_for()
    job.apply(await provider.submit(job, prepared(IMAGE_URL, AUDIO_URL)))
    await _follow(provider, job)
    assert {r.headers["authorization"] for r in sent} == {f"Bearer {TEST_API_KEY}"}
    assert (job.status, job.duration_s, job.billed_units) == (JobStatus.COMPLETED, 9.433, 3.8)
    assert job.billed_usd == pytest.approx(3.8 * 0.14)
    assert vcr.all_played


# -- what Kling billed ---------------------------------------------------------------------------

def _quoted(job: Job, seconds: float, price: float) -> Job:
    job.quote = Quote(provider="kling", model="kling-avatar", mode=job.mode, seconds=seconds,
                      price_per_second=price, cost_usd=round(seconds * price, 4))
    job.reserved_usd = job.quote.cost_usd
    return job


async def test_final_unit_deduction_is_recorded_and_settled_from(fake, make_provider):
    fake.configure(output_duration="9.433")
    provider = make_provider(fake.url, unit_price=0.098)  # a trial pack's rate (§11)
    job = _quoted(job_for(mode="pro"), 9.433, 0.112)
    job.apply(await provider.submit(job, prepared(IMAGE_URL, AUDIO_URL, mode="pro")))
    await _follow(provider, job)
    units = float(f"{9.433 * 0.8:.1f}")  # what the fake deducts in pro: 7.5
    assert job.billed_units == units and job.billed_usd == pytest.approx(units * 0.098)
    assert settled_cost(job) == pytest.approx(units * 0.098) != pytest.approx(job.quote.cost_usd)


async def test_a_failed_kling_task_settles_at_nothing(fake, provider):
    fake.configure(task_error="Failure to pass the risk control system")
    job = _quoted(job_for(), 6.9, 0.056)
    job.apply(await provider.submit(job, prepared(IMAGE_URL, AUDIO_URL)))
    await _follow(provider, job)
    assert job.status is JobStatus.FAILED and job.billed_units is None
    assert KlingProvider.bills_failed_jobs is False and settled_cost(job) == 0.0


# -- text: checked before the paid TTS call --------------------------------------------------------

@pytest.mark.parametrize("voice, match", [
    ("uk_boy1#zh", r"no zh voice 'uk_boy1': it is a en voice; use uk_boy1#en"),
    ("not_a_voice#en", r"no en voice 'not_a_voice': it is not one of Kling's preset voices"),
    ("oversea_male1#fr", r"not a Kling voice"),
])
async def test_a_voice_kling_lacks_for_the_language_is_refused_before_any_call(fake, provider, voice, match):
    request = prepared(FACE, text=TEXT, voice=voice)
    (route,) = provider.routes()
    with pytest.raises(InputError, match=match) as exc:
        provider.validate(request, route)
    assert exc.value.field == "voice"
    with pytest.raises(InputError):
        await provider.submit(job_for(), request)
    assert fake.requests == []  # neither the TTS call nor the create


def test_custom_voices_can_be_allowed():
    provider = KlingProvider({"api_key": TEST_API_KEY, "custom_voices": ["my_cloned_voice"]})
    assert provider.voice("my_cloned_voice#zh") == ("my_cloned_voice", "zh")


async def test_a_text_too_short_for_two_seconds_is_refused_before_the_tts_call(fake, provider):
    (route,) = provider.routes()
    with pytest.raises(InputError, match=r"about 0\.8 s, under the 2 s") as exc:
        provider.validate(prepared(FACE, text="Hi there."), route)
    assert exc.value.field == "text" and exc.value.limit == 2.0 and fake.requests == []
    provider.validate(prepared(FACE, text=TEXT), route)  # long enough: accepted
    # speaking faster shortens it: a text that barely passes at 1.0 is refused at 2.0
    fast = KlingProvider({"api_key": TEST_API_KEY, "voice_speed": 2.0})
    with pytest.raises(InputError, match="under the 2 s"):
        fast.validate(prepared(FACE, text="One two three four five six."), route)


@pytest.mark.vcr
@pytest.mark.default_cassette("tts_voice_not_found.yaml")
async def test_cassette_kling_voice_not_found_is_typed_and_nothing_is_created(vcr, make_provider):
    provider = make_provider(API)
    with pytest.raises(RequestRefused, match="Voice id not found") as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, text=TEXT, voice="calm_story1#en"))
    assert exc.value.field == "voice" and [r.path for r in vcr.requests] == ["/v1/audio/tts"]
    assert vcr.all_played


# -- 1201 "cannot fetch the file" --------------------------------------------------------------------

async def test_an_unfetchable_url_names_the_input_and_suggests_a_local_file(fake, provider):
    fake.configure(unreachable=("images.example.org",))
    with pytest.raises(RequestRefused) as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, MP3))  # only the image is a URL
    err = exc.value
    assert err.field == "image" and "images.example.org" in str(err)
    assert "could not download the image URL" in str(err) and "local file" in str(err) and "base64" in str(err)
    assert fake.tasks == {}


@pytest.mark.vcr
@pytest.mark.default_cassette("fetch_failed.yaml")
async def test_cassette_unfetchable_urls_name_both_inputs_when_both_were_urls(vcr, make_provider):
    provider = make_provider(API)
    with pytest.raises(RequestRefused) as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    err = exc.value
    assert err.field == "image or audio" and "audio.example.org, images.example.org" in str(err)
    assert "get the contents of the file" in str(err) and "local file" in str(err)
    assert vcr.all_played


# -- a text job's speech is part of what it billed ---------------------------------------------------

async def test_a_text_jobs_billed_units_include_its_speech(fake, provider):
    job = _quoted(job_for(), 12.0, 0.056)
    job.apply(await provider.submit(job, prepared(IMAGE_URL, text=TEXT)))
    assert job.provider_data == {"tts_units": "0.5"}  # the fake's TTS answer: final_unit_deduction "0.5"
    await _follow(provider, job)
    assert job.billed_units == pytest.approx(2.8 + 0.5)  # the avatar (6.9 s x 0.4) and the speech
    assert settled_cost(job) == pytest.approx(3.3 * 0.14)
    assert fake.requests_to("tts") and len(fake.creates) == 1


@pytest.mark.vcr
@pytest.mark.default_cassette("text_tts.yaml")
async def test_cassette_text_job_billed_units_are_the_avatars_plus_the_speechs(vcr, make_provider):
    provider = make_provider(API)
    job = job_for()
    job.apply(await provider.submit(job, prepared(IMAGE_URL, text=TEXT)))
    await _follow(provider, job)
    assert job.billed_units == pytest.approx(1.8 + 0.5) and job.billed_usd == pytest.approx(2.3 * 0.14)
    assert vcr.all_played
