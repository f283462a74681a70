"""The job queue on a real PostgreSQL: batch --queue, talkinghead worker, a worker killed mid-job."""

from __future__ import annotations

import json
import signal
import time

import pytest

from talkinghead.ledger import connect
from tests.fleet_kit import Fleet, stop, wait_for


@pytest.fixture
def fleet(pg_cluster, tmp_path, request):
    url = pg_cluster.create_database(f"q_{request.node.name.lower()[:40]}")
    return Fleet(tmp_path / "home", url, latency=getattr(request, "param", 0.0))


def test_enqueue_is_idempotent_and_a_worker_runs_each_line_once(fleet):
    jobs = fleet.jobs_file(8)
    first = fleet.enqueue(jobs)
    assert first.returncode == 0, first.stderr
    assert "queued 8  already queued 0" in first.stderr
    again = fleet.enqueue(jobs)
    assert "queued 0  already queued 8" in again.stderr and fleet.queue_counts() == {"todo": 8}

    done = fleet.run("worker", "--concurrency", "3", "--until-idle")
    assert done.returncode == 0, done.stderr
    assert fleet.queue_counts() == {"succeeded": 8}
    ledger = connect(fleet.url)
    try:
        assert fleet.audit(ledger) == {"jobs": 8, "completed": 8, "second_creates": 0, "requests_run_twice": 0,
                                       "lost_videos": 0, "creates": 8}
    finally:
        ledger.close_connections()  # no pool threads left behind, whatever happened
    listed = fleet.run("jobs", "list", "--json")
    workers = {json.loads(line)["worker"] for line in listed.stdout.splitlines()}
    assert workers == {done.stderr.split("worker ", 1)[1].split()[0]}  # the host:pid the worker announced

    # Done lines are not queued again; the queue holds nothing new.
    third = fleet.enqueue(jobs)
    assert "queued 0  already queued 0  done 8" in third.stderr and fleet.queue_counts() == {"succeeded": 8}


def test_queue_input_errors_exit_2_before_anything_is_queued(fleet, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "x.jpg", "audio": "y.mp3", "colour": "red"}\n')
    proc = fleet.enqueue(bad)
    assert proc.returncode == 2 and "unknown field(s) colour" in proc.stdout
    budget = fleet.run("batch", str(bad), "--queue", "--budget", "1")
    assert budget.returncode == 2 and budget.stderr.startswith("error: --budget:")
    no_db = Fleet(tmp_path / "lite", None).run("batch", str(bad), "--queue")
    assert no_db.returncode == 2 and "set TALKINGHEAD_DATABASE_URL" in no_db.stderr


@pytest.mark.parametrize("fleet", [1.5], indirect=True)  # mock latency: jobs stay in flight a while
def test_a_worker_killed_mid_job_is_resumed_elsewhere_never_created_twice(fleet):
    jobs = fleet.jobs_file(12)
    assert fleet.enqueue(jobs).returncode == 0
    workers = [fleet.worker(concurrency=3, stalled_after=2) for _ in range(3)]
    ledger = connect(fleet.url)
    try:
        def holder():  # a worker holding a submitted job: the one to kill
            held = {j.id: w for j in ledger.unfinished() if j.task_id
                    for w in [ledger.workers([j.id]).get(j.id)] if w}
            pids = {int(w.rsplit(":", 1)[1]) for w in held.values()}
            return next((w for w in workers if w.pid in pids), None)

        victim = wait_for(holder, 120)
        assert victim is not None, "no worker ever held a job"
        in_flight = [j.id for j in ledger.unfinished() if ledger.workers([j.id]).get(j.id, "").endswith(
            f":{victim.pid}")]
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        counts = fleet.wait_queue_drained(timeout=240, workers=workers)
        assert counts == {"succeeded": 12}
        audit = fleet.audit(ledger)
        assert audit == {"jobs": 12, "completed": 12, "second_creates": 0, "requests_run_twice": 0,
                         "lost_videos": 0, "creates": 12}
        survivors = {f":{w.pid}" for w in workers if w is not victim}
        held_after = ledger.workers(in_flight)
        assert in_flight and all(held_after[j].endswith(tuple(survivors)) for j in in_flight)
    finally:
        ledger.close_connections()  # also when an assertion failed: no pool threads left behind
        stop(workers)


def test_a_job_whose_worker_died_before_the_create_is_released_and_run_once(fleet):
    """The window a kill can hit: the job is journaled and reserved, the create not yet sent.
    The mock's lookup by job id is authoritative (a shared state dir), so the next worker finds
    no task, releases the reservation and runs the line anew: one create in all."""
    from talkinghead.batch import parse_line
    from talkinghead.models import Job

    jobs = fleet.jobs_file(2)
    request, _ = parse_line(1, jobs.read_text().splitlines()[0], jobs.parent)
    ledger = connect(fleet.url)
    orphan = Job(provider="mock", model="mock-avatar", request_digest=request.digest(), reserved_usd=0.0694)
    orphan.create_sent_at = orphan.created_at  # marked as sent: only the backend can say if it arrived
    ledger.worker = "gone-host:1"
    ledger.open(orphan)
    assert fleet.enqueue(jobs).returncode == 0
    assert fleet.run("worker", "--until-idle").returncode == 0
    assert fleet.queue_counts() == {"succeeded": 2}
    released = ledger.get(orphan.id)
    assert (released.status.value, released.settled_usd) == ("failed", 0.0) and "not created" in released.error
    audit = fleet.audit(ledger)
    assert (audit["completed"], audit["creates"], audit["second_creates"], audit["requests_run_twice"]) == (2, 2, 0, 0)
    assert ledger.totals()["reserved_usd"] == 0
    ledger.close_connections()


@pytest.mark.parametrize("fleet", [1.0], indirect=True)
def test_a_worker_wrongly_thought_dead_never_runs_a_line_twice(fleet):
    """SIGSTOP a worker past --stalled-after (alive, silent: what a loaded host looks like), so
    its tasks are re-queued while it still holds them; then let it go on. The request's session
    lock keeps each line to one runner: one job and one create per line."""
    jobs = fleet.jobs_file(10)
    assert fleet.enqueue(jobs).returncode == 0
    workers = [fleet.worker(concurrency=4, stalled_after=1) for _ in range(2)]
    ledger = connect(fleet.url)
    try:
        def holding_worker():
            held = ledger.workers([j.id for j in ledger.jobs()]).values()
            return next((w for w in workers if any(f":{w.pid}" in v for v in held)), None)

        paused = wait_for(holding_worker, 120)
        assert paused is not None, "no worker ever held a job"
        paused.send_signal(signal.SIGSTOP)
        # Well past --stalled-after (1 s; the reaper looks every 0.5 s): the other worker
        # re-queues the paused one's tasks. (A re-queued task counts as run twice only once it
        # has run again, so there is nothing to wait on while the worker is paused.)
        time.sleep(6)
        paused.send_signal(signal.SIGCONT)
        assert fleet.wait_queue_drained(timeout=240, workers=workers) == {"succeeded": 10}
        audit = fleet.audit(ledger)
        assert (audit["jobs"], audit["completed"], audit["creates"], audit["requests_run_twice"]) == (10, 10, 10, 0)
        assert fleet.requeued() >= 1  # the paused worker's tasks did run a second time
    finally:
        ledger.close_connections()
        stop(workers)
