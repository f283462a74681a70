"""Batch runs and the jobs commands, through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def th(*args, home, env=None):
    full = {**os.environ, "TALKINGHEAD_PLUGINS": "mock", "TALKINGHEAD_HOME": str(home), **(env or {})}
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], capture_output=True, text=True,
                          env=full, timeout=300)


@pytest.fixture
def jobs_file(tmp_path, face, speech):
    path = tmp_path / "jobs.jsonl"
    lines = [json.dumps({"image": str(face), "audio": str(speech), "prompt": f"line {i}",
                         "aspect_ratio": ["16:9", "9:16", "1:1"][i % 3]}) for i in range(20)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_batch_of_20_then_rerun_submits_nothing(tmp_path, jobs_file):
    home = tmp_path / "home"
    proc = th("batch", str(jobs_file), "--concurrency", "4", "--provider", "mock", home=home)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in (tmp_path / "jobs.results.jsonl").read_text().splitlines()]
    assert sorted(r["line"] for r in results) == list(range(1, 21))
    assert all(r["status"] == "completed" and os.path.exists(r["output"]) for r in results)

    again = th("batch", str(jobs_file), "--concurrency", "4", "--provider", "mock", home=home)
    assert again.returncode == 0, again.stderr
    rerun = [json.loads(line) for line in (tmp_path / "jobs.results.jsonl").read_text().splitlines()]
    assert {r["status"] for r in rerun} == {"skipped"}
    assert {r["job_id"] for r in rerun} == {r["job_id"] for r in results}

    listing = th("jobs", "list", "--json", home=home)
    jobs = [json.loads(line) for line in listing.stdout.splitlines()]
    assert len(jobs) == 20 and all(j["settled_usd"] > 0 for j in jobs)  # every job, with its cost
    table = th("jobs", "list", home=home).stdout.splitlines()
    assert len(table) == 20 and all("completed" in row and "$0.0694" in row for row in table)


def test_batch_budget_and_invalid_lines(tmp_path, face, speech):
    path = tmp_path / "b.jsonl"
    good = json.dumps({"image": str(face), "audio": str(speech)})
    path.write_text("\n".join([good, good.replace("}", ', "prompt": "x"}'), '{"image": 1', '{"colour": "red"}']))
    proc = th("batch", str(path), "--budget", "0.1", "--concurrency", "1", "--provider", "mock", home=tmp_path / "h")
    results = {r["line"]: r for r in map(json.loads, (tmp_path / "b.results.jsonl").read_text().splitlines())}
    assert results[1]["status"] == "completed"
    assert results[2]["status"] == "budget" and "budget" in results[2]["error"]
    assert results[3]["status"] == "invalid" and "line 3" in results[3]["error"]
    assert results[4]["status"] == "invalid" and "colour" in results[4]["error"]
    assert proc.returncode == 3


def test_jobs_show_cancel_and_budget(tmp_path, face, speech):
    home = tmp_path / "home"
    env = {"TALKINGHEAD_MOCK_FAIL": "timeout@run"}
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech), "--timeout", "0.5",
              "--json", home=home, env=env)
    assert proc.returncode == 4 and "did not finish" in proc.stderr
    (job,) = [json.loads(line) for line in th("jobs", "list", "--json", home=home).stdout.splitlines()]
    assert job["status"] == "running"
    shown = json.loads(th("jobs", "show", job["id"][:10], home=home).stdout)
    assert shown["task_id"] == job["task_id"]
    budget = json.loads(th("budget", "--json", home=home).stdout)
    assert budget["reserved_usd"] == pytest.approx(0.0694)
    missing = th("jobs", "show", "nosuchjob", home=home)
    assert missing.returncode == 2 and "nosuchjob" in missing.stderr
