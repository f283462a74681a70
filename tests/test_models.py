"""The request model: exactly one of audio/text, defaults, typed errors naming field and limit."""

from __future__ import annotations

import pytest

from talkinghead import AvatarRequest, InputError, Job, JobStatus, JobUpdate


def test_defaults():
    r = AvatarRequest(image="face.jpg", audio="a.mp3")
    assert (r.mode, r.aspect_ratio, r.prompt, r.voice) == ("std", "auto", None, None)
    assert (r.resolution, r.seed, r.language) == (None, None, None)


def test_prompt_over_2500_chars_names_field_value_and_limit():
    with pytest.raises(InputError) as info:
        AvatarRequest(image="f.jpg", audio="a.mp3", prompt="x" * 2501)
    err = info.value
    assert err.field == "prompt" and err.value == 2501 and err.limit == 2500
    assert str(err) == "prompt: 2501 characters is longer than the 2500 maximum"
    AvatarRequest(image="f.jpg", audio="a.mp3", prompt="x" * 2500)  # the limit itself is fine


@pytest.mark.parametrize("kw, field", [({"mode": "ultra"}, "mode"), ({"aspect_ratio": "4:3"}, "aspect_ratio"),
                                       ({"resolution": "2k"}, "resolution"), ({"seed": -1}, "seed")])
def test_enumerations(kw, field):
    with pytest.raises(InputError) as info:
        AvatarRequest(image="f.jpg", audio="a.mp3", **kw)
    assert info.value.field == field and repr(kw[field]) in str(info.value)


@pytest.mark.parametrize("kw, says", [({}, "neither"), ({"audio": "a.mp3", "text": "hi"}, "both")])
def test_exactly_one_of_audio_and_text(kw, says):
    with pytest.raises(InputError, match=f"exactly one of audio and text; {says}"):
        AvatarRequest(image="f.jpg", **kw)


def test_blank_text_is_rejected():
    with pytest.raises(InputError) as info:
        AvatarRequest(image="f.jpg", text="   ")
    assert info.value.field == "text"


def test_digest_is_stable_and_sensitive():
    a = AvatarRequest(image="f.jpg", audio="a.mp3", mode="pro")
    assert a.digest() == AvatarRequest(image="f.jpg", audio="a.mp3", mode="pro").digest()
    assert a.digest() != AvatarRequest(image="f.jpg", audio="a.mp3").digest()


def test_job_apply_keeps_progress_monotonic_and_terminal_final():
    job = Job(provider="p", model="m")
    assert job.apply(JobUpdate(status=JobStatus.RUNNING, task_id="t1", progress=50))
    job.apply(JobUpdate(status=JobStatus.RUNNING, progress=20))  # late, out-of-order update
    assert job.progress == 50 and job.task_id == "t1"
    assert job.apply(JobUpdate(status=JobStatus.COMPLETED, output_url="file:///v.mp4"))
    assert job.progress == 100
    assert not job.apply(JobUpdate(status=JobStatus.FAILED, error="late duplicate"))
    assert job.status is JobStatus.COMPLETED and job.error is None


def test_digest_of_an_unchanged_request_is_what_earlier_versions_gave():
    # Batch reruns find finished lines by digest: the fields added for other models must not
    # change the digest of a request that does not use them. These values were printed by the
    # version before them (aspect_ratio then defaulted to "16:9", which every route ignored).
    assert AvatarRequest(image="a", audio="b").digest() == "8aac54223a9f6450907185af6bbff557"
    assert AvatarRequest(image="a", audio="b", aspect_ratio="9:16").digest() == (
        AvatarRequest(image="a", audio="b", aspect_ratio="9:16", seed=None).digest())
    # An explicit 16:9 is now a different request from auto (some routes set the frame).
    wide = AvatarRequest(image="a", audio="b", aspect_ratio="16:9")
    assert wide.digest() != AvatarRequest(image="a", audio="b").digest()
    base = AvatarRequest(image="a", audio="b").digest()
    for kw in ({"seed": 1}, {"resolution": "720p"}, {"text": "hi", "audio": None, "language": "French"}):
        assert AvatarRequest(**{"image": "a", "audio": "b", **kw}).digest() != base


def _inputs(sent_audio, **request):
    from talkinghead.models import ModelInputs, Route

    route = Route(provider="p", model="m", price_per_second={"std": 0.1, "pro": 0.2})
    return ModelInputs(AvatarRequest(image="f.jpg", **request), route, "https://x/f.jpg", sent_audio)


def test_model_inputs_speech_sends_the_audio_or_the_text_with_what_is_given():
    assert _inputs("https://x/a.wav", audio="a.mp3", voice="v").speech("script", "audio_url", voice="voice_id") \
        == {"audio_url": "https://x/a.wav"}
    spoken = _inputs(None, text="hello", voice="Kore", language="German")
    assert spoken.speech("script", "audio", voice="voice_id", language="lang") \
        == {"script": "hello", "voice_id": "Kore", "lang": "German"}
    assert spoken.speech("script", "audio") == {"script": "hello"}  # the model takes no voice
    assert _inputs(None, text="hello").speech("script", "audio", voice="voice_id") == {"script": "hello"}


def test_model_inputs_given_names_the_set_fields_as_the_model_does():
    both = _inputs("https://x/a.wav", audio="a.mp3", prompt="smile", seed=7)
    assert both.given(prompt="video_prompt", seed="seed") == {"video_prompt": "smile", "seed": 7}
    assert both.given(prompt=None) == {}
    assert _inputs("https://x/a.wav", audio="a.mp3").given(prompt="prompt", seed="seed") == {}
