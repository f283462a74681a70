"""Every model inference.sh serves, end to end against the fake: the request is mapped to the
app's own input fields (the fake refuses a missing required field or any field the app does
not take), the task completes and the video downloads. Plus the route declarations at work:
a request a route cannot honour is refused with the reason, never quietly changed."""

from __future__ import annotations

import pytest

from talkinghead import InputError
from talkinghead_inferencesh import fake_apps
from tests.plugins.shared import assert_sent_only, model_request

HOW = [  # model, request fields, the app, the input fields it must receive (values: None = any)
    ("kling-avatar", {"mode": "pro", "prompt": "nods"}, "klingai/avatar",
     {"image": None, "audio": None, "prompt": "nods", "mode": "pro"}),
    ("omnihuman-1.5", {}, "bytedance/omnihuman-1-5", {"image": None, "audio": None}),
    ("fabric-1.0", {"mode": "pro"}, "falai/fabric-1-0", {"image": None, "audio": None, "resolution": "720p"}),
    ("fabric-1.0", {"resolution": "480p", "mode": "pro"}, "falai/fabric-1-0",
     {"image": None, "audio": None, "resolution": "480p"}),  # an explicit resolution wins over the tier
    ("heygen-photo", {"text": "Hello there", "voice": "v_123", "prompt": "nods slowly"}, "heygen/photo-video",
     {"image": None, "script": "Hello there", "voice_id": "v_123", "resolution": "720p", "aspect_ratio": "16:9",
      "motion_prompt": "nods slowly"}),
    ("heygen-photo", {"mode": "pro", "aspect_ratio": "9:16"}, "heygen/photo-video",
     {"image": None, "audio_url": None, "resolution": "1080p", "aspect_ratio": "9:16"}),
    ("p-video-avatar", {"text": "Hola", "voice": "Puck (Male)", "language": "Spanish", "seed": 7},
     "pruna/p-video-avatar", {"image": None, "voice_script": "Hola", "voice": "Puck (Male)",
                              "voice_language": "Spanish", "resolution": "720p", "seed": 7}),
    ("p-video-avatar", {"mode": "pro", "prompt": "in a studio"}, "pruna/p-video-avatar",
     {"image": None, "audio": None, "resolution": "1080p", "video_prompt": "in a studio"}),
]


@pytest.mark.parametrize("model, fields, app, expected", HOW, ids=[f"{h[0]}-{i}" for i, h in enumerate(HOW)])
async def test_each_model_completes_sending_only_its_apps_fields(client, fake, tmp_path, model, fields, app,
                                                                 expected, video_bytes):
    result = await client.run(model_request(**fields), provider="inferencesh", model=model, output=tmp_path / "v.mp4")
    assert (result.provider, result.model) == ("inferencesh", model)
    assert result.path.read_bytes() == video_bytes
    (create,) = fake.creates
    assert create.json["app"] == app
    sent = create.json["input"]
    assert_sent_only(sent, expected)
    assert fake_apps.check(app, sent) is None
    # Files went up only for what the app takes: no audio upload when the app speaks the text.
    assert len(fake.requests_to("upload")) == (1 if "text" in fields else 2)


@pytest.mark.parametrize("model, fields, field, says", [
    ("omnihuman-1.5", {"mode": "pro"}, "mode", "'pro' is not offered"),
    ("omnihuman-1.5", {"resolution": "720p"}, "resolution", "no resolution choice"),
    ("kling-avatar", {"aspect_ratio": "9:16"}, "aspect_ratio", "follows the photo"),
    ("fabric-1.0", {"text": "hi", "language": "French"}, "language", "does not speak text itself"),
    ("heygen-photo", {"text": "hi"}, "voice", "required with text"),
    ("heygen-photo", {"aspect_ratio": "1:1"}, "aspect_ratio", "auto, 16:9 or 9:16"),
    ("p-video-avatar", {"text": "hi", "voice": "Nobody"}, "voice", "not one of the route's voices"),
    ("p-video-avatar", {"text": "hi", "language": "Klingon"}, "language", "English (US)"),
])
async def test_a_named_route_refuses_what_it_cannot_honour(client, fake, model, fields, field, says):
    with pytest.raises(InputError) as info:
        await client.run(model_request(**fields), provider="inferencesh", model=model)
    assert info.value.field == field and says in str(info.value)
    assert fake.requests == []  # refused before any upload or run


async def test_the_fake_refuses_what_an_app_does_not_take(provider, fake):
    from talkinghead import http

    api = http.async_client("inferencesh", base_url=fake.url, headers={"Authorization": "Bearer k"})
    async with api:
        missing = await api.post("/apps/run", json={"app": "falai/fabric-1-0", "input": {"image": "u"}})
        extra = await api.post("/apps/run", json={"app": "bytedance/omnihuman-1-5",
                                                   "input": {"image": "u", "audio": "a", "prompt": "smile"}})
        unknown = await api.post("/apps/run", json={"app": "nobody/nothing", "input": {}})
    assert missing.status_code == 422 and "input.audio: field required" in missing.json()["detail"]
    assert extra.status_code == 422 and "input.prompt: extra fields not permitted" in extra.json()["detail"]
    assert unknown.status_code == 404
    assert fake.tasks == {}


async def test_any_model_ranks_every_route_and_says_why_others_are_out(client):
    found, excluded = await client.estimate_all(model_request(), model="any")
    costs = [c.quote.cost_usd for c in found]
    assert costs == sorted(costs) and excluded == []
    assert {c.route.model for c in found} == {"kling-avatar", "omnihuman-1.5", "fabric-1.0", "heygen-photo",
                                              "p-video-avatar"}
    assert found[0].route.model == "p-video-avatar"  # 0.025 USD/s at 720p: the cheapest
    (omni,) = [c for c in found if c.route.model == "omnihuman-1.5"]
    assert omni.quote.unconfirmed  # its price source is not confirmed, and the quote says so

    # A 9:16 video from a square photo: only the route that sets the frame can make it.
    found, excluded = await client.estimate_all(model_request(aspect_ratio="9:16"), model="any")
    assert [c.route.model for c in found] == ["heygen-photo"]
    assert {e.route.model for e in excluded} == {"kling-avatar", "omnihuman-1.5", "fabric-1.0", "p-video-avatar"}
    assert all("follows the photo" in e.why for e in excluded)

    # Without --model only the default model is considered, as before there were others.
    found, _ = await client.estimate_all(model_request())
    assert [c.route.model for c in found] == ["kling-avatar"]
    # A comma list limits the choice to those models.
    found, _ = await client.estimate_all(model_request(), model="fabric-1.0,omnihuman-1.5")
    assert [c.route.model for c in found] == ["fabric-1.0", "omnihuman-1.5"]
