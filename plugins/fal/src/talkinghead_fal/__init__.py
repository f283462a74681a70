"""talkinghead backend: Kling AI Avatar v2 through the fal.ai queue.

Registered through the ``talkinghead`` entry-point group, exactly as a third-party plugin
would be. The protocol is spoken with httpx directly: ``protocol.py`` holds the wire rules,
``webhooks.py`` fal's Ed25519 webhook signatures, and ``fake.py`` (extra ``[fake]``) a
loopback server that speaks them.
"""

from __future__ import annotations

from collections.abc import Callable

from talkinghead.hookspecs import hookimpl

from .provider import FalProvider

__all__ = ["FalProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type], None]) -> None:
    register(FalProvider)
