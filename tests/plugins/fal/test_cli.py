"""``talkinghead generate --provider fal`` in a subprocess against the fake server, as a user
would run it: FAL_BASE_URL and FAL_KEY in the environment, real sockets, local files uploaded,
the request followed to completion and the MP4 downloaded. The key is a canary shaped like a
real fal key that must never show up in the output, the logs or any file written (the journal
included: TALKINGHEAD_HOME is inside the test's directory)."""

from __future__ import annotations

import functools
import json
import secrets
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from tests.plugins.shared import completed_report, generate_args, run_cli
from tests.plugins.suites import cli_exit_4_tests

from .conftest import FACE, MP3

CANARY = f"{uuid.uuid4()}:{secrets.token_hex(16)}"


@pytest.fixture
def cli(fake, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, key: str = CANARY) -> subprocess.CompletedProcess:
        (home / "config.toml").write_text("[providers.fal]\npoll_interval = 0.02\npoll_max_interval = 0.05\n")
        return run_cli(args, tmp_path=tmp_path, drop_env=("FAL_",),
                       env={"FAL_BASE_URL": fake.url, "FAL_KEY": key, "TALKINGHEAD_HOME": str(home),
                            "TALKINGHEAD_CONFIG": str(home / "config.toml")},
                       canaries=lambda: {CANARY, *CANARY.split(":")})

    return run


_generate = functools.partial(generate_args, "fal")  # with the example MP3


def test_generate_end_to_end(cli, fake, tmp_path, video_bytes):
    fake.configure(step_latency=0.02)
    out = tmp_path / "out.mp4"
    hook = fake.url + "/hooks/cli-job"
    result = cli(*_generate(out, "--mode", "pro", "--prompt", "Smiles and nods", "--webhook", hook))
    report = completed_report(result, "fal")
    assert (tmp_path / "home" / "talkinghead.db").exists()  # the journal was scanned for the key too
    assert report["duration_s"] == 6.9 and report["cost_usd"] == pytest.approx(6.9 * 0.115, abs=1e-3)
    assert Path(report["output"]) == out and out.read_bytes() == video_bytes

    # the fake received the local files intact, then the submit at the pro endpoint
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes(), "hello.mp3": MP3.read_bytes()}
    (submit,) = fake.submits
    assert submit.path == "/fal-ai/kling-video/ai-avatar/v2/pro"
    assert submit.header("authorization") == f"Key {CANARY}"  # sent where it belongs, nowhere else
    assert all(r.header("authorization") is None for r in fake.requests_to("upload") + fake.requests_to("output"))
    assert submit.json["prompt"] == "Smiles and nods" and submit.json["image_url"].endswith("/face.jpg")
    assert httpx.URL(f"http://h/?{submit.query}").params["fal_webhook"] == hook
    assert [r.endpoint for r in fake.requests if r.endpoint != "hook"][-1] == "output"  # then downloaded


globals().update(cli_exit_4_tests(
    "fal", failure={"completed_error": ("Runner disconnected", "runner_disconnected", 503)},
    says="Runner disconnected", env_var="FAL_KEY", created=lambda fake: fake.submits))


def test_providers_lists_the_routes(cli):
    result = cli("providers", "--json")
    assert result.returncode == 0, result.stderr
    rows = [r for r in json.loads(result.stdout) if r["provider"] == "fal"]
    # listed in routing order (cheapest first), so compared as a set of routes
    assert sorted((r["model"], r["price_per_second"], r["configured"], r["aspect"]) for r in rows) == sorted([
        ("kling-avatar", {"std": 0.0562, "pro": 0.115}, True, "follows_photo"),
        ("omnihuman-1.5", {"std": 0.16, "pro": 0.16}, True, "follows_photo"),
        ("fabric-1.0", {"480p": 0.08, "720p": 0.15}, True, "follows_photo"),
        ("aurora", {"480p": 0.07, "720p": 0.14}, True, "follows_photo"),
        ("heygen-photo", {"std": 0.10, "pro": 0.10}, True, "controls")])
    assert all(r["credentials"] == ["FAL_KEY"] for r in rows)


@pytest.mark.parametrize("extra, endpoint", [
    (("--model", "omnihuman-1.5"), "fal-ai/bytedance/omnihuman/v1.5"),
    (("--model", "fabric-1.0"), "veed/fabric-1.0"),
    (("--model", "aurora", "--mode", "pro"), "fal-ai/creatify/aurora"),
])
def test_generate_other_models(cli, fake, tmp_path, extra, endpoint):
    result = cli(*_generate(tmp_path / "out.mp4", *extra))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == extra[1]
    (submit,) = fake.submits
    assert submit.path == f"/{endpoint}"


def test_generate_heygen_with_text_and_voice(cli, fake, tmp_path):
    result = cli("generate", "--provider", "fal", "--model", "heygen-photo", "--image", str(FACE),
                 "--text", "Hello there", "--voice", "Melissa", "--prompt", "smiles",
                 "--output", str(tmp_path / "o.mp4"), "--json")
    assert result.returncode == 0, result.stderr
    (submit,) = fake.submits
    assert (submit.json["prompt"], submit.json["voice"]) == ("Hello there", "Melissa")  # the text it speaks
    # Our motion prompt has no field here: one warning line, and it is not sent.
    assert result.stderr.count("cannot use a prompt") == 1
