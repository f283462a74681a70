"""fal's webhook signatures (protocol notes §6): Ed25519, keys published as a JWKS.

A delivery carries four headers::

    X-Fal-Webhook-Request-Id   X-Fal-Webhook-User-Id
    X-Fal-Webhook-Timestamp    (Unix seconds)
    X-Fal-Webhook-Signature    (hex of a 64-byte Ed25519 signature)

and the signature covers, in UTF-8,
``request_id + "\\n" + user_id + "\\n" + timestamp + "\\n" + hex(sha256(raw body))``: the raw
bytes as received, never re-serialised JSON. A delivery is accepted when any key of fal's JWKS
verifies it and its timestamp is within the tolerance (300 s by default) of our clock.

Pure functions plus ``JWKSCache`` (the fetch is injected, so the provider fetches with its
guarded HTTP client). ``sign`` and ``jwks_for`` make signed deliveries with a local key pair,
for the fake server and for tests of an app's own webhook handling.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from talkinghead.errors import WebhookRejected

if TYPE_CHECKING:  # cryptography and asyncio load on first use: registering the plugin stays light
    import asyncio

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

HEADER_REQUEST_ID = "X-Fal-Webhook-Request-Id"
HEADER_USER_ID = "X-Fal-Webhook-User-Id"
HEADER_TIMESTAMP = "X-Fal-Webhook-Timestamp"
HEADER_SIGNATURE = "X-Fal-Webhook-Signature"
HEADERS = (HEADER_REQUEST_ID, HEADER_USER_ID, HEADER_TIMESTAMP, HEADER_SIGNATURE)
DEFAULT_TOLERANCE = 300.0      # seconds either side of our clock (§6 step 1)
DEFAULT_JWKS_TTL = 24 * 3600.0  # "cache it for up to 24 h" (§6 step 3)
DEFAULT_REFRESH_INTERVAL = 300.0  # an unknown signature re-fetches the keys at most this often


@dataclass(frozen=True)
class Delivery:
    """The signature headers of one delivery, checked for shape."""

    request_id: str
    user_id: str
    timestamp: str
    signature: bytes

    def message(self, body: bytes) -> bytes:
        return signed_message(self.request_id, self.user_id, self.timestamp, body)


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What fal signs (§6 step 2)."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


def read_headers(headers: Mapping[str, str]) -> Delivery:
    """The four signature headers (any case), or ``WebhookRejected`` naming what is wrong."""
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    values = {}
    for name in HEADERS:
        value = lower.get(name.lower(), "").strip()
        if not value:
            raise WebhookRejected(f"fal: webhook rejected: missing {name} header")
        values[name] = value
    try:
        signature = bytes.fromhex(values[HEADER_SIGNATURE])
    except ValueError:
        raise WebhookRejected(f"fal: webhook rejected: {HEADER_SIGNATURE} is not hex") from None
    if len(signature) != 64:
        raise WebhookRejected(f"fal: webhook rejected: {HEADER_SIGNATURE} is {len(signature)} bytes, "
                              "not a 64-byte Ed25519 signature")
    return Delivery(values[HEADER_REQUEST_ID], values[HEADER_USER_ID], values[HEADER_TIMESTAMP], signature)


def check_timestamp(timestamp: str, *, tolerance: float = DEFAULT_TOLERANCE, now: float | None = None) -> None:
    """Reject a timestamp that is not Unix seconds or is more than ``tolerance`` seconds away
    from ``now`` (either way: a stale replay, or a clock far ahead)."""
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookRejected(f"fal: webhook rejected: {HEADER_TIMESTAMP} {timestamp[:40]!r} is not "
                              "Unix seconds") from None
    now = time.time() if now is None else now
    skew = now - sent
    if abs(skew) > tolerance:
        which = "old" if skew > 0 else "in the future"
        raise WebhookRejected(f"fal: webhook rejected: timestamp is {abs(skew):.0f} s {which} "
                              f"(tolerance {tolerance:g} s)")


def public_keys(jwks: Any) -> list[Ed25519PublicKey]:
    """The Ed25519 keys of a JWKS (``{"keys": [{"kty": "OKP", "crv": "Ed25519", "x": ...}]}``);
    keys of other types or that do not decode are skipped. An entry with ``x`` but no
    ``kty``/``crv`` is read as Ed25519, as fal's own verification example does (it reads only
    ``x``; docs.fal.ai, model endpoints, webhooks); ``x`` may come padded or not."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    out: list[Ed25519PublicKey] = []
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("kty", "OKP") != "OKP" or entry.get("crv", "Ed25519") != "Ed25519":
            continue
        x = entry.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
            out.append(Ed25519PublicKey.from_public_bytes(raw))
        except (ValueError, binascii.Error):
            continue
    return out


