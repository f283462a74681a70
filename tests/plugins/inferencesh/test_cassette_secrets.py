"""No cassette may carry a secret: every file under cassettes/ (all providers) is scanned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT, before_record_request, before_record_response, scrub

CASSETTES = ROOT / "cassettes"

SECRET_PATTERNS = {
    "inference.sh API key": re.compile(r"\binf_[A-Za-z0-9_-]{6,}"),
    "bearer token": re.compile(r"(?i)\bbearer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{6,}"),
    "URL signature": re.compile(
        r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
        r"|x-signature|signature|sig)=(?!REDACTED\b)[^&\s\"'<>\\]+"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
}


def find_secrets(text: str) -> list[str]:
    found = []
    for what, pattern in SECRET_PATTERNS.items():
        found += [f"{what}: {m.group(0)[:40]}" for m in pattern.finditer(text)]
    return found


def _files() -> list[Path]:
    return sorted(p for p in CASSETTES.rglob("*") if p.is_file())


def test_there_are_cassettes_to_scan():
    names = {p.name for p in _files()}
    assert {"README.md", "happy_std_uploads.yaml", "stream_dropped_resumed.yaml"} <= names


@pytest.mark.parametrize("path", _files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_no_secret_in_cassette_files(path):
    text = path.read_bytes().decode("utf-8", errors="replace")
    assert find_secrets(text) == [], f"{path.relative_to(ROOT)} looks like it holds a secret"


@pytest.mark.parametrize("path", sorted(CASSETTES.rglob("*.yaml")), ids=lambda p: p.name)
def test_recorded_authorization_headers_are_redacted(path):
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    for interaction in data["interactions"]:
        headers = {k.lower(): v for k, v in interaction["request"]["headers"].items()}
        for value in headers.get("authorization", []):
            assert value == "REDACTED", path.name
        assert "cookie" not in headers


@pytest.mark.parametrize("sample", [
    "Authorization: Bearer inf_live_9f8e7d6c5b4a",  # fake secret: the scanner must catch its shape
    "token inf_abcdef123456",  # fake secret: the scanner must catch its shape
    "authorization: bearer eyJhbGciOiJIUzI1NiJ9.payload.sig",
    "https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4&X-Amz-Signature=8d3f9a0b1c",
    '"upload_url": "https://storage.example.com/b/f.png?X-Signature=abc"',
    "https://storage.googleapis.com/b/o?X-Goog-Credential=svc%40p.iam&X-Goog-Signature=00ff",
])
def test_the_scanner_catches_secrets(sample):
    assert find_secrets(sample)


@pytest.mark.parametrize("sample", [
    "Authorization: REDACTED", "Bearer REDACTED", "?X-Signature=REDACTED&X-Expires=900",
    "keys start with `inf_...`", "the `Bearer <token>` header", "X-Amz-Signature is scrubbed",
])
def test_the_scanner_leaves_redacted_text_alone(sample):
    assert find_secrets(sample) == []


def test_recording_hooks_scrub_what_a_live_recording_would_hold():
    """What the vcr_config hooks leave of a live exchange passes the scanner."""
    from vcr.request import Request

    put = Request("PUT", "https://storage.example.com/b/f.png?X-Amz-Credential=AKIA1234&X-Amz-Signature=deadbeef",
                  b"\x89PNG...", {"Content-Type": "image/png"})
    put = before_record_request(put)
    assert find_secrets(put.uri) == [] and put.body == b"<7 bytes>"
    response = {"status": {"code": 200, "message": "OK"},
                "headers": {"Set-Cookie": ["session=abc"], "Content-Type": ["application/json"]},
                "body": {"string": b'[{"upload_url": "https://s.example.com/x?X-Signature=abc123&X-Expires=9"}]'}}
    response = before_record_response(response)
    assert find_secrets(response["body"]["string"].decode()) == []
    assert b"X-Expires=9" in response["body"]["string"] and "Set-Cookie" not in response["headers"]
    assert scrub("a?sig=1&b=2") == "a?sig=REDACTED&b=2"
