"""Realism figures of the local renderer, today's (this checkout) beside another revision's.

    python bench/local_realism.py [--old main] [--seconds 6.9] [--resolution 720] [--json]

Each example face speaks the example speech; each video is rendered twice, by this
checkout's ``talkinghead_local`` and by the one at ``--old`` (extracted with ``git archive``
into a temporary folder and run in a child process with it first on ``sys.path``), and both
MP4s are measured the same way by ``talkinghead_local.realism.measure``, from the decoded
frames and the file's own audio alone. Targets (issue #18): mouth r >= 0.6, chin r >= 0.5,
1-3 blinks per 6 s, head RMS 1-6 px, edge ratios <= 2 (the video's gradient along the opened
mouth's and a closing lid's boundary, over the photo's own along its lip and lid line).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FACES = [("face.jpg", "16:9"), ("hopper.jpg", "9:16")]
SPEECH = ROOT / "examples" / "hello.wav"
TARGETS = {"mouth_r": (0.6, None), "chin_r": (0.5, None), "blinks_per_6s": (1.0, 3.0),
           "head_rms_px": (1.0, 6.0), "mouth_edge_ratio": (None, 2.0), "lid_edge_ratio": (None, 2.0)}
# The child renders with its own face finder; where that refuses the photo (today's cannot
# see eyes behind glasses) it is handed the face this checkout finds, so its drawing can
# still be compared.
RENDER = """
import json, sys
from talkinghead.errors import InputError
from talkinghead_local.face import Face, check_face
from talkinghead_local.render import render
photo, speech, out, aspect, resolution, fallback = sys.argv[1:7]
try:
    face = check_face(photo)
except InputError:
    face = Face(**json.loads(fallback))
    print("  (the renderer at --old found no face in", photo, "and was given this one's)", file=sys.stderr)
render(photo, speech, out, aspect_ratio=aspect, resolution=int(resolution), face=face)
"""


def old_package(ref: str, folder: Path) -> Path:
    """``plugins/local/src`` as it is at ``ref``, extracted under ``folder``."""
    archive = folder / "old.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), ref,
                    "plugins/local/src"], check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "old", filter="data")
    return folder / "old" / "plugins" / "local" / "src"


def fallback_face(photo: Path) -> str:
    """The face this checkout finds, as the fields an older ``Face`` takes (JSON)."""
    from talkinghead_local.face import check_face

    f = check_face(photo)
    return json.dumps({"x": f.x, "y": f.y, "w": f.w, "h": f.h, "left_eye": list(map(float, f.left_eye)),
                       "right_eye": list(map(float, f.right_eye)), "eye_size": float(f.eye_size),
                       "eyes_found": f.eyes_found, "mouth": list(map(float, f.mouth)),
                       "mouth_width": float(f.mouth_width), "image_size": list(f.image_size),
                       "weight": f.weight})


def render(source: Path | None, face: Path, out: Path, aspect: str, resolution: int) -> Path:
    """Render in a child process, with ``source`` (an old package) first on the path."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(source), env.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, "-c", RENDER, str(face), str(SPEECH), str(out), aspect,
                    str(resolution), fallback_face(face)], check=True, env=env, cwd=str(out.parent))
    return out


def ok(name: str, value: float) -> str:
    lo, hi = TARGETS[name]
    good = not math.isnan(value) and (lo is None or value >= lo) and (hi is None or value <= hi)
    return "ok" if good else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", default="main", help="git revision to compare with (default main)")
    parser.add_argument("--resolution", type=int, default=720)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", type=Path, help="also copy the rendered MP4s into this folder")
    args = parser.parse_args()
    from talkinghead_local.realism import measure

    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        old_src = old_package(args.old, folder)
        for name, aspect in FACES:
            face = ROOT / "examples" / name
            row = {}
            for label, source in ((args.old, old_src), ("new", None)):
                out = render(source, face, folder / f"{label}-{name}.mp4", aspect, args.resolution)
                row[label] = measure(out).as_dict()
                if args.keep:
                    args.keep.mkdir(parents=True, exist_ok=True)
                    shutil.copy(out, args.keep / out.name)
            results[f"{name} {aspect}"] = row
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    metrics = list(TARGETS)
    print(f"speech: {SPEECH.name}; resolution {args.resolution}; old = {args.old}, new = this checkout")
    for face, row in results.items():
        print(f"\n{face}")
        print(f"  {'figure':18} {'target':>10} {args.old:>10} {'new':>10}")
        for m in metrics:
            lo, hi = TARGETS[m]
            target = f">= {lo:g}" if hi is None else f"<= {hi:g}" if lo is None else f"{lo:g}-{hi:g}"
            old, new = row[args.old][m], row["new"][m]
            print(f"  {m:18} {target:>10} {old:10.2f} {new:10.2f}  {ok(m, new)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
