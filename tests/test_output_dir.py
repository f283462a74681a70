"""talkinghead.output_dir: a configured folder is the user's; a temporary one goes with us."""

from __future__ import annotations

from talkinghead.output_dir import OutputDir


async def test_a_configured_folder_is_made_and_never_removed(tmp_path):
    outputs = OutputDir(tmp_path / "mine" / "renders", "talkinghead-test-")
    assert outputs.path == tmp_path / "mine" / "renders" and outputs.path.is_dir()
    (outputs.path / "a.mp4").write_bytes(b"x")
    await outputs.remove()
    assert (tmp_path / "mine" / "renders" / "a.mp4").exists() and outputs.path == tmp_path / "mine" / "renders"


async def test_a_temporary_folder_is_removed_once_and_a_new_one_made_after():
    outputs = OutputDir(None, "talkinghead-test-")
    first = outputs.path
    assert first.is_dir() and first.name.startswith("talkinghead-test-") and outputs.path == first
    (first / "a.mp4").write_bytes(b"x")
    await outputs.remove()
    assert not first.exists()
    await outputs.remove()  # twice is harmless
    second = outputs.path
    assert second.is_dir() and second != first
    await outputs.remove()
    assert not second.exists()


def test_a_temporary_folder_goes_with_its_owner():
    outputs = OutputDir(None, "talkinghead-test-")
    made = outputs.path
    del outputs  # the last reference: the folder goes now, not at some later collection
    assert not made.exists()
