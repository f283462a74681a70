"""``talkinghead generate --provider kling`` in a subprocess against the fake server, as a
user would run it: KLING_BASE_URL, KLING_ACCESS_KEY and KLING_SECRET_KEY in the environment,
real sockets, the local files sent as base64, the task followed and the MP4 downloaded. The
keys, and every JWT the fake received, are canaries that must never show up in the output,
the logs or any file written (the journal included: TALKINGHEAD_HOME is a temp dir)."""

from __future__ import annotations

import base64
import functools
import json
import secrets
import subprocess
from pathlib import Path

import pytest

from tests.plugins.shared import completed_report, generate_args, run_cli

from .conftest import FACE, MP3

CANARY_AK = "ak_canary_" + secrets.token_hex(12)
CANARY_SK = "sk_canary_" + secrets.token_hex(20)


@pytest.fixture
def cli(fake, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    fake.configure(access_key=CANARY_AK, secret_key=CANARY_SK)
    # Kling's 5 s first poll would make these slow; a user's config file may tune it too.
    (home / "config.toml").write_text("[providers.kling]\npoll_first = 0.05\npoll_max = 0.1\nretry_backoff = 0.01\n")

    def run(*args: str, ak: str = CANARY_AK, sk: str = CANARY_SK) -> subprocess.CompletedProcess:
        return run_cli(args, tmp_path=tmp_path, drop_env=("KLING_",),
                       env={"KLING_BASE_URL": fake.url, "KLING_ACCESS_KEY": ak, "KLING_SECRET_KEY": sk,
                            "TALKINGHEAD_HOME": str(home)},
                       canaries=lambda: {ak, sk} | {r.token for r in fake.requests if r.token})

    return run


_generate = functools.partial(generate_args, "kling")  # with the example MP3 unless audio=None


def test_generate_end_to_end_with_local_files(cli, fake, tmp_path, video_bytes):
    fake.configure(step_latency=0.05)
    out = tmp_path / "out.mp4"
    result = cli(*_generate(out, "--mode", "pro", "--prompt", "Smiles and nods"))
    report = completed_report(result, "kling")
    # settled from what Kling billed: final_unit_deduction (6.9 s x 0.8 units/s in pro, "5.5")
    # at the standard pack's 0.14 USD per unit, not from the quote
    assert report["duration_s"] == 6.9 and report["cost_usd"] == pytest.approx(5.5 * 0.14, abs=1e-6)
    assert Path(report["output"]) == out and out.read_bytes() == video_bytes

    (create,) = fake.creates
    assert create.claims["iss"] == CANARY_AK  # the JWT went where it belongs, verified with the secret
    body = create.json
    assert base64.b64decode(body["image"]) == FACE.read_bytes() and base64.b64decode(body["sound_file"]) == \
        MP3.read_bytes()
    assert (body["mode"], body["prompt"], body["external_task_id"]) == ("pro", "Smiles and nods", report["job_id"])
    assert "callback_url" not in body
    assert [r.endpoint for r in fake.requests][-1] == "output"  # and then downloaded the video
    assert "job.completed" in result.stderr  # -vv logged the job's steps, and no secret in them


def test_generate_from_text_uses_kling_tts(cli, fake, tmp_path):
    text = "Good evening. Here is the news, read by a talking head."
    result = cli(*_generate(tmp_path / "out.mp4", "--text", text, "--voice", "uk_man2#en",
                            "--webhook", fake.url + "/hooks/cli", audio=None))
    assert result.returncode == 0, result.stderr
    (tts,) = fake.requests_to("tts")
    assert (tts.json["text"], tts.json["voice_id"], tts.json["voice_language"]) == (text, "uk_man2", "en")
    body = fake.creates[0].json
    assert body["audio_id"] in fake.audios and body["callback_url"] == fake.url + "/hooks/cli"


def test_wrong_secret_exits_4_naming_both_env_vars(cli, fake, tmp_path):
    result = cli(*_generate(tmp_path / "out.mp4"),
                 sk="sk_wrong_" + secrets.token_hex(20))
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert "KLING_ACCESS_KEY" in result.stderr and "KLING_SECRET_KEY" in result.stderr
    assert fake.tasks == {} and not (tmp_path / "out.mp4").exists()


def test_providers_lists_the_route_with_its_price(cli):
    result = cli("providers", "--json")
    assert result.returncode == 0, result.stderr
    rows = [r for r in json.loads(result.stdout) if r["provider"] == "kling"]
    assert [(r["model"], r["price_per_second"], r["configured"], r["native_text"]) for r in rows] == [
        ("kling-avatar", {"std": 0.056, "pro": 0.112}, True, True)]
    assert rows[0]["credentials"] == ["KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY"]
    # the pair is what the test environment sets, so that is what is in use
    assert rows[0]["credentials_in_use"] == ["KLING_ACCESS_KEY", "KLING_SECRET_KEY"]
    assert rows[0]["credentials_needed"] == "KLING_API_KEY, or KLING_ACCESS_KEY and KLING_SECRET_KEY"
    assert rows[0]["price_date"] == "2026-12-01" and "final_unit_deduction" in rows[0]["price_source"]
    assert rows[0]["failed_jobs_billed"] is False


def test_jobs_show_and_list_give_quote_reservation_and_what_kling_billed(cli, fake, tmp_path):
    fake.configure(step_latency=0.02)
    out = tmp_path / "out.mp4"
    assert cli(*_generate(out, "--mode", "pro")).returncode == 0
    listed = cli("jobs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    costs = row["costs"]
    # three different figures: the quote (measured audio x price), the reservation (= the
    # quote), and what Kling reported billing (units), which is what was settled
    assert costs["quote_usd"] == costs["reserved_usd"] == pytest.approx(row["quote"]["seconds"] * 0.112, abs=1e-4)
    assert costs["billed"] == {"units": 5.5, "seconds": None, "usd": pytest.approx(5.5 * 0.14)}
    assert costs["settled_usd"] == pytest.approx(5.5 * 0.14) and row["billed_units"] == 5.5
    shown = cli("jobs", "show", row["id"][:10])
    # show adds what the list leaves out: how far the settled cost went over the quote
    assert shown.returncode == 0 and json.loads(shown.stdout)["costs"] == costs | {"over_quote_usd": 0.0}
