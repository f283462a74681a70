"""talkinghead backend: Kling Avatar through inference.sh (app ``klingai/avatar``).

Registered through the ``talkinghead`` entry-point group, exactly as a third-party plugin
would be. The protocol is spoken with httpx directly; see ``protocol.py`` for the wire rules
and ``fake.py`` (extra ``[fake]``) for a loopback server that speaks them.
"""

from __future__ import annotations

from collections.abc import Callable

from talkinghead.hookspecs import hookimpl

from .provider import InferenceShProvider

__all__ = ["InferenceShProvider", "register_providers"]


@hookimpl
def register_providers(register: Callable[[type], None]) -> None:
    register(InferenceShProvider)
