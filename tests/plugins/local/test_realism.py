"""Realism, measured on the decoded MP4 alone (``talkinghead_local.realism``): the mouth and
chin follow the loudness, blinks come at a natural rate, the head moves a little, and the
opened mouth and closing lids have no harder edges than the photo's own lip and lid lines."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead_local import render as R
from talkinghead_local.lips import find_lips
from talkinghead_local.realism import measure

from .conftest import EXAMPLES, SPEECH

FACES = [("face.jpg", "1:1"), ("hopper.jpg", "9:16")]


@pytest.mark.parametrize("name, aspect", FACES)
def test_output_video_moves_like_a_face_not_a_cutout(name, aspect, tmp_path):
    out = R.render(EXAMPLES / name, SPEECH, tmp_path / "out.mp4", aspect_ratio=aspect, resolution=360)
    fig = measure(out.path)
    assert fig.chin_r >= 0.5, fig
    assert 1 <= fig.blinks_per_6s <= 3, fig
    assert 0.5 <= fig.head_rms_px <= 6, fig          # at 360 px, half the 720 px scale
    assert fig.mouth_edge_ratio <= 2 and fig.lid_edge_ratio <= 2, fig
    assert fig.mouth_r >= 0.6, fig


def test_blink_moves_the_photos_own_lid_and_paints_nothing(face_rgb):
    animator, _ = R.prepare_scene(face_rgb, "1:1", 360)
    open_, shut = animator.still(), animator.still(blink=1.0)
    f = animator.face
    ex, ey = (int(v) for v in f.left_eye)
    r = int(0.34 * f.eye_size)
    box = (slice(ey - r, ey + r), slice(ex - r, ex + r))
    changed = np.abs(shut[box].astype(int) - open_[box].astype(int)).max(axis=2) > 20
    assert changed.mean() > 0.05                        # the eye did close
    assert (shut.astype(int) - open_.astype(int)).any(axis=2)[:ey - 3 * r].sum() == 0  # nothing above the brow
    # Every colour in the closed eye was already in the photo near that eye (warped, not drawn):
    # each closed-eye pixel is within a few levels of some pixel of the open eye's surroundings.
    near = open_[ey - 2 * r:ey + r, ex - 2 * r:ex + 2 * r].reshape(-1, 1, 3).astype(int)
    drawn = shut[box][changed].reshape(1, -1, 3).astype(int)
    nearest = np.abs(near - drawn).sum(axis=2).min(axis=0)
    assert np.percentile(nearest, 95) <= 24, np.percentile(nearest, 95)


def test_lips_are_found_by_colour_and_bound_the_mouth(face_rgb):
    from talkinghead_local.face import check_face

    face = check_face(face_rgb)
    lips = find_lips(face_rgb, (face.x, face.y, face.w, face.h), face.mouth)
    assert lips is not None
    assert 0.3 * face.w <= lips.width <= 0.55 * face.w
    assert lips.left[0] < face.mouth[0] < lips.right[0]
    assert lips.top < face.mouth[1] < lips.bottom
    assert face.mouth_width == pytest.approx(lips.width)
    # A grey photo has no colour to go by: no lips, and the face keeps its proportional guess.
    grey = np.repeat(face_rgb.mean(axis=2, keepdims=True), 3, axis=2).astype(np.uint8)
    assert find_lips(grey, (face.x, face.y, face.w, face.h), face.mouth) is None


@pytest.fixture(scope="module")
def small_animator(face_rgb):
    animator, _ = R.prepare_scene(face_rgb, "1:1", 240)
    return animator


def test_mouth_and_lids_change_only_their_own_regions(small_animator):
    """Invariant: whatever the opening, rounding and blink, with the head still, a frame
    differs from the photo only in the jaw box (mouth) and the eye boxes (lids), and a
    shut mouth with open eyes is the photo itself."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    a = small_animator
    rest_y, rest_uv = a.draw(0.0, 0.0, 0.0, (0.0, 0.0, 0.0))
    assert np.array_equal(rest_y, a.src_y) and np.array_equal(rest_uv, a.src_uv)
    allowed = np.zeros(rest_y.shape, bool)
    allowed[a.jaw] = True
    for box, _, _ in a.eyes:
        allowed[box] = True

    @settings(max_examples=30, deadline=None)
    @given(st.floats(0, 1), st.floats(-1, 1), st.floats(0, 1))
    def check(opening, rounding, blink):
        out_y, _ = a.draw(opening, rounding, blink, (0.0, 0.0, 0.0))
        changed = out_y != a.src_y
        assert not (changed & ~allowed).any()

    check()
