"""Every model fal serves, end to end against the fake: each request goes to its model's
endpoint with only the fields that endpoint takes (the fake refuses a missing required field
and any field it does not know), status and result are read at the model's app path, and the
video downloads. Plus what the declarations refuse, with the reason."""

from __future__ import annotations

import pytest

from talkinghead import AvatarRequest, InputError
from talkinghead_fal import fake_apps
from tests.plugins.shared import assert_sent_only, model_request

from .conftest import FACE

HOW = [  # model, request fields, endpoint, the body it must receive (values: None = any)
    ("kling-avatar", {"mode": "pro", "prompt": "nods"}, "fal-ai/kling-video/ai-avatar/v2/pro",
     {"image_url": None, "audio_url": None, "prompt": "nods"}),
    ("omnihuman-1.5", {"prompt": "waves"}, "fal-ai/bytedance/omnihuman/v1.5",
     {"image_url": None, "audio_url": None, "prompt": "waves", "resolution": "720p"}),
    ("omnihuman-1.5", {"mode": "pro"}, "fal-ai/bytedance/omnihuman/v1.5",
     {"image_url": None, "audio_url": None, "resolution": "1080p"}),
    ("omnihuman-1.5", {"mode": "pro", "resolution": "720p"}, "fal-ai/bytedance/omnihuman/v1.5",
     {"image_url": None, "audio_url": None, "resolution": "720p"}),  # an explicit resolution wins
    ("fabric-1.0", {}, "veed/fabric-1.0", {"image_url": None, "audio_url": None, "resolution": "480p"}),
    ("fabric-1.0", {"text": "Hello there", "voice": "warm, low", "mode": "pro"}, "veed/fabric-1.0/text",
     {"image_url": None, "text": "Hello there", "voice_description": "warm, low", "resolution": "720p"}),
    ("aurora", {"prompt": "studio light"}, "fal-ai/creatify/aurora",
     {"image_url": None, "audio_url": None, "prompt": "studio light", "resolution": "480p"}),
    ("heygen-photo", {"text": "Hello there", "voice": "Melissa"}, "fal-ai/heygen/avatar4/image-to-video",
     {"image_url": None, "prompt": "Hello there", "voice": "Melissa", "resolution": "720p", "aspect_ratio": "auto"}),
    ("heygen-photo", {"mode": "pro", "aspect_ratio": "9:16"}, "fal-ai/heygen/avatar4/image-to-video",
     {"image_url": None, "audio_url": None, "resolution": "1080p", "aspect_ratio": "9:16"}),
]


@pytest.mark.parametrize("model, fields, endpoint, expected", HOW, ids=[f"{h[0]}-{i}" for i, h in enumerate(HOW)])
async def test_each_model_completes_sending_only_its_endpoints_fields(client, fake, tmp_path, model, fields,
                                                                      endpoint, expected, video_bytes):
    result = await client.run(model_request(**fields), provider="fal", model=model, output=tmp_path / "v.mp4")
    assert (result.provider, result.model) == ("fal", model)
    assert result.path.read_bytes() == video_bytes
    (submit,) = fake.submits
    assert submit.path == f"/{endpoint}"
    assert_sent_only(submit.json, expected)
    assert fake_apps.check(endpoint, submit.json) == []
    app = "/".join(endpoint.split("/")[:2])
    assert all(r.path.startswith(f"/{app}/requests/") for r in fake.requests_to("status"))
    assert len(fake.uploaded()) == (1 if "text" in fields else 2)  # no audio upload when it speaks the text


@pytest.mark.parametrize("model, fields, field, says", [
    ("kling-avatar", {"aspect_ratio": "16:9"}, "aspect_ratio", "follows the photo"),
    ("omnihuman-1.5", {"resolution": "480p"}, "resolution", "720p or 1080p"),
    ("aurora", {"text": "hi", "language": "French"}, "language", "does not speak text itself"),
    ("fabric-1.0", {"resolution": "1080p"}, "resolution", "480p or 720p"),
    ("heygen-photo", {"resolution": "4k"}, "resolution", "'4k' is not offered"),
])
async def test_a_named_route_refuses_what_it_cannot_honour(client, fake, model, fields, field, says):
    with pytest.raises(InputError) as info:
        await client.run(model_request(**fields), provider="fal", model=model)
    assert info.value.field == field and says in str(info.value)
    assert fake.requests == []


async def test_omnihuman_audio_limit_depends_on_the_resolution(client, fake, tmp_path):
    from tests.media_factory import wav

    long = wav(tmp_path / "long.wav", 40.0)
    request = AvatarRequest(image=str(FACE), audio=str(long))
    with pytest.raises(InputError) as info:
        await client.estimate(request.model_copy(update={"mode": "pro"}), provider="fal",
                              model="omnihuman-1.5")  # pro is 1080p: under 30 s
    assert info.value.field == "audio" and "30 s maximum at 1080p" in str(info.value)
    (quote,) = await client.estimate(request.model_copy(update={"mode": "pro", "resolution": "720p"}),
                                     provider="fal", model="omnihuman-1.5")
    assert quote.resolution == "720p" and quote.cost_usd == pytest.approx(40.0 * 0.16, abs=1e-3)


async def test_aurora_bills_whole_seconds_and_prices_by_resolution(client):
    (std,) = await client.estimate(model_request(), provider="fal", model="aurora")
    (pro,) = await client.estimate(model_request(mode="pro"), provider="fal", model="aurora")
    assert (std.seconds, std.resolution, std.price_per_second) == (7.0, "480p", 0.07)  # 6.9 s audio -> 7 s
    assert (pro.resolution, pro.price_per_second, pro.cost_usd) == ("720p", 0.14, pytest.approx(0.98))


async def test_a_prompt_on_a_route_that_cannot_use_it_is_left_out_with_one_warning(client, fake, tmp_path):
    from talkinghead.media import route_warnings

    request = model_request(prompt="nods")
    (route,) = [r for _, r in client.routes() if r.model == "fabric-1.0"]
    assert route_warnings(request, route) == ["route fal/fabric-1.0 cannot use a prompt; it is not sent"]
    await client.run(request, provider="fal", model="fabric-1.0", output=tmp_path / "v.mp4")
    assert "prompt" not in fake.submits[0].json


async def test_a_finished_job_settles_by_the_routes_billing_rules(client, fake, tmp_path):
    # Aurora bills whole seconds: the 6.9 s the backend reports settles as 7 s.
    fake.configure(output_duration=6.9)
    result = await client.run(model_request(), provider="fal", model="aurora", output=tmp_path / "v.mp4")
    assert result.cost_usd == pytest.approx(7 * 0.07)
