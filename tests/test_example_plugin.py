"""The example third-party plugin (examples/talkinghead-still), installed by `make test` like
any plugin a user writes from docs/writing-a-plugin.md, run through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from talkinghead.video import probe_video

AUDIO_S = 6.94


def th(*args, tmp_path, plugins="still"):
    env = {**os.environ, "TALKINGHEAD_PLUGINS": plugins, "TALKINGHEAD_HOME": str(tmp_path / "home"),
           "TMPDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], capture_output=True, text=True,
                          env=env, timeout=180)


def test_plugins_and_providers_list_it(tmp_path):
    rows = json.loads(th("plugins", "--json", tmp_path=tmp_path).stdout)
    still = next(r for r in rows if r["name"] == "still")
    assert still == {"name": "still", "distribution": "talkinghead-still", "version": "0.1.0",
                     "entry_point": "talkinghead_still", "status": "loaded", "routes": ["still/still-photo"],
                     "error": None}
    (route,) = json.loads(th("providers", "--json", tmp_path=tmp_path).stdout)
    assert route["route"] == "still/still-photo" and route["kind"] == "local" and route["configured"]


def test_estimate_quotes_it_free(face, speech, tmp_path):
    proc = th("estimate", "--image", str(face), "--audio", str(speech), "--json", tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (quote,) = json.loads(proc.stdout)
    assert quote["route"] == "still/still-photo" and quote["cost_usd"] == 0 and quote["usable"]
    assert quote["seconds"] == pytest.approx(AUDIO_S, abs=0.05)


@pytest.mark.parametrize("aspect, size", [("16:9", (640, 360)), ("9:16", (360, 640))])
def test_generate_makes_a_still_video_with_the_audio(face, speech, tmp_path, aspect, size):
    out = tmp_path / "still.mp4"
    proc = th("generate", "--image", str(face), "--audio", str(speech), "--aspect-ratio", aspect, "-o", str(out),
              "--json", tmp_path=tmp_path)  # no --provider: the router picks it (kind local, usable)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["provider"] == "still" and result["cost_usd"] == 0
    info = probe_video(out)
    assert (info.width, info.height) == size and info.has_audio
    assert info.duration_s == pytest.approx(AUDIO_S, abs=0.1)
    assert not list(tmp_path.glob("talkinghead-still-*"))  # the plugin removed its temp files
    listed = th("jobs", "list", "--json", tmp_path=tmp_path).stdout.splitlines()
    assert json.loads(listed[0])["status"] == "completed"


def test_a_url_input_is_refused_before_anything_runs(speech, tmp_path):
    proc = th("generate", "--provider", "still", "--image", "https://example.com/face.jpg", "--audio", str(speech),
              "-o", str(tmp_path / "o.mp4"), tmp_path=tmp_path)
    assert proc.returncode == 2 and "image" in proc.stderr and "not a URL" in proc.stderr
