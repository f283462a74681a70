"""No fal cassette may carry a secret: every file under cassettes/fal (and its generator) is
scanned for fal keys (``Key <id>:<secret>``), bearer and storage tokens, signed URL parameters
and private keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import CASSETTE_DIR, ROOT, before_record_request, before_record_response, scrub

SECRET_PATTERNS = {
    "fal key header": re.compile(r"(?i)\bkey\s+(?!REDACTED\b)[A-Za-z0-9._-]{4,}:[A-Za-z0-9._-]{8,}"),
    "fal key": re.compile(r"(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9a-z]{16,}"),
    "bearer token": re.compile(r"(?i)\bbearer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{6,}"),
    "storage token": re.compile(r"(?i)\"token\"\s*:\s*\"(?!REDACTED\")[^\"]{8,}\""),
    "URL signature": re.compile(
        r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
        r"|x-signature|signature|sig|token)=(?!REDACTED\b)[^&\s\"'<>\\]+"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def find_secrets(text: str) -> list[str]:
    found = []
    for what, pattern in SECRET_PATTERNS.items():
        found += [f"{what}: {m.group(0)[:40]}" for m in pattern.finditer(text)]
    return found


def _files() -> list[Path]:
    return sorted(p for p in CASSETTE_DIR.rglob("*") if p.is_file()) + [ROOT / "cassettes" / "make_fal.py"]


def test_there_are_cassettes_to_scan():
    names = {p.name for p in _files()}
    assert {"happy_std_uploads.yaml", "completed_with_error.yaml", "make_fal.py"} <= names


@pytest.mark.parametrize("path", _files(), ids=lambda p: p.name)
def test_no_secret_in_fal_cassettes(path):
    text = path.read_bytes().decode("utf-8", errors="replace")
    assert find_secrets(text) == [], f"{path.relative_to(ROOT)} looks like it holds a secret"


@pytest.mark.parametrize("path", sorted(CASSETTE_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_recorded_authorization_headers_are_redacted(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        request = interaction["request"]
        headers = {k.lower(): v for k, v in request["headers"].items()}
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


@pytest.mark.parametrize("sample", [
    "Authorization: Key 6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f:9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",  # fake secret: the scanner must catch its shape  # noqa: E501
    "authorization:\n      - Key myid1234:mysecret5678abcd",
    "FAL_KEY=6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f:9b8a7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "Authorization: Bearer eyJhbGciOiJFZERTQSJ9.payload.sig",  # fake secret: the scanner must catch its shape
    '{"token": "v3tok_abcdef0123456789", "token_type": "Bearer"}',
    "https://storage.googleapis.com/b/o?X-Goog-Credential=svc%40p.iam&X-Goog-Signature=00ff",
    '"upload_url": "https://up.example.com/f.png?X-Amz-Signature=abc"',
    "https://v3b.fal.media/files/upload?token=abc123",
])
def test_the_scanner_catches_secrets(sample):
    assert find_secrets(sample)


@pytest.mark.parametrize("sample", [
    "Authorization: REDACTED", "Key REDACTED", "Bearer REDACTED", "?X-Goog-Signature=REDACTED&X-Goog-Expires=900",
    "the header is `Authorization: Key $FAL_KEY`", "Key <id>:<secret>", "X-Goog-Signature is scrubbed",
    '"request_id": "5b2f1c7e-8d4a-4f3b-9e21-0c6a7d8e9f10"',
])
def test_the_scanner_leaves_redacted_text_alone(sample):
    assert find_secrets(sample) == []


def test_recording_hooks_scrub_what_a_live_recording_would_hold():
    """What the vcr_config hooks leave of a live exchange passes the scanner."""
    from vcr.request import Request

    put = Request("PUT", "https://storage.googleapis.com/b/face.jpg?X-Goog-Credential=svc%40p&X-Goog-Signature=beef",
                  b"\xff\xd8\xff...", {"Content-Type": "image/jpeg"})
    put = before_record_request(put)
    assert find_secrets(put.uri) == [] and put.body == b"<6 bytes>"
    initiate = {"status": {"code": 200, "message": "OK"},
                "headers": {"Set-Cookie": ["session=abc"], "Content-Type": ["application/json"]},
                "body": {"string": b'{"upload_url": "https://s.example.com/x?X-Goog-Signature=abc123&X-Goog-Expires=9",'
                                   b' "file_url": "https://v3.fal.media/files/koala/x.jpg"}'}}
    initiate = before_record_response(initiate)
    assert find_secrets(initiate["body"]["string"].decode()) == []
    assert b"X-Goog-Expires=9" in initiate["body"]["string"] and "Set-Cookie" not in initiate["headers"]
    assert scrub("a?token=1&b=2") == "a?token=REDACTED&b=2"
