"""Kling Avatar sold by three providers: quotes from all three, and fallback when the cheapest
fails, through the real CLI against the three loopback fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from talkinghead_fal.fake import serve as serve_fal
from talkinghead_inferencesh.fake import serve as serve_infsh
from talkinghead_kling.fake import serve as serve_kling

AK, SK = "ak-test-" + "0" * 24, "sk-test-" + "0" * 32
FAL = "00000000-test:0000test"


@pytest.fixture
def fakes():
    with serve_infsh() as infsh, serve_kling() as kling, serve_fal() as fal:
        kling.configure(access_key=AK, secret_key=SK)
        yield infsh, kling, fal


def th(tmp_path, fakes, *args):
    infsh, kling, fal = fakes
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / "config.toml").write_text("[providers.kling]\npoll_first = 0.05\npoll_max = 0.1\n"
                                      "[providers.inferencesh]\nretry_backoff = 0.01\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KLING_", "FAL_", "INFERENCE_", "TALKINGHEAD_"))}
    env.update(TALKINGHEAD_HOME=str(home), TALKINGHEAD_BLOCK_NETWORK="1",
               TALKINGHEAD_PLUGINS="inferencesh,kling,fal",
               INFERENCE_BASE_URL=infsh.url, INFERENCE_API_KEY="test-key-infsh",
               KLING_BASE_URL=kling.url, KLING_ACCESS_KEY=AK, KLING_SECRET_KEY=SK,
               FAL_BASE_URL=fal.url, FAL_KEY=FAL)
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)


def test_providers_and_estimate_list_all_three(tmp_path, fakes, face, speech):
    rows = json.loads(th(tmp_path, fakes, "providers", "--json").stdout)
    prices = {r["provider"]: r["price_per_second"] for r in rows if r["model"] == "kling-avatar"}
    assert prices == {"inferencesh": {"std": 0.056, "pro": 0.112}, "kling": {"std": 0.056, "pro": 0.112},
                      "fal": {"std": 0.0562, "pro": 0.115}}
    proc = th(tmp_path, fakes, "estimate", "--image", str(face), "--audio", str(speech), "--json")
    quotes = json.loads(proc.stdout)
    assert [q["provider"] for q in quotes] == ["inferencesh", "kling", "fal"]  # cheapest first
    assert all(q["model"] == "kling-avatar" for q in quotes)
    assert quotes[2]["cost_usd"] == pytest.approx(6.94 * 0.0562, abs=0.002)


def test_run_falls_back_when_the_cheapest_fails(tmp_path, fakes, face, speech):
    infsh, kling, fal = fakes
    infsh.configure(failures={"create": [503] * 10})
    out = tmp_path / "v.mp4"
    proc = th(tmp_path, fakes, "generate", "--image", str(face), "--audio", str(speech), "-o", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["provider"] == "kling" and out.stat().st_size > 0
    jobs = [json.loads(line) for line in th(tmp_path, fakes, "jobs", "list", "--json").stdout.splitlines()]
    assert [(j["provider"], j["status"]) for j in jobs] == [("inferencesh", "failed"), ("kling", "completed")]
    assert jobs[0]["settled_usd"] == 0.0 and "503" in jobs[0]["error"]
    creates = [r for r in infsh.requests if r.method == "POST" and r.path == "/apps/run"]
    assert len(creates) >= 1  # refused with 503, so retrying the create was safe
