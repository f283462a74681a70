"""Client CPU per job: talkinghead vs the same calls by hand with sync httpx vs the official SDK.

Two parts, both against the loopback fake inference.sh server, which runs in a process of
its own (its CPU is never counted):

**Like for like (the goals).** One job at a time, ``--jobs`` jobs (default 50) per contender
per round, ``--rounds`` rounds (default 5), the order of the contenders rotated every round.
Every contender makes the same calls per job, from local files that must be uploaded:
POST /files + PUT (image), POST /files + PUT (audio), POST /apps/run, then follows the task
(NDJSON stream) to its end; the ``+ download`` contenders also fetch the video. Each
contender runs in a fresh child process and reads its own process CPU time (user + system,
all threads; not wall time) around the counted jobs. The first job of each child is timed
on its own (after the imports and the client's construction) and reported as the first-job
cost; two more warm-up jobs are not counted. Ratios are computed per round (a contender
against the floor and against the SDK of the same round) and reported as median and range.

**Concurrent (the earlier figures, kept).** ``AsyncClient.run`` 8 at a time against a raw
``httpx.AsyncClient`` script and the SDK on 8 threads, all with the download.

    python bench/overhead.py [--jobs 50] [--rounds 5] [--concurrent-jobs 100]
    python bench/overhead.py --profile th-sync   # cProfile (CPU clock) one contender's jobs
    PROFILE_SORT=cumulative PROFILE_FILTER=talkinghead python bench/overhead.py --profile th-async
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

TARGET_FLOOR = 1.3    # x the sync-httpx floor
TARGET_SDK = 1.0      # x the official SDK
TARGET_RUN = 1.3      # x (submit + wait + the download's own cost)
APP = "klingai/avatar"
SWITCHES = {"step_latency": 0.02, "heartbeat_interval": 0.05}
CONCURRENT_SWITCHES = {"step_latency": 0.05, "heartbeat_interval": 0.05}
TERMINAL = {10, 11, 12, 13}
STREAM_HEADERS = {"Accept": "application/x-ndjson", "Cache-Control": "no-cache", "Accept-Encoding": "identity"}


CLOSE: list = []  # each contender's clean-up, run when its child is done (after the counting)

# -- like-for-like contenders: each returns one(i) -> None, run sequentially -----------------

def _file_record(path: Path, data: bytes, content_type: str) -> dict:
    """The body of ``POST /files`` for one local file, as the SDK sends it."""
    return {"files": [{"uri": "", "filename": path.name, "content_type": content_type, "path": None,
                       "size": len(data), "public": None}]}


def _run_body(image: str, audio: str) -> dict:
    return {"app": APP, "input": {"image": image, "audio": audio, "mode": "std", "aspect_ratio": "16:9"}}


def _apply_line(task: dict, line: str | bytes) -> bool:
    """Apply one NDJSON stream line to ``task``; True once the task has ended."""
    if not line.strip():
        return False
    obj = json.loads(line)
    if obj.get("type") == "heartbeat":
        return False
    task.update(obj["data"] if "fields" in obj else obj)
    return task.get("status") in TERMINAL


def floor_job(url: str, out: Path, download: bool):
    """The same calls by hand with sync httpx, one job at a time: the floor."""
    import httpx

    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {c.API_KEY}"}, timeout=30)
    storage = httpx.Client(timeout=120)  # presigned PUTs and downloads: no Authorization

    def upload(path: Path, content_type: str) -> str:
        data = path.read_bytes()
        created = api.post("/files", json=_file_record(path, data, content_type)).raise_for_status().json()[0]
        storage.put(created["upload_url"], content=data, headers={"Content-Type": content_type}).raise_for_status()
        return created["uri"]

    def one(i: int) -> None:
        image = upload(c.FACE, "image/jpeg")
        audio = upload(c.MP3, "audio/mpeg")
        body = _run_body(image, audio)
        task = api.post("/apps/run", json=body).raise_for_status().json()
        with api.stream("GET", f"/tasks/{task['id']}/stream", headers=STREAM_HEADERS, timeout=60) as resp:
            for line in resp.iter_lines():
                if _apply_line(task, line):
                    break
        if task.get("status") != 10 or not task.get("output"):
            task = api.get(f"/tasks/{task['id']}").raise_for_status().json()
        assert task["status"] == 10, task
        if download:
            video = task["output"]["video"]
            with storage.stream("GET", video["uri"] if isinstance(video, dict) else video) as resp:
                resp.raise_for_status()
                with open(out / f"{i}.mp4", "wb") as f:
                    for chunk in resp.iter_bytes():
                        f.write(chunk)

    return one


def aiohttp_job(url: str, out: Path, download: bool):
    """The same calls by hand with aiohttp (no httpx, no talkinghead), one job at a time on
    asyncio: what the asynchronous stack alone costs, for the profile summary."""
    import aiohttp

    loop = asyncio.new_event_loop()
    auth = {"Authorization": f"Bearer {c.API_KEY}"}

    async def make() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, sock_read=60))

    session = loop.run_until_complete(make())
    CLOSE.append(lambda: loop.run_until_complete(session.close()))

    async def upload(path: Path, content_type: str) -> str:
        data = path.read_bytes()
        async with session.post(url + "/files", json=_file_record(path, data, content_type), headers=auth) as resp:
            created = (await resp.json())[0]
        async with session.put(created["upload_url"], data=data, headers={"Content-Type": content_type}) as resp:
            resp.raise_for_status()
        return created["uri"]

    async def job(i: int) -> None:
        image = await upload(c.FACE, "image/jpeg")
        audio = await upload(c.MP3, "audio/mpeg")
        body = _run_body(image, audio)
        async with session.post(url + "/apps/run", json=body, headers=auth) as resp:
            task = await resp.json()
        async with session.get(f"{url}/tasks/{task['id']}/stream", headers={**auth, **STREAM_HEADERS}) as resp:
            async for raw in resp.content:
                if _apply_line(task, raw):
                    break
        if task.get("status") != 10 or not task.get("output"):
            async with session.get(f"{url}/tasks/{task['id']}", headers=auth) as resp:
                task = await resp.json()
        assert task["status"] == 10, task

    def one(i: int) -> None:
        loop.run_until_complete(job(i))

    return one


def sdk_job(url: str, out: Path, download: bool):
    """The official SDK (synchronous, on requests): ``run`` uploads, creates and follows."""
    import inferencesh

    client = inferencesh.Inference(api_key=c.API_KEY, base_url=url)

    def one(i: int) -> None:
        task = client.run({"app": APP, "input": {"image": str(c.FACE), "audio": str(c.MP3),
                                                  "mode": "std", "aspect_ratio": "16:9"}})
        assert task["status"] == 10 and task["output"], task

    return one


def th_sync_job(url: str, out: Path, download: bool):
    from talkinghead import AvatarRequest, Client
    from talkinghead_inferencesh import InferenceShProvider

    client = Client([InferenceShProvider({"api_key": c.API_KEY, "base_url": url})])
    CLOSE.append(client.close)

    def one(i: int) -> None:
        request = AvatarRequest(image=str(c.FACE), audio=str(c.MP3), mode="std")
        if download:
            result = client.run(request, provider="inferencesh", output=out / f"{i}.mp4")
            assert result.path.stat().st_size > 0
        else:
            job = client.wait(client.submit(request, provider="inferencesh"))
            assert job.output_url

    return one


def th_async_job(url: str, out: Path, download: bool, loop: asyncio.AbstractEventLoop | None = None):
    """AsyncClient: each job is one ``asyncio`` run of submit + wait on the app's loop."""
    from talkinghead import AsyncClient, AvatarRequest
    from talkinghead_inferencesh import InferenceShProvider

    loop = loop or asyncio.new_event_loop()
    client = AsyncClient([InferenceShProvider({"api_key": c.API_KEY, "base_url": url})])
    CLOSE.append(lambda: loop.run_until_complete(client.aclose()))

    async def job(i: int) -> None:
        request = AvatarRequest(image=str(c.FACE), audio=str(c.MP3), mode="std")
        if download:
            result = await client.run(request, provider="inferencesh", output=out / f"{i}.mp4")
            assert result.path.stat().st_size > 0
        else:
            done = await client.wait(await client.submit(request, provider="inferencesh"))
            assert done.output_url

    def one(i: int) -> None:
        loop.run_until_complete(job(i))

    return one


