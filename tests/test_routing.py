"""The router: policies, filtering, fallback per error kind, no fallback on bad input, cooldowns."""

from __future__ import annotations

import time

import pytest

from talkinghead import AsyncClient, AvatarRequest, InputError, NoRouteError, ServerError
from talkinghead.ledger import SQLiteLedger
from talkinghead.plugins import get_provider_classes
from talkinghead.routing import RoutingConfig

MOCK = get_provider_classes()["mock"]


def provider(name: str, *, kind: str = "cloud", modes=("std", "pro"), aspects=("16:9", "9:16", "1:1"), **config):
    """A mock-backed provider under its own name, posing as a cloud route."""
    def routes(self):
        return [r.model_copy(update={"provider": name, "kind": kind, "modes": modes, "aspect_ratios": aspects})
                for r in MOCK.routes(self)]
    return type(f"P_{name}", (MOCK,), {"name": name, "routes": routes})(config)


@pytest.fixture
def ledger(tmp_path):
    return SQLiteLedger(tmp_path / "th.db")


def req(face, speech, **kw):
    return AvatarRequest(image=face, audio=speech, **kw)


async def test_cheapest_is_the_default(face, speech, ledger):
    client = AsyncClient(providers=[provider("a", price_std=0.05), provider("b", price_std=0.02),
                                    provider("c", price_std=0.03)], ledger=ledger)
    assert [q.provider for q in await client.estimate(req(face, speech))] == ["b", "c", "a"]


async def test_priority_follows_the_users_order(face, speech, ledger):
    client = AsyncClient(providers=[provider("a", price_std=0.05), provider("b", price_std=0.02),
                                    provider("local", kind="local", price_std=0.0)],
                         ledger=ledger, policy="priority", priority=["local", "a"])
    assert [q.provider for q in await client.estimate(req(face, speech))] == ["local", "a", "b"]


async def test_fastest_uses_median_completion_time_from_the_journal(face, speech, ledger):
    # Journaled completions with known durations: the order cannot depend on machine load.
    from datetime import timedelta

    from talkinghead.models import Job, JobStatus, utcnow

    start = utcnow()
    for name, seconds in (("slow", 40.0), ("slow", 50.0), ("slow", 90.0), ("quick", 5.0)):
        job = Job(provider=name, model="mock-avatar", status=JobStatus.COMPLETED, created_at=start,
                  updated_at=start + timedelta(seconds=seconds))
        ledger.open(job)
        ledger.close(job, 0.0)
    assert ledger.median_seconds() == pytest.approx({"slow/mock-avatar": 50.0, "quick/mock-avatar": 5.0}, abs=0.01)
    client = AsyncClient(providers=[provider("slow", price_std=0.01), provider("quick", price_std=0.09)],
                         ledger=ledger, policy="fastest")
    # the quick route first although it costs nine times as much
    assert [q.provider for q in await client.estimate(req(face, speech))] == ["quick", "slow"]
    await client.aclose()


async def test_cloud_before_local_before_test_doubles(face, speech, ledger):
    client = AsyncClient(providers=[provider("local", kind="local", price_std=0.0),
                                    provider("dear", price_std=0.5), MOCK({"price_std": 0.0})], ledger=ledger,
                         allow_test_routes=True)
    assert [q.provider for q in await client.estimate(req(face, speech))] == ["dear", "local", "mock"]


async def test_a_test_double_is_never_chosen_unnamed(face, speech, ledger, monkeypatch):
    """Installed beside a real route, or alone, the mock runs only when named or allowed."""
    monkeypatch.delenv("TALKINGHEAD_ALLOW_TEST_ROUTES", raising=False)
    alone = AsyncClient(providers=[MOCK({"price_std": 0.0})], ledger=ledger)
    with pytest.raises(NoRouteError, match=r"mock/mock-avatar: a test double: only by name \(--provider mock\)"):
        await alone.submit(req(face, speech))
    assert ledger.jobs() == []  # nothing journaled, nothing spent
    job = await alone.submit(req(face, speech), provider="mock")
    assert job.provider == "mock"
    beside = AsyncClient(providers=[provider("local", kind="local", price_std=0.5), MOCK({"price_std": 0.0})],
                         ledger=ledger)
    assert [q.provider for q in await beside.estimate(req(face, speech))] == ["local"]
    monkeypatch.setenv("TALKINGHEAD_ALLOW_TEST_ROUTES", "1")
    allowed = AsyncClient(providers=[MOCK({"price_std": 0.0})], ledger=ledger)
    assert (await allowed.submit(req(face, speech))).provider == "mock"


