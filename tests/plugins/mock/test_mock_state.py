"""The mock's persistent state (``state_dir``): tasks followed across instances and processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time

import pytest

from talkinghead.models import JobStatus
from talkinghead.video import probe_video
from talkinghead_mock import MockProvider, read_calls

from .test_mock_provider import FACE, MP3, WAV, drive, new_job, output_path, prepared, submit


def state(tmp_path, **config) -> MockProvider:
    return MockProvider({"state_dir": tmp_path / "state", **config})


def task_file(tmp_path, task_id: str) -> dict:
    return json.loads((tmp_path / "state" / "tasks" / f"{task_id}.json").read_bytes())


async def test_another_instance_follows_the_task_to_completion(tmp_path):
    a = state(tmp_path)
    job = await submit(a, prepared(image=FACE.read_bytes(), audio=WAV))
    assert job.task_id == "mock-000001"
    assert (await a.poll(job)).progress == 25
    del a  # nothing more from this one: a "new process" takes over

    b = state(tmp_path)
    assert b.tasks == {}
    updates = await drive(b, job)
    assert [u.progress for u in updates] == [50, 75, 100]
    done = updates[-1]
    path = output_path(done)
    assert path.parent == tmp_path / "state" / "outputs" and path.exists()
    assert probe_video(path).has_audio and done.duration_s == pytest.approx(probe_video(path).duration_s, abs=0.1)
    saved = task_file(tmp_path, job.task_id)
    assert saved["status"] == "completed" and saved["output_path"] == str(path)
    assert saved["job_id"] == job.id and saved["step"] == 4 and not saved["cancelled"]
    # the bytes image was copied into the state dir; the audio path is kept by reference
    assert saved["inputs"]["image"]["path"] == str(tmp_path / "state" / "inputs" / "mock-000001-image.jpeg")
    assert saved["inputs"]["audio"]["path"] == str(WAV)
    # a third instance gets the finished answer, and nothing is rendered again
    c = state(tmp_path)
    assert await c.poll(job) == done
    assert c.webhook_body(job.task_id) == b.webhook_body(job.task_id)
    assert len(list((tmp_path / "state" / "outputs").glob("*.mp4"))) == 1
    assert not list((tmp_path / "state").rglob("*.tmp"))  # every write was renamed into place


async def test_text_and_url_requests_survive_a_reload(tmp_path):
    a = state(tmp_path)
    text = await submit(a, prepared(text="y" * 45, mode="pro", aspect_ratio="9:16"))
    url = await submit(a, prepared(image="https://example.com/f.jpg", audio="https://example.com/a.mp3"))
    b = state(tmp_path)
    done_text, done_url = (await drive(b, text))[-1], (await drive(b, url))[-1]
    assert done_text.duration_s == 3.0 and probe_video(output_path(done_text)).height == 640
    assert done_url.duration_s == 5.0
    reloaded = b.tasks[text.task_id].prepared.request
    assert (reloaded.text, reloaded.mode, reloaded.aspect_ratio) == ("y" * 45, "pro", "9:16")


async def test_two_instances_polling_in_turn_share_the_progress(tmp_path):
    a, b = state(tmp_path), state(tmp_path)
    job = await submit(a)
    progress = [(await p.poll(job)).progress for p in (a, b, a, b)]
    assert progress == [25, 50, 75, 100]  # each re-reads what the other wrote


async def test_schedule_and_doom_travel_with_the_task(tmp_path):
    a = state(tmp_path, steps=2, fail="server_error@run:1")
    job = await submit(a)
    b = state(tmp_path)  # default steps, no fail configured: the task's own still apply
    updates = await drive(b, job)
    assert [u.status for u in updates] == [JobStatus.RUNNING, JobStatus.FAILED]
    assert updates[0].progress == 50 and updates[-1].error_kind == "server_error"
    assert task_file(tmp_path, job.task_id)["fail"] == {
        "kind": "server_error", "stage": "run", "after": 1, "times": None}


async def test_latency_runs_in_wall_time_from_submit(tmp_path):
    a = state(tmp_path, latency=0.4, steps=2)
    job = await submit(a)
    b = state(tmp_path)  # no latency of its own: it keeps the first one's schedule
    await asyncio.sleep(0.1)
    start = time.monotonic()
    await b.poll(job)  # step 1 is due 0.2 s after submit, not after this instance began
    first = time.monotonic() - start
    await drive(b, job)
    assert 0.05 < first < 0.18 and time.monotonic() - start >= 0.28


async def test_cancel_from_another_instance(tmp_path):
    a, b = state(tmp_path), state(tmp_path)
    job = await submit(a)
    await a.poll(job)
    await b.cancel(job)
    assert task_file(tmp_path, job.task_id)["cancelled"]
    assert (await a.poll(job)).status is JobStatus.CANCELLED
    assert (await state(tmp_path).poll(job)).status is JobStatus.CANCELLED


async def test_cancel_elsewhere_during_a_latency_wait(tmp_path):
    a = state(tmp_path, latency=0.4, steps=1)
    job = await submit(a)
    polling = asyncio.create_task(a.poll(job))  # sleeps until the step is due
    await asyncio.sleep(0.05)
    await state(tmp_path).cancel(job)
    assert (await polling).status is JobStatus.CANCELLED
    assert not list((tmp_path / "state" / "outputs").glob("*.mp4"))


async def test_ids_are_unique_across_instances(tmp_path):
    a, b = state(tmp_path), state(tmp_path)
    ids = [(await submit(p)).task_id for p in (a, b, a, a, b)]
    assert ids == [f"mock-{n:06d}" for n in range(1, 6)]
    more = await asyncio.gather(*(submit(p) for p in (a, b) * 10))
    ids += [j.task_id for j in more]
    assert len(set(ids)) == len(ids) == 25
    assert (await submit(state(tmp_path))).task_id == "mock-000026"  # a newcomer skips them all
    assert (await submit(MockProvider({"output_dir": tmp_path / "o"}))).task_id == "mock-000001"


async def test_calls_are_logged_across_instances(tmp_path):
    a = state(tmp_path, fail={"kind": "rate_limited", "times": 1})
    with pytest.raises(Exception, match="rate limit"):
        await submit(a, id="j1")
    job = await submit(a, id="j1")
    b = state(tmp_path)
    await b.poll(job)
    await b.cancel(job)
    calls = read_calls(tmp_path / "state")
    assert [(c["method"], c["job_id"], c["task_id"], c.get("error")) for c in calls] == [
        ("submit", "j1", None, "rate_limited"), ("submit", "j1", "mock-000001", None),
        ("poll", "j1", "mock-000001", None), ("cancel", "j1", "mock-000001", None)]
    assert {c["pid"] for c in calls} == {os.getpid()} and calls[0]["time"] <= calls[-1]["time"]
    assert len(read_calls(tmp_path / "state", "submit")) == 2


def test_read_calls_skips_a_line_cut_short(tmp_path):
    (tmp_path / "calls.jsonl").write_text('{"method": "submit"}\n{"method": "po')  # killed mid-line
    assert read_calls(tmp_path) == [{"method": "submit"}]
    assert read_calls(tmp_path / "nowhere") == []


async def test_state_dir_from_env_and_unknown_tasks(tmp_path, monkeypatch):
    monkeypatch.setenv("TALKINGHEAD_MOCK_STATE_DIR", str(tmp_path / "env"))
    p = MockProvider()
    assert p.state_dir == tmp_path / "env" and p.output_dir == tmp_path / "env" / "outputs"
    assert MockProvider({"state_dir": tmp_path / "s", "output_dir": tmp_path / "o"}).output_dir == tmp_path / "o"
    for task_id in ("mock-999999", "../../etc/passwd"):
        update = await p.poll(new_job(task_id=task_id))
        assert update.status is JobStatus.FAILED and update.error_kind == "not_found"
    await p.cancel(new_job(task_id="mock-999999"))  # nothing to cancel: no error
    monkeypatch.delenv("TALKINGHEAD_MOCK_STATE_DIR")
    update = await MockProvider().poll(new_job(task_id="mock-000001"))
    assert "state_dir" in update.error


CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from talkinghead.media import MediaFile, PreparedRequest
    from talkinghead.models import AvatarRequest, Job
    from talkinghead_mock import MockProvider

    state_dir, face, audio = sys.argv[1:4]

    async def main():
        provider = MockProvider({"state_dir": state_dir, "latency": 1.2, "steps": 3})
        prep = PreparedRequest(AvatarRequest(image=face, audio=audio),
                               MediaFile("image", "path", "face.jpg", path=Path(face), format="jpeg"),
                               MediaFile("audio", "path", "a.mp3", path=Path(audio), format="mp3"))
        jobs = [Job(id=f"job{i}", provider="mock", model="mock-avatar") for i in range(3)]
        for job in jobs:
            job.apply(await provider.submit(job, prep))
        print(" ".join(j.task_id for j in jobs), flush=True)
        await asyncio.gather(*(provider.poll(j) for j in jobs))   # step 1, at 0.4 s
        print("stepped", flush=True)
        while True:                                               # the rest, never reached
            await asyncio.gather(*(provider.poll(j) for j in jobs))

    asyncio.run(main())
""")


