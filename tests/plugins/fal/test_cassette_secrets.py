"""No fal cassette may carry a secret: every file under cassettes/fal (and its generator) is
scanned for fal keys (``Key <id>:<secret>``), bearer and storage tokens, signed URL parameters
and private keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import fake_secrets
from tests.plugins.shared import matches, recorded_requests, storage_secret_patterns
from tests.plugins.suites import secret_scan_tests, upload_recording_test

from .conftest import CASSETTE_DIR, ROOT, before_record_request, before_record_response

SECRET_PATTERNS = {
    "fal key header": re.compile(r"(?i)\bkey\s+(?!REDACTED\b)[A-Za-z0-9._-]{4,}:[A-Za-z0-9._-]{8,}"),
    "fal key": re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9a-z]{16,}"),
    "storage token": re.compile(r"(?i)\"token\"\s*:\s*\"(?!REDACTED\")[^\"]{8,}\""),
    **storage_secret_patterns("token"),  # fal's CDN signs its URLs with ?token=
}


def find_secrets(text: str) -> list[str]:
    return matches(SECRET_PATTERNS, text)


globals().update(secret_scan_tests(
    sorted(p for p in CASSETTE_DIR.rglob("*") if p.is_file()) + [ROOT / "cassettes" / "make_fal.py"],
    find_secrets, expected={"happy_std_uploads.yaml", "completed_with_error.yaml", "make_fal.py"},
    catches=[
        # fake secrets: the scanner must catch their shapes
        "Authorization: Key " + fake_secrets.fal_key(),
        "authorization:\n      - Key myid1234:mysecret5678abcd",
        "FAL_KEY=" + fake_secrets.fal_key("0e"),
        "Authorization: Bearer " + fake_secrets.jwt(),
        '{"token": "v3tok_abcdef0123456789", "token_type": "Bearer"}',
        "https://storage.googleapis.com/b/o?X-Goog-Credential=svc%40p.iam&X-Goog-Signature=00ff",
        '"upload_url": "https://up.example.com/f.png?X-Amz-Signature=abc"',
        "https://v3b.fal.media/files/upload?token=abc123",
    ],
    leaves_alone=[
        "Authorization: REDACTED", "Key REDACTED", "Bearer REDACTED", "?X-Goog-Signature=REDACTED&X-Goog-Expires=900",
        "the header is `Authorization: Key $FAL_KEY`", "Key <id>:<secret>", "X-Goog-Signature is scrubbed",
        '"request_id": "5b2f1c7e-8d4a-4f3b-9e21-0c6a7d8e9f10"',
    ]))


@pytest.mark.parametrize("path", sorted(CASSETTE_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_recorded_authorization_headers_are_redacted(path: Path) -> None:
    for request, headers in recorded_requests(path):
        host = request["uri"].split("/")[2]
        if host == "v3.fal.media" and request["method"] == "GET":
            # the result video's download (happy paths end with it): the core sends no key at all
            assert "authorization" not in headers, (path.name, request["uri"])
        elif host in ("queue.fal.run", "queue.falrun.com", "rest.fal.ai", "v3.fal.media"):
            # our key, or (v3.fal.media) the CDN token it bought: both redacted
            assert headers.get("authorization") == ["REDACTED"], (path.name, request["uri"])
        else:  # the signed upload URL never gets our key, redacted or not
            assert "authorization" not in headers, (path.name, request["uri"])
        assert "cookie" not in headers


globals().update(upload_recording_test(
    find_secrets, before_record_request, before_record_response,
    put_url="https://storage.googleapis.com/b/face.jpg?X-Goog-Credential=svc%40p&X-Goog-Signature=beef",
    media=b"\xff\xd8\xff...", answer=b'{"upload_url": "https://s.example.com/x?X-Goog-Signature=abc123&X-Goog-Expires=9",'
    b' "file_url": "https://v3.fal.media/files/koala/x.jpg"}', kept=b"X-Goog-Expires=9", param="token"))
