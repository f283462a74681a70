"""The mock provider driven directly, as the core would: submit, poll, cancel, webhooks."""

from __future__ import annotations

import asyncio
import json
import time
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import av
import numpy as np
import pytest

from talkinghead.errors import (
    BillingError,
    ConfigError,
    ContentPolicyError,
    InputError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)
from talkinghead.media import MediaFile, PreparedRequest
from talkinghead.models import AvatarRequest, Job, JobStatus
from talkinghead.video import audio_duration, probe_video
from talkinghead_mock import FailSpec, MockProvider

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
FACE, MP3, WAV = EXAMPLES / "face.jpg", EXAMPLES / "hello.mp3", EXAMPLES / "hello.wav"
AUDIO_S = audio_duration(MP3)


def prepared(image: Path | str | bytes = FACE, audio: Path | str | bytes | None = MP3,
             text: str | None = None, **request) -> PreparedRequest:
    """A PreparedRequest built by hand, as media.prepare would make it (no probing here)."""
    def media(field: str, value, fmt: str) -> MediaFile:
        if isinstance(value, bytes):
            return MediaFile(field, "bytes", f"{field}.{fmt}", data=value, format=fmt,
                             duration_s=audio_duration(value) if field == "audio" else None)
        if str(value).startswith("https://"):
            return MediaFile(field, "url", f"{field}.bin", url=str(value))
        return MediaFile(field, "path", Path(value).name, path=Path(value), format=fmt,
                         duration_s=audio_duration(value) if field == "audio" else None)

    req = AvatarRequest(image="face.jpg" if isinstance(image, bytes) else image,
                        audio=None if text else "a.mp3" if isinstance(audio, bytes) else audio,
                        text=text, **request)
    return PreparedRequest(req, media("image", image, "jpeg"),
                           None if text else media("audio", audio, "mp3"))


@pytest.fixture
def provider(tmp_path, monkeypatch):
    for var in ("LATENCY", "STEPS", "PRICE_STD", "PRICE_PRO", "FAIL", "STATE_DIR"):
        monkeypatch.delenv(f"TALKINGHEAD_MOCK_{var}", raising=False)
    return MockProvider({"output_dir": tmp_path})


def new_job(**kw) -> Job:
    return Job(provider="mock", model="mock-avatar", **kw)


async def submit(provider: MockProvider, prep: PreparedRequest | None = None, **job) -> Job:
    job = new_job(**job)
    job.apply(await provider.submit(job, prep or prepared()))
    return job


async def drive(provider: MockProvider, job: Job, limit: int = 50) -> list:
    """Poll until terminal; returns every update."""
    updates = []
    for _ in range(limit):
        update = await provider.poll(job)
        job.apply(update)
        updates.append(update)
        if update.status.terminal:
            return updates
    raise AssertionError(f"not terminal after {limit} polls: {updates[-1]}")


def output_path(update) -> Path:
    assert update.output_url.startswith("file://")
    return Path(url2pathname(urlparse(update.output_url).path))


# -- declaration -----------------------------------------------------------------------------


def test_route_and_defaults(provider):
    (route,) = provider.routes()
    assert (route.provider, route.model, route.id) == ("mock", "mock-avatar", "mock/mock-avatar")
    assert route.modes == ("std", "pro") and set(route.aspect_ratios) == {"16:9", "9:16", "1:1"}
    assert route.price_per_second == {"std": 0.01, "pro": 0.02} and route.native_text
    assert provider.configured() and provider.env_vars == () and provider.secrets() == []
    assert provider.poll_interval[0] == 0.0


def test_settings_from_env_and_config(monkeypatch):
    monkeypatch.setenv("TALKINGHEAD_MOCK_PRICE_STD", "0.5")
    monkeypatch.setenv("TALKINGHEAD_MOCK_STEPS", "7")
    monkeypatch.setenv("TALKINGHEAD_MOCK_FAIL", "billing@run:3")
    p = MockProvider()
    assert p.routes()[0].price_per_second["std"] == 0.5 and p.steps == 7
    assert p.fail == FailSpec("billing", "run", 3)
    p = MockProvider({"price_std": 0.25, "steps": 2, "fail": None})  # config wins over env
    assert p.routes()[0].price_per_second["std"] == 0.25 and p.steps == 2
    assert p.fail == FailSpec("billing", "run", 3)  # None means "not set here"


