"""talkinghead-local: an offline CPU talking-head renderer and offline text-to-speech.

The distribution's pyproject.toml names this module in the ``talkinghead`` entry-point group
(``local = "talkinghead_local"``); talkinghead calls the ``@hookimpl`` functions here:
the ``local`` provider, the ``espeak`` text-to-speech engine, and the face check that the
cloud routes can use as a pre-flight (``--check-face``).
"""

from typing import Any

from talkinghead.hookspecs import hookimpl

from .provider import LocalProvider

# numpy and OpenCV (face, render, tts) load on first use, not when the plugin registers.
_LAZY = {"Face": "face", "check_face": "face", "EspeakEngine": "tts"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'talkinghead_local' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)

__all__ = ["EspeakEngine", "Face", "LocalProvider", "check_face", "register_providers",
           "register_tts"]


@hookimpl
def register_providers(register):
    register(LocalProvider)


@hookimpl
def register_tts(register):
    from .tts import EspeakEngine

    register(EspeakEngine)


@hookimpl(specname="check_face")
def check_face_hook(image):
    """The pre-flight face check for any route: ``image`` is a ``talkinghead.MediaFile``."""
    if image.kind == "url":
        return None  # nothing local to look at; the core says so
    from .face import check_face

    check_face(image.path if image.kind == "path" else image.data)
    return True
