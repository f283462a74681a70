"""Shared plumbing for the benchmarks: the fake inference.sh server in a process of its own,
child processes that report JSON, CPU and memory readings, and table printing.

The fake runs in a separate process so that its CPU time and memory never count against
the client being measured. It is controlled over stdin/stdout, one line per command:
``stats`` (request counts per endpoint since the last reset), ``reset`` and ``quit``.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
FACE = EXAMPLES / "face.jpg"
MP3 = EXAMPLES / "hello.mp3"
WAV = EXAMPLES / "hello.wav"
API_KEY = "bench-key-0123456789abcdef"
PYTHON = sys.executable


# -- the fake server, in its own process ---------------------------------------------------

class FakeServer:
    """``with FakeServer(step_latency=0.05) as fake: fake.url, fake.stats(), fake.reset()``."""

    def __init__(self, **switches: Any) -> None:
        self.switches = switches
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FakeServer:
        self.proc = subprocess.Popen(
            [PYTHON, str(Path(__file__).resolve()), "serve", json.dumps(self.switches)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        if not line.startswith("http"):
            self.proc.kill()
            raise RuntimeError(f"the fake server did not start: {line!r}")
        self.url = line.strip()
        return self

    def _ask(self, command: str) -> Any:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def stats(self) -> dict[str, int]:
        return self._ask("stats")

    def reset(self, **switches: Any) -> None:
        self._ask("reset " + json.dumps({**self.switches, **switches}))

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        try:
            self._ask("quit")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _serve(switches_json: str) -> None:
    """The server process: the plugin's fake, minus the memory of upload bodies (it would
    otherwise keep every uploaded byte, which a 1,000-job run does not need)."""
    from talkinghead.testing.loopback import tiny_mp4
    from talkinghead_inferencesh.fake import FakeInferenceSh, serve

    class LeanFake(FakeInferenceSh):
        async def upload(self, request):  # type: ignore[override]
            response = await super().upload(request)
            entry = self.files.get(request.path_params["fid"])
            if entry is not None and entry.get("data") is not None:
                entry["data"] = b""
            for rec in reversed(self.requests):
                if rec.endpoint == "upload" and rec.path == request.url.path:
                    rec.body = b""
                    break
            return response

    fake = LeanFake(video=tiny_mp4(), **json.loads(switches_json))
    with serve(fake) as server:
        print(server.url, flush=True)
        for line in sys.stdin:
            command, _, arg = line.strip().partition(" ")
            if command == "stats":
                counts = Counter(r.endpoint for r in server.requests)
                print(json.dumps(dict(counts)), flush=True)
            elif command == "reset":
                server.reset(**json.loads(arg or "{}"))
                print("{}", flush=True)
            elif command == "quit":
                print("{}", flush=True)
                break


# -- child processes -----------------------------------------------------------------------

def run_child(script: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run ``python script args...``; its last stdout line is JSON, which is returned."""
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run([PYTHON, str(script), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{script.name} {' '.join(args)} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def vm_kb(field: str) -> int:
    """A field of /proc/self/status in kB (VmRSS, VmHWM), or ru_maxrss where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0: write 5 to clear_refs). True if done."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


# -- reporting -----------------------------------------------------------------------------

def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        memory = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, IndexError, ValueError):
        pass
    return (f"nproc {os.cpu_count()}, CPU {model!r}{memory}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for n, row in enumerate(cells):
        pairs = enumerate(zip(row, widths, strict=False))  # a row's cells past the headers are dropped
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in pairs))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def verdict(value: float, limit: float, unit: str = "", lower_is_better: bool = True) -> str:
    ok = value <= limit if lower_is_better else value >= limit
    if ok:
        return "met"
    over = (value - limit) / limit * 100 if limit else float("inf")
    return f"MISSED by {value - limit:.3g}{unit} ({over:+.0f}%)"


def talkinghead_bin() -> str:
    here = Path(PYTHON).parent / "talkinghead"
    return str(here) if here.exists() else (shutil.which("talkinghead") or "talkinghead")


def now() -> float:
    return time.perf_counter()


if __name__ == "__main__" and len(sys.argv) >= 2 and sys.argv[1] == "serve":
    _serve(sys.argv[2] if len(sys.argv) > 2 else "{}")
