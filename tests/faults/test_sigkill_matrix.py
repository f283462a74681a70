"""A slice of the SIGKILL matrix (bench/sigkill_matrix.py) in the test suite: real CLI
processes killed during the create and during the download, then
``jobs resume``: no second create, no paid video lost."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_sigkill_slice_never_buys_twice_nor_loses_a_video():
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "sigkill_matrix.py"), "--runs", "1", "--only",
                           "during create,during the download"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    total = proc.stdout.strip().splitlines()[-1]
    assert "second creates 0, lost paid videos 0, .part files left 0" in total, proc.stdout
    # a kill during the create is recovered too: resume finds the task in inference.sh's task list
    assert "recovered by jobs resume alone 2, needing a person 0" in total, proc.stdout