async def test_mode_and_aspect_filtering(face, speech, ledger):
    client = AsyncClient(providers=[provider("stdonly", modes=("std",)), provider("wide", aspects=("16:9",)),
                                    provider("all")], ledger=ledger)
    assert {q.provider for q in await client.estimate(req(face, speech, mode="pro"))} == {"wide", "all"}
    assert {q.provider for q in await client.estimate(req(face, speech, aspect_ratio="9:16"))} == {"stdonly", "all"}
    with pytest.raises(InputError, match="mode"):  # named provider: its own reason, as an input error
        await client.estimate(req(face, speech, mode="pro"), provider="stdonly")


async def test_include_and_exclude(face, speech, ledger):
    client = AsyncClient(providers=[provider("a"), provider("b"), provider("c")], ledger=ledger)
    job = await client.submit(req(face, speech), exclude=["a"], include=["a", "c"])
    assert job.provider == "c"


@pytest.mark.parametrize("kind", ["rate_limited", "server_error", "timeout", "billing"])
async def test_falls_back_on_each_provider_side_error(face, speech, ledger, kind):
    first, second = provider("first", price_std=0.01, fail=f"{kind}@submit"), provider("second", price_std=0.02)
    client = AsyncClient(providers=[first, second], ledger=ledger)
    job = await client.submit(req(face, speech))
    assert job.provider == "second"
    assert [c.method for c in first.calls] == ["submit"] and [c.method for c in second.calls] == ["submit"]
    failed = [j for j in ledger.jobs() if j.provider == "first"]
    assert len(failed) == 1 and failed[0].settled_usd == 0.0


async def test_no_fallback_on_input_error(face, speech, ledger):
    class Picky(MOCK):
        name = "picky"

        def routes(self):
            return [r.model_copy(update={"provider": "picky", "kind": "cloud"}) for r in super().routes()]

        async def submit(self, job, prepared):
            self.calls.append("submit")
            raise InputError("prompt", "the backend refused the prompt")

    picky, other = Picky({"price_std": 0.001}), provider("other", price_std=0.5)
    client = AsyncClient(providers=[picky, other], ledger=ledger)
    with pytest.raises(InputError, match="refused the prompt"):
        await client.submit(req(face, speech))
    assert other.calls == []


async def test_content_policy_does_not_fall_back(face, speech, ledger):
    from talkinghead import ContentPolicyError
    client = AsyncClient(providers=[provider("a", price_std=0.01, fail="content_policy"), provider("b")],
                         ledger=ledger)
    with pytest.raises(ContentPolicyError):
        await client.submit(req(face, speech))


async def test_cooldown_entry_and_expiry(face, speech, ledger, monkeypatch):
    flaky = provider("flaky", price_std=0.01, fail={"kind": "server_error", "stage": "submit"})
    steady = provider("steady", price_std=0.02)
    client = AsyncClient(providers=[flaky, steady], ledger=ledger)
    client.routing = RoutingConfig(failure_threshold=2, failure_window_s=60, cooldown_s=30)
    for _ in range(2):
        assert (await client.submit(req(face, speech))).provider == "steady"
    assert "flaky/mock-avatar" in ledger.cooldowns()
    await client.submit(req(face, speech))
    assert len(flaky.calls) == 2  # cooling down: not even tried the third time
    with pytest.raises(ServerError):  # named explicitly, it is still tried
        await client.submit(req(face, speech), provider="flaky")
    with pytest.raises(NoRouteError, match="cooling down"):  # the reason is reported
        await client.estimate(req(face, speech), exclude=["steady"])
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 31)  # the cooldown has expired
    assert ledger.cooldowns() == {}
    tried = len(flaky.calls)
    assert (await client.submit(req(face, speech))).provider == "steady"
    assert len(flaky.calls) == tried + 1  # tried first again (and failed over again)


async def test_success_clears_failures(face, speech, ledger):
    client = AsyncClient(providers=[provider("x", fail={"kind": "server_error", "times": 1})], ledger=ledger)
    with pytest.raises(ServerError):
        await client.submit(req(face, speech))
    await client.submit(req(face, speech))
    assert ledger.cooldowns() == {}
    assert ledger._conn().execute("SELECT COUNT(*) FROM route_health").fetchone() == (0,)


# -- each route judged on its own; the right error from structured reasons ---------------------

def shaped(name: str, *, env_vars=(), limits=None, **config):
    """A mock-backed cloud provider with credentials to need and limits of its own."""
    from talkinghead.models import Limits

    def routes(self):
        return [r.model_copy(update={"provider": name, "kind": "cloud", "limits": limits or Limits()})
                for r in MOCK.routes(self)]
    return type(f"S_{name}", (MOCK,), {"name": name, "routes": routes, "env_vars": tuple(env_vars)})(config)


async def test_an_unusable_route_never_hides_the_routes_after_it(face, speech, ledger, monkeypatch):
    monkeypatch.delenv("NOPE_KEY", raising=False)
    client = AsyncClient(providers=[shaped("locked", env_vars=("NOPE_KEY",), price_std=0.001),
                                    shaped("dear", price_std=0.9), shaped("fine", price_std=0.02),
                                    shaped("also", price_std=0.03)], ledger=ledger)
    job = await client.submit(req(face, speech), max_cost_usd=0.5)
    assert job.provider == "fine"
    assert [q.provider for q in await client.estimate(req(face, speech))] == ["fine", "also", "dear"]


