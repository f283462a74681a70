"""The journal's promise under the faults of issue #11: a paid result is never lost and never
bought twice. Each test drives the loopback fake inference.sh server, a real SQLite journal,
and (where the user would) the real CLI in a subprocess sharing that journal."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from talkinghead import AsyncClient
from talkinghead.config import Settings
from talkinghead.errors import DownloadError, JobFailed, ResultExpired, SubmitOutcomeUnknown, WebhookRejected
from talkinghead.models import JobStatus
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import STALL

from .conftest import FACE, FAST, KEY, MP3, request
from .proxy import TcpProxy


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("TALKINGHEAD_HOME", str(path))
    return path


@pytest.fixture
def env(home, fake) -> dict[str, str]:
    """The CLI's environment: the same journal as ``client()``, the inference.sh plugin only."""
    return {**os.environ, "TALKINGHEAD_HOME": str(home), "TALKINGHEAD_PLUGINS": "inferencesh",
            "INFERENCE_API_KEY": KEY, "INFERENCE_BASE_URL": fake.url}


def th(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
async def client(home, fake):
    """``client(**provider_config)``: an ``AsyncClient`` journaling where the CLI does. A new
    one on the same journal is what a process started after a crash would be."""
    made: list[AsyncClient] = []

    def make(**config) -> AsyncClient:
        provider = InferenceShProvider({**FAST, "base_url": fake.url, **config})
        made.append(AsyncClient(providers=[provider], settings=Settings.load(), timeout=20))
        return made[-1]

    yield make
    for c in made:
        await c.aclose()


def rows(home: Path) -> list[dict]:
    with sqlite3.connect(home / "talkinghead.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM jobs ORDER BY created_at, id")]


def part_files(*folders: Path) -> list[Path]:
    return [p for folder in folders if folder.exists() for p in folder.rglob("*.part")]


