"""Fixtures for the Kling plugin tests: media, providers with tiny delays, the loopback fake
server (JWT verification on), and the VCR configuration (scrubbing, matching) for cassettes."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from talkinghead import media
from talkinghead.models import AvatarRequest, Job
from talkinghead_kling import KlingProvider
from talkinghead_kling.fake import FakeKling
from tests.plugins.shared import backend_fixtures, cassette_fixtures, scrub_response

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
CASSETTE_DIR = ROOT / "cassettes" / "kling"
API = "https://api-singapore.klingai.com"
# Test credentials: long enough for HS256 (32+ bytes), and never in a cassette (scanned for).
TEST_AK = "test-access-key-0123456789abcdef"
TEST_SK = "test-secret-key-0123456789abcdef0123456789abcdef"
LIVE_ENV = ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY")
TEST_API_KEY = "test-kling-api-key-0123456789abcdef"

# Everything a test might wait on, made tiny (the defaults: 1 s backoff, 5 s first poll).
FAST: dict[str, Any] = {"timeout": 5.0, "retry_backoff": 0.01, "poll_first": 0.01, "poll_factor": 1.5,
                        "poll_max": 0.05}

FACE = EXAMPLES / "face.jpg"
WAV = EXAMPLES / "hello.wav"
MP3 = EXAMPLES / "hello.mp3"
IMAGE_URL = "https://images.example.org/anchor.png"
AUDIO_URL = "https://audio.example.org/script.mp3"


def prepared(image: str | Path = FACE, audio: str | Path | None = MP3, **request: Any) -> media.PreparedRequest:
    """A request probed by the real core media code."""
    if "text" in request:
        audio = None
    return media.prepare(AvatarRequest(image=image, audio=audio, **request))


def job_for(task_id: str | None = None, **fields: Any) -> Job:
    return Job(provider="kling", model="kling-avatar", task_id=task_id, **fields)


# -- the fake server -------------------------------------------------------------------------

_KEYS = {"access_key": TEST_AK, "secret_key": TEST_SK}
globals().update(backend_fixtures(FakeKling, KlingProvider, dict(_KEYS), FAST, reset=dict(_KEYS)))


# -- cassettes -------------------------------------------------------------------------------

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_MEDIA_FIELDS = ("image", "sound_file")


def scrub(text: str) -> str:
    """JWT-shaped strings and the live keys (when set) replaced by REDACTED."""
    text = JWT.sub("REDACTED", text)
    for name in LIVE_ENV:
        value = os.environ.get(name)
        if value and len(value) >= 6:
            text = text.replace(value, "REDACTED")
    return text


def _scrub_body(body: Any) -> Any:
    """A create body with raw base64 media replaced by a placeholder (the YAML stays small
    and never holds the user's face), then the text scrubbed."""
    if body is None:
        return body
    raw = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
    try:
        data = json.loads(raw)
    except ValueError:
        return scrub(raw).encode()
    if isinstance(data, dict):
        for key in _MEDIA_FIELDS:
            value = data.get(key)
            if isinstance(value, str) and not value.startswith(("http://", "https://")):
                data[key] = f"<base64: {len(value)} chars>"
        raw = json.dumps(data)
    return scrub(raw).encode()


def before_record_request(request: Any) -> Any:
    request.uri = scrub(request.uri)
    request.body = _scrub_body(request.body)
    return request


def before_record_response(response: dict[str, Any]) -> dict[str, Any]:
    return scrub_response(response, scrub, ("set-cookie",))


globals().update(cassette_fixtures(
    # Never bodies (base64 and JWTs differ on every run); not the host either, so a cassette
    # recorded on the Beijing host (KLING_BASE_URL) replays against the default one.
    CASSETTE_DIR, match_on=["method", "path"],
    before_record_request=before_record_request, before_record_response=before_record_response,
    have_keys=lambda: live_keys(), needs="KLING_API_KEY, or KLING_ACCESS_KEY and KLING_SECRET_KEY",
    cannot="the live service cannot"))


def hand_authored(cassette: str) -> bool:
    """Whether a cassette is still the hand-authored one (not re-recorded): only then may a
    test assert the invented specifics it holds (ids, durations, the CDN download)."""
    path = CASSETTE_DIR / cassette
    return path.is_file() and path.read_text(encoding="utf-8").startswith("# Hand-authored")


def live_keys() -> bool:
    """The single key, or the pair."""
    return bool(os.environ.get(LIVE_ENV[0]) or all(os.environ.get(name) for name in LIVE_ENV[1:]))


@pytest.fixture
def cassette_provider(live: bool, make_provider: Callable[..., KlingProvider]) -> KlingProvider:
    """The test keys and tiny delays on replay; the real keys, the real service (Singapore, or
    KLING_BASE_URL) and the default delays when re-recording."""
    if live:
        # the pair when set (the replayed tests check the JWT), else the single key
        creds = {"access_key": os.environ["KLING_ACCESS_KEY"], "secret_key": os.environ["KLING_SECRET_KEY"]} \
            if all(os.environ.get(v) for v in LIVE_ENV[1:]) else {"api_key": os.environ["KLING_API_KEY"]}
        return make_provider(fast=False, base_url=os.environ.get("KLING_BASE_URL") or API, **creds)
    return make_provider(API)


def spy(provider: KlingProvider) -> list[Any]:
    """A copy of every ``httpx.Request`` the provider sends from now on, as it was sent (the
    auth flow changes the Authorization header of a request it resends)."""
    import httpx

    sent: list[Any] = []

    async def on_request(request: Any) -> None:
        sent.append(httpx.Request(request.method, request.url, headers=request.headers.copy(),
                                  content=request.content))

    provider._client().event_hooks["request"].append(on_request)
    return sent
