"""The clients end to end on the mock provider: run, stream, cancel, failures, the ledger."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from talkinghead import (
    AsyncClient,
    AvatarRequest,
    Client,
    ContentPolicyError,
    InputError,
    JobFailed,
    JobStatus,
    JobTimeout,
    NoRouteError,
    RateLimitError,
    ServerError,
    SubmitOutcomeUnknown,
)
from talkinghead.plugins import get_provider_classes
from talkinghead.video import probe_video

AUDIO_S = 6.94


@pytest.fixture(autouse=True)
def _mock_may_be_chosen(monkeypatch):
    """These tests let the router pick the mock without naming it: the explicit test setting
    (a test double is otherwise used only by name)."""
    monkeypatch.setenv("TALKINGHEAD_ALLOW_TEST_ROUTES", "1")


def mock(**config):
    return get_provider_classes()["mock"](config)


def renamed(name: str, **config):
    """A second mock-backed provider under another name (for fallback)."""
    base = get_provider_classes()["mock"]
    cls = type(f"Mock_{name}", (base,), {"name": name, "routes": lambda self: [
        r.model_copy(update={"provider": name}) for r in base.routes(self)]})
    return cls(config)


@pytest.mark.parametrize("aspect, size", [("16:9", (640, 360)), ("9:16", (360, 640)), ("1:1", (360, 360))])
def test_sync_run_writes_a_real_mp4(face, speech, tmp_path, aspect, size):
    with Client(providers=[mock()]) as client:
        result = client.run(AvatarRequest(image=face, audio=speech, aspect_ratio=aspect), output=tmp_path / "v.mp4")
    info = probe_video(result.path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == size
    assert abs(info.duration_s - AUDIO_S) < 0.1
    assert result.cost_usd == pytest.approx(AUDIO_S * 0.01, abs=0.002)
    assert result.provider == "mock" and result.model == "mock-avatar"


async def test_async_run_and_ledger_settles(face, speech, tmp_path):
    client = AsyncClient(providers=[mock()])
    result = await client.run(AvatarRequest(image=face, audio=speech, mode="pro"), output=tmp_path / "v.mp4")
    job = client.ledger.get(result.job_id)
    assert job.status is JobStatus.COMPLETED and job.output_path == str(result.path.resolve())
    assert job.reserved_usd == pytest.approx(job.quote.cost_usd)
    assert job.settled_usd == pytest.approx(AUDIO_S * 0.02, abs=0.002)
    assert client.ledger.totals()["spent_usd"] == pytest.approx(job.settled_usd)
    assert client.ledger.totals()["reserved_usd"] == 0.0


async def test_stream_progress_is_monotonic_and_ends_terminal(face, speech):
    provider = mock(steps=5)
    client = AsyncClient(providers=[provider])
    job = await client.submit(AvatarRequest(image=face, audio=speech))
    seen = [u async for u in client.stream(job)]
    progress = [u.progress for u in seen if u.progress is not None]
    assert progress == sorted(progress) and len(progress) >= 5
    assert seen[-1].status is JobStatus.COMPLETED and all(not u.status.terminal for u in seen[:-1])
    assert [c.method for c in provider.calls][:2] == ["submit", "poll"]


def test_sync_stream_and_cancel(face, speech):
    provider = mock(steps=50)
    with Client(providers=[provider]) as client:
        job = client.submit(AvatarRequest(image=face, audio=speech))
        first = next(iter(client.stream(job)))
        assert first.status is JobStatus.RUNNING
        client.cancel(job)
        assert job.status is JobStatus.CANCELLED
        assert client.ledger.get(job.id).settled_usd == 0.0
        with pytest.raises(JobFailed, match="cancelled"):
            client.wait(job)
    assert "cancel" in [c.method for c in provider.calls]


@pytest.mark.parametrize("kind, error", [("rate_limited", RateLimitError), ("server_error", ServerError),
                                         ("content_policy", ContentPolicyError)])
async def test_failure_at_submit_is_typed_and_releases_reservation(face, speech, kind, error):
    client = AsyncClient(providers=[mock(fail=f"{kind}@submit")])
    with pytest.raises(error):
        await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    (job,) = client.ledger.jobs()
    assert job.status is JobStatus.FAILED and job.settled_usd == 0.0
    assert (client.ledger.totals()["spent_usd"], client.ledger.totals()["reserved_usd"]) == (0.0, 0.0)


@pytest.mark.parametrize("kind", ["server_error", "content_policy"])
async def test_failure_mid_run(face, speech, kind):
    client = AsyncClient(providers=[mock(fail=f"{kind}@run:2")])
    with pytest.raises(JobFailed) as info:
        await client.run(AvatarRequest(image=face, audio=speech))
    assert info.value.kind == kind and info.value.exit_code == 4
    assert (client.ledger.totals()["spent_usd"], client.ledger.totals()["reserved_usd"]) == (0.0, 0.0)


async def test_job_that_never_finishes_times_out(face, speech):
    client = AsyncClient(providers=[mock(fail="timeout@run")])
    job = await client.submit(AvatarRequest(image=face, audio=speech))
    with pytest.raises(JobTimeout, match="did not finish within 0.3 s"):
        await client.wait(job, timeout=0.3)
    journaled = client.ledger.get(job.id)
    assert journaled.status is JobStatus.RUNNING and journaled.settled_usd is None  # resumable
    assert job.reserved_usd > 0  # still reserved: the money stays held while it may complete
    assert client.ledger.totals()["reserved_usd"] == pytest.approx(job.reserved_usd)
    await client.aclose()


async def test_invalid_input_never_reaches_the_provider(face, tmp_path):
    provider = mock()
    short = tmp_path / "short.wav"
    _write_wav(short, 1.5)
    client = AsyncClient(providers=[provider])
    with pytest.raises(InputError, match=r"audio: 1\.5\d* s is shorter than the 2 s minimum"):
        await client.run(AvatarRequest(image=face, audio=short))
    assert provider.calls == [] and client.ledger.jobs() == []


async def test_falls_back_to_next_route_on_provider_error(face, speech):
    cheap, dear = mock(fail="server_error@submit", price_std=0.001), renamed("backup", price_std=0.5)
    client = AsyncClient(providers=[dear, cheap])
    job = await client.submit(AvatarRequest(image=face, audio=speech))
    assert job.provider == "backup"
    assert [j.status for j in client.ledger.jobs() if j.provider == "mock"] == [JobStatus.FAILED]


async def test_no_fallback_when_provider_is_named(face, speech):
    client = AsyncClient(providers=[mock(fail="server_error@submit"), renamed("backup")])
    with pytest.raises(ServerError):
        await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")


async def test_unknown_create_outcome_is_never_resubmitted(face, speech):
    class Lost(get_provider_classes()["mock"]):
        async def submit(self, job, prepared):
            raise SubmitOutcomeUnknown("POST /run sent, no answer", provider="mock")

    provider, backup = Lost(), renamed("backup")
    client = AsyncClient(providers=[provider, backup])
    with pytest.raises(SubmitOutcomeUnknown):
        await client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    (job,) = client.ledger.jobs()
    assert job.status is JobStatus.UNKNOWN and job.settled_usd is None  # still reserved
    assert backup.calls == []


async def test_estimate_orders_cheapest_first_and_max_cost(face, speech):
    client = AsyncClient(providers=[mock(price_std=0.03), renamed("other", price_std=0.02)])
    quotes = await client.estimate(AvatarRequest(image=face, audio=speech))
    assert [q.provider for q in quotes] == ["other", "mock"]
    assert quotes[0].cost_usd == pytest.approx(AUDIO_S * 0.02, abs=0.001)
    from talkinghead import BudgetExceeded
    with pytest.raises(BudgetExceeded):
        await client.submit(AvatarRequest(image=face, audio=speech), max_cost_usd=0.01)


async def test_no_route_for_text_without_native_text_or_tts(face, monkeypatch):
    from talkinghead import tts
    monkeypatch.setattr(tts, "default_engine", lambda name=None, config=None: None)  # no engine installed
    class AudioOnly(get_provider_classes()["mock"]):
        def routes(self):
            return [r.model_copy(update={"native_text": False}) for r in super().routes()]
    client = AsyncClient(providers=[AudioOnly()])
    with pytest.raises(NoRouteError, match="text-to-speech"):
        await client.estimate(AvatarRequest(image=face, text="Hello there"))


def _write_wav(path, seconds, rate=16000):
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x00\x00" * int(seconds * rate))


def test_client_works_inside_a_running_loop(face, speech, tmp_path):
    async def inside():
        with Client(providers=[mock()]) as client:  # e.g. a notebook: a loop is already running
            return client.estimate(AvatarRequest(image=face, audio=speech))
    quotes = asyncio.run(inside())
    assert quotes[0].provider == "mock"


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
async def test_a_damaged_download_is_not_kept(face, speech, tmp_path, damage):
    """A result that arrives whole by its length but is cut short at the source (or is not a
    video at all) raises DownloadError and leaves no file behind; the job stays completed, so
    `jobs resume` can fetch it again."""
    from talkinghead import DownloadError

    class Damaged(get_provider_classes()["mock"]):
        async def poll(self, job):
            update = await super().poll(job)
            if update.output_url:
                good = Path(update.output_url[len("file://"):]).read_bytes()
                bad = tmp_path / "bad.mp4"
                bad.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"\x00" * 5000)
                update = update.model_copy(update={"output_url": bad.as_uri()})
            return update

    client = AsyncClient(providers=[Damaged()])
    out = tmp_path / "v.mp4"
    with pytest.raises(DownloadError, match="cut short|not a playable video"):
        await client.run(AvatarRequest(image=face, audio=speech), output=out)
    assert not out.exists()
    (job,) = client.ledger.jobs()
    assert job.status is JobStatus.COMPLETED and job.output_path is None