async def test_expired_download_is_kept_resumable_and_resume_fetches_it(client, fake, env, home, tmp_path,
                                                                       video_bytes):
    fake.configure(failures={"output": [403]})
    out = tmp_path / "out" / "video.mp4"
    with pytest.raises(ResultExpired) as info:
        await client().run(request(prompt="expired"), provider="inferencesh", output=out)
    assert "expired" in str(info.value) and "paid" in str(info.value)
    assert not out.exists() and part_files(tmp_path) == []  # no 0-byte .part anywhere
    (row,) = rows(home)
    assert row["status"] == "completed" and row["settled_usd"] > 0

    shown = th(env, "jobs", "show", row["id"])
    assert json.loads(shown.stdout)["next_step"] == "fetch"
    resumed = th(env, "jobs", "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.strip() == f"{row['id']} completed {out.resolve()}"
    assert out.read_bytes() == video_bytes and part_files(tmp_path) == []
    assert len(fake.creates) == 1
    again = th(env, "jobs", "resume")
    assert again.returncode == 0 and "no unfinished jobs" in again.stderr and len(fake.creates) == 1


async def test_unwritable_destination_keeps_the_paid_video(client, fake, home, tmp_path, video_bytes):
    # The destination is checked before paying, so it breaks while the job runs: the folder
    # is replaced by a file between the submit and the download.
    folder = tmp_path / "videos"
    folder.mkdir()
    c = client()
    job = await c.submit(request(prompt="unwritable"), provider="inferencesh", output=folder / "video.mp4")
    folder.rmdir()
    folder.write_text("a file where a folder was expected")
    with pytest.raises(DownloadError) as info:
        await c.finish(job, output=folder / "video.mp4")
    kept = home / "results"
    (row,) = rows(home)
    path = json.loads(row["data"])["output_path"]
    assert path == str((kept / f"{row['id']}.mp4").resolve()) and path in str(info.value)
    assert Path(path).read_bytes() == video_bytes and row["status"] == "completed"


def test_batch_rerun_fetches_and_never_buys_again(fake, env, home, tmp_path, video_bytes):
    lines = [json.dumps({"image": str(FACE), "audio": str(MP3), "prompt": f"batch {i}", "provider": "inferencesh"})
             for i in range(2)]
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("\n".join(lines) + "\n")
    fake.configure(failures={"output": [403, 403]})
    first = th(env, "batch", str(jobs_file))
    assert first.returncode == 4, first.stderr
    assert len(fake.creates) == 2 and part_files(tmp_path) == []
    second = th(env, "batch", str(jobs_file))
    assert second.returncode == 0, second.stderr
    results = [json.loads(x) for x in (tmp_path / "jobs.results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in results} == {"completed"}
    assert all(Path(r["output"]).read_bytes() == video_bytes for r in results)
    assert len(fake.creates) == 2  # the rerun fetched: nothing bought again
    assert th(env, "batch", str(jobs_file)).returncode == 0 and len(fake.creates) == 2


async def test_a_3_second_outage_does_not_end_the_wait(client, fake, home, tmp_path, video_bytes):
    fake.configure(step_latency=0.8)  # about 3.2 s to complete
    with TcpProxy(fake.url) as proxy:
        c = client(base_url=proxy.url)
        job = await c.submit(request(prompt="outage"), provider="inferencesh")
        proxy.down()

        async def restore():
            await asyncio.sleep(3.0)
            proxy.up()
        back = asyncio.create_task(restore())
        result = await c.finish(job, output=tmp_path / "v.mp4", timeout=30)
        await back
    assert result.path.read_bytes() == video_bytes and proxy.outages == 1
    assert len(fake.creates) == 1


async def test_task_the_backend_forgot_needs_a_person_and_resolve_releases_it(client, fake, env, home):
    fake.configure(step_latency=0.5)
    c = client()
    job = await c.submit(request(prompt="forgotten"), provider="inferencesh")
    del fake.tasks[job.task_id]
    with pytest.raises(JobFailed) as info:
        await c.wait(job, timeout=10)
    assert "no longer knows" in str(info.value) and info.value.kind == "not_found"
    (row,) = rows(home)
    assert row["status"] == "lost" and row["settled_usd"] is None

    resumed = th(env, "jobs", "resume")
    assert resumed.returncode == 4 and "needs a person" in resumed.stderr and "lost" in resumed.stderr
    cancelled = th(env, "jobs", "cancel", job.id)
    assert cancelled.returncode == 4 and "jobs resolve" in cancelled.stderr
    released = th(env, "jobs", "resolve", job.id, "--release")
    assert released.returncode == 0, released.stderr
    budget = json.loads(th(env, "budget", "--json").stdout)
    assert budget["reserved_usd"] == 0 and budget["spent_usd"] == 0
    assert th(env, "jobs", "resume").returncode == 0


async def test_killed_during_upload_is_created_by_resume(client, fake, home, tmp_path, video_bytes):
    """Killed before the create mark: nothing can exist at the backend, so resume uploads and
    creates it (once); the reservation was held meanwhile."""
    fake.configure(failures={"upload": [STALL]}, stall_seconds=5)
    c = client(upload_timeout=10)
    submit = asyncio.create_task(c.submit(request(prompt="killed in upload"), provider="inferencesh"))
    while not fake.requests_to("upload"):
        await asyncio.sleep(0.01)
    submit.cancel()  # the process dies mid-upload
    with pytest.raises(asyncio.CancelledError):
        await submit
    (row,) = rows(home)
    assert row["status"] == "created" and json.loads(row["data"])["create_sent_at"] is None
    fake.configure(failures={})
    fresh = client()
    job = fresh.ledger.get(row["id"])
    result = await fresh.resume(job, output=tmp_path / "v.mp4")
    assert result.path.read_bytes() == video_bytes and len(fake.creates) == 1


@pytest.mark.parametrize("task_list", ["served", "absent"])
async def test_killed_during_create_is_looked_up_or_needs_a_person(client, fake, env, home, task_list):
    """Killed after the create mark, before its answer: resume looks the task up (inference.sh's
    task list) and finishes it; where the server has no task list, the job is ``unknown`` and
    resume exits 4 naming it. Never a second create."""
    fake.configure(failures={"create": [STALL]}, stall_seconds=3)
    c = client(timeout=10)
    submit = asyncio.create_task(c.submit(request(prompt="killed in create"), provider="inferencesh"))
    while not fake.creates:
        await asyncio.sleep(0.01)
    submit.cancel()
    with pytest.raises(asyncio.CancelledError):
        await submit
    (row,) = rows(home)
    assert json.loads(row["data"])["create_sent_at"] is not None and row["task_id"] is None
    if task_list == "absent":
        fake.configure(failures={"list": [404] * 4})
    resumed = th(env, "jobs", "resume")
    if task_list == "served":
        assert resumed.returncode == 0, resumed.stderr
        assert rows(home)[0]["status"] == "completed" and len(fake.creates) == 1
        return
    assert resumed.returncode == 4, resumed.stderr
    assert "needs a person" in resumed.stderr and row["id"] in resumed.stderr
    assert rows(home)[0]["status"] == "unknown" and len(fake.creates) == 1


async def test_webhook_naming_another_jobs_task_is_refused(client, fake, home):
    """An ``unknown`` job's own callback URL (valid token) naming a task that another job owns:
    refused with 409, the journal untouched; its own task is still adopted afterwards."""
    fake.configure(send_webhooks=False)  # callbacks are delivered by hand below
    c = client()
    c.webhook_base = "http://127.0.0.1:9"
    await c.run(request(prompt="owner"), provider="inferencesh", output=home / "a.mp4")
    fake.configure(failures={"create": [STALL]}, stall_seconds=1.0)
    with pytest.raises(SubmitOutcomeUnknown):
        await c.submit(request(prompt="orphan"), provider="inferencesh")
    orphan = next(t for t in fake.tasks.values() if t.input.get("prompt") == "orphan")
    owner = next(t for t in fake.tasks.values() if t.input.get("prompt") == "owner")
    token = orphan.webhook.rsplit("/", 1)[1]
    before = rows(home)
    forged = json.dumps({"id": owner.id, "status": 10}).encode()
    with pytest.raises(WebhookRejected) as info:
        await c.receive_webhook("inferencesh", token, {}, forged)
    assert info.value.status_code == 409 and rows(home) == before
    genuine = json.dumps({"id": orphan.id, "status": 10}).encode()
    job = await c.receive_webhook("inferencesh", token, {}, genuine)
    assert job.task_id == orphan.id and job.status is JobStatus.COMPLETED
    assert {r["task_id"] for r in rows(home)} == {owner.id, orphan.id}


def test_settled_above_the_quote_is_loud_and_counted(fake, env, home, tmp_path):
    fake.configure(output_seconds=20.0)  # billed 20 s for a clip quoted at its 6.9 s of audio
    budget_env = {**env, "TALKINGHEAD_BUDGET_USD": "1.5"}
    args = ("generate", "--provider", "inferencesh", "--image", str(FACE), "--audio", str(MP3))
    first = th(budget_env, *args, "--output", str(tmp_path / "a.mp4"))
    assert first.returncode == 0, first.stderr
    assert "warning:" in first.stderr and "above its quote" in first.stderr
    (row,) = rows(home)
    show = json.loads(th(env, "jobs", "show", row["id"]).stdout)
    assert show["costs"]["settled_usd"] == pytest.approx(20 * 0.056)
    assert show["costs"]["over_quote_usd"] == pytest.approx(20 * 0.056 - show["costs"]["quote_usd"], abs=1e-4)
    budget = th(env, "budget")
    assert "overrun $" in budget.stdout
    second = th(budget_env, *args, "--output", str(tmp_path / "b.mp4"))
    assert second.returncode == 3 and "budget" in second.stderr  # 1.12 spent: 0.386 no longer fits
    assert len(fake.creates) == 1


def test_ambiguous_or_wildcard_prefixes_are_refused(env, home):
    from talkinghead.ledger import SQLiteLedger
    from talkinghead.models import Job

    ledger = SQLiteLedger(home / "talkinghead.db")
    for suffix in ("1", "2"):
        ledger.open(Job(id=f"jabcdef{suffix}", provider="inferencesh", model="kling-avatar"))
    ledger.open(Job(id="jxyzxyz1", provider="inferencesh", model="kling-avatar"))
    ambiguous = th(env, "jobs", "show", "jabcdef")
    assert ambiguous.returncode == 2 and "start of 2 job ids" in ambiguous.stderr
    wildcard = th(env, "jobs", "show", "jxy_xyz")  # "_" is not a wildcard
    assert wildcard.returncode == 2 and "no job" in wildcard.stderr
    assert th(env, "jobs", "show", "jabcdef2").returncode == 0


async def test_resolve_covers_every_state_needing_a_person(client, fake, env, home):
    """``--settle`` a lost task the dashboard shows as charged; ``--task-id`` refuses a task
    another job owns; ``--forget-video`` stops fetching a result that expired for good."""
    fake.configure(step_latency=0.3)
    c = client()
    first = await c.submit(request(prompt="charged then forgotten"), provider="inferencesh")
    del fake.tasks[first.task_id]
    with pytest.raises(JobFailed):
        await c.wait(first, timeout=10)
    fake.configure(step_latency=0.0, failures={"output": [410]})
    second = await c.submit(request(prompt="expired for good"), provider="inferencesh")
    with pytest.raises(ResultExpired):
        await c.finish(second, timeout=10)

    taken = th(env, "jobs", "resolve", first.id, "--task-id", second.task_id)
    assert taken.returncode == 2 and "already belongs to job" in taken.stderr
    settled = th(env, "jobs", "resolve", first.id, "--settle", "0.25")
    assert settled.returncode == 0, settled.stderr
    fake.configure(failures={"output": [410]})
    assert th(env, "jobs", "resume", "--timeout", "5").returncode == 4  # the expired result: 410 again
    forgot = th(env, "jobs", "resolve", second.id, "--forget-video")
    assert forgot.returncode == 0, forgot.stderr
    done = th(env, "jobs", "resume")
    assert done.returncode == 0 and "no unfinished jobs" in done.stderr
    budget = json.loads(th(env, "budget", "--json").stdout)
    assert budget["reserved_usd"] == 0
    assert budget["spent_usd"] == pytest.approx(0.25 + second.settled_usd)
    assert len(fake.creates) == 2


def test_batch_rerun_after_an_unwritable_destination_delivers_without_buying(fake, env, home, tmp_path, video_bytes):
    # The destination is checked before paying, so it breaks while the line runs: once the
    # task is created, its folder is replaced by a file.
    import time

    fake.configure(step_latency=0.3)
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text(json.dumps({"image": str(FACE), "audio": str(MP3), "prompt": "blocked",
                                     "provider": "inferencesh", "output": str(blocker / "v.mp4")}) + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", "batch", str(jobs_file)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not fake.creates and time.monotonic() < deadline:
        time.sleep(0.02)
    blocker.rmdir()
    blocker.write_text("a file where the output folder should be")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 4, err
    (line,) = [json.loads(x) for x in (tmp_path / "jobs.results.jsonl").read_text().splitlines()]
    assert "kept at" in line["error"] and Path(line["output"]).read_bytes() == video_bytes
    blocker.unlink()
    second = th(env, "batch", str(jobs_file))
    assert second.returncode == 0, second.stderr
    assert (blocker / "v.mp4").read_bytes() == video_bytes and len(fake.creates) == 1
