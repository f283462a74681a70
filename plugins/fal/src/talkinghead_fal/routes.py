"""The models fal serves to talkinghead: their endpoints, declarations and how a model-neutral
request maps to each endpoint's input fields.

Facts and their public sources: docs/protocols/models.md (section numbers below) and
docs/protocols/fal.md. fal's ``llms.txt`` model pages carry no date, so the date given is when a
dated third-party read corroborated the price, where one exists:
- Kling AI Avatar v2: https://fal.ai/models/fal-ai/kling-video/ai-avatar/v2/standard and /pro.
- OmniHuman 1.5: https://fal.ai/models/fal-ai/bytedance/omnihuman/v1.5/llms.txt and fal's JS
  client types (github.com/fal-ai/fal-js, ``libs/client/src/types/endpoints.ts``).
- Fabric 1.0: https://fal.ai/models/veed/fabric-1.0/llms.txt and .../veed/fabric-1.0/text/llms.txt.
- Aurora: https://fal.ai/models/fal-ai/creatify/aurora/llms.txt.
- HeyGen Avatar 4: https://fal.ai/models/fal-ai/heygen/avatar4/image-to-video/llms.txt.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from talkinghead.models import MB, AvatarRequest, Limits, Route
from talkinghead.models import ModelInputs as Inputs

from . import protocol

KLING_SOURCE = ("fal model pages: fal-ai/kling-video/ai-avatar/v2/standard 0.0562 and /v2/pro 0.115 USD per "
                "second of output video")


@dataclass(frozen=True)
class Model:
    route: Route
    endpoint: Callable[[AvatarRequest, bool], str]  # (request, speaks text itself) -> endpoint id
    build: Callable[[Inputs], dict[str, Any]]


def _kling(i: Inputs) -> dict[str, Any]:
    return protocol.submit_body(image_url=i.image, audio_url=i.audio or "", prompt=i.request.prompt)


def _image_audio_prompt(i: Inputs) -> dict[str, Any]:
    """OmniHuman and Aurora: the tier picks the resolution (e.g. OmniHuman std 720p, pro 1080p)."""
    return {"image_url": i.image, "audio_url": i.audio, **i.given(prompt="prompt"),
            "resolution": i.route.resolution_for(i.request)}


def _fabric(i: Inputs) -> dict[str, Any]:
    # The voice is a free description (the base voice comes from the photo); the resolution
    # is required by the endpoint: always sent.
    return {"image_url": i.image, **i.speech("text", "audio_url", voice="voice_description"),
            "resolution": i.route.resolution_for(i.request)}


def _heygen(i: Inputs) -> dict[str, Any]:
    # This endpoint's prompt is the text it speaks; "auto" keeps the photo's shape.
    return {"image_url": i.image, **i.speech("prompt", "audio_url", voice="voice"),
            "resolution": i.route.resolution_for(i.request), "aspect_ratio": i.request.aspect_ratio}


@functools.lru_cache(maxsize=32)  # frozen declarations: built once per setting, not per request
def models(provider: str, audio_max_seconds: float) -> dict[str, Model]:
    """Model id -> its fal endpoint(s) and declared route."""
    def route(**kw: Any) -> Route:
        return Route(provider=provider, **kw)

    image: dict[str, Any] = {"image_formats": ("jpeg", "png")}
    return {
        "kling-avatar": Model(route(
            model="kling-avatar", endpoint="fal-ai/kling-video/ai-avatar/v2/{standard,pro}",
            price_per_second=dict(protocol.PRICES), price_source=KLING_SOURCE, price_date="2026-08-01",
            limits=Limits(image_min_side=300, image_aspect_range=(1 / 2.5, 2.5),
                          audio_max_seconds=audio_max_seconds)),
            lambda r, _: protocol.endpoint_for(r.mode), _kling),
        "omnihuman-1.5": Model(route(
            model="omnihuman-1.5", endpoint="fal-ai/bytedance/omnihuman/v1.5", resolutions=("720p", "1080p"),
            tier_resolution={"std": "720p", "pro": "1080p"}, price_per_second={"std": 0.16, "pro": 0.16},
            price_source="https://fal.ai/models/fal-ai/bytedance/omnihuman/v1.5/llms.txt (0.16 USD/s, any "
                         "resolution, turbo or not)", price_date="2026-09-29",
            limits=Limits(**image, image_max_bytes=5 * MB, audio_max_seconds=60.0,
                          audio_max_seconds_by_resolution={"1080p": 30.0})),
            lambda r, _: "fal-ai/bytedance/omnihuman/v1.5", _image_audio_prompt),
        "fabric-1.0": Model(route(
            model="fabric-1.0", endpoint="veed/fabric-1.0 (+ /text)", prompt=False, native_text=True,
            voice_any=True, voice_note="a free description of the voice (e.g. 'warm low female'); the base "
                                       "voice is derived from the photo",
            resolutions=("480p", "720p"), tier_resolution={"std": "480p", "pro": "720p"}, price_by="resolution",
            price_per_second={"480p": 0.08, "720p": 0.15},
            price_source="https://fal.ai/models/veed/fabric-1.0/llms.txt and .../text/llms.txt",
            price_date="2026-09-03",
            limits=Limits(**image, audio_max_seconds=60.0, text_max_chars=2000)),
            lambda r, speaks: "veed/fabric-1.0/text" if speaks else "veed/fabric-1.0", _fabric),
        "aurora": Model(route(
            model="aurora", endpoint="fal-ai/creatify/aurora", resolutions=("480p", "720p"),
            tier_resolution={"std": "480p", "pro": "720p"}, price_by="resolution",
            price_per_second={"480p": 0.07, "720p": 0.14}, round_up=True,
            billed="seconds of output video, rounded up to whole seconds",
            price_source="https://fal.ai/models/fal-ai/creatify/aurora/llms.txt", price_date="2026-09-29",
            limits=Limits(**image, audio_formats=("mp3", "wav"), audio_max_seconds=60.0)),
            lambda r, _: "fal-ai/creatify/aurora", _image_audio_prompt),
        "heygen-photo": Model(route(
            model="heygen-photo", endpoint="fal-ai/heygen/avatar4/image-to-video", prompt=False,
            native_text=True, voice_any=True, voice_note="a HeyGen voice name, e.g. 'Melissa'",
            resolutions=("360p", "480p", "540p", "720p", "1080p"), tier_resolution={"std": "720p", "pro": "1080p"},
            aspect="controls", aspect_ratios=("16:9", "9:16", "1:1"), price_per_second={"std": 0.10, "pro": 0.10},
            price_source="https://fal.ai/models/fal-ai/heygen/avatar4/image-to-video/llms.txt",
            price_date="undated page", limits=Limits(**image)),
            lambda r, _: "fal-ai/heygen/avatar4/image-to-video", _heygen),
    }


def app_path_of(model: str) -> str:
    """``{owner}/{app}`` of a model's endpoints (status, result and cancel use it)."""
    ids = {"kling-avatar": protocol.ENDPOINTS["std"], "omnihuman-1.5": "fal-ai/bytedance/omnihuman/v1.5",
           "fabric-1.0": "veed/fabric-1.0", "aurora": "fal-ai/creatify/aurora",
           "heygen-photo": "fal-ai/heygen/avatar4/image-to-video"}
    return protocol.app_path(ids.get(model, protocol.ENDPOINTS["std"]))
