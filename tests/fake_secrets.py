"""Made-up credentials in the shapes real ones take, for tests of scanners and redaction.

Built at run time from obviously synthetic parts, so no literal in the repository looks like a
real key to a secret scanner (ours or anyone's), while the values still match the real shapes.
"""

from __future__ import annotations


def fal_key(fill: str = "fa") -> str:
    """``<uuid>:<32 hex>``, the shape of a fal key (``FAL_KEY``)."""
    parts = (fill * 4, fill * 2, fill * 2, fill * 2, fill * 6)
    return "-".join(parts) + ":" + "0f" * 16


def jwt(claims: str = "FAKEclaims") -> str:
    """Three dot-separated base64url parts starting ``eyJ``, the shape of a JWT."""
    return ".".join(("eyJ" + "FAKEheader", "eyJ" + claims, "FAKEsignature" * 2))


def inference_key() -> str:
    """``inf_`` and 20 more characters, the shape of an inference.sh key."""
    return "inf_" + "FAKE" * 5
