"""The provider's declaration and configuration, with no network: route, limits, prices,
regions, settings, quotes for text, and what it refuses before any request."""

from __future__ import annotations

import pytest

from talkinghead import plugins
from talkinghead.errors import AuthenticationError, InputError, ProviderError, SubmitOutcomeUnknown
from talkinghead_kling import KlingProvider
from talkinghead_kling.provider import PRICE_SOURCE

from .conftest import AUDIO_URL, FACE, IMAGE_URL, MP3, TEST_AK, TEST_SK, job_for, prepared


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in ("KLING_ACCESS_KEY", "KLING_SECRET_KEY", "KLING_BASE_URL", "KLING_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_registration_route_and_declaration():
    assert plugins.get_provider_classes()["kling"] is KlingProvider
    (route,) = KlingProvider({}).routes()
    assert (route.provider, route.model, route.native_text, route.kind) == ("kling", "kling-avatar", True, "cloud")
    assert route.price_per_second == {"std": 0.056, "pro": 0.112} and route.price_source == PRICE_SOURCE
    assert "units" in route.price_source and "§11" in route.price_source
    limits = route.limits
    assert (limits.image_min_side, limits.image_aspect_range, limits.text_max_chars) == (300, (0.4, 2.5), 1000)
    assert (limits.audio_min_seconds, limits.audio_max_seconds, limits.prompt_max_chars) == (2.0, 300.0, 2500)
    assert KlingProvider.env_vars == ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY")
    assert KlingProvider.config_keys == {"KLING_API_KEY": "api_key", "KLING_ACCESS_KEY": "access_key",
                                         "KLING_SECRET_KEY": "secret_key"}
    assert KlingProvider.signs_webhooks is False


def test_prices_and_audio_limit_are_configurable():
    (route,) = KlingProvider({"price_std": 0.05, "price_pro": "0.1", "audio_max_seconds": 60}).routes()
    assert route.price_per_second == {"std": 0.05, "pro": 0.1} and route.limits.audio_max_seconds == 60
    with pytest.raises(InputError, match="providers.kling.price_std"):
        KlingProvider({"price_std": "cheap"}).routes()
    with pytest.raises(InputError, match="negative"):
        KlingProvider({"timeout": -1}).setting("timeout")


def test_credentials_from_config_or_environment(monkeypatch):
    assert not KlingProvider({}).configured()
    assert not KlingProvider({"access_key": TEST_AK}).configured()
    assert KlingProvider({"access_key": TEST_AK, "secret_key": TEST_SK}).configured()
    monkeypatch.setenv("KLING_ACCESS_KEY", "env-ak-0123456789")
    monkeypatch.setenv("KLING_SECRET_KEY", "env-sk-0123456789")
    provider = KlingProvider({})
    assert provider.configured() and set(provider.secrets()) == {"env-ak-0123456789", "env-sk-0123456789"}
    assert "env-ak" not in repr(provider) and "env-sk" not in repr(provider)


def test_base_url_region_and_overrides(monkeypatch):
    assert KlingProvider({}).base_url == "https://api-singapore.klingai.com"
    assert KlingProvider({"region": "beijing"}).base_url == "https://api-beijing.klingai.com"
    monkeypatch.setenv("KLING_REGION", "Beijing")
    assert KlingProvider({}).base_url == "https://api-beijing.klingai.com"
    monkeypatch.setenv("KLING_BASE_URL", "http://127.0.0.1:9/")
    assert KlingProvider({"region": "singapore"}).base_url == "http://127.0.0.1:9"  # the env var wins
    assert KlingProvider({"base_url": "http://127.0.0.1:8"}).base_url == "http://127.0.0.1:8"
    monkeypatch.delenv("KLING_BASE_URL")
    with pytest.raises(InputError, match="region"):
        KlingProvider({"region": "mars"}).base_url  # noqa: B018


async def test_missing_keys_fail_before_any_request():
    provider = KlingProvider({"access_key": TEST_AK, "base_url": "http://127.0.0.1:9"})
    with pytest.raises(AuthenticationError, match="KLING_SECRET_KEY") as exc:
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    assert "KLING_API_KEY, or KLING_ACCESS_KEY and KLING_SECRET_KEY" in str(exc.value)
    assert exc.value.env_vars == ("KLING_API_KEY", "KLING_ACCESS_KEY", "KLING_SECRET_KEY")
    assert TEST_AK not in str(exc.value)


def test_route_limits_refuse_small_and_extreme_images(tmp_path):
    from tests.media_factory import jpeg  # the core tests' image maker

    provider = KlingProvider({})
    (route,) = provider.routes()
    small = tmp_path / "small.jpg"
    small.write_bytes(jpeg(299, 400))
    with pytest.raises(InputError, match="300 px"):
        provider.validate(prepared(small, MP3), route)
    wide = tmp_path / "wide.jpg"
    wide.write_bytes(jpeg(1600, 600))  # 2.67:1
    with pytest.raises(InputError, match="aspect ratio"):
        provider.validate(prepared(wide, MP3), route)
    provider.validate(prepared(FACE, MP3), route)
    with pytest.raises(InputError, match="1000"):
        provider.validate(prepared(FACE, text="x" * 1001), route)
    with pytest.raises(InputError, match="voice"):
        provider.validate(prepared(FACE, text="hello there", voice="v#fr"), route)


def test_quotes_for_audio_and_text():
    provider = KlingProvider({})
    (route,) = provider.routes()
    audio = provider.estimate(prepared(FACE, MP3, mode="pro"), route)
    assert audio.seconds == pytest.approx(6.942, abs=1e-3) and not audio.upper_bound
    assert audio.cost_usd == pytest.approx(6.942 * 0.112, abs=1e-3)
    text = provider.estimate(prepared(FACE, text="Good evening, and welcome to the news."), route)
    assert text.upper_bound and 2.0 <= text.seconds <= 6.0 and text.price_per_second == 0.056
    longest = provider.estimate(prepared(FACE, text="word " * 199), route)
    assert longest.seconds == pytest.approx(100.5)
    url_audio = provider.estimate(prepared(IMAGE_URL, AUDIO_URL), route)
    assert url_audio.upper_bound and url_audio.seconds == 300


def test_voice_defaults_come_from_config():
    assert KlingProvider({}).voice(None) == ("oversea_male1", "en")
    provider = KlingProvider({"voice": "genshin_vindi2", "voice_language": "zh"})
    assert provider.voice(None) == ("genshin_vindi2", "zh") and provider.voice("uk_man2#en") == ("uk_man2", "en")
    assert KlingProvider({"voice": "calm_story1#en", "voice_language": "zh"}).voice(None) == ("calm_story1", "en")


async def test_cancel_is_not_offered():
    with pytest.raises(ProviderError, match="no way to cancel"):
        await KlingProvider({}).cancel(job_for("862311975201234567"))


async def test_poll_needs_a_task_id():
    with pytest.raises(ProviderError, match="no Kling task id"):
        await KlingProvider({"access_key": TEST_AK, "secret_key": TEST_SK}).poll(job_for())


async def _finds_nothing(job):
    return None


async def _fails_too(job):
    raise ProviderError("lookup failed too", provider="kling")


@pytest.mark.parametrize("lookup", [_finds_nothing, _fails_too], ids=["not-found", "lookup-fails"])
async def test_a_lost_create_answer_the_lookup_cannot_resolve_stays_unknown(monkeypatch, lookup):
    """The create's answer was lost and looking the task up by its external id finds nothing or
    fails as well: the original outcome (unknown) is what the caller gets, and nothing is resent."""
    provider = KlingProvider({"access_key": TEST_AK, "secret_key": TEST_SK})
    sends = []

    async def lost(*args, **kwargs):
        sends.append(args)
        raise SubmitOutcomeUnknown("POST was sent but no answer came back", provider="kling")

    monkeypatch.setattr(provider, "find_task", lookup)
    monkeypatch.setattr(provider, "_send", lost)
    with pytest.raises(SubmitOutcomeUnknown, match="no answer"):
        await provider.submit(job_for(), prepared(IMAGE_URL, AUDIO_URL))
    assert len(sends) == 1


async def test_parse_webhook_gives_an_update_with_the_task_id():
    body = (b'{"task_id": "862311975201234567", "task_status": "succeed", "task_status_msg": "",'
            b' "task_info": {"external_task_id": "j1"}, "task_result": {"videos": [{"id": "1",'
            b' "url": "https://cdn.klingai.com/x.mp4", "duration": "9.433"}]}}')
    update = await KlingProvider({}).parse_webhook({}, body)
    assert (update.task_id, update.status.value, update.duration_s) == ("862311975201234567", "completed", 9.433)
    with pytest.raises(InputError, match="webhook"):
        await KlingProvider({}).parse_webhook({}, b'{"hello": 1}')
