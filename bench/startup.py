"""Start-up time: ``import talkinghead`` vs ``import inferencesh`` (the official SDK), and
``talkinghead --help``, each the median wall time of N fresh processes, run side by side.

Runs are interleaved (one of each command per round) so load on a shared machine hits all
of them alike. Bytecode is compiled before measuring (one untimed run of each, with
``PYTHONDONTWRITEBYTECODE`` unset), as an installed package would be; ``python -c pass`` is
measured too, to show the interpreter's own share.

    python bench/startup.py [--runs 21]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

IMPORT_TARGET_MS = 120.0
IMPORT_RATIO_TARGET = 0.65
HELP_TARGET_MS = 300.0


def commands() -> dict[str, list[str]]:
    return {
        "python -c pass": [c.PYTHON, "-c", "pass"],
        "import talkinghead": [c.PYTHON, "-c", "import talkinghead"],
        "import inferencesh": [c.PYTHON, "-c", "import inferencesh"],
        "talkinghead --help": [c.talkinghead_bin(), "--help"],
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the warm-up runs write .pyc files
    return env


def time_once(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=True)
    return (time.perf_counter() - t0) * 1000


def measure(runs: int = 21) -> dict:
    env = _env()
    cmds = commands()
    for cmd in cmds.values():  # warm-up: bytecode written, files in the page cache
        time_once(cmd, env)
        time_once(cmd, env)
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for _ in range(runs):
        for name, cmd in cmds.items():
            times[name].append(time_once(cmd, env))
    med = {name: c.median(v) for name, v in times.items()}
    return {"runs": runs, "median_ms": med, "min_ms": {k: min(v) for k, v in times.items()},
            "ratio": med["import talkinghead"] / med["import inferencesh"]}


def report(d: dict) -> str:
    med, low = d["median_ms"], d["min_ms"]
    ratio = d["ratio"]
    rows = [
        ["python -c pass (interpreter alone)", f"{med['python -c pass']:.0f}", f"{low['python -c pass']:.0f}", "", ""],
        ["python -c 'import talkinghead'", f"{med['import talkinghead']:.0f}", f"{low['import talkinghead']:.0f}",
         f"<= {IMPORT_TARGET_MS:g} ms", c.verdict(med["import talkinghead"], IMPORT_TARGET_MS, " ms")],
        ["python -c 'import inferencesh' (SDK 0.36.0)", f"{med['import inferencesh']:.0f}",
         f"{low['import inferencesh']:.0f}", "", ""],
        ["  talkinghead / inferencesh", f"{ratio:.2f}x", "", f"<= {IMPORT_RATIO_TARGET}x",
         c.verdict(ratio, IMPORT_RATIO_TARGET, "x")],
        ["talkinghead --help", f"{med['talkinghead --help']:.0f}", f"{low['talkinghead --help']:.0f}",
         f"<= {HELP_TARGET_MS:g} ms", c.verdict(med["talkinghead --help"], HELP_TARGET_MS, " ms")],
    ]
    return "\n".join([f"startup: wall ms per fresh process, median (and best) of {d['runs']} interleaved runs",
                      c.table(["command", "median ms", "best ms", "target", "verdict"], rows)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    print(f"machine: {c.machine()}")
    data = measure(args.runs)
    print(report(data))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