def test_bad_settings_are_config_errors(monkeypatch):
    monkeypatch.setenv("TALKINGHEAD_MOCK_LATENCY", "soon")
    with pytest.raises(ConfigError, match="TALKINGHEAD_MOCK_LATENCY"):
        MockProvider()
    monkeypatch.delenv("TALKINGHEAD_MOCK_LATENCY")
    for bad in ("explode", "server_error@later", "server_error:x", {"kind": "timeout", "oops": 1}):
        with pytest.raises(ConfigError, match="mock fail"):
            MockProvider({"fail": bad})


@pytest.mark.parametrize("text, value, spec", [
    ("timeout", "timeout", FailSpec("timeout")),
    ("server_error@run:2", "server_error@run:2", FailSpec("server_error", "run", 2)),
    ("dict", {"kind": "rate_limited", "times": 1}, FailSpec("rate_limited", times=1)),
])
def test_fail_spec_parse(text, value, spec):
    assert FailSpec.parse(value) == spec


def test_estimate(provider):
    route = provider.routes()[0]
    quote = provider.estimate(prepared(mode="pro"), route)
    assert quote.seconds == pytest.approx(AUDIO_S, abs=0.001) and not quote.upper_bound
    assert quote.cost_usd == pytest.approx(AUDIO_S * 0.02, abs=1e-4)
    assert provider.estimate(prepared(text="x" * 60), route).seconds == 4.0   # 15 chars/s
    assert provider.estimate(prepared(text="Hi"), route).seconds == 2.0       # at least 2 s
    assert provider.estimate(prepared(text="x" * 9000), route).seconds == 300.0
    assert provider.estimate(prepared(audio="https://example.com/a.mp3"), route).seconds == 5.0
    assert provider.calls == []  # estimates are local: nothing is "sent"


# -- the happy path ----------------------------------------------------------------------------


@pytest.mark.parametrize("aspect, size", [("16:9", (640, 360)), ("9:16", (360, 640)), ("1:1", (360, 360))])
async def test_submit_poll_to_a_real_mp4(provider, aspect, size):
    job = await submit(provider, prepared(aspect_ratio=aspect))
    assert job.status is JobStatus.QUEUED and job.task_id == "mock-000001"
    updates = await drive(provider, job)
    assert [u.status for u in updates] == [JobStatus.RUNNING] * 3 + [JobStatus.COMPLETED]
    assert [u.progress for u in updates] == [25, 50, 75, 100]
    done = updates[-1]
    assert done.duration_s == pytest.approx(AUDIO_S, abs=0.001)
    info = probe_video(output_path(done))
    assert info.has_video and info.has_audio and (info.width, info.height) == size
    assert abs(info.duration_s - AUDIO_S) < 0.1 and info.frame_count == round(AUDIO_S * 25)
    assert job.status is JobStatus.COMPLETED and job.output_url == done.output_url


async def test_wav_audio_and_steps(tmp_path):
    provider = MockProvider({"output_dir": tmp_path, "steps": 2})
    job = await submit(provider, prepared(audio=WAV))
    updates = await drive(provider, job)
    assert [u.progress for u in updates] == [50, 100]
    assert abs(probe_video(output_path(updates[-1])).duration_s - audio_duration(WAV)) < 0.1


async def test_stream_uses_the_default_poll_loop(provider):
    job = await submit(provider)
    seen = [u async for u in provider.stream(job)]
    progress = [u.progress for u in seen]
    assert progress == sorted(progress) and seen[-1].status is JobStatus.COMPLETED


async def test_terminal_answers_repeat(provider):
    job = await submit(provider)
    done = (await drive(provider, job))[-1]
    assert await provider.poll(job) == done
    assert len(list(provider.output_dir.glob("*.mp4"))) == 1  # rendered once


async def test_text_renders_a_silent_video(provider):
    job = await submit(provider, prepared(text="y" * 45))  # 3 s
    done = (await drive(provider, job))[-1]
    path = output_path(done)
    info = probe_video(path)
    assert done.duration_s == 3.0 and abs(info.duration_s - 3.0) < 0.1 and info.has_audio
    with av.open(str(path)) as c:
        assert max(np.abs(f.to_ndarray()).max() for f in c.decode(audio=0)) < 1e-4


