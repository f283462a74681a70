"""Choosing routes: which provider/model pairs can take a request, and in what order.

A candidate is a route whose provider has credentials, whose modes, aspect ratios and limits
accept the request, that is not cooling down, and whose quote fits ``max_cost_usd``. The
policy orders them: ``cheapest`` (default), ``fastest`` (median completion time seen in the
journal) or ``priority`` (the user's order). Without a named provider, cloud routes come
before the local renderer (``Route.kind``, default ``"cloud"``). A test double (kind
``"test"``, the mock) is never chosen unless named, or allowed by an explicit test setting
(``allow_test``: ``TALKINGHEAD_ALLOW_TEST_ROUTES=1`` or the client argument). Why each other
route was left out is kept, with its reason kind, so a "no route" error can say and the right
error (budget, input, no route) is raised.

With ``quote_all`` (what ``talkinghead estimate`` shows), routes that cannot run now only for
want of credentials or because they are test doubles are quoted too, each candidate saying in
``needs`` what it lacks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import BudgetExceeded, ConfigError, InputError, NoRouteError
from .media import PreparedRequest
from .models import Quote, Route
from .provider import Provider

Policy = Literal["cheapest", "fastest", "priority"]
POLICIES: tuple[str, ...] = ("cheapest", "fastest", "priority")
KIND_ORDER = {"cloud": 0, "local": 1, "test": 2}


@dataclass
class RoutingConfig:
    policy: Policy = "cheapest"
    priority: list[str] = field(default_factory=list)  # provider names or route ids, first = best
    failure_threshold: int = 3      # provider-side failures within the window ...
    failure_window_s: float = 300.0
    cooldown_s: float = 120.0       # ... put the route to rest this long

    @classmethod
    def from_settings(cls, data: Mapping[str, Any]) -> RoutingConfig:
        try:
            cfg = cls(**dict(data))
        except TypeError as exc:
            raise ConfigError(f"[routing] in the config file: {exc}") from None
        if cfg.policy not in POLICIES:
            raise ConfigError(f"routing policy {cfg.policy!r} is not one of {', '.join(POLICIES)}")
        return cfg


@dataclass(frozen=True)
class Candidate:
    provider: Provider
    route: Route
    quote: Quote
    needs: str | None = None  # with quote_all: why it cannot run now ("needs FAL_KEY"); None = usable


ALLOW_TEST_ENV = "TALKINGHEAD_ALLOW_TEST_ROUTES"


def candidates(pairs: Iterable[tuple[Provider, Route]], prepared: PreparedRequest, *,
               provider: str | None = None, model: str | None = None, max_cost_usd: float | None = None,
               can_synthesize: bool = False, include: Sequence[str] | None = None,
               exclude: Sequence[str] = (), cooldowns: Mapping[str, float] | None = None,
               policy: Policy = "cheapest", priority: Sequence[str] = (),
               medians: Mapping[str, float] | None = None, allow_test: bool = False,
               quote_all: bool = False) -> list[Candidate]:
    """Routes able to run ``prepared``, best first. With one provider named, its own
    ``InputError`` is raised as is (the user asked for it); otherwise a ``NoRouteError`` (or
    ``BudgetExceeded`` when price was the only obstacle, or the first ``InputError`` when every
    route refused the input) lists why each route was left out."""
    found: list[Candidate] = []
    reasons: list[tuple[str, str, str]] = []  # (route id, why, text); why: a kind, never parsed text
    refused: list[InputError] = []
    pairs = [(p, r) for p, r in pairs
             if (provider is None or p.name == provider) and (model is None or r.model == model)
             and (include is None or p.name in include) and p.name not in exclude]
    if not pairs:
        what = " ".join(x for x in (provider and f"provider {provider!r}", model and f"model {model!r}") if x)
        raise NoRouteError(f"no installed route matches {what or 'the request'}")
    named = provider is not None or include is not None
    now = time.time()
    for prov, route in pairs:
        needs = None
        if not prov.configured():
            needs = f"needs {prov.credentials_hint()}"
            if not quote_all:
                reasons.append((route.id, "credentials",
                                f"credentials not configured (set {prov.credentials_hint()})"))
                continue
        elif route.kind == "test" and not named and not allow_test:
            needs = f"a test double: only by name (--provider {prov.name})"
            if not quote_all:
                reasons.append((route.id, "test", f"{needs} or with {ALLOW_TEST_ENV}=1"))
                continue
        until = (cooldowns or {}).get(route.id, 0.0)
        if provider is None and until > now:
            reasons.append((route.id, "cooldown", f"cooling down for {until - now:.0f} s after repeated failures"))
            continue
        if prepared.request.text is not None and not route.native_text and not can_synthesize:
            reasons.append((route.id, "tts", "takes audio only and no text-to-speech engine is installed"))
            continue
        try:
            prov.validate(prepared, route)
        except InputError as exc:
            if provider is not None:
                raise
            refused.append(exc)
            reasons.append((route.id, "input", str(exc)))
            continue
        quote = prov.estimate(prepared, route)
        if max_cost_usd is not None and quote.cost_usd > max_cost_usd + 1e-9:
            reasons.append((route.id, "price",
                            f"the quote ${quote.cost_usd:.4f} is over the ${max_cost_usd:.4f} maximum"))
            continue
        found.append(Candidate(prov, route, quote, needs))
    if not found:
        detail = "; ".join(f"{route_id}: {text}" for route_id, _, text in reasons)
        # A test double left out is no obstacle worth naming the error after.
        whys = {why for _, why, _ in reasons} - {"test"}
        if whys == {"price"}:
            raise BudgetExceeded(f"every route costs more than allowed: {detail}")
        if whys == {"input"}:
            raise refused[0]
        raise NoRouteError(f"no usable route: {detail}")
    found.sort(key=_order(policy, priority, medians or {}))
    return found


def _order(policy: Policy, priority: Sequence[str], medians: Mapping[str, float]):
    def rank(c: Candidate) -> int:
        for i, name in enumerate(priority):
            if name in (c.route.id, c.route.provider):
                return i
        return len(priority)

    def key(c: Candidate) -> tuple:
        kind, cost = KIND_ORDER[c.route.kind], c.quote.cost_usd
        if policy == "fastest":  # routes never seen complete go after measured ones
            return (kind, medians.get(c.route.id, math.inf), cost, c.route.id)
        if policy == "priority":  # the user's order wins even over kind
            return (rank(c), kind, cost, c.route.id)
        return (kind, cost, c.route.id)
    return key
