"""Submits while many jobs stream: does a submit ever wait behind a stream?

One ``AsyncClient`` in a child process, against the loopback fake inference.sh server (in a
process of its own) whose tasks run for ``--task-seconds``. First ``--submits`` submits run
at once with nothing else open: the baseline. Then ``--streams`` jobs are submitted and
followed (each holds an open NDJSON status stream); once all of them stream, ``--submits``
more submits run at once. Every submit uploads two files and creates a task (5 requests).
Reported: submit latency percentiles (wall, from call to the task id) in both phases, the
streams open while the second phase ran, and the client's peak RSS.

    python bench/streams.py [--streams 300] [--submits 300] [--task-seconds 40]
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

RATIO_TARGET = 1.5  # p99 with streams open / p99 without, at most


def percentiles(values: list[float]) -> dict[str, float]:
    s = sorted(values)

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))]
    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": s[-1], "n": len(s)}


async def run(url: str, streams: int, submits: int) -> dict:
    from talkinghead import AsyncClient, AvatarRequest
    from talkinghead_inferencesh import InferenceShProvider

    provider = InferenceShProvider({"api_key": c.API_KEY, "base_url": url})
    request = AvatarRequest(image=str(c.FACE), audio=str(c.MP3), mode="std")

    async with AsyncClient([provider]) as client:
        async def timed_submit() -> float:
            t0 = time.perf_counter()
            job = await client.submit(request, provider="inferencesh")
            assert job.task_id
            return time.perf_counter() - t0

        await timed_submit()  # warm: imports, TLS context, connections
        baseline = await asyncio.gather(*(timed_submit() for _ in range(submits)))

        jobs = await asyncio.gather(*(client.submit(request, provider="inferencesh") for _ in range(streams)))
        followers = [asyncio.ensure_future(client.wait(job)) for job in jobs]
        deadline = time.monotonic() + 120
        while provider._open_streams < streams and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        open_before = provider._open_streams
        loaded = await asyncio.gather(*(timed_submit() for _ in range(submits)))
        open_after = provider._open_streams
        unfinished = sum(1 for f in followers if not f.done())
        for f in followers:
            f.cancel()
        await asyncio.gather(*followers, return_exceptions=True)
    return {"baseline": percentiles(baseline), "loaded": percentiles(loaded), "streams_open_before": open_before,
            "streams_open_after": open_after, "followers_still_streaming": unfinished,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def measure(streams: int = 300, submits: int = 300, task_seconds: float = 40.0) -> dict:
    # Five status steps: a task ends after 4 x step_latency; heartbeats keep streams open.
    switches = {"step_latency": task_seconds / 4, "heartbeat_interval": 5.0, "stream_max_seconds": task_seconds * 2}
    with c.FakeServer(**switches) as fake, tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        res = c.run_child(Path(__file__), "--child", "--url", fake.url, "--streams", str(streams),
                          "--submits", str(submits), env={"TALKINGHEAD_HOME": home})
    res.update({"streams": streams, "submits": submits, "task_seconds": task_seconds,
                "ratio_p99": res["loaded"]["p99"] / res["baseline"]["p99"],
                "ratio_p50": res["loaded"]["p50"] / res["baseline"]["p50"]})
    return res


def report(d: dict) -> str:
    def ms(p: dict) -> list[str]:
        return [f"{p[k] * 1000:.0f}" for k in ("p50", "p90", "p99", "max")]
    rows = [["no streams open", *ms(d["baseline"])],
            [f"{d['streams_open_before']} streams open", *ms(d["loaded"])]]
    return "\n".join([
        f"streams: {d['submits']} concurrent submits (2 uploads + create each), first with nothing open, then "
        f"while {d['streams']} jobs stream (tasks of {d['task_seconds']:g} s) in the same AsyncClient",
        c.table(["submit latency (wall ms)", "p50", "p90", "p99", "max"], rows),
        f"p99 with streams / without = {d['ratio_p99']:.2f}x (target <= {RATIO_TARGET:g}x: "
        f"{c.verdict(d['ratio_p99'], RATIO_TARGET, 'x')}); p50 ratio {d['ratio_p50']:.2f}x; streams still open "
        f"after the submits: {d['streams_open_after']}; peak RSS {d['peak_rss_mb']:.0f} MB",
    ])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--streams", type=int, default=300)
    p.add_argument("--submits", type=int, default=300)
    p.add_argument("--task-seconds", type=float, default=40.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(run(args.url, args.streams, args.submits))))
        return
    print(f"machine: {c.machine()}")
    data = measure(args.streams, args.submits, args.task_seconds)
    print(report(data))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
