"""Wall time and real-time factor of the local renderer, per aspect ratio.

    python bench/local_render.py [--seconds 10] [--repeat 3] [--resolution 720] [--json]

Renders ``--seconds`` of the example speech (repeated to length) from the example photo at
each aspect ratio, at the default resolution (1280x720, 720x1280, 720x720), end to end as
the provider does: face detection, framing, motion planning, drawing and encoding (H.264 +
AAC). One small warm-up render first, so library loading is not counted. Prints the median
and best of ``--repeat`` runs and whether the targets are met (real-time factor = seconds of
video per second of wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "face.jpg"
SPEECH = ROOT / "examples" / "hello.wav"
TARGETS = {"16:9": 4.0, "9:16": 4.0, "1:1": 8.0}  # x real time, on the 2-core machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def speech_clip(seconds: float, folder: Path) -> Path:
    from talkinghead_local.motion import decode_mono

    rate = 16_000
    speech = decode_mono(SPEECH, rate)
    gap = np.zeros(int(0.4 * rate), np.float32)
    unit = np.concatenate([speech, gap])
    clip = np.tile(unit, int(np.ceil(seconds * rate / unit.size)))[:round(seconds * rate)]
    path = folder / f"speech-{seconds:g}s.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((clip * 32767).astype("<i2").tobytes())
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--resolution", default=None, help="short side or WxH (default 720)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from talkinghead_local.render import frame_dims, render

    rows = []
    with tempfile.TemporaryDirectory(prefix="talkinghead-bench-") as tmp:
        folder = Path(tmp)
        audio = speech_clip(args.seconds, folder)
        render(FACE, speech_clip(2.0, folder), folder / "warm.mp4", aspect_ratio="1:1", resolution=240)
        load = os.getloadavg()[0]
        for aspect in ("16:9", "9:16", "1:1"):
            walls, cpus = [], []
            for _ in range(args.repeat):
                t, c = time.perf_counter(), time.process_time()
                render(FACE, audio, folder / "out.mp4", aspect_ratio=aspect, resolution=args.resolution)
                walls.append(time.perf_counter() - t)
                cpus.append(time.process_time() - c)
            median = statistics.median(walls)
            width, height = frame_dims(aspect, args.resolution)
            rows.append({"aspect_ratio": aspect, "size": f"{width}x{height}",
                         "seconds": args.seconds, "wall_s": round(median, 3),
                         "best_wall_s": round(min(walls), 3), "cpu_s": round(statistics.median(cpus), 3),
                         "realtime_x": round(args.seconds / median, 2),
                         "best_realtime_x": round(args.seconds / min(walls), 2),
                         "target_x": TARGETS[aspect] if args.resolution is None else None})
    machine = {"nproc": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version(),
               "load_1min_before": round(load, 2)}
    if args.json:
        print(json.dumps({"machine": machine, "results": rows}, indent=2))
    else:
        print(f"machine: {machine['nproc']} CPUs, {machine['cpu']}, Python {machine['python']}, "
              f"1-min load {machine['load_1min_before']} before the runs")
        print(f"{args.seconds:g} s of speech, median (best) of {args.repeat} runs\n")
        print("| aspect | size | wall s | x real time | best x | CPU s | target | met |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for r in rows:
            target = r["target_x"]
            met = "-" if target is None else ("yes" if r["realtime_x"] >= target else "NO")
            print(f"| {r['aspect_ratio']} | {r['size']} | {r['wall_s']:.2f} | {r['realtime_x']:.1f}x | "
                  f"{r['best_realtime_x']:.1f}x | {r['cpu_s']:.2f} | "
                  f"{'-' if target is None else f'>= {target:g}x'} | {met} |")
    missed = [r for r in rows if r["target_x"] is not None and r["realtime_x"] < r["target_x"]]
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