async def test_url_inputs_render_a_placeholder(provider):
    job = await submit(provider, prepared(image="https://example.com/face.jpg",
                                          audio="https://example.com/a.mp3"))
    done = (await drive(provider, job))[-1]
    path = output_path(done)
    assert done.duration_s == 5.0 and abs(probe_video(path).duration_s - 5.0) < 0.1
    with av.open(str(path)) as c:
        first = next(c.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(first - 128).max() < 8  # neutral grey (give or take YUV rounding)


async def test_bytes_inputs(provider):
    job = await submit(provider, prepared(image=FACE.read_bytes(), audio=WAV.read_bytes()))
    done = (await drive(provider, job))[-1]
    assert done.status is JobStatus.COMPLETED
    assert abs(probe_video(output_path(done)).duration_s - audio_duration(WAV)) < 0.1


async def test_latency_is_spread_over_the_steps(tmp_path):
    provider = MockProvider({"output_dir": tmp_path, "latency": 0.3, "steps": 3})
    job = await submit(provider)
    start = time.monotonic()
    await provider.poll(job)
    first = time.monotonic() - start
    await drive(provider, job)
    assert 0.05 < first < 0.25 and time.monotonic() - start >= 0.28


async def test_concurrent_polls_take_one_step_each_and_render_once(provider):
    job = await submit(provider)
    updates = await asyncio.gather(*(provider.poll(job) for _ in range(6)))
    assert [u.progress for u in updates] == [25, 50, 75, 100, 100, 100]
    assert len(list(provider.output_dir.glob("*.mp4"))) == 1


async def test_default_output_dir_goes_with_the_provider():
    provider = MockProvider()
    job = await submit(provider)
    path = output_path((await drive(provider, job))[-1])
    assert path.exists() and path.parent.name.startswith("talkinghead-mock-")
    await provider.aclose()  # deterministic: no garbage collection needed
    assert not path.parent.exists()
    await provider.aclose()  # twice is harmless


async def test_unknown_task_is_reported_failed(provider):
    update = await provider.poll(new_job(task_id="mock-999999"))
    assert update.status is JobStatus.FAILED and update.error_kind == "not_found"


# -- recorded calls and determinism ------------------------------------------------------------


async def test_calls_are_recorded(provider):
    prep = prepared(mode="pro", prompt="smile")
    job = await submit(provider, prep)
    await provider.poll(job)
    await provider.cancel(job)
    assert [c.method for c in provider.calls] == ["submit", "poll", "cancel"]
    sent = provider.calls_to("submit")[0]
    assert (sent.job_id, sent.task_id) == (job.id, "mock-000001")
    assert sent.request.prompt == "smile" and sent.request.mode == "pro" and sent.prepared is prep
    assert all(c.task_id == "mock-000001" for c in provider.calls)
    task = provider.tasks["mock-000001"]
    assert task.job_id == job.id and task.polls == 1 and task.cancelled


async def test_deterministic(tmp_path):
    async def session(out: Path):
        provider = MockProvider({"output_dir": out})
        jobs = [await submit(provider, id=f"job{i}") for i in range(2)]
        updates = [await drive(provider, j) for j in jobs]
        return provider, jobs, updates

    (_, ja, ua), (_, jb, ub) = await session(tmp_path / "a"), await session(tmp_path / "b")
    assert [j.task_id for j in ja] == [j.task_id for j in jb] == ["mock-000001", "mock-000002"]
    strip = lambda us: [u.model_dump(exclude={"output_url"}) for u in us]  # noqa: E731
    assert [strip(u) for u in ua] == [strip(u) for u in ub]
    assert output_path(ua[0][-1]).read_bytes() == output_path(ub[0][-1]).read_bytes()


# -- injected failures -------------------------------------------------------------------------


@pytest.mark.parametrize("kind, error", [
    ("rate_limited", RateLimitError), ("server_error", ServerError),
    ("content_policy", ContentPolicyError), ("timeout", ProviderTimeout), ("billing", BillingError),
])
async def test_failure_at_submit(tmp_path, kind, error):
    provider = MockProvider({"output_dir": tmp_path, "fail": kind})
    with pytest.raises(error) as info:
        await submit(provider)
    assert info.value.provider == "mock" and str(info.value).startswith("mock: ")
    if kind == "rate_limited":
        assert info.value.retry_after == 0.1 and info.value.status_code == 429
    assert [c.method for c in provider.calls] == ["submit"] and provider.tasks == {}


async def test_failure_at_submit_after_n(tmp_path):
    provider = MockProvider({"output_dir": tmp_path, "fail": "server_error:1"})
    assert (await submit(provider)).task_id == "mock-000001"
    with pytest.raises(ServerError):
        await submit(provider)


async def test_failure_times_then_success(tmp_path):
    provider = MockProvider({"output_dir": tmp_path, "fail": {"kind": "rate_limited", "times": 1}})
    with pytest.raises(RateLimitError):
        await submit(provider)
    assert (await submit(provider)).task_id == "mock-000001"  # the retry gets through


@pytest.mark.parametrize("kind", ["rate_limited", "server_error", "content_policy", "billing"])
async def test_failure_mid_run(tmp_path, kind):
    provider = MockProvider({"output_dir": tmp_path, "fail": f"{kind}@run:2"})
    job = await submit(provider)
    updates = await drive(provider, job)
    assert [u.status for u in updates] == [JobStatus.RUNNING] * 2 + [JobStatus.FAILED]
    assert updates[-1].error_kind == kind and kind in updates[-1].error
    assert job.status is JobStatus.FAILED and job.error_kind == kind
    assert list(tmp_path.iterdir()) == []  # nothing rendered


async def test_timeout_mid_run_never_finishes(provider):
    provider.fail = FailSpec("timeout", "run", 1)
    job = await submit(provider)
    updates = [await provider.poll(job) for _ in range(20)]
    assert all(u.status is JobStatus.RUNNING for u in updates)
    assert {u.progress for u in updates[1:]} == {25.0}  # stuck after the first step


async def test_run_failure_after_more_polls_than_steps_never_fires(tmp_path):
    provider = MockProvider({"output_dir": tmp_path, "fail": "server_error@run:10"})
    updates = await drive(provider, await submit(provider))
    assert updates[-1].status is JobStatus.COMPLETED


# -- cancel ------------------------------------------------------------------------------------


async def test_cancel(provider):
    job = await submit(provider)
    await provider.poll(job)
    await provider.cancel(job)
    update = await provider.poll(job)
    assert update.status is JobStatus.CANCELLED
    assert (await provider.poll(job)).status is JobStatus.CANCELLED
    assert list(provider.output_dir.iterdir()) == []


async def test_cancel_after_completion_changes_nothing(provider):
    job = await submit(provider)
    done = (await drive(provider, job))[-1]
    await provider.cancel(job)
    assert await provider.poll(job) == done


# -- webhooks ----------------------------------------------------------------------------------


async def test_parse_webhook_inference_sh_shapes(provider):
    body = {"id": "t1", "status": 10, "error": None,
            "output": {"video": {"uri": "https://cdn.example.com/o.mp4"},
                       "output_meta": {"outputs": [{"type": "video", "seconds": 12.4}]}}}
    update = await provider.parse_webhook({}, json.dumps(body).encode())
    assert (update.status, update.task_id, update.output_url, update.duration_s) == (
        JobStatus.COMPLETED, "t1", "https://cdn.example.com/o.mp4", 12.4)
    running = await provider.parse_webhook({}, json.dumps({"data": {"id": "t1", "status": "running"}}).encode())
    assert running.status is JobStatus.RUNNING
    failed = await provider.parse_webhook({}, b'{"id": "t1", "status": 11, "error": "boom"}')
    assert failed.status is JobStatus.FAILED and failed.error == "boom"
    rejected = await provider.parse_webhook({}, b'{"id": "t1", "status": 13, "error": "no balance"}')
    assert rejected.status is JobStatus.FAILED and rejected.error_kind == "billing"
    assert [c.method for c in provider.calls] == ["parse_webhook"] * 4


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"status": 10}', b'{"id": "t", "status": 99}',
                                  b'{"id": "t", "status": "exploded"}', b'{"id": "t"}'])
async def test_parse_webhook_rejects_malformed(provider, body):
    with pytest.raises(InputError, match="webhook"):
        await provider.parse_webhook({}, body)


async def test_webhook_body_round_trips(provider):
    job = await submit(provider)
    done = (await drive(provider, job))[-1]
    update = await provider.parse_webhook({}, provider.webhook_body(job.task_id))
    assert update.model_dump(exclude={"message"}) == done.model_dump(exclude={"message"})


# -- discovery ---------------------------------------------------------------------------------


def test_entry_point_is_discovered(monkeypatch):
    from talkinghead import plugins

    (ep,) = [e for e in entry_points(group="talkinghead") if e.name == "mock"]
    assert ep.value == "talkinghead_mock"
    monkeypatch.setenv("TALKINGHEAD_PLUGINS", "mock")
    plugins.reset()
    try:
        assert plugins.get_provider_classes() == {"mock": MockProvider}
    finally:
        plugins.reset()
