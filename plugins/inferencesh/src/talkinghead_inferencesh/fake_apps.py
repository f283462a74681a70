"""The input schemas of the apps the fake inference.sh serves, and its check of a run's input
against them (missing required field, unknown field, value outside an enum, wrong type: the
platform's ``validation_error``). Each schema is the app's published ``input_schema``, from
github.com/inference-sh/grid (see ``routes.py`` for the app paths), reduced to what is checked.
"""

from __future__ import annotations

from typing import Any

from .routes import PVIDEO_LANGUAGES, PVIDEO_VOICES  # the app's enums: the route declares the same lists

# field -> (type, required, allowed values or None). "file" is a URI string.
Schema = dict[str, tuple[str, bool, tuple[Any, ...] | None]]

SCHEMAS: dict[str, Schema] = {
    "klingai/avatar": {
        "image": ("file", True, None), "audio": ("file", False, None), "prompt": ("string", False, None),
        "mode": ("string", False, ("std", "pro")), "aspect_ratio": ("string", False, ("16:9", "9:16", "1:1")),
    },
    "bytedance/omnihuman-1-5": {
        "image": ("file", True, None), "audio": ("file", True, None), "mask_index": ("int", False, None),
    },
    "falai/fabric-1-0": {
        "image": ("file", True, None), "audio": ("file", True, None),
        "resolution": ("string", False, ("480p", "720p")),
    },
    "heygen/photo-video": {
        "image": ("file", True, None), "script": ("string", False, None), "voice_id": ("string", False, None),
        "audio_url": ("string", False, None), "resolution": ("string", False, ("720p", "1080p", "4k")),
        "aspect_ratio": ("string", False, ("16:9", "9:16")),
        "expressiveness": ("string", False, ("high", "medium", "low")), "motion_prompt": ("string", False, None),
        "remove_background": ("bool", False, None), "output_format": ("string", False, ("mp4", "webm")),
        "title": ("string", False, None),
    },
    "pruna/p-video-avatar": {
        "image": ("file", True, None), "voice_script": ("string", False, None), "audio": ("file", False, None),
        "voice": ("string", False, PVIDEO_VOICES), "voice_language": ("string", False, PVIDEO_LANGUAGES),
        "resolution": ("string", False, ("720p", "1080p")), "video_prompt": ("string", False, None),
        "voice_prompt": ("string", False, None), "seed": ("int", False, None),
        "disable_safety_filter": ("bool", False, None), "disable_prompt_upsampling": ("bool", False, None),
    },
}

_TYPES = {"file": str, "string": str, "int": int, "bool": bool}


def app_name(app: str) -> str:
    """``owner/name`` of an app reference that may pin a version (``owner/name@abc123``)."""
    return app.split("@", 1)[0]


def check(app: str, inputs: dict[str, Any]) -> str | None:
    """The validation error detail for ``inputs`` to ``app``, or None when they pass."""
    schema = SCHEMAS[app_name(app)]
    for name, (_kind, required, _allowed) in schema.items():
        if required and inputs.get(name) in (None, ""):
            return f"input.{name}: field required"
    for name, value in inputs.items():
        if name not in schema:
            return f"input.{name}: extra fields not permitted"
        kind, _, allowed = schema[name]
        if value is None:
            continue
        if not isinstance(value, _TYPES[kind]) or (kind == "int" and isinstance(value, bool)):
            return f"input.{name}: expected {kind}, got {type(value).__name__}"
        if allowed is not None and value not in allowed:
            return f"input.{name}: {value!r} is not one of {list(allowed)[:10]}"
    return None
