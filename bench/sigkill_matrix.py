"""The SIGKILL matrix: a real ``talkinghead generate`` process against the loopback fake
inference.sh server, killed with SIGKILL at each step of a job's life, then a real
``talkinghead jobs resume``; each kill point is run ``--runs`` times (default 3).

Kill points, each detected from outside the process (the fake's request record, the journal
on disk, the results folder), so the client runs unmodified:

    before upload          POST /files received (its answer held back): nothing uploaded yet
    during upload          the upload PUT received (its answer held back)
    between upload and     the second upload answered: killed at once, before or after the
      create               create mark (whichever the process had reached)
    during create          POST /apps/run received (its answer held back): the task exists
    right after create     the journal has the task id
    during the wait        the journal says running
    during the download    the result GET received (its answer held back)
    after the download,    the video is in $TALKINGHEAD_HOME/results, the journal not yet
      before the journal     written: killed at once

Printed per kill point, and in total: recovered by ``jobs resume`` alone (the video where it
was asked for, resume exit 0), needing a person (left ``unknown``/``lost``: the create may have
been billed and cannot be looked up on inference.sh), second creates (more than one create for
one request: must be 0), lost paid videos (a task the backend made whose video is neither on
disk nor journaled as needing a person: must be 0), and ``.part`` files left anywhere after
the resume (must be 0).

    .venv/bin/python bench/sigkill_matrix.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FACE, MP3 = ROOT / "examples" / "face.jpg", ROOT / "examples" / "hello.mp3"
KEY = "sigkill-matrix-key-0123456789"
STALL = 3  # talkinghead_inferencesh.fake_faults.STALL: the request is handled, its answer held back


def _rows(db: Path) -> list[dict]:
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM jobs")]
    except sqlite3.Error:
        return []


def kill_points(fake) -> dict[str, tuple[dict, Callable[[Path], bool]]]:
    """name -> (fake switches, when to kill: a check on the home folder)."""
    def seen(endpoint: str, n: int = 1) -> Callable[[Path], bool]:
        return lambda home: len(fake.requests_to(endpoint)) >= n

    def journal(pred: Callable[[dict], bool]) -> Callable[[Path], bool]:
        return lambda home: any(pred(r) for r in _rows(home / "talkinghead.db"))

    def uploads_answered(home: Path) -> bool:
        return len(fake.uploaded()) >= 2

    def in_results(home: Path) -> bool:
        folder = home / "results"
        return folder.exists() and any(p.suffix == ".mp4" for p in folder.iterdir())

    slow = {"step_latency": 0.4}
    return {
        "before upload": ({"failures": {"files": [STALL]}}, seen("files")),
        "during upload": ({"failures": {"upload": [STALL]}}, seen("upload")),
        "between upload and create": ({}, uploads_answered),
        "during create": ({"failures": {"create": [STALL]}}, seen("create")),
        "right after create": (slow, journal(lambda r: bool(r["task_id"]))),
        "during the wait": (slow, journal(lambda r: r["status"] == "running")),
        "during the download": ({"failures": {"output": [STALL]}}, seen("output")),
        "after download, before the journal": ({}, in_results),
    }


def one(fake, name: str, switches: dict, ready: Callable[[Path], bool], work: Path) -> dict:
    home, dest = work / "home", work / "out" / "video.mp4"
    env = {**os.environ, "TALKINGHEAD_HOME": str(home), "TALKINGHEAD_PLUGINS": "inferencesh",
           "INFERENCE_API_KEY": KEY, "INFERENCE_BASE_URL": fake.url}
    fake.reset(step_latency=0.05, stall_seconds=30, send_webhooks=False)
    fake.configure(**switches)
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead.cli", "generate", "--provider", "inferencesh",
                             "--image", str(FACE), "--audio", str(MP3), "--prompt", name, "-o", str(dest)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not ready(home) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    fake.configure(failures={}, stall_seconds=5)
    resume = subprocess.run([sys.executable, "-m", "talkinghead.cli", "jobs", "resume", "--timeout", "60"],
                            env=env, capture_output=True, text=True, timeout=180)
    rows = _rows(home / "talkinghead.db")
    person = [r for r in rows if r["status"] in ("unknown", "lost")]
    creates = len(fake.creates)
    by_task = {r["task_id"]: r for r in rows if r["task_id"]}
    lost = 0
    for task in list(fake.tasks.values()):  # every task the backend made may be billed
        row = by_task.get(task.id)
        if row is None:
            lost += 0 if person else 1  # no record at all, and nothing flagged for a person
        elif row["status"] == "completed":
            path = json.loads(row["data"]).get("output_path")
            lost += 0 if path and Path(path).is_file() else 1
    recovered = resume.returncode == 0 and dest.is_file() and not person
    parts = [p for p in (*home.rglob("*.part"), *dest.parent.glob("*.part")) if p.is_file()]
    return {"killed": killed, "recovered": recovered, "person": len(person), "second_creates": max(0, creates - 1),
            "lost": lost, "parts": len(parts), "resume_exit": resume.returncode, "tasks": len(fake.tasks)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", help="Comma-separated kill points (default: all).")
    args = parser.parse_args()

    from talkinghead.testing.loopback import tiny_mp4
    from talkinghead_inferencesh.fake import FakeInferenceSh, serve

    totals = {"runs": 0, "recovered": 0, "person": 0, "second_creates": 0, "lost": 0, "parts": 0}
    started = time.monotonic()
    with serve(FakeInferenceSh(video=tiny_mp4(), api_key=KEY)) as fake:
        print(f"{'kill point':<38}{'runs':>5}{'killed':>8}{'recovered':>11}{'person':>8}"
              f"{'2nd creates':>13}{'lost':>6}{'.part left':>12}")
        points = kill_points(fake)
        chosen = [p.strip() for p in args.only.split(",")] if args.only else list(points)
        for name in chosen:
            switches, ready = points[name]
            row = {"runs": 0, "killed": 0, "recovered": 0, "person": 0, "second_creates": 0, "lost": 0, "parts": 0}
            for _ in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="sigkill-") as tmp:
                    got = one(fake, name, switches, ready, Path(tmp))
                row["runs"] += 1
                for key in ("killed", "recovered", "second_creates", "lost", "parts"):
                    row[key] += int(got[key])
                row["person"] += int(got["person"] > 0)
            for key in totals:
                totals[key] += row[key]
            print(f"{name:<38}{row['runs']:>5}{row['killed']:>8}{row['recovered']:>11}{row['person']:>8}"
                  f"{row['second_creates']:>13}{row['lost']:>6}{row['parts']:>12}", flush=True)
    print(f"total: {totals['runs']} kills in {time.monotonic() - started:.0f} s: recovered by jobs resume alone "
          f"{totals['recovered']}, needing a person {totals['person']}, second creates {totals['second_creates']}, "
          f"lost paid videos {totals['lost']}, .part files left {totals['parts']}")
    if totals["second_creates"] or totals["lost"] or totals["parts"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
