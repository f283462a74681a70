"""Mock and local take every model id: the mock impersonates a model's declared route (its
limits, capabilities and price) so an app's tests meet that model's rules; the local renderer
renders its own preview for any model at $0 and says so. Cloud routes are declared by the
installed plugins; none is reached here (no credentials)."""

from __future__ import annotations

from pathlib import Path

import pytest

from talkinghead import AsyncClient, AvatarRequest, InputError
from talkinghead.ledger import SQLiteLedger
from talkinghead.video import probe_video
from talkinghead_fal import FalProvider
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_local import LocalProvider
from talkinghead_mock import MockProvider

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FACE, MP3 = EXAMPLES / "face.jpg", EXAMPLES / "hello.mp3"
MODELS = ("kling-avatar", "omnihuman-1.5", "fabric-1.0", "aurora", "heygen-photo", "p-video-avatar")


@pytest.fixture
async def client(tmp_path, monkeypatch):
    for var in ("INFERENCE_API_KEY", "FAL_KEY"):
        monkeypatch.delenv(var, raising=False)
    providers = [InferenceShProvider({}), FalProvider({}), MockProvider({}),
                 LocalProvider({"resolution": 120, "output_dir": tmp_path / "r"})]
    c = AsyncClient(providers=providers, ledger=SQLiteLedger(tmp_path / "j.db"))
    yield c
    await c.aclose()


@pytest.mark.parametrize("model", MODELS)
async def test_the_mock_impersonates_each_models_declared_route(client, tmp_path, model):
    (declared,) = [r for _, r in client.routes() if r.model == model and r.provider == "fal"] or \
                  [r for _, r in client.routes() if r.model == model and r.provider == "inferencesh"]
    request = AvatarRequest(image=str(FACE), audio=str(MP3))
    (quote,) = await client.estimate(request, provider="mock", model=model)
    assert (quote.provider, quote.model) == ("mock", model)
    assert quote.price_per_second == declared.price_for("std", declared.resolution_for(request))
    result = await client.run(request, provider="mock", model=model, output=tmp_path / "v.mp4")
    assert (result.provider, result.model) == ("mock", model)
    assert probe_video(result.path).has_audio


async def test_the_mock_meets_an_impersonated_models_rules(client):
    # fal's Kling declares a 300 px minimum side: the impersonation refuses what fal would.
    with pytest.raises(InputError) as info:
        await client.estimate(AvatarRequest(image=str(FACE), audio=str(MP3), resolution="1080p"),
                              provider="mock", model="aurora")
    assert info.value.field == "resolution" and "480p or 720p" in str(info.value)
    # Its own model keeps its own declaration and the configured price.
    (own,) = await client.estimate(AvatarRequest(image=str(FACE), audio=str(MP3)), provider="mock")
    assert (own.model, own.price_per_second) == ("mock-avatar", 0.01)


async def test_local_renders_any_model_at_no_cost_and_says_so(client, tmp_path):
    request = AvatarRequest(image=str(FACE), audio=str(MP3))
    routes = {r.model: r for p, r in client.routes("any", stand_ins=True) if p.name == "local"}
    assert set(MODELS) <= set(routes)
    assert all(r.price_per_second == {"std": 0.0, "pro": 0.0} for r in routes.values())
    assert "stands in for omnihuman-1.5" in routes["omnihuman-1.5"].price_source
    # No credentials: the default model falls to the local renderer, as before other models.
    result = await client.run(request, output=tmp_path / "d.mp4")
    assert (result.provider, result.model, result.cost_usd) == ("local", "kling-avatar", 0.0)
    result = await client.run(request, model="p-video-avatar", output=tmp_path / "p.mp4")
    assert (result.provider, result.cost_usd) == ("local", 0.0)
    assert probe_video(result.path).duration_s == pytest.approx(6.9, abs=0.2)


async def test_limits_whose_sources_disagree_are_configurable(tmp_path):
    from talkinghead.errors import ConfigError
    from tests.media_factory import wav

    long = wav(tmp_path / "long.wav", 90.0)
    request = AvatarRequest(image=str(FACE), audio=str(long))
    strict = AsyncClient(providers=[FalProvider({"api_key": "k"})], ledger=SQLiteLedger(tmp_path / "a.db"))
    with pytest.raises(InputError, match="60 s maximum"):
        await strict.estimate(request, provider="fal", model="fabric-1.0")
    loose = AsyncClient(providers=[FalProvider({"api_key": "k", "limits": {"fabric-1.0": {"audio_max_seconds": 300}}})],
                        ledger=SQLiteLedger(tmp_path / "b.db"))
    (quote,) = await loose.estimate(request, provider="fal", model="fabric-1.0")
    assert quote.seconds == pytest.approx(90.0, abs=0.01)
    bad = AsyncClient(providers=[FalProvider({"api_key": "k", "limits": {"fabric-1.0": {"audio_max": 1}}})],
                      ledger=SQLiteLedger(tmp_path / "c.db"))
    with pytest.raises(ConfigError, match="unknown limit"):
        bad.routes()
    for c in (strict, loose, bad):
        await c.aclose()


def test_price_overrides_by_route_id_and_the_legacy_provider_key():
    from talkinghead import route_table

    prices = {"inferencesh": {"std": 0.05}, "inferencesh/omnihuman-1.5": {"std": 0.14}}
    routes = {r.id: r for _, r in route_table.installed([InferenceShProvider({})], prices)}
    assert routes["inferencesh/kling-avatar"].price_per_second == {"std": 0.05, "pro": 0.112}
    omni = routes["inferencesh/omnihuman-1.5"]
    assert omni.price_per_second == {"std": 0.14} and not omni.price_unconfirmed
    assert "config file" in omni.price_source
    # The provider-wide key predates other models: it never reprices them.
    assert routes["inferencesh/p-video-avatar"].price_per_second == {"720p": 0.025, "1080p": 0.045}
