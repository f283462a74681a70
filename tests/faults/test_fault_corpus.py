"""The fault corpus: each fault injected into the loopback fake inference.sh server, a whole job
run through the real ``AsyncClient`` (uploads, create, stream, download) and a real SQLite
journal, and the documented end state checked (docs/faults.md holds the same table):

- what the user sees (the result, or the typed error);
- the job's final status in the journal;
- whether it still holds its reservation (only an unfinished or ``unknown`` job may);
- how many creates reached the fake and how many tasks it made: never more than one task.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from talkinghead.errors import (
    AuthenticationError,
    BillingError,
    DownloadError,
    JobFailed,
    JobTimeout,
    RateLimitError,
    ServerError,
    SubmitOutcomeUnknown,
)
from talkinghead_inferencesh.fake import RESET, STALL, TRUNCATE

from .conftest import KEY, assert_consistent, journal, request, serve_receiver

PRICE_STD = 0.056
BILLED_SECONDS = 6.9  # what the fake reports as the output's length


@dataclass(frozen=True)
class Fault:
    name: str
    switches: dict[str, Any]
    raises: type[Exception] | None  # None: the video arrives
    status: str                     # the job's final status in the journal
    reserved: bool                  # still holds its reservation
    creates: int                    # POST /apps/run requests the fake received
    tasks: int                      # tasks the fake made (never more than one)
    config: dict[str, Any] = field(default_factory=dict)  # provider config for this case


FAULTS = [
    # rate limits and server errors
    Fault("429 on create, Retry-After, then accepted", {"failures": {"create": [429, 429]}},
          None, "completed", False, 3, 1),
    Fault("429 on create until retries run out", {"failures": {"create": [429] * 4}},
          RateLimitError, "failed", False, 4, 0),
    Fault("500 on create", {"failures": {"create": [500]}}, ServerError, "failed", False, 1, 0),
    Fault("502 on create (a gateway answered)", {"failures": {"create": [502]}},
          SubmitOutcomeUnknown, "unknown", True, 1, 0),
    Fault("503 on create, then accepted", {"failures": {"create": [503]}}, None, "completed", False, 2, 1),
    Fault("500/502/503 on POST /files", {"failures": {"files": [500, 502, 503]}}, None, "completed", False, 1, 1),
    Fault("500/503 on the upload PUT", {"failures": {"upload": [500, 503]}}, None, "completed", False, 1, 1),
    Fault("500/502/503 on the stream and the task read",
          {"failures": {"stream": [503, 502], "get": [500, 502, 503]}}, None, "completed", False, 1, 1),
    Fault("401 (wrong key)", {"api_key": "another-key-000000000"}, AuthenticationError, "failed", False, 0, 0),
    # connection reset mid-body (the request was handled, the answer cut)
    Fault("reset mid-body on create", {"failures": {"create": [RESET]}},
          SubmitOutcomeUnknown, "unknown", True, 1, 1),
    Fault("reset mid-body on POST /files and the upload", {"failures": {"files": [RESET], "upload": [RESET]}},
          None, "completed", False, 1, 1),
    Fault("reset mid-body on the task read", {"failures": {"stream": [500], "get": [RESET]}},
          None, "completed", False, 1, 1),
    Fault("reset mid-body on the stream", {"failures": {"stream": [RESET, RESET]}},
          None, "completed", False, 1, 1),
    Fault("reset mid-body on the download", {"failures": {"output": [RESET]}}, None, "completed", False, 1, 1),
    # read timeouts
    Fault("read timeout on create", {"failures": {"create": [STALL]}},
          SubmitOutcomeUnknown, "unknown", True, 1, 1),
    Fault("read timeout on the task read", {"failures": {"stream": [500], "get": [STALL]}},
          None, "completed", False, 1, 1),
    # malformed answers
    Fault("malformed JSON answer to create (HTTP 200)", {"failures": {"create": [TRUNCATE]}},
          SubmitOutcomeUnknown, "unknown", True, 1, 1),
    Fault("malformed JSON answer to POST /files", {"failures": {"files": [TRUNCATE]}},
          ServerError, "failed", False, 0, 0),
    Fault("malformed JSON answer to the task read", {"failures": {"stream": [500], "get": [TRUNCATE, TRUNCATE]}},
          None, "completed", False, 1, 1),
    Fault("malformed lines in the stream", {"stream_malformed": True}, None, "completed", False, 1, 1),
    Fault("truncated NDJSON stream (ends mid-line)", {"failures": {"stream": [TRUNCATE, TRUNCATE]}},
          None, "completed", False, 1, 1),
    Fault("stream dropped mid-line twice", {"stream_drops": 2}, None, "completed", False, 1, 1),
    Fault("the stream keeps failing without news", {"statuses": (1, 2, 7), "failures": {"stream": [503] * 10}},
          JobTimeout, "running", True, 1, 1),
    # the task itself
    Fault("task fails (status 11)", {"task_error": "no face detected"}, JobFailed, "failed", False, 1, 1),
    Fault("run rejected at admission (status 13)", {"reject": True}, BillingError, "failed", False, 1, 1),
    Fault("task never finishes", {"statuses": (1, 2, 7)}, JobTimeout, "running", True, 1, 1),
    # the output download
    Fault("500 on the download, then served", {"failures": {"output": [500]}}, None, "completed", False, 1, 1),
    Fault("500 on every download attempt", {"failures": {"output": [500, 500, 500]}},
          DownloadError, "completed", False, 1, 1),
    Fault("403 on the download (expired URL)", {"failures": {"output": [403]}},
          DownloadError, "completed", False, 1, 1),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_fault_end_state(fault, fake, make_client, tmp_path, video_bytes):
    fake.configure(**fault.switches)
    client = make_client(**fault.config)
    out = tmp_path / "out.mp4"
    run = client.run(request(prompt="fault corpus"), provider="inferencesh", output=out, timeout=1.5)
    if fault.raises is None:
        result = await run
        assert out.read_bytes() == video_bytes and result.path == out
    else:
        with pytest.raises(fault.raises) as info:
            await run
        assert KEY not in str(info.value) and KEY not in repr(info.value)
        assert not out.exists() or fault.status == "completed" and out.read_bytes() == video_bytes

    (row,) = assert_consistent(tmp_path / "journal.db")
    assert (row.status, row.reserved) == (fault.status, fault.reserved), row
    assert len(fake.creates) == fault.creates
    assert len(fake.tasks) == fault.tasks
    if row.task_id is not None:
        assert row.task_id in fake.tasks  # the journal names the task the fake made
    if row.status == "completed":
        assert row.settled_usd == pytest.approx(BILLED_SECONDS * PRICE_STD, abs=1e-6)
    if fault.tasks and row.status != "unknown" and not fault.switches.get("reject"):
        assert row.task_id is not None  # a task that exists is never lost to the journal
    # (a run rejected at admission never ran and is never billed: its task id is not kept)


async def test_retry_after_is_honoured_on_create(fake, make_client, tmp_path):
    fake.configure(failures={"create": [429, 429]}, retry_after=0.25)
    client = make_client(retry_backoff=0.0)
    started = time.monotonic()
    await client.run(request(), provider="inferencesh", output=tmp_path / "out.mp4", timeout=3)
    assert time.monotonic() - started >= 0.5  # two waits of Retry-After: 0.25, not the 0 s backoff
    assert len(fake.creates) == 3 and len(fake.tasks) == 1


async def test_a_task_that_never_finishes_can_still_be_cancelled(fake, make_client, tmp_path):
    fake.configure(statuses=(1, 2, 7))
    client = make_client()
    with pytest.raises(JobTimeout):
        await client.run(request(), provider="inferencesh", output=tmp_path / "out.mp4", timeout=0.5)
    (row,) = assert_consistent(tmp_path / "journal.db")
    assert (row.status, row.reserved) == ("running", True)
    job = await client.cancel(client.ledger.get(row.id), timeout=3)
    assert job.status.value == "cancelled"
    (row,) = assert_consistent(tmp_path / "journal.db")
    assert (row.status, row.settled_usd) == ("cancelled", 0.0)
    assert len(fake.requests_to("cancel")) == 1 and len(fake.creates) == 1


async def test_an_expired_download_is_fetched_again_by_resume(fake, make_client, tmp_path, video_bytes):
    fake.configure(failures={"output": [403]})
    client = make_client()
    out = tmp_path / "out.mp4"
    with pytest.raises(DownloadError, match="HTTP 403"):
        await client.run(request(), provider="inferencesh", output=out, timeout=2)
    (row,) = journal(tmp_path / "journal.db")
    assert not out.exists() and list(tmp_path.glob(".out.mp4.*")) == []  # no half-written file
    result = await make_client().resume(client.ledger.get(row.id), output=out)
    assert out.read_bytes() == video_bytes and result.cost_usd == row.settled_usd
    assert len(fake.creates) == 1  # the paid result was fetched, not made again


@pytest.mark.parametrize("fault, made", [([RESET], True), ([STALL], True), ([TRUNCATE], True), ([502], False)],
                         ids=["reset", "timeout", "malformed", "502"])
async def test_an_unknown_job_is_never_resubmitted(fault, made, fake, make_client, tmp_path):
    fake.configure(failures={"create": fault})
    client = make_client()
    with pytest.raises(SubmitOutcomeUnknown, match="not resent"):
        await client.run(request(), provider="inferencesh", output=tmp_path / "out.mp4")
    (row,) = journal(tmp_path / "journal.db")
    if made:
        # the fake made the task before the answer was damaged: `talkinghead jobs resume` finds
        # it in the task list (POST /tasks/list) and follows it to the end; nothing is resent
        result = await make_client().resume(client.ledger.get(row.id), output=tmp_path / "out.mp4")
        assert result.path.exists()
        (row,) = assert_consistent(tmp_path / "journal.db")
        assert row.status == "completed" and row.settled_usd is not None
    else:
        for _ in range(2):  # no task was made: resume says unknown, twice, and sends nothing
            with pytest.raises(SubmitOutcomeUnknown):
                await make_client().resume(client.ledger.get(row.id))
        (row,) = assert_consistent(tmp_path / "journal.db")
        assert (row.status, row.reserved) == ("unknown", True)
    assert len(fake.creates) == 1


# -- webhooks: duplicates, out of order, through the real receiver --------------------------

async def _until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


async def test_duplicate_and_out_of_order_webhooks(fake, make_client, tmp_path):
    """The receiver (``talkinghead serve``: its own client on the shared journal) gets the
    fake's real callback, then duplicates and stale ones; the submitter never follows the job
    itself. The job completes once, is settled once, and nothing moves it back."""
    receiver = make_client()
    with serve_receiver(receiver) as url:
        submitter = make_client(webhook_base=url)
        job = await submitter.submit(request(), provider="inferencesh")
        token = job.webhook_url.rsplit("/", 1)[1]
        await _until(lambda: fake.webhook_deliveries)
        (delivery,) = fake.webhook_deliveries
        assert delivery.get("status_code") == 200, delivery
        await _until(lambda: journal(tmp_path / "journal.db")[0].status == "completed")
        (done,) = assert_consistent(tmp_path / "journal.db")
        before = submitter.ledger.get(job.id).model_dump_json()

        body = json.dumps(delivery["payload"]).encode()
        stale = json.dumps({**delivery["payload"], "status": 7, "output": None}).encode()
        queued = json.dumps({"id": job.task_id, "status": 1}).encode()
        async with httpx.AsyncClient() as http:
            answers = [await http.post(job.webhook_url, content=b, headers={"content-type": "application/json"})
                       for b in (body, body, stale, queued, body)]
        assert [a.status_code for a in answers] == [200] * 5
        assert {a.json()["status"] for a in answers} == {"completed"}
        # and the same straight through the client API, out of order again
        again = await make_client().receive_webhook("inferencesh", token, {}, stale)
        assert again.status.value == "completed"

    (after,) = assert_consistent(tmp_path / "journal.db")
    assert after == done and submitter.ledger.get(job.id).model_dump_json() == before
    assert len(fake.creates) == 1 and len(fake.tasks) == 1
    # the submitter still finishes the job from the journal: no second create, the video arrives
    result = await submitter.finish(submitter.ledger.get(job.id), output=tmp_path / "out.mp4")
    assert result.path.exists() and len(fake.creates) == 1


async def test_webhook_and_stream_racing_to_the_end(fake, make_client, tmp_path):
    """The submitter follows the stream while the receiver applies the fake's callback: both
    reach completed, the reservation is settled to the same cost, once."""
    receiver = make_client()
    with serve_receiver(receiver) as url:
        # Eight creates at once on a loaded machine can outlast the fault tests' 0.5 s read
        # timeout; what races here is the callback and the stream, not the create.
        submitter = make_client(webhook_base=url, timeout=5.0)
        results = await asyncio.gather(*[
            submitter.run(request(prompt=f"race {i}"), provider="inferencesh",
                          output=tmp_path / f"{i}.mp4", timeout=3) for i in range(8)])
        await _until(lambda: len(fake.webhook_deliveries) == 8)
        await _until(lambda: all(r.status == "completed" for r in journal(tmp_path / "journal.db")))
    rows = assert_consistent(tmp_path / "journal.db")
    assert [r.status for r in rows] == ["completed"] * 8
    assert all(d.get("status_code") == 200 for d in fake.webhook_deliveries)
    assert sorted(r.cost_usd for r in results) == sorted(r.settled_usd for r in rows)
    assert len(fake.creates) == 8 and len(fake.tasks) == 8


async def test_a_webhook_resolves_a_job_whose_create_answer_was_lost(fake, make_client, tmp_path):
    """The create's answer is lost (held back past the read timeout) while the fake still runs
    the task and calls back to the job's own URL. The callback names the task; a read with our
    key confirms it, so the job adopts its task and ends completed instead of staying
    ``unknown``: one create, one task, settled."""
    fake.configure(failures={"create": [STALL]}, step_latency=0.0)
    receiver = make_client()
    with serve_receiver(receiver) as url:
        submitter = make_client(webhook_base=url)
        # The callback lands while the create's answer is held back, so when the read times
        # out the submit finds the task already known and returns the job instead of raising.
        job = await submitter.submit(request(), provider="inferencesh")
        assert fake.webhook_deliveries[0].get("status_code") == 200
    (row,) = assert_consistent(tmp_path / "journal.db")
    assert job.task_id == row.task_id == next(iter(fake.tasks))
    assert row.status == "completed" and not row.reserved
    assert len(fake.creates) == 1 and len(fake.tasks) == 1


