"""The shortcuts taken for speed (see docs/performance.md) keep the behaviour they replace:
remembered media probes, the pool gate in front of httpcore, the redaction fast path,
single-statement journal writes."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest

from talkinghead import http, log, media, probe
from talkinghead.errors import InputError
from talkinghead.ledger import BudgetLimits, SQLiteLedger
from talkinghead.models import Job, JobStatus

# -- remembered media probes ---------------------------------------------------------------


@pytest.fixture
def count_decodes(monkeypatch):
    calls = []
    real = probe.measure

    def counting(m):
        calls.append(m.path)
        return real(m)

    monkeypatch.setattr(probe, "measure", counting)
    monkeypatch.setattr(media, "_PROBES", type(media._PROBES)())
    return calls


def test_a_settled_file_is_decoded_once(monkeypatch, tmp_path, speech, count_decodes):
    monkeypatch.setattr(media, "_SETTLED_NS", 0)  # as if the copy were old
    audio = tmp_path / "a.mp3"
    shutil.copy(speech, audio)
    first = media.inspect_audio(str(audio))
    second = media.inspect_audio(str(audio))
    assert first == second and len(count_decodes) == 1


def test_a_changed_file_is_probed_again(monkeypatch, tmp_path, speech, count_decodes):
    monkeypatch.setattr(media, "_SETTLED_NS", 0)
    audio = tmp_path / "a.mp3"
    shutil.copy(speech, audio)
    media.inspect_audio(str(audio))
    with open(audio, "ab") as f:  # new size, new ctime: a new key
        f.write(b"\0" * 100)
    media.inspect_audio(str(audio))
    assert len(count_decodes) == 2


def test_a_fresh_file_is_not_remembered(tmp_path, speech, count_decodes):
    audio = tmp_path / "a.mp3"  # written just now: it may still change within the same tick
    shutil.copy(speech, audio)
    media.inspect_audio(str(audio))
    media.inspect_audio(str(audio))
    assert len(count_decodes) == 2


def test_a_request_whose_files_were_probed_is_prepared_on_the_loop(monkeypatch, tmp_path, speech, face,
                                                                    count_decodes):
    """``remembered`` says yes only once both files are in the cache, for the kind of probe
    asked (a headers-only probe does not answer a full one), and no after a file changes."""
    from talkinghead.models import AvatarRequest

    monkeypatch.setattr(media, "_SETTLED_NS", 0)
    image, audio = tmp_path / "f.jpg", tmp_path / "a.mp3"
    shutil.copy(face, image)
    shutil.copy(speech, audio)
    request = AvatarRequest(image=str(image), audio=str(audio))
    assert not media.remembered(request)
    media.prepare(request, decode=False)
    assert media.remembered(request, decode=False) and not media.remembered(request)
    media.prepare(request)
    assert media.remembered(request) and media.remembered(request, decode=False)
    with open(audio, "ab") as f:
        f.write(b"\0" * 10)
    assert not media.remembered(request)


def test_failures_are_never_remembered(monkeypatch, tmp_path, count_decodes):
    monkeypatch.setattr(media, "_SETTLED_NS", 0)
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3\x03\0\0\0\0\0\0" + b"\xff\xfb\x90\x00" + b"\x13" * 4000)
    for _ in range(2):
        with pytest.raises(InputError):
            media.inspect_audio(str(bad))
    assert len(count_decodes) == 2 and not media._PROBES


# -- the pool gate ---------------------------------------------------------------------------


class _Body(httpx.AsyncByteStream):
    """A streamed body, as a real connection gives: not read until asked."""

    async def __aiter__(self):
        yield b"x" * 10


async def test_the_pool_gate_waits_for_a_slot_then_times_out_like_httpcore():
    async def handler(request):
        return httpx.Response(200, stream=_Body())

    transport = http.GuardedTransport("gated")
    await transport.inner.aclose()
    transport.inner = httpx.MockTransport(handler)
    transport._slots = asyncio.Semaphore(1)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9",
                                 timeout=httpx.Timeout(5.0, pool=0.05)) as client:
        async with client.stream("GET", "/held"):
            with pytest.raises(httpx.PoolTimeout):
                await client.get("/waits")  # the only slot is held by the open stream
        assert (await client.get("/after")).status_code == 200  # released on close
        assert transport._slots._value == 1  # and released exactly once


async def test_the_gate_releases_its_slot_when_the_request_fails():
    async def handler(request):
        raise httpx.ConnectError("refused", request=request)

    transport = http.GuardedTransport("gated")
    await transport.inner.aclose()
    transport.inner = httpx.MockTransport(handler)
    transport._slots = asyncio.Semaphore(1)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:9") as client:
        for _ in range(3):
            with pytest.raises(httpx.ConnectError):
                await client.get("/")
    assert transport._slots._value == 1


def test_a_transport_given_by_the_caller_is_not_gated():
    transport = http.GuardedTransport("given", httpx.MockTransport(lambda r: httpx.Response(204)))
    assert transport._slots is None


def test_one_tls_context_is_shared():
    assert http.ssl_context() is http.ssl_context()


# -- redaction and the journal -----------------------------------------------------------------


def test_a_secret_inside_another_is_redacted_whole():
    log.add_secret("abcd-short-key")
    log.add_secret("prefix-abcd-short-key-suffix")
    log.add_secret("abcd-short-key")  # again: no effect
    assert log.redact("x prefix-abcd-short-key-suffix y abcd-short-key") == "x [REDACTED] y [REDACTED]"
    assert log.redact("nothing to see, status running") == "nothing to see, status running"


def test_single_statement_writes_are_durable_and_budgets_still_hold(tmp_path):
    path = tmp_path / "j.db"
    ledger = SQLiteLedger(path)
    job = Job(provider="p", model="m", reserved_usd=1.0)
    ledger.open(job)  # no limits: a single INSERT
    job.status, job.task_id = JobStatus.RUNNING, "t1"
    ledger.record(job)
    job.status = JobStatus.COMPLETED
    ledger.close(job, 0.5)
    other = SQLiteLedger(path)  # another connection sees every write
    assert other.get(job.id).status is JobStatus.COMPLETED and other.totals()["spent_usd"] == 0.5
    limited = SQLiteLedger(path, BudgetLimits(total_usd=1.0))
    from talkinghead.errors import BudgetExceeded

    with pytest.raises(BudgetExceeded):
        limited.open(Job(provider="p", model="m", reserved_usd=0.6))
