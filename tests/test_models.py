"""The request model: exactly one of audio/text, defaults, typed errors naming field and limit."""

from __future__ import annotations

import pytest

from talkinghead import AvatarRequest, InputError, Job, JobStatus, JobUpdate


def test_defaults():
    r = AvatarRequest(image="face.jpg", audio="a.mp3")
    assert (r.mode, r.aspect_ratio, r.prompt, r.voice) == ("std", "16:9", None, None)


def test_prompt_over_2500_chars_names_field_value_and_limit():
    with pytest.raises(InputError) as info:
        AvatarRequest(image="f.jpg", audio="a.mp3", prompt="x" * 2501)
    err = info.value
    assert err.field == "prompt" and err.value == 2501 and err.limit == 2500
    assert str(err) == "prompt: 2501 characters is longer than the 2500 maximum"
    AvatarRequest(image="f.jpg", audio="a.mp3", prompt="x" * 2500)  # the limit itself is fine


@pytest.mark.parametrize("kw, field", [({"mode": "ultra"}, "mode"), ({"aspect_ratio": "4:3"}, "aspect_ratio")])
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