async def test_a_killed_process_s_jobs_are_finished_by_a_new_one(tmp_path):
    state_dir = tmp_path / "state"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, str(state_dir), str(FACE), str(MP3),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        task_ids = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().split()
        stepped = await asyncio.wait_for(child.stdout.readline(), 30)
    finally:
        child.send_signal(signal.SIGKILL)
        errors = (await child.communicate())[1].decode()
    assert stepped == b"stepped\n", errors
    assert child.returncode == -signal.SIGKILL and len(task_ids) == 3
    on_disk = [task_file(tmp_path, t) for t in task_ids]
    assert all(s["status"] != "completed" and s["step"] >= 1 for s in on_disk)  # killed mid-run

    resumed = MockProvider({"state_dir": state_dir})
    jobs = [new_job(id=f"job{i}", task_id=t, status=JobStatus.RUNNING) for i, t in enumerate(task_ids)]
    finals = await asyncio.gather(*(drive(resumed, j) for j in jobs))
    for job, updates in zip(jobs, finals, strict=True):
        assert updates[-1].status is JobStatus.COMPLETED and output_path(updates[-1]).exists()
        assert updates[-1].message == "completed" and job.output_url == updates[-1].output_url
    submits = read_calls(state_dir, "submit")
    assert len(submits) == 3 and {c["pid"] for c in submits} == {child.pid}
    assert [c["task_id"] for c in submits] == task_ids
    assert {c["pid"] for c in read_calls(state_dir, "poll")} == {child.pid, os.getpid()}
