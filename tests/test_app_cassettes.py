"""An app replays a bundled cassette through ``Client.run``: the whole job, download included,
with no account and no network (the way docs/testing.md tells apps to)."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkinghead import AvatarRequest, Client, JobStatus
from talkinghead.plugins import get_provider_classes
from talkinghead.video import probe_video

ROOT = Path(__file__).resolve().parent.parent
CASSETTES = ROOT / "cassettes" / "inferencesh"
FAL = ROOT / "cassettes" / "fal"
WAV = ROOT / "examples" / "hello.wav"


@pytest.mark.parametrize("mode", [
    pytest.param("std", marks=pytest.mark.vcr(str(CASSETTES / "happy_std_uploads.yaml"))),
    pytest.param("pro", marks=pytest.mark.vcr(str(CASSETTES / "happy_pro_uploads.yaml"))),
])
def test_client_run_replays_a_happy_cassette_end_to_end(mode, face, tmp_path, vcr):
    provider = get_provider_classes()["inferencesh"]({"api_key": "test-key-app-0000"})
    prompt = "Smiles and nods while talking" if mode == "pro" else None
    with Client(providers=[provider]) as client:
        result = client.run(AvatarRequest(image=face, audio=WAV, mode=mode, prompt=prompt),
                            output=tmp_path / "intro.mp4")
        job = client.ledger.get(result.job_id)
    assert result.provider == "inferencesh" and result.path == tmp_path / "intro.mp4"
    assert result.url.startswith("https://cloud.inference.sh/") and job.status is JobStatus.COMPLETED
    info = probe_video(result.path)
    assert (info.width, info.height) == (64, 64) and info.frame_count == 50
    assert job.output_path == str(result.path.resolve())


@pytest.mark.vcr(str(FAL / "happy_std_uploads.yaml"))
def test_client_run_replays_the_fal_cassette_end_to_end(face, tmp_path, vcr):
    provider = get_provider_classes()["fal"]({"api_key": "test-key-app-0000"})
    with Client(providers=[provider]) as client:
        result = client.run(AvatarRequest(image=face, audio=WAV), output=tmp_path / "intro.mp4")
    assert result.provider == "fal" and result.url.startswith("https://v3.fal.media/")
    assert probe_video(result.path).frame_count == 50
    assert vcr.all_played
