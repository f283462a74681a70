"""The job lifecycle's states after a crash (``next_step``), Ctrl-C during a local render, and
the sync client's loop shutdown."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime

from talkinghead import AvatarRequest, Client
from talkinghead.lifecycle import Step, next_step
from talkinghead.models import Job, JobStatus


def job(status: JobStatus, **fields) -> Job:
    return Job(provider="p", model="m", status=status, **fields)


def test_every_state_has_one_resume_action(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    sent = datetime.now(UTC)
    table = [
        (job(JobStatus.CREATED), Step.CREATE),
        (job(JobStatus.CREATED, create_sent_at=sent), Step.LOOK_UP),
        (job(JobStatus.UNKNOWN, create_sent_at=sent), Step.LOOK_UP),
        (job(JobStatus.QUEUED, task_id="t"), Step.FOLLOW),
        (job(JobStatus.RUNNING, task_id="t"), Step.FOLLOW),
        (job(JobStatus.LOST, task_id="t"), Step.PERSON),
        (job(JobStatus.COMPLETED, task_id="t", output_url="http://x/v.mp4"), Step.FETCH),
        (job(JobStatus.COMPLETED, task_id="t", output_url="http://x/v.mp4", output_path=str(tmp_path / "gone.mp4")),
         Step.FETCH),
        (job(JobStatus.COMPLETED, task_id="t", output_url="http://x/v.mp4", output_path=str(video)), Step.NONE),
        (job(JobStatus.COMPLETED, task_id="t", output_url=None), Step.NONE),  # jobs resolve --forget-video
        (job(JobStatus.FAILED, task_id="t"), Step.NONE),
        (job(JobStatus.CANCELLED, task_id="t"), Step.NONE),
    ]
    for j, step in table:
        assert next_step(j) is step, (j.status, step)


def _status(db):
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT id, status, settled_usd FROM jobs").fetchall()
    return rows


def test_ctrl_c_during_a_local_render_ends_the_job_cancelled(tmp_path, face, speech):
    home = tmp_path / "home"
    env = {**os.environ, "TALKINGHEAD_HOME": str(home), "TALKINGHEAD_PLUGINS": "local"}
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", "generate", "--provider", "local",
                             "--image", str(face), "--audio", str(speech), "-o", str(tmp_path / "v.mp4")],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = home / "talkinghead.db"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT status FROM jobs").fetchone()
        except sqlite3.Error:  # not created yet
            row = None
        if row and row[0] in ("queued", "running"):
            break
        time.sleep(0.05)
    time.sleep(0.3)  # inside the render
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    (row,) = _status(db)
    assert row[1] == "cancelled" and row[2] == 0, row
    assert not (tmp_path / "v.mp4").exists()


def test_sync_client_close_finishes_async_generators(tmp_path, face, speech, monkeypatch):
    """A stream left open on the client's loop is finalized by ``close`` (shutdown_asyncgens),
    not left for Python to report as a destroyed pending task at exit."""
    monkeypatch.setenv("TALKINGHEAD_HOME", str(tmp_path / "home"))
    from talkinghead_mock import MockProvider

    client = Client(providers=[MockProvider({"latency": 5, "steps": 5})])
    submitted = client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
    updates = client.stream(submitted)
    next(updates)  # suspended mid-stream, never closed by its user
    agen = updates.gi_frame.f_locals["agen"]
    assert agen.ag_frame is not None
    client.close()
    assert agen.ag_frame is None  # closed on its own loop before the loop stopped


def test_sync_client_script_exits_without_destroyed_task_warnings(tmp_path, face, speech):
    script = (
        "import sys\nfrom talkinghead import Client, AvatarRequest\n"
        "from talkinghead_mock import MockProvider\n"
        "c = Client(providers=[MockProvider({'latency': 0.3, 'steps': 3})])\n"
        "job = c.submit(AvatarRequest(image=sys.argv[1], audio=sys.argv[2]), provider='mock')\n"
        "it = c.stream(job)\nnext(it)\n"
        "c.wait(job)\nc.close()\nprint(job.status.value)\n")
    env = {**os.environ, "TALKINGHEAD_HOME": str(tmp_path / "home"), "PYTHONASYNCIODEBUG": "0"}
    proc = subprocess.run([sys.executable, "-c", script, str(face), str(speech)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "completed", proc.stderr
    assert "Task was destroyed" not in proc.stderr and "was never awaited" not in proc.stderr
