"""The models inference.sh serves to talkinghead: one app each, its declarations and how a
model-neutral request maps to the app's input fields.

Facts and their public sources: docs/protocols/models.md and docs/protocols/inference-sh.md.
In short (each price with the date it was read, where the page carries one):
- ``klingai/avatar``: the app's own field descriptions (github.com/inference-sh/grid,
  ``api/klingai/video/avatar``, changed 2026-08-07).
- ``bytedance/omnihuman-1-5``: the app source and input schema (inference-sh/grid,
  ``api/bytedance/vision/omnihuman-1-5``, commit 85af325, 2026-08-18); price from the
  platform's skill doc (github.com/inference-sh/skills, ``tools/video/ai-avatar-video``,
  2026-05-16), which does not say it is this app's price: unconfirmed.
- ``falai/fabric-1-0``: inference-sh/grid ``api/falai/fabric-1-0``; prices from
  https://inference.sh/apps/falai.md (undated).
- ``heygen/photo-video``: inference-sh/grid ``api/heygen/photo-video`` and ``pricing.md``;
  prices from https://inference.sh/apps/heygen.md (updated 2026-11-11).
- ``pruna/p-video-avatar``: inference-sh/grid ``api/pruna/p-video-avatar``; prices from the
  skill doc (2026-05-16) and Pruna's own page
  https://docs.pruna.ai/en/stable/docs_pruna_endpoints/performance_models/p-video-avatar.html.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from talkinghead.models import MB, Limits, Route
from talkinghead.models import ModelInputs as Inputs

KLING_LIMITS = Limits(image_min_side=300, image_aspect_range=(1 / 2.5, 2.5))

PVIDEO_VOICES = tuple(
    [f"{n} (Female)" for n in ("Zephyr", "Kore", "Leda", "Aoede", "Callirrhoe", "Autonoe", "Despina", "Erinome",
                               "Laomedeia", "Achernar", "Gacrux", "Pulcherrima", "Vindemiatrix", "Sulafat")]
    + [f"{n} (Male)" for n in ("Puck", "Charon", "Fenrir", "Orus", "Enceladus", "Iapetus", "Umbriel", "Algenib",
                               "Algieba", "Schedar", "Achird", "Zubenelgenubi", "Sadachbia", "Sadaltager",
                               "Alnilam", "Rasalgethi")])
PVIDEO_LANGUAGES = ("English (US)", "English (UK)", "Spanish", "French", "German", "Italian",
                    "Portuguese (Brazil)", "Japanese", "Korean", "Hindi")


Builder = Callable[[Inputs], dict[str, Any]]


@dataclass(frozen=True)
class App:
    route: Route
    app: str
    build: Builder


def _kling(i: Inputs) -> dict[str, Any]:
    out: dict[str, Any] = {"image": i.image, "audio": i.audio, **i.given(prompt="prompt"), "mode": i.request.mode}
    if i.request.aspect_ratio != "auto":
        # Honoured only because the photo already has this shape (the app ignores the field).
        out["aspect_ratio"] = i.request.aspect_ratio
    return out


def _omnihuman(i: Inputs) -> dict[str, Any]:
    return {"image": i.image, "audio": i.audio}


def _fabric(i: Inputs) -> dict[str, Any]:
    return {"image": i.image, "audio": i.audio, "resolution": i.route.resolution_for(i.request)}


def _heygen(i: Inputs) -> dict[str, Any]:
    # audio_url is a plain string field: the uploaded file's URL
    return {"image": i.image, **i.speech("script", "audio_url", voice="voice_id"),
            "resolution": i.route.resolution_for(i.request),
            "aspect_ratio": heygen_aspect(i.request.aspect_ratio, i.image_size), **i.given(prompt="motion_prompt")}


def heygen_aspect(asked: str, size: tuple[int, int] | None) -> str:
    """The app has 16:9 and 9:16 and no ``auto``: a portrait photo gets 9:16, others 16:9."""
    if asked != "auto":
        return asked
    return "9:16" if size and size[1] > size[0] else "16:9"


def _pvideo(i: Inputs) -> dict[str, Any]:
    return {"image": i.image, **i.speech("voice_script", "audio", voice="voice", language="voice_language"),
            "resolution": i.route.resolution_for(i.request), **i.given(prompt="video_prompt", seed="seed")}


@functools.lru_cache(maxsize=32)  # frozen declarations: built once per setting, not per request
def apps(provider: str, kling_app: str) -> dict[str, App]:
    """Model id -> the app serving it, with its declared route."""
    def route(**kw: Any) -> Route:
        return Route(provider=provider, **kw)

    return {
        "kling-avatar": App(route(
            model="kling-avatar", endpoint=kling_app, price_per_second={"std": 0.056, "pro": 0.112},
            price_source="inference.sh app klingai/avatar, its field description (inference-sh/grid)",
            price_date="2026-08-07", limits=KLING_LIMITS), kling_app, _kling),
        "omnihuman-1.5": App(route(
            model="omnihuman-1.5", endpoint="bytedance/omnihuman-1-5", modes=("std",), prompt=False,
            price_per_second={"std": 0.16}, price_unconfirmed=True,
            billed="seconds of output video (measured by the app)",
            price_source="inference.sh skill doc 'OmniHuman 1.5 $0.16 per second' (inference-sh/skills); "
                         "not stated to be this app's price",
            price_date="2026-05-16",
            limits=Limits(image_max_bytes=5 * MB, image_max_side=4096, audio_formats=("mp3", "wav"),
                          audio_max_seconds=35.0)),
            "bytedance/omnihuman-1-5", _omnihuman),
        "fabric-1.0": App(route(
            model="fabric-1.0", endpoint="falai/fabric-1-0", prompt=False, resolutions=("480p", "720p"),
            tier_resolution={"std": "480p", "pro": "720p"}, price_by="resolution",
            price_per_second={"480p": 0.08, "720p": 0.15}, min_billed_seconds=5.0,
            billed="seconds the app meters: it falls back to 5 s when fal reports no duration, and "
                   "fal's Fabric output has none (unconfirmed; check a bill)",
            price_source="https://inference.sh/apps/falai.md", price_date="undated page",
            limits=Limits(audio_formats=("mp3", "wav"), audio_max_seconds=60.0)),
            "falai/fabric-1-0", _fabric),
        "heygen-photo": App(route(
            model="heygen-photo", endpoint="heygen/photo-video", native_text=True, voice_any=True,
            voice_required=True, voice_note="a HeyGen voice id, listed by the heygen/avatar-video app's "
                                            "list_resources function",
            resolutions=("720p", "1080p", "4k"), tier_resolution={"std": "720p", "pro": "1080p"},
            aspect="controls", aspect_ratios=("16:9", "9:16"), price_by="resolution",
            price_per_second={"720p": 0.05, "1080p": 0.05, "4k": 0.067},
            billed="seconds of output video; failed calls are not charged",
            price_source="https://inference.sh/apps/heygen.md", price_date="2026-11-11",
            limits=Limits(text_max_chars=1500)),
            "heygen/photo-video", _heygen),
        "p-video-avatar": App(route(
            model="p-video-avatar", endpoint="pruna/p-video-avatar", native_text=True, voices=PVIDEO_VOICES,
            languages=PVIDEO_LANGUAGES, seed=True, resolutions=("720p", "1080p"),
            tier_resolution={"std": "720p", "pro": "1080p"}, price_by="resolution",
            price_per_second={"720p": 0.025, "1080p": 0.045},
            billed="seconds of output video (the app reports 10 s when Pruna gives no duration)",
            price_source="inference.sh skill doc (inference-sh/skills) and Pruna's p-video-avatar page",
            price_date="2026-05-16", limits=Limits(audio_max_seconds=180.0)),
            "pruna/p-video-avatar", _pvideo),
    }
