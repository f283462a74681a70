"""Run every benchmark (start-up, upload memory, overhead, scale, streams, local render) and print every figure.

    python bench/run_all.py                 # what `make bench` runs (about 10 minutes)
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
import streams  # noqa: E402
import upload_memory  # noqa: E402

DOC = c.ROOT / "docs" / "performance.md"
START, END = "<!-- client-benchmarks:start -->", "<!-- client-benchmarks:end -->"


def run(quick: bool = False) -> dict:
    out: dict = {"machine": c.machine(), "python": platform.python_version(),
                 "date": time.strftime("%Y-%m-%d")}
    steps = [
        ("startup", lambda: startup.measure(runs=5 if quick else 21), startup.report),
        ("upload_memory", upload_memory.measure, upload_memory.report),
        ("overhead", lambda: overhead.measure(jobs=10 if quick else 50, rounds=1 if quick else 5,
                                              concurrent_jobs=20 if quick else 100,
                                              concurrent_rounds=1 if quick else 3), overhead.report),
        ("scale", lambda: scale.measure(jobs=100 if quick else 1000), scale.report),
        ("streams", lambda: streams.measure(streams=30 if quick else 300, submits=30 if quick else 300,
                                            task_seconds=10 if quick else 40), streams.report),
    ]
    for name, measure, report in steps:
        t0 = time.perf_counter()
        data = measure()
        out[name] = data
        print(report(data))
        print(f"({name}: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    print(goals_table(out), "\n", flush=True)
    # The local renderer's own benchmark (its table lives in the "Local renderer" section).
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(Path(__file__).with_name("local_render.py")),
                    "--repeat", "1" if quick else "3"], check=False)
    print(f"(local_render: {time.perf_counter() - t0:.0f} s)\n", flush=True)
    return out


def _verdict(value: float, limit: float, unit: str) -> str:
    if value <= limit:
        return "met"
    return f"**missed** by {value - limit:.2g}{unit} ({(value - limit) / limit * 100:+.0f}%)"


def _spread(s: dict, unit: str = "", digits: int = 2) -> str:
    return f"{s['median']:.{digits}f}{unit} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def goals(d: dict) -> list[list[str]]:
    """One row per goal of the client-cost issue: figure, its anchor, value, target, verdict."""
    s, o, sc, st = d["startup"], d["overhead"], d["scale"], d["streams"]
    res = o["results"]
    rows = []
    for what, spread, target, anchor in overhead.goals(o):
        rows.append([what, anchor, _spread(spread, "x"), f"<= {target:g}x", _verdict(spread["median"], target, "x"),
                     "bench/overhead.py"])
    for name in ("th-async", "th-sync"):
        total = res[name]["setup_ms"]["median"] + res[name]["first_ms"]["median"]
        sdk_total = res["sdk"]["setup_ms"]["median"] + res["sdk"]["first_ms"]["median"]
        rows.append([f"{overhead.CONTENDERS[name][0].split(' submit')[0]}: import + client + first job",
                     f"SDK: {sdk_total:.0f} ms", f"{total:.0f} ms", "reported", "", "bench/overhead.py"])
    med = s["median_ms"]
    for cmd in startup.COMMANDS:
        rows.append([f"`{cmd}` wall (median of {s['runs']})", "-", f"{med[cmd]:.0f} ms (best {s['min_ms'][cmd]:.0f}, "
                     f"CPU {s['cpu_ms'][cmd]:.0f})", f"<= {startup.COMMAND_TARGET_MS:g} ms",
                     _verdict(med[cmd], startup.COMMAND_TARGET_MS, " ms"), "bench/startup.py"])
        rows.append([f"`{cmd}` peak RSS", "-", f"{s['rss_mib'][cmd]:.1f} MiB", f"<= {startup.COMMAND_TARGET_MIB:g} MiB",
                     _verdict(s["rss_mib"][cmd], startup.COMMAND_TARGET_MIB, " MiB"), "bench/startup.py"])
    rows.append(["`import talkinghead` / `import inferencesh`", f"SDK: {med['import inferencesh']:.0f} ms",
                 f"{s['ratio']:.2f}x ({s['ratio_range'][0]:.2f}-{s['ratio_range'][1]:.2f}); "
                 f"{med['import talkinghead']:.0f} ms",
                 f"<= {startup.IMPORT_RATIO_TARGET:g}x", _verdict(s["ratio"], startup.IMPORT_RATIO_TARGET, "x"),
                 "bench/startup.py"])
    rows.append([f"{sc['jobs']:,} jobs in flight in one AsyncClient: peak RSS", "-",
                 f"{sc['peak_rss_mb']:.0f} MB ({sc['completed']:,} completed)", f"<= {scale.RSS_TARGET_MB:g} MB",
                 _verdict(sc["peak_rss_mb"], scale.RSS_TARGET_MB, " MB"), "bench/scale.py"])
    rows.append([f"submit p99 while {st['streams_open_before']} jobs stream", "p99 with nothing open: "
                 f"{st['baseline']['p99'] * 1000:.0f} ms",
                 f"{st['ratio_p99']:.2f}x ({st['loaded']['p99'] * 1000:.0f} ms)",
                 f"<= {streams.RATIO_TARGET:g}x", _verdict(st["ratio_p99"], streams.RATIO_TARGET, "x"),
                 "bench/streams.py"])
    return rows


def goals_table(d: dict) -> str:
    rows = goals(d)
    return "goals, each figure with its anchor:\n" + c.table(
        ["goal", "anchor", "value (median, range)", "target", "verdict", "script"],
        [[r[0].replace("`", ""), *r[1:5], r[5]] for r in rows])


def markdown(d: dict) -> str:
    s, u, o, sc, st = d["startup"], d["upload_memory"], d["overhead"], d["scale"], d["streams"]
    res = o["results"]
    lines = [START,
             f"Latest run: {d['date']}, `make bench` (`python bench/run_all.py`). Machine: {d['machine']}.",
             "",
             "| goal | anchor | value: median (range over rounds) | target | verdict | command |",
             "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} | {r[4]} | `python {r[5]}` |" for r in goals(d)]
    lines += ["", f"CPU per job, like for like ({o['jobs']} jobs one at a time x {o['rounds']} rounds, order rotated; "
              "median (range) and each round):", "",
              "| contender | CPU ms/job | rounds | first job ms | import + client ms | requests/job |",
              "| --- | --- | --- | --- | --- | --- |"]
    for name, r in res.items():
        lines.append(f"| {overhead.CONTENDERS[name][0]} | {_spread(r['cpu_ms'])} | "
                     f"{' / '.join(f'{v:.2f}' for v in r['cpu_ms']['all'])} | {_spread(r['first_ms'], digits=1)} | "
                     f"{r['setup_ms']['median']:.0f} | {r['requests_per_job']:.1f} |")
    lines += ["", f"The download's own cost (floor with download minus floor): {_spread(o['download_ms'])} ms/job."]
    if "concurrent" in o:
        cc = o["concurrent"]
        lines += ["", f"Concurrent, the earlier figures ({cc['jobs']} jobs 8 at a time, with the download, "
                  f"{cc['rounds']} rounds): " + "; ".join(f"{overhead.CONCURRENT[k]} {_spread(v)} ms"
                                                          for k, v in cc["cpu_ms"].items())
                  + f"; talkinghead / raw async httpx {_spread(cc['ratio_raw'], 'x')}, / SDK "
                  f"{_spread(cc['ratio_sdk'], 'x')}."]
    med = s["median_ms"]
    lines += ["", f"Other figures: `talkinghead --help` {med['talkinghead --help']:.0f} ms (target <= "
              f"{startup.HELP_TARGET_MS:g} ms); peak RSS growth uploading 10 MB + 5 MB {u['growth_mb']:.2f} MB "
              f"(target <= 5 MB; SDK control +{u['results']['sdk']['growth_mb']:.1f} MB); {sc['jobs']:,} concurrent "
              f"jobs: {sc['completed']:,} completed, {sc['requests_per_job']:.2f} requests each, "
              f"{sc['rss_ready_mb']:.0f} MB before the first job, {sc['wall_s']:.1f} s wall, "
              f"{sc['cpu_s'] / sc['jobs'] * 1000:.1f} ms CPU per job; streams: submit p50 "
              f"{st['baseline']['p50'] * 1000:.0f} ms with nothing open, {st['loaded']['p50'] * 1000:.0f} ms with "
              f"{st['streams_open_before']} streams open (client peak RSS {st['peak_rss_mb']:.0f} MB).",
              END]
    return "\n".join(lines)


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
