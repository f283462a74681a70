"""No cassette may carry a secret: every file under cassettes/ (all providers) is scanned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import fake_secrets
from tests.plugins.shared import matches, recorded_requests, storage_secret_patterns
from tests.plugins.suites import secret_scan_tests, upload_recording_test

from .conftest import ROOT, before_record_request, before_record_response

CASSETTES = ROOT / "cassettes"

SECRET_PATTERNS = {
    "inference.sh API key": re.compile(r"\binf_[A-Za-z0-9_-]{6,}"),
    **storage_secret_patterns(),
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


globals().update(upload_recording_test(
    find_secrets, before_record_request, before_record_response,
    put_url="https://storage.example.com/b/f.png?X-Amz-Credential=AKIA1234&X-Amz-Signature=deadbeef",
    media=b"\x89PNG...", answer=b'[{"upload_url": "https://s.example.com/x?X-Signature=abc123&X-Expires=9"}]',
    kept=b"X-Expires=9", param="sig"))