def th_async_httpcore_job(url: str, out: Path, download: bool):
    """AsyncClient on httpx's own transport (httpcore), the transport before aiohttp's."""
    import os

    os.environ["TALKINGHEAD_HTTP_TRANSPORT"] = "httpcore"
    return th_async_job(url, out, download)


def th_sync_uvloop_job(url: str, out: Path, download: bool):
    """Client on its own uvloop loop (TALKINGHEAD_EVENT_LOOP=uvloop, the app's opt-in)."""
    import os

    os.environ["TALKINGHEAD_EVENT_LOOP"] = "uvloop"
    return th_sync_job(url, out, download)


def th_async_uvloop_job(url: str, out: Path, download: bool):
    """AsyncClient on a uvloop event loop: the loop is the app's choice (docs/performance.md)."""
    import uvloop

    return th_async_job(url, out, download, loop=uvloop.new_event_loop())


CONTENDERS = {  # name: (label, factory, download)
    "floor": ("sync httpx by hand (the floor)", floor_job, False),
    "sdk": ("official inferencesh SDK", sdk_job, False),
    "aiohttp": ("aiohttp by hand on asyncio (the async stack alone)", aiohttp_job, False),
    "th-async": ("talkinghead AsyncClient submit + wait", th_async_job, False),
    "th-sync": ("talkinghead Client submit + wait", th_sync_job, False),
    "th-async-httpcore": ("talkinghead AsyncClient submit + wait, httpcore transport", th_async_httpcore_job, False),
    "th-async-uvloop": ("talkinghead AsyncClient submit + wait, uvloop", th_async_uvloop_job, False),
    "th-sync-uvloop": ("talkinghead Client submit + wait, uvloop", th_sync_uvloop_job, False),
    "floor-dl": ("sync httpx by hand + download", floor_job, True),
    "th-async-run": ("talkinghead AsyncClient.run (+ download, checked)", th_async_job, True),
    "th-sync-run": ("talkinghead Client.run (+ download, checked)", th_sync_job, True),
}


