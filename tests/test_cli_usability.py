"""The CLI as a new user meets it: what estimate shows without keys, the mock never chosen
implicitly, --json errors, -v anywhere, empty listings, file modes, the demo's journal."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
KEYS = ("INFERENCE_API_KEY", "FAL_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY")
CLOUD = {"inferencesh": "INFERENCE_API_KEY", "fal": "FAL_KEY", "kling": "KLING_ACCESS_KEY"}


def th(*args, plugins="mock,local,inferencesh,kling,fal", env=None, home=None, umask=None):
    full = {k: v for k, v in os.environ.items() if k not in KEYS and k != "TALKINGHEAD_ALLOW_TEST_ROUTES"}
    full.update({"TALKINGHEAD_PLUGINS": plugins, **(env or {})})
    if home is not None:
        full["TALKINGHEAD_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "talkinghead.cli", *args], capture_output=True, text=True,
                          env=full, timeout=180, preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


# -- estimate quotes every route -------------------------------------------------------------

def test_estimate_without_keys_quotes_the_cloud_and_marks_what_it_needs(face, speech):
    proc = th("estimate", "--image", str(face), "--audio", str(speech), "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    by_provider = {r["provider"]: r for r in rows}
    for name, env in CLOUD.items():
        row = by_provider[name]
        assert row["usable"] is False and env in row["needs"] and row["cost_usd"] > 0
    assert by_provider["local"]["usable"] is True
    assert "mock" not in by_provider  # a test double stands in for a model only when named
    costs = [r["cost_usd"] for r in rows]
    assert costs == sorted(costs)  # cheapest first, usable or not


def test_estimate_named_cloud_provider_without_keys(face, speech):
    proc = th("estimate", "--provider", "inferencesh", "--image", str(face), "--audio", str(speech))
    assert proc.returncode == 0, proc.stderr
    assert "inferencesh/kling-avatar" in proc.stdout and "[needs INFERENCE_API_KEY]" in proc.stdout
    assert "x $0.0560/s = $0.38" in proc.stdout  # ~6.94 s x 0.056 USD/s


def test_submission_still_needs_credentials(face, speech, tmp_path):
    proc = th("generate", "--provider", "inferencesh", "--image", str(face), "--audio", str(speech),
              "-o", str(tmp_path / "o.mp4"), home=tmp_path / "h")
    assert proc.returncode == 3 and "INFERENCE_API_KEY" in proc.stderr


def test_short_text_estimates_on_every_route(face):
    proc = th("estimate", "--image", str(face), "--text", "Hello there.", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    # every route the core speaks for (its padded speech); Kling speaks the text itself and
    # refuses a line this short before its paid TTS call, by its own rule
    assert {"local", "inferencesh", "fal"} <= {r["provider"] for r in rows}
    assert all(r["seconds"] >= 2.0 for r in rows if "seconds" in r)


# -- the mock is never chosen implicitly ----------------------------------------------------

def test_generate_text_with_only_the_mock_does_not_fall_to_it(face, tmp_path):
    """Installed as the quickstart says (core + mock + inferencesh, no local, no key)."""
    home = tmp_path / "h"
    proc = th("generate", "--image", str(face), "--text", "Hello from talkinghead.", "-o", str(tmp_path / "o.mp4"),
              plugins="mock,inferencesh", home=home)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    # the mock is not even considered for the default model: only the real route is named
    assert "no usable route" in proc.stderr and "mock" not in proc.stderr
    assert not (tmp_path / "o.mp4").exists()
    spent = th("budget", "--json", plugins="mock,inferencesh", home=home)
    assert json.loads(spent.stdout)["spent_usd"] == 0
    named = th("generate", "--provider", "mock", "--image", str(face), "--text", "Hello from talkinghead.",
               "-o", str(tmp_path / "o.mp4"), plugins="mock,inferencesh", home=home)
    assert named.returncode == 0, named.stderr


def test_providers_lists_routes_in_routing_order_with_their_kind():
    proc = th("providers", "--json")
    rows = json.loads(proc.stdout)
    kinds = [r["kind"] for r in rows]
    assert kinds == sorted(kinds, key=["cloud", "local", "test"].index)
    mock = next(r for r in rows if r["provider"] == "mock")
    assert mock["chosen_unnamed"] is False
    text = th("providers").stdout
    assert "only by name" in next(line for line in text.splitlines() if line.startswith("mock/"))


# -- rough edges ----------------------------------------------------------------------------

def test_json_failure_prints_a_json_error_object(face, speech):
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech),
              "--prompt", "x" * 2501, "--json")
    assert proc.returncode == 2
    error = json.loads(proc.stdout)
    assert error == {"type": "InputError", "field": "prompt", "message": error["message"], "exit_code": 2}
    assert "2500" in error["message"] and proc.stderr.startswith("error: ")
    usage = th("generate", "--image", str(face), "--mode", "ultra", "--json")
    assert usage.returncode == 2 and json.loads(usage.stdout)["type"] == "UsageError"
    budget = th("estimate", "--provider", "nosuch", "--image", str(face), "--audio", str(speech), "--json")
    assert json.loads(budget.stdout)["exit_code"] == 2 == budget.returncode


def test_verbose_after_the_subcommand(face, speech, tmp_path):
    proc = th("generate", "-v", "--provider", "mock", "--image", str(face), "--audio", str(speech),
              "-o", str(tmp_path / "o.mp4"), home=tmp_path / "h")
    assert proc.returncode == 0, proc.stderr
    assert "job.completed" in proc.stderr
    listing = th("jobs", "list", "-v", home=tmp_path / "h")
    assert listing.returncode == 0 and "mock" in listing.stdout


def test_empty_jobs_list_says_so(tmp_path):
    proc = th("jobs", "list", home=tmp_path / "h")
    assert proc.returncode == 0 and proc.stdout == ""
    assert proc.stderr.startswith("no jobs in the journal at ")
    assert th("jobs", "list", "--json", home=tmp_path / "h").stderr == ""


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_output_mode_follows_the_umask(face, speech, tmp_path, umask):
    out = tmp_path / "o.mp4"
    proc = th("generate", "--provider", "mock", "--image", str(face), "--audio", str(speech), "-o", str(out),
              home=tmp_path / "h", umask=umask)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


def test_json_url_of_a_local_result_is_the_output_file(face, speech, tmp_path):
    out = tmp_path / "o.mp4"
    proc = th("generate", "--provider", "local", "--image", str(face), "--audio", str(speech), "-o", str(out),
              "--json", home=tmp_path / "h")
    assert proc.returncode == 0, proc.stderr
    url = json.loads(proc.stdout)["url"]
    assert url == out.resolve().as_uri()
    assert Path(url.removeprefix("file://")).stat().st_size > 10_000


def test_make_demo_journals_where_jobs_list_looks(tmp_path):
    """The demo runs with the user's TALKINGHEAD_HOME (or the default), as `jobs list` does;
    only `make test` and `make bench` keep theirs in the checkout."""
    extra = tmp_path / "probe.mk"
    extra.write_text("demo-home:\n\t@echo \"[$$TALKINGHEAD_HOME]\"\ntest: demo-home\n")
    env = {k: v for k, v in os.environ.items() if k != "TALKINGHEAD_HOME" and not k.startswith("MAKE")}

    def run(*goals):
        return subprocess.run(["make", "-s", "-f", "Makefile", "-f", str(extra), *goals], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=60)
    assert run("demo-home").stdout.strip() == "[]"
    env["TALKINGHEAD_HOME"] = str(tmp_path / "mine")
    assert run("demo-home").stdout.strip() == f"[{tmp_path / 'mine'}]"
