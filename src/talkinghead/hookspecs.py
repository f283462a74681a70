"""The plugin seam. A plugin is a module with functions marked ``@hookimpl``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from pluggy import HookimplMarker, HookspecMarker

if TYPE_CHECKING:
    from .media import MediaFile

hookspec = HookspecMarker("talkinghead")
hookimpl = HookimplMarker("talkinghead")


@hookspec
def register_providers(register: Callable[[type], None]) -> None:
    """Register provider classes (subclasses of ``talkinghead.Provider``)."""


@hookspec
def register_tts(register: Callable[[type], None]) -> None:
    """Register text-to-speech engine classes, used when a route has no native text input."""


@hookspec(firstresult=True)
def check_face(image: MediaFile) -> bool | None:
    """Check that ``image`` (a ``talkinghead.MediaFile``) shows exactly one usable face, raising
    ``InputError`` if not; return True once checked. The opt-in pre-flight for paid routes
    (``--check-face``): a video of a face the backend cannot animate is still billed."""