def child(args: argparse.Namespace) -> None:
    _, factory, download = CONTENDERS[args.child]
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.child}-") as tmp:
        out = Path(tmp)
        cpu0 = c.cpu_seconds()
        one = factory(args.url, out, download)  # imports and the client's construction
        setup = c.cpu_seconds() - cpu0
        cpu0 = c.cpu_seconds()
        one(0)
        first = c.cpu_seconds() - cpu0
        for i in range(1, 1 + args.warmup):
            one(i)
        start = 1 + args.warmup
        if args.profile:
            _profile(one, range(start, start + args.jobs), args.profile)
            return
        cpu0, t0 = c.cpu_seconds(), c.now()
        for i in range(start, start + args.jobs):
            one(i)
        cpu, wall = c.cpu_seconds() - cpu0, c.now() - t0
        for close in CLOSE:
            close()
    print(json.dumps({"cpu_s": cpu, "wall_s": wall, "jobs": args.jobs, "first_s": first, "setup_s": setup}))


def _profile(one, jobs, how: str) -> None:
    import cProfile
    import os
    import pstats
    import time

    prof = cProfile.Profile(time.process_time)  # CPU, not wall: waiting on the fake is free
    prof.enable()
    for i in jobs:
        one(i)
    prof.disable()
    if os.environ.get("PROFILE_DUMP"):
        prof.dump_stats(os.environ["PROFILE_DUMP"])
    stats = pstats.Stats(prof, stream=sys.stderr)
    sort_key = how if how in ("tottime", "cumulative") else "tottime"
    stats.sort_stats(sort_key).print_stats(os.environ.get("PROFILE_FILTER", ""), 45)
    print(json.dumps({"profiled": len(jobs)}))


# -- concurrent contenders (the earlier figures) --------------------------------------------

