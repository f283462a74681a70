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

``every_quote`` (what ``talkinghead estimate`` and ``Client.quotes`` show) views a ranking as
one list: routes that cannot run now only for want of credentials or because they are test
doubles are quoted too, each saying in ``needs`` what it lacks.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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
    needs: str | None = None  # in every_quote: why it cannot run now ("needs FAL_KEY"); None = usable


ALLOW_TEST_ENV = "TALKINGHEAD_ALLOW_TEST_ROUTES"


def parse_models(value: str | Sequence[str] | None) -> list[str] | None:
    """``--model``: one id, a comma list, or ``any`` (None: every model)."""
    if value is None:
        return None
    items = [m.strip() for m in (value.split(",") if isinstance(value, str) else value)]
    items = [m for m in items if m]
    if not items:
        raise InputError("model", "is empty; give a model id, a comma list of ids, or 'any'", value=value)
    return None if "any" in items else list(dict.fromkeys(items))


def candidates(pairs: Iterable[tuple[Provider, Route]], prepared: PreparedRequest, **kw: Any) -> list[Candidate]:
    """Routes able to run ``prepared``, best first (``rank``'s arguments). With one provider
    named, its own ``InputError`` is raised as is (the user asked for it); otherwise a
    ``NoRouteError`` (or ``BudgetExceeded`` when price was the only obstacle, or the first
    ``InputError`` when every route refused the input) lists why each route was left out."""
    return usable(*rank(pairs, prepared, **kw))


def usable(found: list[Candidate], excluded: list[Excluded]) -> list[Candidate]:
    """``found``, or when it is empty the error ``excluded`` calls for (see ``candidates``)."""
    if not found:
        detail = "; ".join(f"{e.route.id}: {e.why}" for e in excluded)
        # A test double left out is no obstacle worth naming the error after.
        kinds = {e.kind for e in excluded} - {"test"}
        if kinds == {"price"}:
            raise BudgetExceeded(f"every route costs more than allowed: {detail}")
        if kinds == {"input"}:
            raise next(e.error for e in excluded if e.error is not None)
        raise NoRouteError(f"no usable route: {detail}")
    return found


def every_quote(found: list[Candidate], excluded: list[Excluded]) -> list[Candidate]:
    """A ranking as one list, cheapest first: the usable routes, and those held back only by
    missing credentials or by being a test double, each saying in ``needs`` what it lacks.
    When there are none, the error ``usable`` raises for the rest."""
    waiting = [Candidate(e.provider, e.route, e.quote, e.needs) for e in excluded
               if e.needs is not None and e.provider is not None and e.quote is not None]
    if not found and not waiting:
        usable(found, excluded)
    return sorted(found + waiting, key=lambda c: (c.quote.cost_usd, c.needs is not None, c.route.id))


@dataclass(frozen=True)
class Excluded:
    """A route left out, why (``kind``: credentials, test, cooldown, tts, input, price; the
    text is for people and never parsed), and what it would have cost where that is known."""

    route: Route
    why: str
    quote: Quote | None = None
    kind: str = "input"
    error: InputError | None = None
    needs: str | None = None  # what would make it usable: credentials, or naming a test double
    provider: Provider | None = None  # set where ``needs`` is: the route is quoted with it

    @property
    def over_budget(self) -> bool:
        return self.kind == "price"


def rank(pairs: Iterable[tuple[Provider, Route]], prepared: PreparedRequest, *,
         provider: str | None = None, model: str | Sequence[str] | None = None,
         max_cost_usd: float | None = None, can_synthesize: bool = False,
         include: Sequence[str] | None = None, exclude: Sequence[str] = (),
         cooldowns: Mapping[str, float] | None = None, policy: Policy = "cheapest",
         priority: Sequence[str] = (), medians: Mapping[str, float] | None = None,
         allow_test: bool = False) -> tuple[list[Candidate], list[Excluded]]:
    """Every matching route, split into usable candidates (best first) and the excluded ones
    with their reason. With one provider named, its ``InputError`` is raised as is. A route
    held back only by missing credentials or by being a test double says in ``needs`` what it
    lacks (``every_quote`` lists those with the usable ones)."""
    models = parse_models(model)
    found: list[Candidate] = []
    excluded: list[Excluded] = []
    pairs = [(p, r) for p, r in pairs
             if (provider is None or p.name == provider) and (models is None or r.model in models)
             and (include is None or p.name in include) and p.name not in exclude]
    if not pairs:
        what = " ".join(x for x in (provider and f"provider {provider!r}",
                                    models and f"model {', '.join(models)!r}") if x)
        raise NoRouteError(f"no installed route matches {what or 'the request'}")
    named = provider is not None or include is not None
    now = time.time()
    for prov, route in pairs:
        if prepared.request.text is not None and not route.native_text and not can_synthesize:
            excluded.append(Excluded(route, "takes audio only and no text-to-speech engine is installed",
                                     kind="tts"))
            continue
        try:
            prov.validate(prepared, route)
        except InputError as exc:
            if provider is not None:
                raise
            excluded.append(Excluded(route, str(exc), kind="input", error=exc))
            continue
        quote = prov.estimate(prepared, route)  # no network: unconfigured routes are quoted too
        if route.kind == "test" and not named and not allow_test:
            needs = f"a test double: only by name (--provider {prov.name})"
            excluded.append(Excluded(route, f"{needs} or with {ALLOW_TEST_ENV}=1", quote, kind="test",
                                     needs=needs, provider=prov))
            continue
        if not prov.configured():
            needs = f"needs {prov.credentials_hint()}"
            excluded.append(Excluded(route, f"credentials not configured ({needs})", quote,
                                     kind="credentials", needs=needs, provider=prov))
            continue
        until = (cooldowns or {}).get(route.id, 0.0)
        if provider is None and until > now:
            excluded.append(Excluded(route, f"cooling down for {until - now:.0f} s after repeated failures", quote,
                                     kind="cooldown"))
            continue
        if max_cost_usd is not None and quote.cost_usd > max_cost_usd + 1e-9:
            excluded.append(Excluded(route, f"the quote ${quote.cost_usd:.4f} is over the ${max_cost_usd:.4f} "
                                     "maximum", quote, kind="price"))
            continue
        found.append(Candidate(prov, route, quote))
    found.sort(key=_order(policy, priority, medians or {}))
    return found, excluded


def _order(policy: Policy, priority: Sequence[str], medians: Mapping[str, float]
           ) -> Callable[[Candidate], tuple[Any, ...]]:
    def rank(c: Candidate) -> int:
        for i, name in enumerate(priority):
            if name in (c.route.id, c.route.provider):
                return i
        return len(priority)

    def key(c: Candidate) -> tuple[Any, ...]:
        kind, cost = KIND_ORDER[c.route.kind], c.quote.cost_usd
        if policy == "fastest":  # routes never seen complete go after measured ones
            return (kind, medians.get(c.route.id, math.inf), cost, c.route.id)
        if policy == "priority":  # the user's order wins even over kind
            return (rank(c), kind, cost, c.route.id)
        return (kind, cost, c.route.id)
    return key
