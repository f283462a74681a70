"""The router's promises that mutation testing (``make mutation``, docs/testing.md) found unpinned:
the ``--model`` list, the config errors, the defaults a direct caller gets, each excluded route's
reason, quote, kind and needs (what ``talkinghead estimate`` prints), and which error a mix of
reasons raises."""

from __future__ import annotations

import time

import pytest

from talkinghead import AvatarRequest, BudgetExceeded, ConfigError, InputError, NoRouteError, media, routing
from talkinghead.models import Limits
from talkinghead.plugins import get_provider_classes
from talkinghead.routing import RoutingConfig, parse_models

MOCK = get_provider_classes()["mock"]


def pair(name: str, *, kind: str = "cloud", native_text: bool = True, env_vars=(), limits=None, **config):
    """A mock-backed provider under its own name and its one route, shaped as asked."""
    update = {"provider": name, "kind": kind, "native_text": native_text, "limits": limits or Limits()}

    def routes(self):
        return [r.model_copy(update=update) for r in MOCK.routes(self)]
    prov = type(f"R_{name}", (MOCK,), {"name": name, "routes": routes, "env_vars": tuple(env_vars)})(config)
    return prov, prov.routes()[0]


@pytest.fixture
def spoken(face, speech):
    return media.prepare(AvatarRequest(image=face, audio=speech))


@pytest.fixture
def written(face):
    return media.prepare(AvatarRequest(image=face, text="Hello there."))


# -- --model: one id, a comma list, a list, or any ----------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("a, b ,a", ["a", "b"]),          # split on commas, stripped, duplicates once, order kept
    (["b", " a ", ""], ["b", "a"]),   # a list (the Python API) is not split again
    ("a,any", None),                  # any model at all
    (None, None),
])
def test_model_lists(value, expected):
    assert parse_models(value) == expected


@pytest.mark.parametrize("value", [" , ", []])
def test_an_empty_model_list_is_an_input_error(value):
    with pytest.raises(InputError) as info:
        parse_models(value)
    assert info.value.field == "model" and info.value.value == value
    assert str(info.value) == "model: is empty; give a model id, a comma list of ids, or 'any'"


# -- [routing] in the config file -----------------------------------------------------------------

def test_routing_config_errors_name_the_setting():
    with pytest.raises(ConfigError, match=r"^\[routing\] in the config file: .*'polcy'"):
        RoutingConfig.from_settings({"polcy": "fastest"})
    with pytest.raises(ConfigError) as info:
        RoutingConfig.from_settings({"policy": "quickest"})
    assert str(info.value) == "routing policy 'quickest' is not one of cheapest, fastest, priority"


# -- what a direct caller gets by default ---------------------------------------------------------

