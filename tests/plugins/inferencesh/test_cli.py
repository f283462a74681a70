"""``talkinghead generate --provider inferencesh`` in a subprocess against the fake server, as a
user would run it: INFERENCE_BASE_URL and INFERENCE_API_KEY in the environment, real sockets,
local files uploaded, the task followed to completion and the MP4 downloaded. The API key is
a canary that must never show up in the output, the logs or any file written."""

from __future__ import annotations

import functools
import json
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.plugins.shared import completed_report, generate_args, run_cli
from tests.plugins.suites import cli_exit_4_tests

from .conftest import FACE, MP3

CANARY = "inf_canary_" + secrets.token_hex(12)


@pytest.fixture
def cli(fake, tmp_path):
    home = tmp_path / "home"
    home.mkdir()

    def run(*args: str, config: str | None = None, key: str = CANARY) -> subprocess.CompletedProcess:
        if config is not None:
            (home / "config.toml").write_text(config)
        return run_cli(args, tmp_path=tmp_path, drop_env=("INFERENCE_",),
                       env={"INFERENCE_BASE_URL": fake.url, "INFERENCE_API_KEY": key, "TALKINGHEAD_HOME": str(home)},
                       canaries=lambda: {CANARY})

    return run


_generate = functools.partial(generate_args, "inferencesh")  # with the example MP3


def test_generate_end_to_end(cli, fake, tmp_path, video_bytes):
    fake.configure(step_latency=0.02)
    out = tmp_path / "out.mp4"
    # 1:1 is honoured: the app follows the photo, and the photo is square (9:16 would be refused).
    result = cli(*_generate(out, "--mode", "pro", "--prompt", "Smiles and nods", "--aspect-ratio", "1:1"))
    report = completed_report(result, "inferencesh")
    assert report["duration_s"] == 6.9 and report["cost_usd"] == pytest.approx(6.9 * 0.112, abs=1e-3)
    assert Path(report["output"]) == out and out.read_bytes() == video_bytes

    # the fake received the local files intact and the right input
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes(), "hello.mp3": MP3.read_bytes()}
    (create,) = fake.creates
    assert create.header("authorization") == f"Bearer {CANARY}"  # sent where it belongs, nowhere else
    inputs = create.json["input"]
    assert inputs["image"].endswith("/face.jpg") and inputs["audio"].endswith("/hello.mp3")
    assert (inputs["mode"], inputs["prompt"], inputs["aspect_ratio"]) == ("pro", "Smiles and nods", "1:1")
    assert "webhook" not in create.json
    assert [r.endpoint for r in fake.requests][-1] == "output"  # and then downloaded the video


def test_generate_passes_the_webhook_through(cli, fake, tmp_path):
    hook = fake.url + "/hooks/cli-job?token=opaque"
    result = cli(*_generate(tmp_path / "out.mp4", "--webhook", hook))
    assert result.returncode == 0, result.stderr
    assert fake.creates[0].json["webhook"] == hook


globals().update(cli_exit_4_tests(
    "inferencesh", failure={"task_error": "Task failed: no face detected in the image"},
    says="no face detected", env_var="INFERENCE_API_KEY", created=lambda fake: fake.creates))


def test_create_timeout_is_not_resent(cli, fake, tmp_path):
    fake.configure(create_delay=1.0)
    result = cli(*_generate(tmp_path / "out.mp4"), config="[providers.inferencesh]\ntimeout = 0.3\n")
    assert result.returncode == 4 and "not resent" in result.stderr
    assert len(fake.creates) == 1


def test_providers_lists_the_routes(cli):
    result = cli("providers", "--json")
    assert result.returncode == 0, result.stderr
    rows = [r for r in json.loads(result.stdout) if r["provider"] == "inferencesh"]
    # listed in routing order (cheapest first), so compared as a set of routes
    got = sorted((r["model"], r["price_per_second"], r["configured"], r["price_unconfirmed"]) for r in rows)
    assert got == sorted([
        ("kling-avatar", {"std": 0.056, "pro": 0.112}, True, False),
        ("omnihuman-1.5", {"std": 0.16}, True, True),
        ("fabric-1.0", {"480p": 0.08, "720p": 0.15}, True, False),
        ("heygen-photo", {"720p": 0.05, "1080p": 0.05, "4k": 0.067}, True, False),
        ("p-video-avatar", {"720p": 0.025, "1080p": 0.045}, True, False)])
    assert all(r["credentials"] == ["INFERENCE_API_KEY"] for r in rows)
    assert all(r["price_source"] and r["price_date"] for r in rows)


@pytest.mark.parametrize("extra, app", [
    (("--model", "omnihuman-1.5"), "bytedance/omnihuman-1-5"),
    (("--model", "fabric-1.0", "--mode", "pro"), "falai/fabric-1-0"),
])
def test_generate_other_models(cli, fake, tmp_path, extra, app):
    out = tmp_path / "out.mp4"
    result = cli(*_generate(out, *extra))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["model"] == extra[1]
    (create,) = fake.creates
    assert create.json["app"] == app


@pytest.mark.parametrize("extra, app, fields", [
    (("--model", "heygen-photo", "--voice", "v_abc"), "heygen/photo-video", {"script", "voice_id"}),
    (("--model", "p-video-avatar", "--language", "French"), "pruna/p-video-avatar",
     {"voice_script", "voice_language"}),
])
def test_generate_text_on_models_that_speak_it(cli, fake, tmp_path, extra, app, fields):
    out = tmp_path / "out.mp4"
    args = ["generate", "--provider", "inferencesh", "--image", str(FACE), "--text", "Bonjour à tous",
            "--output", str(out), "--json", *extra]
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    (create,) = fake.creates
    assert create.json["app"] == app and fields <= set(create.json["input"])
    assert "audio" not in create.json["input"] and len(fake.requests_to("upload")) == 1


def test_models_voices_and_estimate_any(cli):
    result = cli("models", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert {r["model"] for r in rows if r["provider"] == "inferencesh"} == {
        "kling-avatar", "omnihuman-1.5", "fabric-1.0", "heygen-photo", "p-video-avatar"}
    table = cli("models").stdout
    assert "inferencesh/omnihuman-1.5" in table and "UNCONFIRMED" in table

    voices = cli("voices", "--model", "p-video-avatar", "--provider", "inferencesh")
    assert voices.returncode == 0 and "Zephyr (Female)" in voices.stdout and "Hindi" in voices.stdout
    assert "HeyGen voice id" in cli("voices", "--model", "heygen-photo", "--provider", "inferencesh").stdout
    assert cli("voices", "--model", "nope").returncode == 3

    estimate = cli("estimate", "--image", str(FACE), "--audio", str(MP3), "--model", "any", "--json")
    assert estimate.returncode == 0, estimate.stderr
    quotes = [q for q in json.loads(estimate.stdout) if q["usable"]]
    assert quotes[0]["model"] == "p-video-avatar"
    assert {q["route"] for q in quotes} >= {"inferencesh/kling-avatar", "inferencesh/omnihuman-1.5"}
    text = cli("estimate", "--image", str(FACE), "--audio", str(MP3), "--model", "any", "--aspect-ratio", "9:16")
    assert "not usable" in text.stdout and "follows the photo" in text.stdout


def test_named_provider_refuses_with_the_reason(cli, fake, tmp_path):
    result = cli(*_generate(tmp_path / "o.mp4", "--model", "omnihuman-1.5", "--resolution", "1080p"))
    assert result.returncode == 2 and "resolution" in result.stderr and "no resolution choice" in result.stderr
    assert fake.requests == []
