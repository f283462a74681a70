"""Face checks: the example face passes; no face, two faces and a small face are refused."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from talkinghead.errors import InputError
from talkinghead_local.face import MIN_FACE_PX, check_face, find_faces

from .conftest import FACE


def test_example_face_passes_with_features_in_place(face_rgb):
    face = check_face(face_rgb)
    assert face.width >= MIN_FACE_PX
    assert face.image_size == (512, 512)
    assert face.eyes_found
    (lx, ly), (rx, ry) = face.left_eye, face.right_eye
    # Eyes in the upper half of the box, left of right, level; the mouth below them, centred.
    assert face.x < lx < face.x + face.w / 2 < rx < face.x + face.w
    assert face.y < ly < face.y + face.h / 2 and abs(ly - ry) < 0.1 * face.h
    mx, my = face.mouth
    assert max(ly, ry) + 0.3 * face.h < my < face.y + face.h
    assert abs(mx - (lx + rx) / 2) < 0.05 * face.w


def test_check_face_takes_paths_bytes_and_arrays(face_rgb):
    by_path, by_bytes = check_face(FACE), check_face(FACE.read_bytes())
    assert by_path.width == by_bytes.width == check_face(face_rgb).width


@pytest.mark.parametrize("image", [
    np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8),   # noise
    np.full((400, 600, 3), 180, np.uint8),                                       # a flat wall
], ids=["noise", "flat"])
def test_no_face_is_refused(image):
    with pytest.raises(InputError) as err:
        check_face(image)
    assert str(err.value) == "image: no face found"
    assert err.value.field == "image"


def test_two_faces_are_refused_with_the_count(face_rgb):
    with pytest.raises(InputError) as err:
        check_face(np.hstack([face_rgb, face_rgb]))
    assert str(err.value) == "image: 2 faces found; exactly one is needed"
    assert err.value.value == 2


def test_a_small_face_is_refused_with_its_size(face_rgb):
    small = cv2.resize(face_rgb, None, fx=0.69, fy=0.69, interpolation=cv2.INTER_AREA)
    assert len(find_faces(small)) == 1
    with pytest.raises(InputError) as err:
        check_face(small)
    m = re.fullmatch(r"image: the face is (\d+) px wide; at least 80 px is needed", str(err.value))
    assert m, str(err.value)
    assert 55 <= int(m[1]) < 80 and err.value.value == int(m[1])


def test_transparent_png_faces_are_found(face_rgb):
    rgba = np.dstack([face_rgb, np.full(face_rgb.shape[:2], 255, np.uint8)])
    assert check_face(rgba).width == check_face(face_rgb).width


def test_check_face_hook_serves_the_cloud_preflight(tmp_path):
    from talkinghead import plugins
    from talkinghead.media import inspect_image

    plugins.load_plugins()  # the entry point registers the hook, as for the CLI
    assert plugins.pm.hook.check_face(image=inspect_image(FACE)) is True
    noise = tmp_path / "noise.png"
    cv2.imwrite(str(noise), np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    with pytest.raises(InputError, match="no face found"):
        plugins.pm.hook.check_face(image=inspect_image(noise))
