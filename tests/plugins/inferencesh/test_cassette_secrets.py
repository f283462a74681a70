"""No cassette may carry a secret: every file under cassettes/ (all providers) is scanned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import fake_secrets
from tests.plugins.shared import (
    BEARER_TOKEN,
    PRIVATE_KEY,
    matches,
    recorded_answer,
    recorded_requests,
    secret_scan_tests,
    url_signature,
)

from .conftest import ROOT, before_record_request, before_record_response, scrub

CASSETTES = ROOT / "cassettes"

SECRET_PATTERNS = {
    "inference.sh API key": re.compile(r"\binf_[A-Za-z0-9_-]{6,}"),
    "bearer token": BEARER_TOKEN,
    "URL signature": url_signature("x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature"
                                   "|x-goog-credential|x-signature|signature|sig"),
    "private key": PRIVATE_KEY,
}


def find_secrets(text: str) -> list[str]:
    return matches(SECRET_PATTERNS, text)


globals().update(secret_scan_tests(
    sorted(p for p in CASSETTES.rglob("*") if p.is_file()), find_secrets,
    expected={"README.md", "happy_std_uploads.yaml", "stream_dropped_resumed.yaml"},
    catches=[
        "Authorization: Bearer inf_live_9f8e7d6c5b4a",  # fake secret: the scanner must catch its shape
        "token " + fake_secrets.inference_key(),
        "authorization: bearer " + fake_secrets.jwt(),
        "https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=8d3f9a0b1c",
        '"upload_url": "https://storage.example.com/b/f.png?X-Signature=abc"',
        "https://storage.googleapis.com/b/o?X-Goog-Credential=svc%40p.iam&X-Goog-Signature=00ff",
    ],
    leaves_alone=[
        "Authorization: REDACTED", "Bearer REDACTED", "?X-Signature=REDACTED&X-Expires=900",
        "keys start with `inf_...`", "the `Bearer <token>` header", "X-Amz-Signature is scrubbed",
    ]))


@pytest.mark.parametrize("path", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.name)
def test_recorded_authorization_headers_are_redacted(path: Path) -> None:
    for _, headers in recorded_requests(path):
        for value in headers.get("authorization", []):
            assert value == "REDACTED", path.name
        assert "cookie" not in headers


def test_recording_hooks_scrub_what_a_live_recording_would_hold() -> None:
    """What the vcr_config hooks leave of a live exchange passes the scanner."""
    from vcr.request import Request

    put = Request("PUT", "https://storage.example.com/b/f.png?X-Amz-Credential=AKIA1234&X-Amz-Signature=deadbeef",
                  b"\x89PNG...", {"Content-Type": "image/png"})
    put = before_record_request(put)
    assert find_secrets(put.uri) == [] and put.body == b"<7 bytes>"
    response = before_record_response(recorded_answer(
        b'[{"upload_url": "https://s.example.com/x?X-Signature=abc123&X-Expires=9"}]'))
    assert find_secrets(response["body"]["string"].decode()) == []
    assert b"X-Expires=9" in response["body"]["string"] and "Set-Cookie" not in response["headers"]
    assert scrub("a?sig=1&b=2") == "a?sig=REDACTED&b=2"