async def test_model_filter(face, speech, ledger):
    client = AsyncClient(providers=[provider("a", price_std=0.01), provider("b", price_std=0.02)], ledger=ledger)
    assert {q.model for q in await client.estimate(req(face, speech), model="mock-avatar")} == {"mock-avatar"}
    with pytest.raises(NoRouteError, match="model 'nosuch'"):
        await client.estimate(req(face, speech), model="nosuch")


async def test_a_quote_equal_to_the_maximum_is_allowed(face, speech, ledger):
    from talkinghead import BudgetExceeded

    client = AsyncClient(providers=[provider("a", price_std=0.05)], ledger=ledger)
    (quote,) = await client.estimate(req(face, speech))
    job = await client.submit(req(face, speech), max_cost_usd=quote.cost_usd)
    assert job.quote.cost_usd == quote.cost_usd
    with pytest.raises(BudgetExceeded):
        await client.submit(req(face, speech), max_cost_usd=quote.cost_usd - 0.0001)


async def test_fastest_puts_unmeasured_routes_after_measured_ones(face, speech, ledger):
    measured, cheap_unseen = provider("measured", price_std=0.09), provider("unseen", price_std=0.001)
    client = AsyncClient(providers=[cheap_unseen, measured], ledger=ledger, policy="fastest")
    await client.run(req(face, speech), provider="measured")
    assert "unseen/mock-avatar" not in ledger.median_seconds()
    assert [q.provider for q in await client.estimate(req(face, speech))] == ["measured", "unseen"]


async def test_an_input_limit_is_not_a_price(face, speech, ledger):
    """A route refusing the clip as "longer than the 5 s maximum" beside one over the price
    limit: that is no route (exit 3), not "every route costs more" (the text once decided)."""
    from talkinghead import BudgetExceeded
    from talkinghead.models import Limits

    short = shaped("short", limits=Limits(audio_max_seconds=5.0), price_std=0.001)
    client = AsyncClient(providers=[short, shaped("dear", price_std=0.9)], ledger=ledger)
    with pytest.raises(NoRouteError, match="maximum") as info:
        await client.submit(req(face, speech), max_cost_usd=0.5)
    assert not isinstance(info.value, BudgetExceeded)
    only_short = AsyncClient(providers=[short, shaped("short2", limits=Limits(audio_max_seconds=5.0))], ledger=ledger)
    with pytest.raises(InputError, match="maximum") as refused:  # every route refused the input: exit 2
        await only_short.submit(req(face, speech))
    assert refused.value.field == "audio" and refused.value.exit_code == 2
    assert ledger.jobs() == []


# -- invariants over random route sets -----------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ROUTE = st.tuples(st.sampled_from(["cloud", "local", "test"]), st.integers(0, 50), st.booleans())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(routes=st.lists(ROUTE, min_size=1, max_size=6), cap=st.one_of(st.none(), st.integers(0, 50)),
       allow_test=st.booleans())
def test_routing_invariants(face, speech, routes, cap, allow_test, monkeypatch):
    """Whatever the routes: a test double is chosen only when allowed; every candidate is
    configured and within the maximum (equal allowed); nothing usable is left out; the
    order is cloud, local, test and cheapest first within a kind; every_quote lists every route."""
    from talkinghead import BudgetExceeded, media, routing

    monkeypatch.delenv("LOCKED_KEY", raising=False)
    prepared = media.prepare(req(face, speech))
    pairs = []
    for i, (kind, cents_per_s, configured) in enumerate(routes):
        p = shaped(f"p{i}", env_vars=() if configured else ("LOCKED_KEY",), price_std=cents_per_s / 100)
        r = p.routes()[0].model_copy(update={"kind": kind})
        pairs.append((p, r))
    max_cost = None if cap is None else cap / 100 * prepared.seconds
    usable = {r.id for p, r in pairs if p.configured() and (allow_test or r.kind != "test")
              and (max_cost is None or p.estimate(prepared, r).cost_usd <= max_cost + 1e-9)}
    try:
        found = routing.candidates(pairs, prepared, max_cost_usd=max_cost, allow_test=allow_test)
    except (NoRouteError, BudgetExceeded):
        found = []
    assert {c.route.id for c in found} == usable
    keys = [(routing.KIND_ORDER[c.route.kind], c.quote.cost_usd) for c in found]
    assert keys == sorted(keys)
    everything = routing.every_quote(*routing.rank(pairs, prepared, allow_test=False))
    assert {c.route.id for c in everything} == {r.id for _, r in pairs}
    for c in everything:
        assert (c.needs is None) == (c.provider.configured() and c.route.kind != "test")
