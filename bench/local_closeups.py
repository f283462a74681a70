"""Close-ups of the example faces at rest, mid-word and mid-blink, as one PNG.

    python bench/local_closeups.py [-o docs/img/local-closeups.png]

Each row is one face, framed by the renderer as for a video (``prepare_scene``), then three
crops about the mouth and eyes: at rest, with the mouth half open (as on a stressed
syllable), and with the lids half closed. Drawn by ``Animator.still``, the frame function
the video uses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FACES = [("face.jpg", "16:9"), ("hopper.jpg", "9:16")]
TILE = 240


def closeups(name: str, aspect: str) -> np.ndarray:
    import cv2

    from talkinghead_local.render import prepare_scene

    animator, _ = prepare_scene(ROOT / "examples" / name, aspect)
    f = animator.face
    cx = int(f.center[0])
    top, bottom = int(f.left_eye[1] - 0.35 * f.h), int(f.mouth[1] + 0.3 * f.h)
    half = (bottom - top) // 2
    tiles = []
    for still in (animator.still(), animator.still(opening=0.6), animator.still(blink=0.6)):
        crop = still[top:bottom, cx - half:cx + half]
        tiles.append(cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_AREA))
    return np.hstack(tiles)


def main() -> int:
    import cv2

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "img" / "local-closeups.png")
    args = parser.parse_args()
    sheet = np.vstack([closeups(name, aspect) for name, aspect in FACES])
    cv2.imwrite(str(args.out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
