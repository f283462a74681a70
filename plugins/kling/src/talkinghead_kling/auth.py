"""Kling's credentials: a single API key sent as the bearer token (``KlingKeyAuth``, the scheme
Kling's console issues now), or the older pair: a JWT (HS256) made from the access key and
signed with the secret key (``KlingAuth``).

The single key: ``Authorization: Bearer <api key>``, as-is (Kling's quick-start guide, as cited
by vercel/ai's Kling provider, PR #17950; inference-sh/grid's avatar app sends its ``KLING_KEY``
the same way). The pair:

Protocol notes §2.1 [V-doc]: header ``{"alg": "HS256", "typ": "JWT"}``, payload ``iss`` =
access key, ``exp`` = now + 1800, ``nbf`` = now - 5, sent as ``Authorization: Bearer <jwt>``.
The token is signed here with the standard library (HS256, RFC 7515 compact form: the same
bytes PyJWT makes), not with PyJWT: PyJWT warns about HMAC keys under 32 bytes, Kling chooses
the key's length, and silencing that warning would mean changing the process's warnings
filters, which a library must not touch.

``KlingAuth`` is an ``httpx.Auth``: every request gets the cached token, renewed a margin
before it expires. When Kling still answers 401 with 1004 (expired) or 1003 (not yet valid:
our clock is ahead of Kling's), a fresh token is made (after 1003 with a wider ``nbf``
allowance) and the request is sent once more: a 401 means Kling refused it, so even a
create call is safe to resend. Neither the keys nor a token ever appear in its ``repr``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Generator
from typing import Any

import httpx

from . import protocol

LIFETIME = 1800.0       # seconds a token is valid (the doc's example; 30 min or less works)
RENEW_BEFORE = 60.0     # make a new one this long before ``exp``
NBF_SLACK = 5.0         # ``nbf`` = now - this (the doc's 5 s)
WIDE_NBF_SLACK = 300.0  # after a 1003 (clock skew): backdate ``nbf`` this far instead
_HEADER = {"alg": "HS256", "typ": "JWT"}


def make_token(access_key: str, secret_key: str, *, now: float | None = None, lifetime: float = LIFETIME,
               nbf_slack: float = NBF_SLACK) -> tuple[str, int]:
    """One token and its ``exp`` (epoch seconds)."""
    issued = int(time.time() if now is None else now)
    exp = issued + int(lifetime)
    payload = {"iss": access_key, "exp": exp, "nbf": issued - int(nbf_slack)}
    signing_input = f"{_segment(_HEADER, sort_keys=True)}.{_segment(payload)}".encode()
    signature = hmac.new(secret_key.encode(), signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{_b64url(signature)}", exp


def _segment(part: dict[str, Any], *, sort_keys: bool = False) -> str:
    """One JSON part of a compact JWS, as PyJWT writes it (no spaces; the header sorted)."""
    return _b64url(json.dumps(part, separators=(",", ":"), sort_keys=sort_keys).encode())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class KlingAuth(httpx.Auth):
    """Bearer JWT for every request, cached and renewed before it expires."""

    requires_response_body = True  # to read Kling's code on a 401

    def __init__(self, access_key: str, secret_key: str, *, lifetime: float = LIFETIME,
                 renew_before: float = RENEW_BEFORE, clock: Callable[[], float] = time.time,
                 on_token: Callable[[str], Any] | None = None) -> None:
        if not access_key or not secret_key:
            raise ValueError("both the access key and the secret key are needed")
        self._access_key = access_key
        self._secret_key = secret_key
        self.lifetime = max(1.0, float(lifetime))
        self.renew_before = min(max(0.0, float(renew_before)), self.lifetime / 2)
        self.clock = clock
        self.nbf_slack = NBF_SLACK
        self.on_token = on_token
        self.minted = 0  # tokens made so far (for tests and logs)
        self._token: str | None = None
        self._exp = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<KlingAuth lifetime={self.lifetime:g}s tokens={self.minted}>"

    # -- tokens --------------------------------------------------------------------------

    def token(self, *, force: bool = False) -> str:
        """The current token, or a new one when none is cached, it is within
        ``renew_before`` of ``exp``, or ``force``."""
        with self._lock:
            now = self.clock()
            if force or self._token is None or now >= self._exp - self.renew_before:
                self._token, exp = make_token(self._access_key, self._secret_key, now=now,
                                              lifetime=self.lifetime, nbf_slack=self.nbf_slack)
                self._exp = float(exp)
                self.minted += 1
                if self.on_token is not None:
                    self.on_token(self._token)
            return self._token

    @property
    def expires_at(self) -> float:
        return self._exp

    def secrets(self) -> list[str]:
        """Every value that must never be shown: both keys and the current token."""
        return [s for s in (self._access_key, self._secret_key, self._token) if s]

    # -- httpx ---------------------------------------------------------------------------

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        response = yield request
        if response.status_code != 401:
            return
        code = protocol.code_of(protocol.parse_json(response.content))
        if code not in protocol.TOKEN_RETRY_CODES:
            return
        if code == 1003:  # not yet valid: Kling's clock is behind ours
            self.nbf_slack = max(self.nbf_slack, WIDE_NBF_SLACK)
        request.headers["Authorization"] = f"Bearer {self.token(force=True)}"
        yield request


class KlingKeyAuth(httpx.Auth):
    """``Authorization: Bearer <api key>`` on every request. Nothing to renew, so a 401 is
    final. The key never appears in its ``repr``."""

    def __init__(self, api_key: str) -> None:
        if not api_key:
            raise ValueError("the API key is empty")
        self._api_key = api_key

    def __repr__(self) -> str:
        return "<KlingKeyAuth>"

    def secrets(self) -> list[str]:
        return [self._api_key]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._api_key}"
        yield request