async def run_talkinghead_concurrent(url: str, jobs: int, concurrency: int, warmup: int, out: Path) -> dict:
    from talkinghead import AsyncClient, AvatarRequest
    from talkinghead_inferencesh import InferenceShProvider

    async with AsyncClient([InferenceShProvider({"api_key": c.API_KEY, "base_url": url})]) as client:
        async def one(i: int) -> None:
            request = AvatarRequest(image=str(c.FACE), audio=str(c.MP3), mode="std")
            result = await client.run(request, provider="inferencesh", output=out / f"{i}.mp4")
            assert result.path.stat().st_size > 0

        return await _gather(one, jobs, concurrency, warmup)


async def run_raw_concurrent(url: str, jobs: int, concurrency: int, warmup: int, out: Path) -> dict:
    import httpx

    api = httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {c.API_KEY}"}, timeout=30)
    storage = httpx.AsyncClient(timeout=120)

    async def upload(path: Path, content_type: str) -> str:
        data = path.read_bytes()
        created = (await api.post("/files", json=_file_record(path, data, content_type))).raise_for_status().json()[0]
        (await storage.put(created["upload_url"], content=data,
                           headers={"Content-Type": content_type})).raise_for_status()
        return created["uri"]

    async def one(i: int) -> None:
        image = await upload(c.FACE, "image/jpeg")
        audio = await upload(c.MP3, "audio/mpeg")
        body = _run_body(image, audio)
        task = (await api.post("/apps/run", json=body)).raise_for_status().json()
        async with api.stream("GET", f"/tasks/{task['id']}/stream", headers=STREAM_HEADERS, timeout=60) as resp:
            async for line in resp.aiter_lines():
                if _apply_line(task, line):
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
        return await _gather(one, jobs, concurrency, warmup)
    finally:
        await api.aclose()
        await storage.aclose()


def run_sdk_concurrent(url: str, jobs: int, concurrency: int, warmup: int, out: Path) -> dict:
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


async def _gather(one, jobs: int, concurrency: int, warmup: int) -> dict:
    sem = asyncio.Semaphore(concurrency)

    async def limited(i: int) -> None:
        async with sem:
            await one(i)

    await asyncio.gather(*(limited(i) for i in range(warmup)))
    cpu0, t0 = c.cpu_seconds(), c.now()
    await asyncio.gather(*(limited(i) for i in range(warmup, warmup + jobs)))
    return {"cpu_s": c.cpu_seconds() - cpu0, "wall_s": c.now() - t0, "jobs": jobs}


CONCURRENT = {"c-talkinghead": "talkinghead AsyncClient.run, 8 at a time",
              "c-raw": "raw httpx.AsyncClient script, 8 at a time",
              "c-sdk": "official SDK on 8 threads"}


def child_concurrent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{args.child}-") as tmp:
        out = Path(tmp)
        if args.child == "c-sdk":
            result = run_sdk_concurrent(args.url, args.jobs, 8, args.warmup, out)
        else:
            fn = run_talkinghead_concurrent if args.child == "c-talkinghead" else run_raw_concurrent
            result = asyncio.run(fn(args.url, args.jobs, 8, args.warmup, out))
    print(json.dumps(result))


# -- the parent: server, rounds, table -----------------------------------------------------

def _spread(values: list[float]) -> dict:
    return {"median": c.median(values), "min": min(values), "max": max(values), "all": values}


