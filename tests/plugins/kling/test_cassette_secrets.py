"""No Kling cassette may carry a secret: every file under cassettes/kling/ (and the generator)
is scanned for JWTs, bearer tokens and keys, and the recording hooks are checked to leave
nothing of the kind in what a live recording would store."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from talkinghead_kling.auth import make_token
from tests.plugins.shared import BEARER_TOKEN, matches, recorded_answer, recorded_requests
from tests.plugins.suites import secret_scan_tests

from .conftest import CASSETTE_DIR, LIVE_ENV, ROOT, TEST_AK, TEST_SK, before_record_request, before_record_response

SECRET_PATTERNS = {
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),
    "JWT header or payload": re.compile(r"\beyJ[A-Za-z0-9_-]{16,}"),
    "bearer token": BEARER_TOKEN,
    "key assignment": re.compile(r"(?i)(access|secret)[_-]?key\b[\"']?\s*[:=]\s*[\"']?(?!REDACTED\b)"
                                 r"[A-Za-z0-9._~+/=-]{8,}"),
}


def find_secrets(text: str) -> list[str]:
    found = matches(SECRET_PATTERNS, text)
    known = [TEST_AK, TEST_SK] + [os.environ.get(name) or "" for name in LIVE_ENV]
    found += [f"a known key ({value[:4]}...)" for value in known if len(value) >= 6 and value in text]
    return found


globals().update(secret_scan_tests(
    sorted(p for p in CASSETTE_DIR.rglob("*") if p.is_file()) + [ROOT / "cassettes" / "make_kling.py"],
    find_secrets, expected={"happy_std_url.yaml", "text_tts.yaml", "lost_create_resolved.yaml", "make_kling.py"},
    catches=[
        "Authorization: Bearer " + make_token(TEST_AK, TEST_SK)[0],
        make_token("another-access-key-000000", "another-secret-key-00000000000000000000")[0],
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",  # a JWT header alone
        '"access_key": "AbCdEf0123456789"', "KLING_SECRET_KEY=Zyx9876543210abcd", TEST_SK,
    ],
    leaves_alone=[
        "Authorization: REDACTED", "Bearer REDACTED", "the `Bearer <jwt>` header", "access_key: REDACTED",
        "set KLING_ACCESS_KEY and KLING_SECRET_KEY", '"request_id": "9d0e1f2a-6666-4a7b-8c9d-777788889999"',
    ]))


@pytest.mark.parametrize("path", sorted(CASSETTE_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_api_requests_carry_a_redacted_authorization_only(path: Path) -> None:
    for request, headers in recorded_requests(path):
        if urlsplit(request["uri"]).path.startswith("/v1/"):  # the API, whatever its host
            assert headers.get("authorization") == ["REDACTED"], path.name
        else:  # the CDN never gets our token
            assert "authorization" not in headers, path.name
        assert "cookie" not in headers


def test_recording_hooks_scrub_what_a_live_recording_would_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the vcr_config hooks leave of a live exchange passes the scanner: the JWT and the
    keys anywhere in it, and raw base64 media replaced by a placeholder."""
    from vcr.request import Request

    ak, sk = "live-access-key-abcdef0123", "live-secret-key-abcdef0123456789abcdef01"
    monkeypatch.setenv("KLING_ACCESS_KEY", ak)
    monkeypatch.setenv("KLING_SECRET_KEY", sk)
    token = make_token(ak, sk)[0]
    body = json.dumps({"image": "iVBORw0KGgoAAAANSUhEUgAA" * 50, "sound_file": "https://x.example/a.mp3",
                       "prompt": f"echo {token} {ak}", "mode": "std", "external_task_id": "j1"})
    request = before_record_request(Request("POST", f"https://api-singapore.klingai.com/v1/x?k={ak}", body,
                                            {"Content-Type": "application/json"}))
    sent = json.loads(request.body)
    assert sent["image"] == "<base64: 1200 chars>" and sent["sound_file"] == "https://x.example/a.mp3"
    assert find_secrets(request.body.decode() + request.uri) == []
    response = before_record_response(recorded_answer(
        json.dumps({"code": 1002, "message": f"bad token {token} for {ak}"}).encode(), (401, "Unauthorized")))
    assert find_secrets(response["body"]["string"].decode()) == [] and "Set-Cookie" not in response["headers"]
    assert b"\x00ftyp" in before_record_response({"body": {"string": b"\x00ftyp\xff"}})["body"]["string"]
