"""The input schemas of the endpoints the fake fal serves, and its check of a submit's body
against them: a missing required field, an unknown field (refused here, so a client sending
what an endpoint does not take is caught), a value outside an enum or of the wrong type each
get fal's 422 ``detail`` list. Schemas follow fal's JS client types (github.com/fal-ai/fal-js,
``libs/client/src/types/endpoints.ts``) and the endpoints' ``llms.txt`` pages.
"""

from __future__ import annotations

from typing import Any

# field -> (type, required, allowed values or None)
Schema = dict[str, tuple[str, bool, tuple[Any, ...] | None]]

_KLING: Schema = {"image_url": ("string", True, None), "audio_url": ("string", True, None),
                  "prompt": ("string", False, None)}
_FABRIC: Schema = {"image_url": ("string", True, None), "audio_url": ("string", True, None),
                   "resolution": ("string", True, ("720p", "480p"))}

SCHEMAS: dict[str, Schema] = {
    "fal-ai/kling-video/ai-avatar/v2/standard": _KLING,
    "fal-ai/kling-video/ai-avatar/v2/pro": _KLING,
    "fal-ai/kling-video/v1/standard/ai-avatar": _KLING,
    "fal-ai/kling-video/v1/pro/ai-avatar": _KLING,
    "fal-ai/bytedance/omnihuman/v1.5": {
        "image_url": ("string", True, None), "audio_url": ("string", True, None), "prompt": ("string", False, None),
        "mask_url": ("string", False, None), "resolution": ("string", False, ("720p", "1080p")),
        "turbo_mode": ("bool", False, None)},
    "veed/fabric-1.0": _FABRIC,
    "veed/fabric-1.0/fast": _FABRIC,
    "veed/fabric-1.0/text": {
        "image_url": ("string", True, None), "text": ("string", True, None),
        "resolution": ("string", True, ("720p", "480p")), "voice_description": ("string", False, None)},
    "fal-ai/creatify/aurora": {
        "image_url": ("string", True, None), "audio_url": ("string", True, None), "prompt": ("string", False, None),
        "resolution": ("string", False, ("480p", "720p")), "guidance_scale": ("number", False, None),
        "audio_guidance_scale": ("number", False, None)},
    "fal-ai/heygen/avatar4/image-to-video": {
        "image_url": ("string", True, None), "prompt": ("string", False, None), "voice": ("string", False, None),
        "audio_url": ("string", False, None), "talking_style": ("string", False, ("stable", "expressive")),
        "expression": ("string", False, None), "background": ("string", False, None),
        "caption": ("bool", False, None),
        "resolution": ("string", False, ("360p", "480p", "540p", "720p", "1080p")),
        "aspect_ratio": ("string", False, ("16:9", "9:16", "4:5", "5:4", "1:1", "auto"))},
}

_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "bool": (bool,), "number": (int, float)}


def check(endpoint: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    """fal's validation ``detail`` entries for ``body`` sent to ``endpoint`` (empty: valid)."""
    schema = SCHEMAS[endpoint]
    errors = [{"loc": ["body", name], "msg": "field required", "type": "missing"}
              for name, (_, required, _) in schema.items() if required and body.get(name) in (None, "")]
    for name, value in body.items():
        if name not in schema:
            errors.append({"loc": ["body", name], "msg": "Extra inputs are not permitted",
                           "type": "extra_forbidden"})
            continue
        kind, _, allowed = schema[name]
        if value is None:
            continue
        if not isinstance(value, _TYPES[kind]) or (kind == "number" and isinstance(value, bool)):
            errors.append({"loc": ["body", name], "msg": f"Input should be a valid {kind}", "type": f"{kind}_type"})
        elif allowed is not None and value not in allowed:
            expected = ", ".join(repr(a) for a in allowed)
            errors.append({"loc": ["body", name], "msg": f"Input should be {expected}", "type": "literal_error"})
    return errors