def measure(jobs: int = 50, rounds: int = 5, warmup: int = 2, concurrent_jobs: int = 100,
            concurrent_rounds: int = 3) -> dict:
    names = list(CONTENDERS)
    runs: dict[str, list[dict]] = {k: [] for k in names}
    with c.FakeServer(**SWITCHES) as fake, tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotated every round
            for name in order:
                fake.reset()
                env = {"TALKINGHEAD_HOME": str(Path(home) / f"{name}-{r}"), "INFERENCE_API_KEY": c.API_KEY}
                res = c.run_child(Path(__file__), "--child", name, "--url", fake.url, "--jobs", str(jobs),
                                  "--warmup", str(warmup), env=env)
                counts = fake.stats()
                res["requests_per_job"] = sum(v for k, v in counts.items() if k != "hook") / (jobs + warmup + 1)
                res["round"] = r
                runs[name].append(res)
    per_job = {k: [x["cpu_s"] / x["jobs"] * 1000 for x in v] for k, v in runs.items()}
    results = {}
    for name in names:
        results[name] = {"cpu_ms": _spread(per_job[name]),
                         "first_ms": _spread([x["first_s"] * 1000 for x in runs[name]]),
                         "setup_ms": _spread([x["setup_s"] * 1000 for x in runs[name]]),
                         "requests_per_job": runs[name][-1]["requests_per_job"]}

    def ratio(a: str, b: str) -> dict:
        return _spread([x / y for x, y in zip(per_job[a], per_job[b], strict=True)])

    dl = [d - f for d, f in zip(per_job["floor-dl"], per_job["floor"], strict=True)]  # the download's own cost
    ratios = {"th-async/floor": ratio("th-async", "floor"), "th-sync/floor": ratio("th-sync", "floor"),
              "th-async/sdk": ratio("th-async", "sdk"), "th-sync/sdk": ratio("th-sync", "sdk"),
              "th-async-uvloop/floor": ratio("th-async-uvloop", "floor"),
              "th-async-uvloop/sdk": ratio("th-async-uvloop", "sdk"),
              "th-sync-uvloop/sdk": ratio("th-sync-uvloop", "sdk"),
              "th-async-httpcore/th-async": ratio("th-async-httpcore", "th-async"),
              "th-async-run/anchor": _spread([x / (y + d) for x, y, d in
                                              zip(per_job["th-async-run"], per_job["th-async"], dl, strict=True)]),
              "th-sync-run/anchor": _spread([x / (y + d) for x, y, d in
                                             zip(per_job["th-sync-run"], per_job["th-sync"], dl, strict=True)]),
              "th-async-first/sdk-first": _spread([a["first_s"] / b["first_s"] for a, b in
                                                   zip(runs["th-async"], runs["sdk"], strict=True)]),
              "th-sync-first/sdk-first": _spread([a["first_s"] / b["first_s"] for a, b in
                                                  zip(runs["th-sync"], runs["sdk"], strict=True)])}
    data = {"jobs": jobs, "rounds": rounds, "warmup": warmup, "switches": SWITCHES, "results": results,
            "ratios": ratios, "download_ms": _spread(dl)}
    if concurrent_jobs:
        data["concurrent"] = measure_concurrent(concurrent_jobs, concurrent_rounds)
    return data


def measure_concurrent(jobs: int, rounds: int, warmup: int = 5) -> dict:
    names = list(CONCURRENT)
    runs: dict[str, list[float]] = {k: [] for k in names}
    with c.FakeServer(**CONCURRENT_SWITCHES) as fake, tempfile.TemporaryDirectory(prefix="bench-home-") as home:
        for r in range(rounds):
            for name in names[r % 3:] + names[:r % 3]:
                fake.reset()
                env = {"TALKINGHEAD_HOME": str(Path(home) / f"{name}-{r}"), "INFERENCE_API_KEY": c.API_KEY}
                res = c.run_child(Path(__file__), "--child", name, "--url", fake.url, "--jobs", str(jobs),
                                  "--warmup", str(warmup), env=env)
                runs[name].append(res["cpu_s"] / res["jobs"] * 1000)
    return {"jobs": jobs, "rounds": rounds, "cpu_ms": {k: _spread(v) for k, v in runs.items()},
            "ratio_raw": _spread([a / b for a, b in zip(runs["c-talkinghead"], runs["c-raw"], strict=True)]),
            "ratio_sdk": _spread([a / b for a, b in zip(runs["c-talkinghead"], runs["c-sdk"], strict=True)])}


