"""Start-up time: ``import talkinghead`` vs ``import inferencesh`` (the official SDK),
``talkinghead --help``, ``talkinghead providers`` and ``talkinghead estimate`` (whole
processes: wall time, CPU time and peak RSS), each the median of N fresh processes, run side
by side.

Runs are interleaved (one of each command per round) so load on a shared machine hits all
of them alike. Bytecode is compiled before measuring (one untimed run of each, with
``PYTHONDONTWRITEBYTECODE`` unset), as an installed package would be; ``python -c pass`` is
measured too, to show the interpreter's own share. Then each of ``providers`` and
``estimate`` is run once more to list what it imported of the heavy modules (none expected:
numpy, OpenCV, PyAV, httpx, asyncio, ...) and the load average is printed, since wall times
on a shared machine depend on it.

With ``--instructions``, ``python -c pass``, ``providers`` and ``estimate`` are also run once
each under valgrind (callgrind) and the instructions each executes are printed: a count that
does not depend on the machine's load, for comparing two versions on a busy machine.

With ``--against DIR`` (another version's source tree, e.g. ``git archive main | tar -x -C
DIR``), ``providers`` and ``estimate`` are also run with DIR's ``src``, ``plugins/*/src`` and
``examples/*/src`` first on ``PYTHONPATH`` (same interpreter, same installed dependencies),
interleaved with the others: a before/after comparison within one run.

    python bench/startup.py [--runs 21] [--instructions] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

IMPORT_TARGET_MS = 120.0
IMPORT_RATIO_TARGET = 0.1   # import talkinghead / import inferencesh
HELP_TARGET_MS = 300.0
COMMAND_TARGET_MS = 150.0   # talkinghead providers / estimate, whole process
COMMAND_TARGET_MIB = 40.0


AGAINST = " (--against)"


def commands(against: Path | None = None) -> dict[str, list[str]]:
    cmds = {
        "python -c pass": [c.PYTHON, "-c", "pass"],
        "import talkinghead": [c.PYTHON, "-c", "import talkinghead"],
        "import inferencesh": [c.PYTHON, "-c", "import inferencesh"],
        "talkinghead --help": [c.talkinghead_bin(), "--help"],
        "talkinghead providers": [c.talkinghead_bin(), "providers"],
        "talkinghead estimate": [c.talkinghead_bin(), "estimate", "--image", str(c.FACE), "--audio", str(c.MP3)],
    }
    if against is not None:
        cmds.update({name + AGAINST: cmds[name] for name in COMMANDS})
    return cmds

COMMANDS = ("talkinghead providers", "talkinghead estimate")
HEAVY = ("numpy", "cv2", "av", "httpx", "jwt", "cryptography", "structlog", "rich", "asyncio", "ssl")
LOADED_SCRIPT = f"""
import json, sys, types
from talkinghead.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
print(json.dumps([m for m in {HEAVY!r} if type(sys.modules.get(m)) is types.ModuleType]))
"""


def heavy_loaded(name: str) -> list[str]:
    """The heavy modules one run of a command imported (lazy placeholders do not count)."""
    args = commands()[name][1:]
    out = subprocess.run([c.PYTHON, "-c", LOADED_SCRIPT, *args], capture_output=True, text=True, check=True)
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def _env(name: str = "", against: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # let the warm-up runs write .pyc files
    if name.endswith(AGAINST) and against is not None:
        tree = against.resolve()
        paths = [tree / "src", *sorted(tree.glob("plugins/*/src")), *sorted(tree.glob("examples/*/src"))]
        env["PYTHONPATH"] = os.pathsep.join(str(x) for x in paths)
    return env


def time_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Wall ms, CPU ms (user + system) and peak RSS (MiB) of one fresh process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = (time.perf_counter() - t0) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def instructions(name: str, against: Path | None = None) -> float:
    """Millions of instructions one run of a command executes (valgrind's callgrind)."""
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          *commands(against)[name]], capture_output=True, text=True, env=_env(name, against),
                         check=True)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if found is None:
        raise RuntimeError(f"valgrind gave no instruction count for {name}")
    return int(found.group(1)) / 1e6


