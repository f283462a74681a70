"""Fixtures for the inference.sh plugin tests: media, providers with tiny timeouts, the
loopback fake server, and the VCR configuration (scrubbing and matching) for the cassettes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from talkinghead import media
from talkinghead.models import AvatarRequest, Job
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import FakeInferenceSh
from tests.plugins.shared import backend_fixtures, cassette_fixtures, scrub_response
from tests.plugins.shared import scrub_signed_urls as scrub

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
CASSETTE_DIR = ROOT / "cassettes" / "inferencesh"
API_HOST = "api.inference.sh"
TEST_KEY = "test-key-0123456789abcdef"  # deliberately not inf_-shaped: the secret scan stays quiet

# Everything a test might wait on, made tiny (the defaults are the SDK's 30 s / 1 s / ...).
FAST: dict[str, Any] = {
    "timeout": 5.0, "retry_backoff": 0.01, "stream_idle_timeout": 0.4, "stream_read_timeout": 5.0,
    "reconnect_delay": 0.01, "stream_reconnects": 2,
}

FACE = EXAMPLES / "face.jpg"
WAV = EXAMPLES / "hello.wav"
MP3 = EXAMPLES / "hello.mp3"


def prepared(image: str | Path = FACE, audio: str | Path = WAV, **request: Any) -> media.PreparedRequest:
    """A request probed by the real core media code (so uploads see real MediaFiles)."""
    return media.prepare(AvatarRequest(image=image, audio=audio, **request))


def job_for(task_id: str | None = None, **fields: Any) -> Job:
    return Job(provider="inferencesh", model="kling-avatar", task_id=task_id, **fields)


# -- the fake server -------------------------------------------------------------------------

globals().update(backend_fixtures(FakeInferenceSh, InferenceShProvider, {"api_key": TEST_KEY}, FAST))


# -- cassettes -------------------------------------------------------------------------------

def before_record_request(request: Any) -> Any:
    request.uri = scrub(request.uri)
    if request.method == "PUT" and urlsplit(request.uri).hostname != API_HOST and request.body:
        request.body = f"<{len(request.body)} bytes>".encode()  # never store the uploaded media
    return request


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    return scrub_response(response, scrub, ("set-cookie", "x-amz-id-2", "x-amz-request-id"))


globals().update(cassette_fixtures(
    CASSETTE_DIR, match_on=["method", "host", "path"],  # never the signed query string, never bodies
    before_record_request=before_record_request, before_record_response=before_record_response,
    have_keys=lambda: bool(os.environ.get("INFERENCE_API_KEY")), needs="INFERENCE_API_KEY",
    cannot="the live service cannot"))


@pytest.fixture
def cassette_provider(live: bool, make_provider: Callable[..., InferenceShProvider]) -> InferenceShProvider:
    """The provider for a cassette test: the test key and tiny timeouts on replay; the real key,
    the real service and the default timeouts when re-recording."""
    if live:
        return make_provider(fast=False, api_key=os.environ["INFERENCE_API_KEY"],
                             base_url=os.environ.get("INFERENCE_BASE_URL") or "https://api.inference.sh")
    return make_provider(base_url="https://api.inference.sh")


def spy(provider: InferenceShProvider) -> tuple[list[Any], list[Any]]:
    """Every ``httpx.Request`` the provider sends from now on (API and upload clients), and
    every ``(request, parsed JSON)`` of the answers that carry JSON."""
    sent: list[Any] = []
    answers: list[Any] = []

    async def on_request(request: Any) -> None:
        sent.append(request)

    async def on_response(response: Any) -> None:
        if "json" in response.headers.get("content-type", "") and response.request.method != "GET":
            await response.aread()
            answers.append((response.request, response.json()))

    for client in (provider._client(), provider._upload_client()):
        client.event_hooks["request"].append(on_request)
        client.event_hooks["response"].append(on_response)
    return sent, answers