def test_defaults_speak_no_text_quote_only_usable_routes_and_hold_back_test_doubles(written, spoken,
                                                                                    monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(NoRouteError, match="no text-to-speech engine"):  # can_synthesize defaults to False
        routing.candidates([pair("mute", native_text=False)], written)
    with pytest.raises(NoRouteError, match="a test double"):  # allow_test defaults to False
        routing.candidates([pair("double", kind="test")], spoken)
    found, excluded = routing.rank([pair("locked", env_vars=("NOPE_KEY",))], spoken)  # quote_all: False
    assert found == [] and [e.kind for e in excluded] == ["credentials"]


# -- text-to-speech: judged per route, and only for text ------------------------------------------

def test_a_route_that_cannot_speak_text_never_hides_the_ones_after_it(written):
    found, excluded = routing.rank([pair("mute", native_text=False), pair("talker")], written)
    assert [c.route.provider for c in found] == ["talker"]
    (mute,) = excluded
    assert (mute.route.provider, mute.kind) == ("mute", "tts")
    assert mute.why == "takes audio only and no text-to-speech engine is installed"


def test_text_goes_to_a_route_that_cannot_speak_it_when_speech_can_be_made(written):
    found = routing.candidates([pair("mute", native_text=False)], written, can_synthesize=True)
    assert [c.route.provider for c in found] == ["mute"]


def test_audio_needs_no_text_to_speech(spoken):
    found, excluded = routing.rank([pair("mute", native_text=False)], spoken, can_synthesize=False)
    assert [c.route.provider for c in found] == ["mute"] and excluded == []


# -- each excluded route: why (for people), its quote, its kind and what it needs -----------------

def test_each_exclusion_keeps_its_reason_quote_kind_and_needs(spoken, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    short, double = pair("short", limits=Limits(audio_max_seconds=5.0)), pair("double", kind="test")
    locked, resting = pair("locked", env_vars=("NOPE_KEY",)), pair("resting")
    dear = pair("dear", price_std=0.9)
    until = time.time() + 30
    found, excluded = routing.rank([short, double, locked, resting, dear], spoken, max_cost_usd=0.5,
                                   cooldowns={resting[1].id: until})
    assert found == []
    by = {e.route.provider: e for e in excluded}
    assert list(by) == ["short", "double", "locked", "resting", "dear"]

    with pytest.raises(InputError) as refused:
        short[0].validate(spoken, short[1])
    assert (by["short"].kind, by["short"].why) == ("input", str(refused.value))
    assert "longer than" in by["short"].why and by["short"].error.field == "audio"  # raised if every route refused
    assert by["short"].quote is None  # refused before it was quoted

    for name, (prov, route) in (("double", double), ("locked", locked), ("resting", resting), ("dear", dear)):
        assert by[name].quote == prov.estimate(spoken, route), name  # estimate shows what it would cost

    assert by["double"].kind == "test"
    assert by["double"].needs == "a test double: only by name (--provider double)"
    assert by["double"].why == ("a test double: only by name (--provider double) or with "
                                "TALKINGHEAD_ALLOW_TEST_ROUTES=1")
    assert (by["locked"].kind, by["locked"].needs) == ("credentials", "needs NOPE_KEY")
    assert by["locked"].why == "credentials not configured (needs NOPE_KEY)"
    assert by["resting"].kind == "cooldown" and by["resting"].needs is None
    assert by["resting"].why in {f"cooling down for {s} s after repeated failures" for s in (29, 30)}
    cost = by["dear"].quote.cost_usd
    assert (by["dear"].kind, by["dear"].over_budget) == ("price", True)
    assert by["dear"].why == f"the quote ${cost:.4f} is over the $0.5000 maximum"
    assert not any(e.over_budget for e in excluded if e is not by["dear"])


# -- which error a mix of reasons raises ----------------------------------------------------------

def test_a_test_double_held_back_beside_routes_over_the_maximum_is_a_budget_error(spoken):
    dear = pair("dear", price_std=0.9)
    with pytest.raises(BudgetExceeded) as info:
        routing.candidates([pair("double", kind="test"), dear], spoken, max_cost_usd=0.5)
    cost = dear[0].estimate(spoken, dear[1]).cost_usd
    # every left-out route is named, the test double too, each with why
    assert str(info.value) == ("every route costs more than allowed: "
                               "double/mock-avatar: a test double: only by name (--provider double) or with "
                               f"TALKINGHEAD_ALLOW_TEST_ROUTES=1; dear/mock-avatar: the quote ${cost:.4f} "
                               "is over the $0.5000 maximum")


def test_a_test_double_held_back_beside_routes_refusing_the_input_is_an_input_error(spoken):
    short = pair("short", limits=Limits(audio_max_seconds=5.0))
    with pytest.raises(InputError, match="longer than") as info:
        routing.candidates([pair("double", kind="test"), short], spoken)
    assert info.value.field == "audio"


def test_a_mix_of_reasons_is_no_route_naming_each(spoken, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(NoRouteError) as info:
        routing.candidates([pair("locked", env_vars=("NOPE_KEY",)), pair("dear", price_std=0.9)], spoken,
                           max_cost_usd=0.5)
    assert not isinstance(info.value, BudgetExceeded)
    assert str(info.value).startswith("no usable route: locked/mock-avatar: credentials not configured "
                                      "(needs NOPE_KEY); dear/mock-avatar: the quote $")


@pytest.mark.parametrize(("provider", "model", "message"), [
    ("nosuch", None, "no installed route matches provider 'nosuch'"),
    (None, "nosuch", "no installed route matches model 'nosuch'"),
    ("a", "m1,m2", "no installed route matches provider 'a' model 'm1, m2'"),
])
def test_no_installed_route_names_what_was_asked(spoken, provider, model, message):
    with pytest.raises(NoRouteError) as info:
        routing.rank([pair("a")], spoken, provider=provider, model=model)
    assert str(info.value) == message


def test_nothing_installed_is_no_route_for_the_request(spoken):
    with pytest.raises(NoRouteError) as info:
        routing.rank([pair("a")], spoken, exclude=["a"])
    assert str(info.value) == "no installed route matches the request"
