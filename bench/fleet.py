"""Fleet figures on PostgreSQL (and SQLite where it compares), printed in one run:

- budget race: 4 queue workers + 4 generate processes (``client.run`` loops, what ``talkinghead
  generate`` does) on one PostgreSQL, 400 mock jobs, a total limit that fits exactly 150; then
  4 generate processes on one SQLite file, same jobs and limit. Spent <= limit, exactly 150
  completed, 0 duplicate creates.
- throughput: N mock jobs through the queue with 1, 2 and 4 workers: jobs/s, and ledger and
  queue statements per job (from pg_stat_statements).
- the reservation path (``Ledger.open`` with total, daily, provider and session limits): median
  and p95 on PostgreSQL over loopback, and on SQLite.
- kill test: SIGKILL one of 3 workers mid-batch, 3 times: every job completes once, 0 second
  creates, 0 lost videos.

    python bench/fleet.py                      # the figures in docs/fleet.md
    python bench/fleet.py --quick              # smaller sizes: a smoke test, not figures
    python bench/fleet.py --throughput-jobs 300 --workers 1,2 ...   # any size

A throwaway PostgreSQL cluster is started from /usr/lib/postgresql/<version>/bin (fsync on) and
removed afterwards. The mock renders a real (64 px) MP4 per job, so the machine's CPU bounds
the throughput, not the ledger: the statements per job are the ledger's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.fleet_kit import FACE, SPEECH, Fleet, stop  # noqa: E402
from tests.pg_cluster import Cluster  # noqa: E402

QUOTE = 0.0694  # the mock's quote for examples/hello.mp3: 6.94 s x $0.01/s
LEDGER_TABLES = re.compile(r"\b(jobs|budgets|route_health|webhook_deliveries)\b", re.I)

GENERATE = '''
import asyncio, json, sys
from talkinghead import AsyncClient, AvatarRequest, BudgetExceeded

async def main(first, n, out):
    ok = refused = 0
    gate = asyncio.Semaphore(4)
    async with AsyncClient() as client:
        async def one(i):
            nonlocal ok, refused
            async with gate:
                try:
                    await client.run(AvatarRequest(image=sys.argv[4], audio=sys.argv[5], prompt=f"generate {i}"),
                                     provider="mock", output=f"{out}/g{i}.mp4")
                    ok += 1
                except BudgetExceeded:
                    refused += 1
        await asyncio.gather(*(one(first + i) for i in range(n)))
    print(json.dumps({"ok": ok, "refused": refused}))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]))
'''


def generators(fleet: Fleet, procs: int, per_proc: int) -> list[subprocess.Popen]:
    out = fleet.home / "generated"
    out.mkdir(exist_ok=True)
    return [subprocess.Popen([sys.executable, "-c", GENERATE, str(i * per_proc), str(per_proc), str(out),
                              str(FACE), str(SPEECH)], env=fleet.env, stdout=subprocess.PIPE, text=True)
            for i in range(procs)]


def wait_workers(fleet: Fleet, n: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while fleet.live_workers() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{n} workers did not start")
        time.sleep(0.1)


def ledger_for(fleet: Fleet):
    from talkinghead.ledger import connect

    return connect(fleet.url or fleet.home / "talkinghead.db")


# -- budget race -------------------------------------------------------------------------------


def race_pg(cluster: Cluster, root: Path, jobs: int, fit: int) -> dict:
    limit = round(QUOTE * (fit + 0.5), 6)  # room for `fit` quotes, not one more
    fleet = Fleet(root / "race-pg", cluster.create_database("race"), total_usd=limit)
    queued = jobs // 2
    assert fleet.enqueue(fleet.jobs_file(queued)).returncode == 0
    t0 = time.perf_counter()
    workers = [fleet.worker(concurrency=4) for _ in range(4)]
    gens = generators(fleet, 4, (jobs - queued) // 4)
    outs = [json.loads(g.communicate(timeout=1800)[0]) for g in gens]
    fleet.wait_queue_drained(timeout=1800, workers=workers)
    wall = time.perf_counter() - t0
    stop(workers)
    return race_result("PostgreSQL: 4 workers + 4 generate procs", fleet, limit, fit, wall, outs)


def race_sqlite(root: Path, jobs: int, fit: int) -> dict:
    limit = round(QUOTE * (fit + 0.5), 6)
    fleet = Fleet(root / "race-sqlite", None, total_usd=limit)
    t0 = time.perf_counter()
    outs = [json.loads(g.communicate(timeout=1800)[0]) for g in generators(fleet, 4, jobs // 4)]
    return race_result("SQLite: 4 generate procs", fleet, limit, fit, time.perf_counter() - t0, outs)


def race_result(name: str, fleet: Fleet, limit: float, fit: int, wall: float, outs: list[dict]) -> dict:
    ledger = ledger_for(fleet)
    audit = fleet.audit(ledger)
    totals = ledger.totals()
    ledger.close_connections()
    return {"name": name, "limit_usd": limit, "spent_usd": totals["spent_usd"],
            "reserved_usd": totals["reserved_usd"], "completed": audit["completed"], "fit": fit,
            "refused_by_generate": sum(o["refused"] for o in outs), "second_creates": audit["second_creates"],
            "requests_run_twice": audit["requests_run_twice"], "creates": audit["creates"], "wall_s": wall,
            "ok": totals["spent_usd"] <= limit + 1e-9 and audit["completed"] == fit and audit["second_creates"] == 0
            and audit["requests_run_twice"] == 0}


# -- throughput --------------------------------------------------------------------------------


def statement_counts(cluster: Cluster, dbname: str) -> tuple[int, int]:
    """(ledger statements, queue statements) run in ``dbname`` since the last reset."""
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        rows = conn.execute("SELECT s.query, s.calls FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid"
                            " WHERE d.datname = %s", (dbname,)).fetchall()
    ledger = sum(calls for query, calls in rows if LEDGER_TABLES.search(query) and "procrastinate" not in query)
    queue = sum(calls for query, calls in rows if "procrastinate" in query)
    return ledger, queue


def reset_statements(cluster: Cluster) -> None:
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("SELECT pg_stat_statements_reset()")


def throughput(cluster: Cluster, root: Path, jobs: int, n_workers: int, concurrency: int) -> dict:
    name = f"tp{n_workers}"
    fleet = Fleet(root / name, cluster.create_database(name))
    from talkinghead.workqueue import install_schema

    install_schema(fleet.url)
    path = fleet.jobs_file(jobs)
    workers = [fleet.worker(concurrency=concurrency) for _ in range(n_workers)]
    try:
        wait_workers(fleet, n_workers)
        reset_statements(cluster)
        t0 = time.perf_counter()
        enq = fleet.enqueue(path, timeout=1800)
        assert enq.returncode == 0, enq.stderr
        enqueued = time.perf_counter() - t0
        counts = fleet.wait_queue_drained(timeout=3600, workers=workers)
        wall = time.perf_counter() - t0
    finally:
        stop(workers)
    ledger_statements, queue_statements = statement_counts(cluster, name)
    ledger = ledger_for(fleet)
    audit = fleet.audit(ledger)
    ledger.close_connections()
    return {"workers": n_workers, "concurrency": concurrency, "jobs": jobs, "succeeded": counts.get("succeeded", 0),
            "wall_s": wall, "enqueue_s": enqueued, "jobs_per_s": jobs / wall,
            "ledger_statements_per_job": ledger_statements / jobs, "queue_statements_per_job": queue_statements / jobs,
            "second_creates": audit["second_creates"], "completed": audit["completed"]}


# -- the reservation path ----------------------------------------------------------------------


def reservation_path(target: str, n: int) -> dict:
    from talkinghead.ledger import BudgetLimits, connect
    from talkinghead.models import Job, Quote

    ledger = connect(target, BudgetLimits(total_usd=1e9, daily_usd=1e9, per_provider={"mock": 1e9},
                                          session_usd=1e9))
    q = Quote(provider="mock", model="mock-avatar", mode="std", seconds=6.94, price_per_second=0.01, cost_usd=QUOTE)
    times = []
    for i in range(n + 20):
        job = Job(provider="mock", model="mock-avatar", quote=q, reserved_usd=QUOTE, request_digest=f"d{i}")
        t0 = time.perf_counter()
        ledger.open(job, session="bench")
        if i >= 20:  # the first opens warm the pool and the statement cache
            times.append((time.perf_counter() - t0) * 1000)
    ledger.close_connections()
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95)], "n": n}


# -- kill test ---------------------------------------------------------------------------------


def kill_round(cluster: Cluster, root: Path, round_no: int, jobs: int, rng: random.Random) -> dict:
    name = f"kill{round_no}"
    fleet = Fleet(root / name, cluster.create_database(name), latency=1.0)
    assert fleet.enqueue(fleet.jobs_file(jobs)).returncode == 0
    workers = [fleet.worker(concurrency=4, stalled_after=2) for _ in range(3)]
    ledger = ledger_for(fleet)
    try:
        target = rng.choice(workers)
        deadline = time.monotonic() + 300
        in_flight: list[str] = []
        while not in_flight and time.monotonic() < deadline:  # until it holds a created, unfinished job
            pending = [j.id for j in ledger.unfinished() if j.task_id]
            held = ledger.workers(pending)
            in_flight = [j for j, w in held.items() if w.endswith(f":{target.pid}")]
            time.sleep(0.05)
        done_before = len(ledger.jobs(status="completed"))
        target.send_signal(signal.SIGKILL)
        target.wait()
        t0 = time.perf_counter()
        counts = fleet.wait_queue_drained(timeout=1800, workers=workers)
        recovered = time.perf_counter() - t0
    finally:
        stop(workers)
    audit = fleet.audit(ledger)
    unfinished = [f"{j.id} {j.status.value} task={j.task_id} {j.error}" for j in ledger.jobs()
                  if j.status.value != "completed"]
    survivors = tuple(f":{w.pid}" for w in workers if w is not target)
    held_after = ledger.workers(in_flight)
    ledger.close_connections()
    return {"round": round_no, "jobs": jobs, "killed_holding": len(in_flight), "completed_before_kill": done_before,
            "succeeded": counts.get("succeeded", 0), **audit,
            "resumed_by_survivor": sum(1 for j in in_flight if held_after.get(j, "").endswith(survivors)),
            "drain_after_kill_s": recovered, "not_completed": unfinished, "queue": dict(counts),
            "ok": audit["completed"] == jobs and audit["second_creates"] == 0 and audit["lost_videos"] == 0
            and audit["requests_run_twice"] == 0 and audit["creates"] == jobs}


# -- report ------------------------------------------------------------------------------------


def report(d: dict) -> str:
    out = [f"machine: {d['machine']}  ({d['cpus']} CPUs; python {d['python']}; PostgreSQL {d['pg']})", ""]
    out.append("budget race (limit fits exactly the stated number of jobs)")
    out.append(f"  {'':<44} {'limit':>9} {'spent':>9} {'completed':>10} {'fit':>5} {'dup creates':>12} "
               f"{'wall s':>7}  verdict")
    for r in d["race"]:
        out.append(f"  {r['name']:<44} {r['limit_usd']:>9.4f} {r['spent_usd']:>9.4f} {r['completed']:>10} "
                   f"{r['fit']:>5} {r['second_creates'] + r['requests_run_twice']:>12} {r['wall_s']:>7.1f}  "
                   f"{'met' if r['ok'] else 'MISSED'}")
    out += ["", "throughput through the queue (mock jobs, 64 px renders)"]
    out.append(f"  {'workers':>7} {'x conc':>6} {'jobs':>6} {'wall s':>8} {'jobs/s':>7} {'vs 1':>6} "
               f"{'ledger stmts/job':>17} {'queue stmts/job':>16} {'dup creates':>12}")
    base = d["throughput"][0]["jobs_per_s"] if d["throughput"] else 1
    for r in d["throughput"]:
        out.append(f"  {r['workers']:>7} {r['concurrency']:>6} {r['jobs']:>6} {r['wall_s']:>8.1f} "
                   f"{r['jobs_per_s']:>7.2f} {r['jobs_per_s'] / base:>5.2f}x {r['ledger_statements_per_job']:>17.1f} "
                   f"{r['queue_statements_per_job']:>16.1f} {r['second_creates']:>12}")
    pg, lite = d["reservation"]["postgres"], d["reservation"]["sqlite"]
    out += ["", f"reservation path (Ledger.open, 4 limit scopes, {pg['n']} sequential opens)",
            f"  PostgreSQL (loopback): median {pg['median_ms']:.2f} ms  p95 {pg['p95_ms']:.2f} ms   target < 4 ms "
            f"median: {'met' if pg['median_ms'] < 4 else 'MISSED'}",
            f"  SQLite (local file):   median {lite['median_ms']:.2f} ms  p95 {lite['p95_ms']:.2f} ms   "
            f"PostgreSQL / SQLite: {pg['median_ms'] / lite['median_ms']:.2f}x"]
    out += ["", "kill test (SIGKILL one of 3 workers mid-batch)"]
    out.append(f"  {'round':>5} {'jobs':>5} {'held by victim':>15} {'completed':>10} {'second creates':>15} "
               f"{'run twice':>10} {'lost videos':>12} {'resumed elsewhere':>18} {'drain s':>8}  verdict")
    for r in d["kill"]:
        out.append(f"  {r['round']:>5} {r['jobs']:>5} {r['killed_holding']:>15} {r['completed']:>10} "
                   f"{r['second_creates']:>15} {r['requests_run_twice']:>10} {r['lost_videos']:>12} "
                   f"{r['resumed_by_survivor']:>18} {r['drain_after_kill_s']:>8.1f}  {'met' if r['ok'] else 'MISSED'}")
        for line in r["not_completed"] + ([f"queue: {r['queue']}"] if not r["ok"] else []):
            out.append(f"        {line}")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    p.add_argument("--race-jobs", type=int, default=400)
    p.add_argument("--race-fit", type=int, default=150)
    p.add_argument("--throughput-jobs", type=int, default=1000)
    p.add_argument("--workers", default="1,2,4", help="worker counts for the throughput runs")
    p.add_argument("--concurrency", type=int, default=8, help="jobs at once per worker")
    p.add_argument("--reservations", type=int, default=1000)
    p.add_argument("--kill-jobs", type=int, default=60)
    p.add_argument("--kill-rounds", type=int, default=3)
    p.add_argument("--skip", default="", help="comma list of parts to skip: race,throughput,reservation,kill")
    p.add_argument("--json", metavar="PATH", help="also write the figures to this JSON file")
    a = p.parse_args()
    if a.quick:
        a.race_jobs, a.race_fit, a.throughput_jobs, a.reservations, a.kill_jobs = 40, 15, 40, 200, 12
    skip = set(filter(None, a.skip.split(",")))
    rng = random.Random(14)
    root = Path(tempfile.mkdtemp(prefix="th-fleet-bench-"))
    cluster = Cluster(fsync=True, preload="pg_stat_statements").start()
    try:
        import psycopg

        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            version = conn.execute("SHOW server_version").fetchone()[0]
        d: dict = {"machine": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                   "pg": version, "args": vars(a), "race": [], "throughput": [], "kill": [],
                   "reservation": {}}
        t0 = time.perf_counter()
        if "race" not in skip:
            d["race"] = [race_pg(cluster, root, a.race_jobs, a.race_fit), race_sqlite(root, a.race_jobs, a.race_fit)]
            print(f"(race: {time.perf_counter() - t0:.0f} s)", flush=True)
        if "throughput" not in skip:
            for n in map(int, a.workers.split(",")):
                d["throughput"].append(throughput(cluster, root, a.throughput_jobs, n, a.concurrency))
                print(f"(throughput, {n} workers: {time.perf_counter() - t0:.0f} s)", flush=True)
        if "reservation" not in skip:
            d["reservation"] = {"postgres": reservation_path(cluster.create_database("reserve"), a.reservations),
                                "sqlite": reservation_path(str(root / "reserve.db"), a.reservations)}
        else:
            d["reservation"] = {k: {"median_ms": float("nan"), "p95_ms": float("nan"), "n": 0}
                                for k in ("postgres", "sqlite")}
        if "kill" not in skip:
            d["kill"] = [kill_round(cluster, root, i + 1, a.kill_jobs, rng) for i in range(a.kill_rounds)]
        print(f"(all parts: {time.perf_counter() - t0:.0f} s)\n")
        print(report(d))
        if a.json:
            Path(a.json).write_text(json.dumps(d, indent=2))
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
