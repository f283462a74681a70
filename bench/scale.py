"""1,000 concurrent jobs in one AsyncClient: all complete, peak RSS, HTTP requests per job.

The fake inference.sh server runs in a process of its own; the client runs in a child
process that submits every job at once (``asyncio.gather`` of ``AsyncClient.run``), each
from local files that are uploaded, followed over the NDJSON stream and downloaded. The
child reports its peak RSS (``ru_maxrss``, which includes the interpreter and every import)
and the RSS once everything is imported, before the first job; the fake reports every
request it received.

    python bench/scale.py [--jobs 1000] [--step-latency 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

RSS_TARGET_MB = 150.0


async def run_jobs(url: str, jobs: int, out: Path) -> dict:
    from talkinghead import AsyncClient, AvatarRequest, JobStatus, TalkingHeadError
    from talkinghead_inferencesh import InferenceShProvider

    provider = InferenceShProvider({"api_key": c.API_KEY, "base_url": url})
    in_flight = peak_in_flight = 0
    seen: set[str] = set()

    def on_update(job, update) -> None:
        nonlocal in_flight, peak_in_flight
        if job.id not in seen and not job.status.terminal:
            seen.add(job.id)
            in_flight += 1
            peak_in_flight = max(peak_in_flight, in_flight)
        elif job.id in seen and job.status.terminal:
            seen.discard(job.id)
            in_flight -= 1

    async with AsyncClient([provider]) as client:
        # Everything imported and set up (PyAV included, by probing the inputs once).
        await client.prepare(AvatarRequest(image=str(c.FACE), audio=str(c.MP3)))
        rss_ready = c.vm_kb("VmRSS")
        cpu0, t0 = c.cpu_seconds(), time.perf_counter()

        async def one(i: int) -> str:
            request = AvatarRequest(image=str(c.FACE), audio=str(c.MP3), mode="std")
            try:
                result = await client.run(request, provider="inferencesh", output=out / f"{i}.mp4",
                                          on_update=on_update)
            except TalkingHeadError as exc:
                return f"{type(exc).__name__}: {exc}"
            return "completed" if result.path.stat().st_size > 0 else "empty"

        outcomes = await asyncio.gather(*(one(i) for i in range(jobs)))
        wall, cpu = time.perf_counter() - t0, c.cpu_seconds() - cpu0
        statuses = {}
        for job in client.ledger.jobs():
            statuses[job.status.value] = statuses.get(job.status.value, 0) + 1
        completed_in_journal = statuses.get(JobStatus.COMPLETED.value, 0)
    errors = sorted({o for o in outcomes if o != "completed"})
    return {"jobs": jobs, "completed": outcomes.count("completed"), "errors": errors[:5],
            "journal": statuses, "completed_in_journal": completed_in_journal,
            "wall_s": wall, "cpu_s": cpu, "peak_in_flight": peak_in_flight,
            "rss_ready_mb": rss_ready / 1024,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def child(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        result = asyncio.run(run_jobs(args.url, args.jobs, Path(tmp)))
    print(json.dumps(result))


def measure(jobs: int = 1000, step_latency: float = 1.0) -> dict:
    switches = {"step_latency": step_latency, "heartbeat_interval": 1.0}
    with c.FakeServer(**switches) as fake, tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        res = c.run_child(Path(__file__), "--child", "--url", fake.url, "--jobs", str(jobs),
                          env={"TALKINGHEAD_HOME": home})
        counts = fake.stats()
    counts.pop("hook", None)
    total = sum(counts.values())
    res.update({"requests": counts, "requests_total": total, "requests_per_job": total / jobs,
                "step_latency": step_latency})
    return res


def report(d: dict) -> str:
    jobs = d["jobs"]
    per = ", ".join(f"{k} {v / jobs:.2f}" for k, v in sorted(d["requests"].items()))
    rows = [
        ["jobs completed", f"{d['completed']} / {jobs}", f"all {jobs}",
         "met" if d["completed"] == jobs else f"MISSED: {jobs - d['completed']} did not complete"],
        ["peak RSS of the client process", f"{d['peak_rss_mb']:.1f} MB", f"<= {RSS_TARGET_MB:g} MB",
         c.verdict(d["peak_rss_mb"], RSS_TARGET_MB, " MB")],
        ["  of which: RSS after imports, before jobs", f"{d['rss_ready_mb']:.1f} MB", "", ""],
        ["  growth for the jobs", f"{d['peak_rss_mb'] - d['rss_ready_mb']:.1f} MB", "", ""],
        ["HTTP requests per job", f"{d['requests_per_job']:.2f}", "reported", ""],
        ["peak jobs between submit and end", str(d["peak_in_flight"]), "", ""],
        ["wall time / client CPU", f"{d['wall_s']:.1f} s / {d['cpu_s']:.1f} s", "",
         f"{d['cpu_s'] / jobs * 1000:.1f} ms CPU per job"],
    ]
    lines = [f"scale: {jobs} concurrent jobs in one AsyncClient (fake step latency {d['step_latency']} s, "
             f"every job uploads {c.FACE.name} + {c.MP3.name}, follows the stream, downloads)",
             c.table(["figure", "value", "target", "verdict"], rows),
             f"requests per job by endpoint: {per}",
             f"journal: {d['journal']}"]
    if d["errors"]:
        lines.append(f"errors (first few): {d['errors']}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--step-latency", type=float, default=1.0, help="seconds per task status step in the fake")
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    print(f"machine: {c.machine()}")
    data = measure(args.jobs, args.step_latency)
    print(report(data))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
