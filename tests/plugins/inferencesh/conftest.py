"""Fixtures for the inference.sh plugin tests: media, providers with tiny timeouts, the
loopback fake server, and the VCR configuration (scrubbing and matching) for the cassettes."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from talkinghead import http, media
from talkinghead.models import AvatarRequest, Job
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import FakeInferenceSh
from tests.plugins.shared import backend_fixtures

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

SIGNATURE_PARAM = re.compile(
    r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
    r"|x-signature|signature|sig|se|sp|sv|token)=([^&\s\"'<>\\]+)")


def scrub(text: str) -> str:
    """Signed-URL query values replaced by REDACTED (in URIs and in response bodies)."""
    return SIGNATURE_PARAM.sub(lambda m: f"{m.group(1)}=REDACTED", text)


def before_record_request(request: Any) -> Any:
    request.uri = scrub(request.uri)
    if request.method == "PUT" and urlsplit(request.uri).hostname != API_HOST and request.body:
        request.body = f"<{len(request.body)} bytes>".encode()  # never store the uploaded media
    return request


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes):
        try:
            response["body"]["string"] = scrub(body.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            pass
    elif isinstance(body, str):
        response["body"]["string"] = scrub(body)
    for name in list(response.get("headers", {})):
        if name.lower() in ("set-cookie", "x-amz-id-2", "x-amz-request-id"):
            del response["headers"][name]
    return response


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {
        "filter_headers": [("authorization", "REDACTED"), ("cookie", None)],
        "match_on": ["method", "host", "path"],  # never the signed query string, never bodies
        "before_record_request": before_record_request,
        "before_record_response": before_record_response,
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir() -> str:
    return str(CASSETTE_DIR)


@pytest.fixture
def live(record_mode: str, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Whether this run re-records cassettes against the live service (any VCR record mode but
    ``none``, e.g. ``-m live --record-mode=rewrite``). Then INFERENCE_API_KEY is required (the
    test is skipped without it) and the talkinghead network guard is lifted for the test."""
    if record_mode == "none":
        return False
    if not os.environ.get("INFERENCE_API_KEY"):
        pytest.skip("re-recording needs INFERENCE_API_KEY (and costs money)")
    monkeypatch.setattr(http.guard, "enabled", False)
    return True


@pytest.fixture
def cassette_provider(live: bool, make_provider: Callable[..., InferenceShProvider]) -> InferenceShProvider:
    """The provider for a cassette test: the test key and tiny timeouts on replay; the real key,
    the real service and the default timeouts when re-recording."""
    if live:
        return make_provider(fast=False, api_key=os.environ["INFERENCE_API_KEY"],
                             base_url=os.environ.get("INFERENCE_BASE_URL") or "https://api.inference.sh")
    return make_provider(base_url="https://api.inference.sh")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before any fixture runs (pytest-recording's ``rewrite`` mode deletes the cassette file
    when its fixture is set up): a hand-authored-only cassette (no ``live`` marker) is never
    re-recorded, since the live service cannot produce it, and re-recording needs a key."""
    if item.get_closest_marker("vcr") is None:
        return
    if (item.config.getoption("--record-mode") or "none") == "none":
        return
    if item.get_closest_marker("live") is None:
        pytest.skip("hand-authored cassette: the live service cannot produce it, so it is not re-recorded")
    if not os.environ.get("INFERENCE_API_KEY"):
        pytest.skip("re-recording needs INFERENCE_API_KEY (and costs money)")


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
