"""Invariants that tie each route's declarations to what its plugin sends, checked over many
requests with hypothesis (no network, no server):

1. Whatever a route's declarations accept, its input mapping turns into a body the platform's
   schema accepts (the fakes' schema checks: required fields present, no unknown field, enum
   values in range). So validation never lets through a request the app would refuse.
2. Whatever an explicit field asks, the body carries it unchanged or the route refuses it:
   an accepted request is never quietly changed (resolution, aspect ratio, voice, language).
3. A quote is the billed seconds (after the route's minimum and rounding) times the price for
   the tier or resolution, and never bills less than the audio.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talkinghead.errors import InputError
from talkinghead.media import MediaFile, PreparedRequest, check_route
from talkinghead.models import ASPECT_RATIOS, RESOLUTIONS, AvatarRequest, Route
from talkinghead.provider import Provider
from talkinghead_fal import fake_apps as fal_schemas
from talkinghead_fal import routes as fal_routes
from talkinghead_inferencesh import fake_apps as ish_schemas
from talkinghead_inferencesh import routes as ish_routes

ISH = ish_routes.apps("inferencesh", "klingai/avatar")
FAL = fal_routes.models("fal", 300.0)
ROUTES = [a.route for a in ISH.values()] + [m.route for m in FAL.values()]
VOICES = ["Puck (Male)", "Kore (Female)", "v_abc", "Melissa", "warm, low", "Nobody"]


@st.composite
def requests(draw):
    text = draw(st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)),
                                             min_size=1, max_size=40).filter(str.strip)))
    fields = {"image": "face.jpg", "mode": draw(st.sampled_from(["std", "pro"])),
              # weighted towards what most routes accept, so each route sees many accepted requests
              "aspect_ratio": draw(st.sampled_from(("auto", "auto", *ASPECT_RATIOS))),
              "resolution": draw(st.one_of(st.none(), st.none(), st.sampled_from(RESOLUTIONS))),
              "prompt": draw(st.one_of(st.none(), st.just("nods"))),
              "seed": draw(st.one_of(st.none(), st.integers(0, 2**31 - 1)))}
    if text is None:
        fields["audio"] = "a.wav"
    else:
        fields.update(text=text, voice=draw(st.one_of(st.none(), st.sampled_from(VOICES))),
                      language=draw(st.one_of(st.none(), st.sampled_from(["Spanish", "French", "Klingon"]))))
    width, height = draw(st.sampled_from([(512, 512), (1280, 720), (720, 1280), (320, 800)]))
    seconds = draw(st.floats(2.0, 299.0))
    return AvatarRequest(**fields), (width, height), seconds


def _prepared(request, size, seconds):
    image = MediaFile("image", "path", "face.jpg", format="jpeg", content_type="image/jpeg", size=50_000,
                      width=size[0], height=size[1])
    audio = MediaFile("audio", "path", "a.wav", format="wav", content_type="audio/wav", size=100_000,
                      duration_s=seconds)
    return PreparedRequest(request=request, image=image, audio=audio)


def _accepted(prepared, route) -> bool:
    try:
        check_route(prepared, route)
    except InputError:
        return False
    return True


@dataclasses.dataclass(frozen=True)
class Sender:
    """One route of a platform: how it turns a request into the body it sends (``send``: the body,
    and what the platform's schema, the fake's check, finds wrong with it: nothing, [], when it
    accepts it), and the body's fields for an explicit voice and language."""

    route: Route
    send: Callable[[AvatarRequest, tuple[int, int], bool], tuple[dict[str, Any], list[Any]]]
    voice: str | None
    language: str | None


def _inferencesh(model: str) -> Sender:
    app = ISH[model]

    def send(request, size, speaks):
        body = app.build(ish_routes.Inputs(request, app.route, "https://x/face.jpg",
                                           None if speaks else "https://x/a.wav", size))
        body = {k: v for k, v in body.items() if v is not None}
        problem = ish_schemas.check(app.app, body)  # None when accepted
        return body, [] if problem is None else [problem]

    return Sender(app.route, send, voice={"heygen-photo": "voice_id", "p-video-avatar": "voice"}.get(model),
                  language="voice_language" if model == "p-video-avatar" else None)


def _fal(model: str) -> Sender:
    m = FAL[model]

    def send(request, size, speaks):
        body = m.build(fal_routes.Inputs(request, m.route, "https://x/face.jpg", None if speaks else "https://x/a.wav"))
        return body, fal_schemas.check(m.endpoint(request, speaks), body)

    return Sender(m.route, send, voice={"heygen-photo": "voice", "fabric-1.0": "voice_description"}.get(model),
                  language=None)


SENDERS = {f"inferencesh-{m}": _inferencesh(m) for m in sorted(ISH)} | {f"fal-{m}": _fal(m) for m in sorted(FAL)}


@pytest.mark.parametrize("sender", SENDERS.values(), ids=SENDERS.keys())
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=requests())
def test_routes_send_only_what_the_platform_accepts(sender, case):
    request, size, seconds = case
    prepared = _prepared(request, size, seconds)
    if not _accepted(prepared, sender.route):
        return
    speaks = request.text is not None and sender.route.native_text
    body, problems = sender.send(request, size, speaks)
    assert problems == [], body
    _never_changed(request, sender.route, body, resolution="resolution", aspect="aspect_ratio", voice=sender.voice,
                   language=sender.language, speaks=speaks)


def _never_changed(request, route, body, *, resolution, aspect, voice, language, speaks):
    if request.resolution is not None and resolution in body:
        assert body[resolution] == request.resolution
    if route.resolutions and resolution in body:
        assert body[resolution] == route.resolution_for(request)
    if request.aspect_ratio != "auto" and aspect in body:
        assert body[aspect] == request.aspect_ratio
    if speaks and voice and request.voice is not None:
        assert body[voice] == request.voice
    if speaks and language and request.language is not None:
        assert body[language] == request.language


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.id)
@settings(max_examples=60, deadline=None)
@given(case=requests())
def test_quote_is_billed_seconds_times_the_price(route, case):
    request, size, seconds = case
    request = request.model_copy(update={"text": None, "voice": None, "language": None, "audio": "a.wav"})
    prepared = _prepared(request, size, seconds)
    if not _accepted(prepared, route):
        return
    quote = Provider().estimate(prepared, route)
    billed = route.billed_seconds(seconds)
    assert quote.seconds == pytest.approx(billed, abs=1e-3) and quote.seconds >= seconds - 1e-3
    assert quote.price_per_second == route.price_for(request.mode, route.resolution_for(request))
    assert quote.cost_usd == pytest.approx(billed * quote.price_per_second, abs=1e-4)
    assert quote.unconfirmed == route.price_unconfirmed


def test_every_route_declares_where_its_price_comes_from():
    for route in ROUTES:
        assert route.price_source and route.price_date, route.id
        assert all(k in (*route.modes, *route.resolutions) for k in route.price_per_second), route.id
        for mode in route.modes:  # every tier the route offers has a price
            route.price_for(mode, route.tier_resolution.get(mode))


def test_kling_rules_live_in_every_kling_avatar_route():
    for route in (ISH["kling-avatar"].route, FAL["kling-avatar"].route):
        assert route.limits.image_min_side == 300 and route.limits.image_aspect_range == (0.4, 2.5)
    from talkinghead.models import Limits

    assert "image_min_side" not in {f for f in AvatarRequest.model_fields}  # the request stays neutral
    assert Limits().image_min_side is None and Route.model_fields["limits"].default.image_min_side is None
    assert dataclasses.is_dataclass(ish_routes.App)
