"""Run every benchmark (start-up, upload memory, overhead, scale, local render) and print every figure.

    python bench/run_all.py                 # what `make bench` runs (about 3 minutes)
    python bench/run_all.py --update-docs   # also rewrite the table in docs/performance.md
    python bench/run_all.py --quick         # fewer rounds and jobs: a smoke test, not figures

Each benchmark runs its contenders in child processes against a fake server in a process
of its own; see each script's docstring for what exactly is measured.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402
import overhead  # noqa: E402
import scale  # noqa: E402
import startup  # noqa: E402
import upload_memory  # noqa: E402

DOC = c.ROOT / "docs" / "performance.md"
START, END = "<!-- client-benchmarks:start -->", "<!-- client-benchmarks:end -->"


def run(quick: bool = False) -> dict:
    out: dict = {"machine": c.machine(), "python": platform.python_version(),
                 "date": time.strftime("%Y-%m-%d")}
    steps = [
        ("startup", lambda: startup.measure(runs=5 if quick else 21), startup.report),
        ("upload_memory", upload_memory.measure, upload_memory.report),
        ("overhead", lambda: overhead.measure(jobs=40 if quick else 200, rounds=1 if quick else 5),
         overhead.report),
        ("scale", lambda: scale.measure(jobs=100 if quick else 1000), scale.report),
    ]
    for name, measure, report in steps:
        t0 = time.perf_counter()
        data = measure()
        out[name] = data
        print(report(data))
        print(f"({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    # The local renderer's own benchmark (its table lives in the "Local renderer" section).
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).with_name("local_render.py")),
                    "--repeat", "1" if quick else "3"], check=False)
    print(f"(local_render: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    return out


def _row(what: str, value: str, target: str, verdict: str, command: str) -> str:
    return f"| {what} | {value} | {target} | {verdict} | `{command}` |"


def _verdict(value: float, limit: float, unit: str) -> str:
    if value <= limit:
        return "met"
    return f"**missed** by {value - limit:.2g}{unit} ({(value - limit) / limit * 100:+.0f}%)"


def markdown(d: dict) -> str:
    s, u, o, sc = d["startup"], d["upload_memory"], d["overhead"], d["scale"]
    med = s["median_ms"]
    res = o["results"]
    th, raw, raw_w, sdk = (res[k]["cpu_ms_per_job"] for k in ("talkinghead", "raw-fixed", "raw", "sdk"))
    sdk_growth = u["results"]["sdk"]["growth_mb"]
    rows = [
        _row("`import talkinghead` (median wall ms)", f"{med['import talkinghead']:.0f} ms", "<= 120 ms",
             _verdict(med["import talkinghead"], 120, " ms"), "python bench/startup.py"),
        _row("... vs `import inferencesh` (SDK: " + f"{med['import inferencesh']:.0f} ms)", f"{s['ratio']:.2f}x",
             "<= 0.65x", _verdict(s["ratio"], 0.65, "x"), "python bench/startup.py"),
        _row("`talkinghead --help`", f"{med['talkinghead --help']:.0f} ms", "<= 300 ms",
             _verdict(med["talkinghead --help"], 300, " ms"), "python bench/startup.py"),
        _row("peak RSS growth uploading 10 MB image + 5 MB audio", f"{u['growth_mb']:.2f} MB", "<= 5 MB",
             _verdict(u["growth_mb"], 5, " MB") + f" (SDK control: +{sdk_growth:.1f} MB)",
             "python bench/upload_memory.py"),
        _row("client CPU per job: talkinghead", f"{th:.2f} ms", "", "", "python bench/overhead.py"),
        _row("... raw httpx script, same httpx stack (sniffio fix)", f"{raw:.2f} ms", "", "",
             "python bench/overhead.py"),
        _row("... raw httpx script as written", f"{raw_w:.2f} ms", "", "", "python bench/overhead.py"),
        _row("... official SDK (sync, 8 threads)", f"{sdk:.2f} ms", "", "", "python bench/overhead.py"),
        _row("talkinghead / raw, like for like", f"{o['ratio']:.2f}x", "<= 1.3x", _verdict(o["ratio"], 1.3, "x"),
             "python bench/overhead.py"),
        _row("talkinghead / raw as written", f"{o['ratio_as_written']:.2f}x", "<= 1.3x",
             _verdict(o["ratio_as_written"], 1.3, "x"), "python bench/overhead.py"),
        _row("talkinghead / SDK", f"{o['ratio_sdk']:.2f}x", "", "", "python bench/overhead.py"),
        _row(f"{sc['jobs']:,} concurrent jobs in one AsyncClient: completed", f"{sc['completed']:,}",
             f"all {sc['jobs']:,}", "met" if sc["completed"] == sc["jobs"] else "**missed**",
             "python bench/scale.py"),
        _row("... peak RSS of the client process", f"{sc['peak_rss_mb']:.0f} MB "
             f"({sc['rss_ready_mb']:.0f} MB before the first job)", "<= 200 MB",
             _verdict(sc["peak_rss_mb"], 200, " MB"), "python bench/scale.py"),
        _row("... HTTP requests per job", f"{sc['requests_per_job']:.2f}", "reported", "",
             "python bench/scale.py"),
        _row("... wall time, client CPU per job", f"{sc['wall_s']:.1f} s, {sc['cpu_s'] / sc['jobs'] * 1000:.1f} ms",
             "", "", "python bench/scale.py"),
    ]
    per = ", ".join(f"{k} {v / sc['jobs']:.0f}" for k, v in sorted(sc["requests"].items()))
    return "\n".join([
        START,
        f"Latest run: {d['date']}, `make bench` (`python bench/run_all.py`). Machine: {d['machine']}.",
        "",
        "| figure | value | target | verdict | command |",
        "| --- | --- | --- | --- | --- |",
        *rows,
        "",
        f"Overhead rounds (ms/job, talkinghead): {' / '.join(f'{v:.2f}' for v in res['talkinghead']['all_ms'])}; "
        f"raw like for like: {' / '.join(f'{v:.2f}' for v in res['raw-fixed']['all_ms'])}. "
        f"Requests per job: talkinghead {res['talkinghead']['requests_per_job']:.0f}, raw "
        f"{res['raw']['requests_per_job']:.0f}, SDK {res['sdk']['requests_per_job']:.0f}. "
        f"Scale requests per job by endpoint: {per}.",
        END,
    ])


def update_docs(d: dict) -> None:
    block = markdown(d)
    if DOC.exists():
        text = DOC.read_text()
        if START in text and END in text:
            text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: block, text, flags=re.S)
        else:
            text = text.rstrip() + "\n\n## Client benchmarks\n\n" + block + "\n"
    else:
        text = "# Performance\n\n## Client benchmarks\n\n" + block + "\n"
    DOC.write_text(text)
    print(f"updated {DOC.relative_to(c.ROOT)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--update-docs", action="store_true", help="rewrite the table in docs/performance.md")
    p.add_argument("--quick", action="store_true", help="smoke test: fewer runs, jobs and rounds")
    p.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = p.parse_args()
    t0 = time.perf_counter()
    print(f"machine: {c.machine()}\n")
    data = run(quick=args.quick)
    print(f"all benchmarks: {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=2))
    if args.update_docs:
        if args.quick:
            sys.exit("--update-docs needs a full run (no --quick)")
        update_docs(data)


if __name__ == "__main__":
    main()
