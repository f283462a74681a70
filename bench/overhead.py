"""Client CPU per job: talkinghead vs a minimal raw-httpx script vs the official SDK.

Each contender runs ``--jobs`` jobs (default 200) against the loopback fake inference.sh
server, which runs in a process of its own; each contender runs in a fresh child process
and measures its own CPU time (user + system, all threads) around the jobs, so neither the
server's CPU nor interpreter start-up and imports are counted. A few warm-up jobs run first
and are not counted. Every contender makes the same calls per job, from local files that
must be uploaded: POST /files + PUT (image), POST /files + PUT (audio), POST /apps/run,
follow the task (NDJSON stream) to its end, download the video.

    python bench/overhead.py [--jobs 200] [--concurrency 8] [--rounds 3]

Contenders are interleaved round by round (talkinghead, raw, sdk, talkinghead, ...) so a
noisy neighbour hurts all of them alike; the median round of each is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

TARGET = 1.3
APP = "klingai/avatar"
SWITCHES = {"step_latency": 0.05, "heartbeat_interval": 0.05}
TERMINAL = {10, 11, 12, 13}


# -- the contenders (each runs in its own child process) ------------------------------------

async def run_talkinghead(url: str, jobs: int, concurrency: int, warmup: int, out: Path) -> dict:
    from talkinghead import AsyncClient, AvatarRequest
    from talkinghead_inferencesh import InferenceShProvider

    provider = InferenceShProvider({"api_key": c.API_KEY, "base_url": url})
    async with AsyncClient([provider]) as client:  # the journal: SQLite under TALKINGHEAD_HOME
        async def one(i: int) -> None:
            request = AvatarRequest(image=str(c.FACE), audio=str(c.MP3), mode="std")
            result = await client.run(request, provider="inferencesh", output=out / f"{i}.mp4")
            assert result.path.stat().st_size > 0

        return await _measure(one, jobs, concurrency, warmup)


async def run_raw(url: str, jobs: int, concurrency: int, warmup: int, out: Path) -> dict:
    import httpx

    api = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {c.API_KEY}"}, timeout=30)
    storage = httpx.AsyncClient(timeout=120)  # presigned PUTs and downloads: no Authorization

    async def upload(path: Path, content_type: str) -> str:
        data = path.read_bytes()
        record = {"uri": "", "filename": path.name, "content_type": content_type, "path": None,
                  "size": len(data), "public": None}
        created = (await api.post("/files", json={"files": [record]})).raise_for_status().json()[0]
        (await storage.put(created["upload_url"], content=data,
                           headers={"Content-Type": content_type})).raise_for_status()
        return created["uri"]

    async def one(i: int) -> None:
        image = await upload(c.FACE, "image/jpeg")
        audio = await upload(c.MP3, "audio/mpeg")
        body = {"app": APP, "input": {"image": image, "audio": audio, "mode": "std", "aspect_ratio": "16:9"}}
        task = (await api.post("/apps/run", json=body)).raise_for_status().json()
        headers = {"Accept": "application/x-ndjson", "Cache-Control": "no-cache", "Accept-Encoding": "identity"}
        async with api.stream("GET", f"/tasks/{task['id']}/stream", headers=headers, timeout=60) as resp:
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                if obj.get("type") == "heartbeat":
                    continue
                task.update(obj["data"] if "fields" in obj else obj)
                if task.get("status") in TERMINAL:
                    break
        if task.get("status") != 10 or not task.get("output"):
            task = (await api.get(f"/tasks/{task['id']}")).raise_for_status().json()
        assert task["status"] == 10, task
        video = task["output"]["video"]
        async with storage.stream("GET", video["uri"] if isinstance(video, dict) else video) as resp:
            resp.raise_for_status()
            with open(out / f"{i}.mp4", "wb") as f:
                async for chunk in resp.aiter_bytes():
                    f.write(chunk)

    try:
        return await _measure(one, jobs, concurrency, warmup)
    finally:
        await api.aclose()
        await storage.aclose()


def run_sdk(url: str, jobs: int, concurrency: int, warmup: int, out: Path) -> dict:
    """The official SDK is synchronous (requests); its async client needs aiohttp, which it
    does not install. Concurrency comes from a thread pool, as a user of it would do."""
    import concurrent.futures

    import inferencesh
    import requests

    client = inferencesh.Inference(api_key=c.API_KEY, base_url=url)

    def one(i: int) -> None:
        task = client.run({"app": APP, "input": {"image": str(c.FACE), "audio": str(c.MP3),
                                                  "mode": "std", "aspect_ratio": "16:9"}})
        video = task["output"]["video"]
        with requests.get(video["uri"] if isinstance(video, dict) else video, stream=True, timeout=60) as resp:
            resp.raise_for_status()
            with open(out / f"{i}.mp4", "wb") as f:
                for chunk in resp.iter_content(1 << 16):
                    f.write(chunk)

    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(warmup)))
        cpu0, t0 = c.cpu_seconds(), c.now()
        list(pool.map(one, range(warmup, warmup + jobs)))
        cpu, wall = c.cpu_seconds() - cpu0, c.now() - t0
    return {"cpu_s": cpu, "wall_s": wall, "jobs": jobs}


async def _measure(one, jobs: int, concurrency: int, warmup: int) -> dict:
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(limited(i) for i in range(warmup)))
    cpu0, t0 = c.cpu_seconds(), c.now()
    await asyncio.gather(*(limited(i) for i in range(warmup, warmup + jobs)))
    return {"cpu_s": c.cpu_seconds() - cpu0, "wall_s": c.now() - t0, "jobs": jobs}


def child(args: argparse.Namespace) -> None:
    if args.child == "raw-fixed":
        # The same one-line fix talkinghead.http applies for httpcore's failed sniffio import
        # (see _skip_missing_sniffio there), so this raw script runs on the same httpx stack.
        import importlib.util

        if importlib.util.find_spec("sniffio") is None:
            sys.modules["sniffio"] = None  # type: ignore[assignment]
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.child}-") as tmp:
        out = Path(tmp)
        if args.child == "sdk":
            result = run_sdk(args.url, args.jobs, args.concurrency, args.warmup, out)
        else:
            fn = run_talkinghead if args.child == "talkinghead" else run_raw
            result = asyncio.run(fn(args.url, args.jobs, args.concurrency, args.warmup, out))
    print(json.dumps(result))


# -- the parent: server, rounds, table -----------------------------------------------------

CONTENDERS = ("talkinghead", "raw-fixed", "raw", "sdk")
LABELS = {"talkinghead": "talkinghead (AsyncClient.run)",
          "raw-fixed": "raw httpx script, same sniffio fix",
          "raw": "raw httpx script, as written",
          "sdk": "inferencesh SDK 0.36.0 (sync, threads)"}
BASELINE = "raw-fixed"  # like for like: the same httpx stack as talkinghead


def measure(jobs: int = 200, concurrency: int = 8, rounds: int = 3, warmup: int = 5) -> dict:
    results: dict[str, list[dict]] = {k: [] for k in CONTENDERS}
    with c.FakeServer(**SWITCHES) as fake, tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        for r in range(rounds):
            for name in CONTENDERS:
                fake.reset()
                env = {"TALKINGHEAD_HOME": str(Path(home) / f"{name}-{r}"), "INFERENCE_API_KEY": c.API_KEY}
                res = c.run_child(Path(__file__), "--child", name, "--url", fake.url, "--jobs", str(jobs),
                                  "--concurrency", str(concurrency), "--warmup", str(warmup), env=env)
                counts = fake.stats()
                res["requests_per_job"] = sum(v for k, v in counts.items() if k != "hook") / (jobs + warmup)
                results[name].append(res)
    summary = {}
    for name, runs in results.items():
        per_job = sorted(x["cpu_s"] / x["jobs"] for x in runs)
        summary[name] = {"cpu_ms_per_job": c.median(per_job) * 1000, "all_ms": [round(v * 1000, 2) for v in per_job],
                         "wall_s": c.median([x["wall_s"] for x in runs]),
                         "requests_per_job": runs[-1]["requests_per_job"]}
    base = summary[BASELINE]["cpu_ms_per_job"]
    for name in summary:
        summary[name]["ratio_to_raw"] = summary[name]["cpu_ms_per_job"] / base
    th = summary["talkinghead"]["cpu_ms_per_job"]
    return {"jobs": jobs, "concurrency": concurrency, "rounds": rounds, "warmup": warmup, "results": summary,
            "ratio": summary["talkinghead"]["ratio_to_raw"], "target": TARGET,
            "ratio_as_written": th / summary["raw"]["cpu_ms_per_job"],
            "ratio_sdk": th / summary["sdk"]["cpu_ms_per_job"]}


def report(data: dict) -> str:
    rows = []
    for name, s in data["results"].items():
        rows.append([LABELS[name], f"{s['cpu_ms_per_job']:.2f}", " / ".join(f"{v:.2f}" for v in s["all_ms"]),
                     f"{s['ratio_to_raw']:.2f}x", f"{s['requests_per_job']:.1f}", f"{s['wall_s']:.1f}"])
    ratio = data["ratio"]
    lines = [f"overhead: {data['jobs']} jobs per run, {data['concurrency']} at a time, {data['warmup']} warm-up "
             f"jobs not counted, median of {data['rounds']} interleaved rounds; fake step latency "
             f"{SWITCHES['step_latency']} s; inputs {c.FACE.name} + {c.MP3.name}, uploaded every job",
             c.table(["contender", "CPU ms/job", "rounds (ms/job)", "vs raw", "HTTP req/job", "wall s"], rows),
             f"talkinghead / raw (same httpx stack) = {ratio:.2f}x (target <= {TARGET}x): "
             f"{c.verdict(ratio, TARGET, 'x')}",
             f"talkinghead / raw as written = {data['ratio_as_written']:.2f}x;  "
             f"talkinghead / SDK = {data['ratio_sdk']:.2f}x"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    print(f"machine: {c.machine()}")
    data = measure(args.jobs, args.concurrency, args.rounds, args.warmup)
    print(report(data))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