def measure(runs: int = 21, against: Path | None = None) -> dict:
    cmds = commands(against)
    envs = {name: _env(name, against) for name in cmds}
    for name, cmd in cmds.items():  # warm-up: bytecode written, files in the page cache
        time_once(cmd, envs[name])
        time_once(cmd, envs[name])
    times: dict[str, list[float]] = {name: [] for name in cmds}
    cpu: dict[str, list[float]] = {name: [] for name in cmds}
    rss: dict[str, list[float]] = {name: [] for name in cmds}
    for r in range(runs):
        names = list(cmds)
        for name in names[r % len(names):] + names[:r % len(names)]:  # order rotated
            wall, cpu_ms, rss_mib = time_once(cmds[name], envs[name])
            times[name].append(wall)
            cpu[name].append(cpu_ms)
            rss[name].append(rss_mib)
    med = {name: c.median(v) for name, v in times.items()}
    loaded = {name: heavy_loaded(name) for name in COMMANDS}
    ratios = [a / b for a, b in zip(times["import talkinghead"], times["import inferencesh"], strict=True)]
    return {"runs": runs, "median_ms": med, "min_ms": {k: min(v) for k, v in times.items()},
            "max_ms": {k: max(v) for k, v in times.items()},
            "cpu_ms": {k: c.median(v) for k, v in cpu.items()}, "rss_mib": {k: max(v) for k, v in rss.items()},
            "ratio": med["import talkinghead"] / med["import inferencesh"],
            "ratio_range": [min(ratios), max(ratios)], "heavy_loaded": loaded, "load_average": os.getloadavg()}


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
    for name in COMMANDS:
        rows.append([name, f"{med[name]:.0f}", f"{low[name]:.0f}", f"<= {COMMAND_TARGET_MS:g} ms",
                     c.verdict(med[name], COMMAND_TARGET_MS, " ms")])
        rows.append(["  its CPU time (user + system), median", f"{d['cpu_ms'][name]:.0f}", "", "", ""])
        rows.append(["  its peak RSS, MiB (largest run)", f"{d['rss_mib'][name]:.1f}", "",
                     f"<= {COMMAND_TARGET_MIB:g} MiB", c.verdict(d["rss_mib"][name], COMMAND_TARGET_MIB, " MiB")])
        other = name + AGAINST
        if other in med:
            rows.append(["  the same, --against's code: wall / CPU / RSS", f"{med[other]:.0f}", f"{low[other]:.0f}",
                         f"CPU {d['cpu_ms'][other]:.0f}", f"{d['rss_mib'][other]:.1f} MiB"])
    loads = "; ".join(f"{name}: {', '.join(mods) or 'none'}" for name, mods in d["heavy_loaded"].items())
    load = " ".join(f"{x:.1f}" for x in d["load_average"])
    return "\n".join([f"startup: wall ms per fresh process, median (and best) of {d['runs']} interleaved runs "
                      f"(order rotated); import ratio per run {d['ratio_range'][0]:.2f}-{d['ratio_range'][1]:.2f}x",
                      c.table(["command", "median ms", "best ms", "target", "verdict"], rows),
                      f"heavy modules imported ({', '.join(HEAVY)}): {loads}",
                      f"load average at the end (1, 5, 15 min): {load}"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=21)
    p.add_argument("--json", action="store_true")
    p.add_argument("--instructions", action="store_true", help="also count instructions under valgrind")
    p.add_argument("--against", type=Path, metavar="DIR", help="another version's source tree to compare with")
    args = p.parse_args()
    print(f"machine: {c.machine()}")
    data = measure(args.runs, args.against)
    print(report(data))
    if args.instructions:
        if shutil.which("valgrind") is None:
            raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
        names = ["python -c pass", *COMMANDS] + ([n + AGAINST for n in COMMANDS] if args.against else [])
        data["instructions_m"] = {name: instructions(name, args.against) for name in names}
        print("instructions executed, one run each under valgrind (millions): "
              + "; ".join(f"{name} {n:.0f}" for name, n in data["instructions_m"].items()))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