def _fmt(s: dict, unit: str = "", digits: int = 2) -> str:
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def goals(data: dict) -> list[tuple[str, dict, float, str]]:
    """(figure, spread, target, anchor) for every goal this benchmark checks."""
    r = data["ratios"]
    return [
        ("AsyncClient submit + wait / sync-httpx floor", r["th-async/floor"], TARGET_FLOOR, "floor"),
        ("Client submit + wait / sync-httpx floor", r["th-sync/floor"], TARGET_FLOOR, "floor"),
        ("AsyncClient submit + wait / SDK", r["th-async/sdk"], TARGET_SDK, "SDK"),
        ("Client submit + wait / SDK", r["th-sync/sdk"], TARGET_SDK, "SDK"),
        ("AsyncClient on uvloop submit + wait / sync-httpx floor", r["th-async-uvloop/floor"], TARGET_FLOOR,
         "floor"),
        ("AsyncClient on uvloop submit + wait / SDK", r["th-async-uvloop/sdk"], TARGET_SDK, "SDK"),
        ("Client on uvloop submit + wait / SDK", r["th-sync-uvloop/sdk"], TARGET_SDK, "SDK"),
        ("AsyncClient.run / (submit + wait + download)", r["th-async-run/anchor"], TARGET_RUN,
         "own submit + wait + floor's download"),
        ("Client.run / (submit + wait + download)", r["th-sync-run/anchor"], TARGET_RUN,
         "own submit + wait + floor's download"),
        ("AsyncClient first job / SDK first job", r["th-async-first/sdk-first"], 1.0, "SDK first job"),
        ("Client first job / SDK first job", r["th-sync-first/sdk-first"], 1.0, "SDK first job"),
    ]


def report(data: dict) -> str:
    rows = []
    for name, s in data["results"].items():
        rows.append([CONTENDERS[name][0], _fmt(s["cpu_ms"]), " / ".join(f"{v:.2f}" for v in s["cpu_ms"]["all"]),
                     _fmt(s["first_ms"], digits=1), f"{s['setup_ms']['median']:.0f}", f"{s['requests_per_job']:.1f}"])
    lines = [f"overhead, like for like: {data['jobs']} jobs one at a time per contender, {data['rounds']} rounds "
             f"(order rotated), first job + {data['warmup']} warm-up not counted; process CPU (user + system); "
             f"fake step latency {data['switches']['step_latency']} s; inputs {c.FACE.name} + {c.MP3.name}",
             c.table(["contender", "CPU ms/job median (range)", "per round", "first job ms", "import+setup ms",
                      "req/job"], rows),
             f"download's own cost (floor + download - floor): {_fmt(data['download_ms'])} ms/job",
             "",
             c.table(["goal (ratio per round)", "median (range)", "target", "verdict"],
                     [[what, _fmt(s, "x"), f"<= {t:g}x vs {anchor}", c.verdict(s["median"], t, "x")]
                      for what, s, t, anchor in goals(data)])]
    if "concurrent" in data:
        cc = data["concurrent"]
        lines += ["", f"overhead, concurrent (earlier figures): {cc['jobs']} jobs 8 at a time, with the download, "
                      f"{cc['rounds']} rounds",
                  c.table(["contender", "CPU ms/job median (range)"],
                          [[CONCURRENT[k], _fmt(v)] for k, v in cc["cpu_ms"].items()]),
                  f"talkinghead / raw async httpx = {_fmt(cc['ratio_raw'], 'x')}; "
                  f"talkinghead / SDK = {_fmt(cc['ratio_sdk'], 'x')}"]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--concurrent-jobs", type=int, default=100, help="0 skips the concurrent part")
    p.add_argument("--concurrent-rounds", type=int, default=3)
    p.add_argument("--profile", metavar="CONTENDER", help="cProfile one contender's counted jobs and exit")
    p.add_argument("--json", action="store_true", help="print the figures as JSON too")
    p.add_argument("--child", choices=[*CONTENDERS, *CONCURRENT], help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        (child_concurrent if args.child in CONCURRENT else child)(args)
        return
    if args.profile:
        with c.FakeServer(**SWITCHES) as fake, tempfile.TemporaryDirectory(prefix="bench-home-") as home:
            import os
            import subprocess

            env = {**os.environ, "TALKINGHEAD_HOME": home, "INFERENCE_API_KEY": c.API_KEY}
            subprocess.run([c.PYTHON, __file__, "--child", args.profile, "--url", fake.url, "--jobs",
                            str(args.jobs), "--warmup", str(args.warmup),
                            "--profile", os.environ.get("PROFILE_SORT", "tottime")], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        return
    print(f"machine: {c.machine()}")
    data = measure(args.jobs, args.rounds, args.warmup, args.concurrent_jobs, args.concurrent_rounds)
    print(report(data))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
