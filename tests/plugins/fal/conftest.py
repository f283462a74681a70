"""Fixtures for the fal plugin tests: media, providers with tiny timeouts, the loopback fake
server (queue, storage, JWKS), Ed25519 key pairs, and the VCR configuration (scrubbing and
matching) for the cassettes."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from talkinghead import media
from talkinghead.models import AvatarRequest, Job
from talkinghead.tts import Speech
from talkinghead_fal import FalProvider
from talkinghead_fal.fake import FakeFal
from tests.plugins.shared import backend_fixtures, cassette_fixtures, scrub_response
from tests.plugins.shared import scrub_signed_urls as scrub

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
CASSETTE_DIR = ROOT / "cassettes" / "fal"
QUEUE_HOST, REST_HOST = "queue.fal.run", "rest.fal.ai"
# Deliberately not shaped like a fal key (<uuid>:<hex>): the secret scan stays quiet.
TEST_KEY = "test-fal-key-0123456789abcdef"

# Everything a test might wait on, made tiny.
FAST: dict[str, Any] = {"timeout": 5.0, "retry_backoff": 0.01, "poll_interval": 0.01, "poll_max_interval": 0.05}

FACE = EXAMPLES / "face.jpg"
WAV = EXAMPLES / "hello.wav"
MP3 = EXAMPLES / "hello.mp3"
SPOKEN = "Good evening. Here is the news."
SPEECH_NAME = "3f1d2c4b5a6978877665544332211000.wav"  # how the core names synthesized speech


def prepared(image: str | Path = FACE, audio: str | Path = WAV, **request: Any) -> media.PreparedRequest:
    """A request probed by the real core media code (so uploads see real MediaFiles)."""
    return media.prepare(AvatarRequest(image=image, audio=audio, **request))


def prepared_text(tmp_path: Path, image: str | Path = FACE, text: str = SPOKEN,
                  **request: Any) -> media.PreparedRequest:
    """A text request as the core hands it to a route without native text: the speech was
    synthesized locally to a WAV (here: a copy of hello.wav) and probed like an upload."""
    base = media.prepare(AvatarRequest(image=image, text=text, **request))
    speech_path = tmp_path / SPEECH_NAME
    speech_path.write_bytes(WAV.read_bytes())
    audio = media.inspect_audio(speech_path, field="text")
    speech = Speech(path=speech_path, duration_s=audio.duration_s or 0.0, engine="test")
    return dataclasses.replace(base, audio=audio, speech=speech)


def job_for(task_id: str | None = None, **fields: Any) -> Job:
    return Job(provider="fal", model="kling-avatar", task_id=task_id, **fields)


# -- the fake server -------------------------------------------------------------------------

globals().update(backend_fixtures(FakeFal, FalProvider, {"api_key": TEST_KEY}, FAST))


# Read once, before any test runs: the fixture below takes FAL_* out of every test's way.
LIVE_KEY = os.environ.get("FAL_KEY") or None


@pytest.fixture(autouse=True)
def _no_fal_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own FAL_* variables must not leak into the tests."""
    for name in ("FAL_KEY", "FAL_BASE_URL", "FAL_QUEUE_URL", "FAL_REST_URL", "FAL_JWKS_URL", "FAL_CDN_URL"):
        monkeypatch.delenv(name, raising=False)


# -- cassettes -------------------------------------------------------------------------------

def before_record_request(request: Any) -> Any:
    request.uri = scrub(request.uri)
    host = urlsplit(request.uri).hostname
    # the PUT to a signed URL and the POST to the CDN (/files/upload) carry the media itself
    if request.method in ("PUT", "POST") and host not in (QUEUE_HOST, REST_HOST) and request.body:
        request.body = f"<{len(request.body)} bytes>".encode()  # never store the uploaded media
    return request


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    return scrub_response(response, scrub, ("set-cookie", "x-goog-hash", "x-guploader-uploadid", "cf-ray"))


globals().update(cassette_fixtures(
    CASSETTE_DIR,
    # The query is matched too (``logs=1``, ``fal_webhook``, ``storage_type``): signed upload
    # URLs are scrubbed identically on record and in the answers replayed, so they match.
    match_on=["method", "scheme", "host", "port", "path", "query"],
    before_record_request=before_record_request, before_record_response=before_record_response,
    have_keys=lambda: bool(LIVE_KEY), needs="FAL_KEY", cannot="fal cannot be made to"))


@pytest.fixture
def cassette_provider(live: bool, make_provider: Callable[..., FalProvider]) -> FalProvider:
    """The provider for a cassette test: the test key and tiny timeouts on replay; the real
    key, fal's hosts and the default timeouts when re-recording."""
    if live:
        return make_provider(fast=False, api_key=LIVE_KEY)
    return make_provider(poll_interval=0, poll_max_interval=0)


class Sent(list):
    """The requests a provider sent, and the JSON answer to its submit (``submitted``)."""

    submitted: Any = None


def spy(provider: FalProvider) -> Sent:
    """Every ``httpx.Request`` the provider sends from now on (API and plain clients)."""
    sent = Sent()

    async def on_request(request: Any) -> None:
        sent.append(request)

    async def on_response(response: Any) -> None:
        if response.request.method == "POST" and response.request.url.host != REST_HOST and response.is_success:
            await response.aread()
            sent.submitted = response.json()

    for client in (provider._client(), provider._plain_client()):
        client.event_hooks["request"].append(on_request)
    provider._client().event_hooks["response"].append(on_response)
    return sent
