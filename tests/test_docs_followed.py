"""docs/testing.md and docs/writing-a-plugin.md, followed literally: the files they show are
written out as an app would and run (testing.md), or are the shipped example (the plugin)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"```python\n# (\S+)\n(.*?)```", re.S)


def files_in(doc: str) -> dict[str, str]:
    """Each ```python block whose first line names its file (``# myapp/videos.py``)."""
    text = (ROOT / "docs" / doc).read_text()
    return {name: f"# {name}\n{body}" for name, body in BLOCK.findall(text)}


def test_testing_md_runs_as_written(pytester):
    files = files_in("testing.md")
    assert {"myapp/videos.py", "tests/test_videos.py", "tests/test_logging.py", "tests/test_replay.py"} <= set(files)
    for name, body in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    data = pytester.path / "tests" / "data"
    data.mkdir()
    for name in ("face.jpg", "hello.mp3", "hello.wav"):
        shutil.copy(ROOT / "examples" / name, data / name)
    (pytester.path / "tests" / "cassettes" / "test_replay").mkdir(parents=True)
    shutil.copy(ROOT / "cassettes" / "inferencesh" / "happy_std_uploads.yaml",
                pytester.path / "tests" / "cassettes" / "test_replay")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider", "--record-mode=none")
    result.assert_outcomes(passed=len([1 for b in files.values() for _ in re.finditer(r"^def test_", b, re.M)]))


def test_writing_a_plugin_md_shows_the_shipped_example():
    """The guide's code is the example plugin `make test` installs and runs, verbatim."""
    files = files_in("writing-a-plugin.md")
    example = ROOT / "examples" / "talkinghead-still"
    assert "examples/talkinghead-still/src/talkinghead_still/__init__.py" in files
    for name, body in files.items():
        shown = name.removeprefix("examples/talkinghead-still/")
        assert (example / shown).read_text() == body.split("\n", 1)[1], name
    toml = re.search(r"```toml\n# (\S+)\n(.*?)```", (ROOT / "docs" / "writing-a-plugin.md").read_text(), re.S)
    assert toml and (example / toml.group(1).removeprefix("examples/talkinghead-still/")).read_text() == toml.group(2)
