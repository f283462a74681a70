"""talkinghead backend: Kling Avatar (``kling-avatar``) on Kling's own API.

Registered through the ``talkinghead`` entry-point group, exactly as a third-party plugin
would be. Modules: ``auth`` (the JWT from the access and secret keys), ``protocol`` (the
wire rules as pure functions), ``provider`` (``KlingProvider``), and ``fake`` (extra
``[fake]``: a loopback server that speaks the same protocol, for tests and benchmarks).
"""

from __future__ import annotations

from collections.abc import Callable

from talkinghead.hookspecs import hookimpl

from .provider import KlingProvider

__all__ = ["KlingProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type], None]) -> None:
    register(KlingProvider)
