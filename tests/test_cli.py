"""The CLI: listings, JSON output, exit codes and one readable line for every failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import wave

import pytest

from talkinghead.video import probe_video


def th(*args, env=None, cwd=None):
    full_env = {**os.environ, "TALKINGHEAD_PLUGINS": "mock", **(env or {})}
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd, timeout=120)


def assert_one_line_error(proc, code, *needles):
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for n in needles:
        assert n in lines[0]


def test_providers_json_lists_mock():
    proc = th("providers", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    mock = next(r for r in rows if r["provider"] == "mock")
    assert mock["model"] == "mock-avatar" and mock["configured"] is True
    assert mock["price_per_second"] == {"std": 0.01, "pro": 0.02}


@pytest.mark.parametrize("command", ["providers", "models"])
def test_a_listing_with_no_provider_says_so_or_prints_an_empty_array(command, tmp_path):
    env = {"TALKINGHEAD_PLUGINS": "", "TALKINGHEAD_HOME": str(tmp_path)}
    text, as_json = th(command, env=env), th(command, "--json", env=env)
    assert (text.returncode, text.stdout, text.stderr) == (0, "", "no providers installed (see TALKINGHEAD_PLUGINS)\n")
    assert (as_json.returncode, json.loads(as_json.stdout), as_json.stderr) == (0, [], "")


def test_generate_json_writes_playable_mp4(face, speech, tmp_path):
    out = tmp_path / "demo.mp4"
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech),
              "--output", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert {"job_id", "provider", "model", "status", "cost_usd", "duration_s", "output"} <= set(data)
    assert data["status"] == "completed" and data["provider"] == "mock" and data["output"] == str(out)
    info = probe_video(out)
    assert info.has_audio and info.has_video and abs(info.duration_s - 6.94) < 0.1


def test_estimate_json(face, speech):
    proc = th("estimate", "--provider", "mock", "--image", str(face), "--audio", str(speech), "--mode", "pro", "--json")
    assert proc.returncode == 0, proc.stderr
    (quote,) = json.loads(proc.stdout)
    assert quote["route"] == "mock/mock-avatar" and quote["mode"] == "pro"
    assert quote["cost_usd"] == pytest.approx(6.94 * 0.02, abs=0.002)


def test_prompt_too_long_exits_2(face, speech):
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech),
              "--prompt", "x" * 2501)
    assert_one_line_error(proc, 2, "prompt", "2501", "2500")


def test_gif_renamed_png_exits_2(tmp_path, speech):
    gif = tmp_path / "face.png"
    gif.write_bytes(b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
                    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
    proc = th("generate", "--provider", "mock", "--image", str(gif), "--audio", str(speech))
    assert_one_line_error(proc, 2, "image", "GIF")


def test_short_audio_exits_2(face, tmp_path):
    short = tmp_path / "short.wav"
    with wave.open(str(short), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(b"\x00\x00" * 24000)  # 1.5 s
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(short))
    assert_one_line_error(proc, 2, "audio", "1.5", "2 s minimum")


@pytest.mark.parametrize("fail", ["server_error@submit", "content_policy@run:1", "rate_limited"])
def test_provider_and_job_failures_exit_4(face, speech, tmp_path, fail):
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech),
              "--output", str(tmp_path / "x.mp4"), env={"TALKINGHEAD_MOCK_FAIL": fail})
    assert_one_line_error(proc, 4, "mock")
    assert not (tmp_path / "x.mp4").exists()


def test_max_cost_exits_3(face, speech):
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech), "--max-cost", "0.001")
    assert_one_line_error(proc, 3, "maximum")


def test_unknown_provider_exits_2(face, speech):
    proc = th("generate", "--provider", "nosuch", "--image", str(face), "--audio", str(speech))
    assert_one_line_error(proc, 2, "nosuch", "mock")


def test_help_reads_well():
    proc = th("generate", "--help")
    assert proc.returncode == 0
    for flag in ("--image", "--audio", "--text", "--prompt", "--mode", "--aspect-ratio", "--provider",
                 "--output", "--json", "--webhook"):
        assert flag in proc.stdout


def test_cli_choices_match_the_models():
    from talkinghead import cli, models, routing

    assert (cli.MODES, cli.ASPECTS, cli.POLICIES) == (models.MODES, models.ASPECT_RATIOS, routing.POLICIES)
    assert cli.RESOLUTIONS == models.RESOLUTIONS