def verify_signature(keys: list[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    """Whether any key verifies the signature (§6 step 4)."""
    from cryptography.exceptions import InvalidSignature

    for key in keys:
        try:
            key.verify(signature, message)
            return True
        except InvalidSignature:
            continue
    return False


class JWKSCache:
    """fal's public keys, fetched on first use and kept ``ttl`` seconds. ``keys(refresh=True)``
    re-fetches (key rotation) but at most once per ``refresh_interval``, so a flood of bad
    signatures cannot turn into a flood of fetches. Concurrent first uses share one fetch."""

    def __init__(self, fetch: Callable[[], Awaitable[Any]], *, ttl: float = DEFAULT_JWKS_TTL,
                 refresh_interval: float = DEFAULT_REFRESH_INTERVAL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._fetch = fetch
        self.ttl = ttl
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._keys: list[Ed25519PublicKey] | None = None
        self._fetched_at = 0.0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self.fetches = 0

    def _age(self) -> float:
        return self._clock() - self._fetched_at

    def can_refresh(self) -> bool:
        return self._keys is None or self._age() >= self.refresh_interval

    async def keys(self, *, refresh: bool = False) -> list[Ed25519PublicKey]:
        if self._fresh(refresh):
            return self._keys  # type: ignore[return-value]  # _fresh() is False while it is None
        async with self._get_lock():
            if self._fresh(refresh):  # another coroutine fetched meanwhile
                return self._keys  # type: ignore[return-value]  # as above
            self._keys = public_keys(await self._fetch())
            self._fetched_at = self._clock()
            self.fetches += 1
            return self._keys

    def _fresh(self, refresh: bool) -> bool:
        if self._keys is None or self._age() >= self.ttl:
            return False
        return not refresh or not self.can_refresh()

    def _get_lock(self) -> asyncio.Lock:
        import asyncio
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:  # a provider may outlive a loop
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def clear(self) -> None:
        self._keys, self._fetched_at = None, 0.0


async def verify(headers: Mapping[str, str], body: bytes, cache: JWKSCache, *,
                 tolerance: float = DEFAULT_TOLERANCE, user_id: str | None = None,
                 now: float | None = None) -> Delivery:
    """Check a delivery's headers, timestamp, optional user id and signature; returns its
    headers or raises ``WebhookRejected``. Cheap checks come first: a delivery with a missing
    header or a stale timestamp never causes a key fetch."""
    delivery = read_headers(headers)
    check_timestamp(delivery.timestamp, tolerance=tolerance, now=now)
    if user_id is not None and delivery.user_id != user_id:
        raise WebhookRejected(f"fal: webhook rejected: {HEADER_USER_ID} is not the configured fal user")
    message = delivery.message(body)
    if verify_signature(await cache.keys(), delivery.signature, message):
        return delivery
    if cache.can_refresh() and verify_signature(await cache.keys(refresh=True), delivery.signature, message):
        return delivery
    raise WebhookRejected("fal: webhook rejected: the signature does not verify with any of fal's published keys")


# -- signing, for the fake server and for tests ------------------------------------------------

def sign(private_key: Ed25519PrivateKey, body: bytes, *, request_id: str, user_id: str = "test-user",
         timestamp: int | str | None = None) -> dict[str, str]:
    """The four headers of a delivery of ``body`` signed with ``private_key``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = private_key.sign(signed_message(request_id, user_id, ts, body))
    return {HEADER_REQUEST_ID: request_id, HEADER_USER_ID: user_id, HEADER_TIMESTAMP: ts,
            HEADER_SIGNATURE: signature.hex()}


def jwk(public_key: Ed25519PublicKey, kid: str = "test-key") -> dict[str, str]:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"}


def jwks_for(*keys: Ed25519PrivateKey | Ed25519PublicKey) -> dict[str, Any]:
    """A JWKS publishing the public halves of ``keys``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    out = []
    for i, key in enumerate(keys):
        public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        out.append(jwk(public, kid=f"test-key-{i}"))
    return {"keys": out}


__all__ = [
    "DEFAULT_JWKS_TTL",
    "DEFAULT_TOLERANCE",
    "HEADERS",
    "Delivery",
    "JWKSCache",
    "check_timestamp",
    "jwk",
    "jwks_for",
    "public_keys",
    "read_headers",
    "sign",
    "signed_message",
    "verify",
    "verify_signature",
]
