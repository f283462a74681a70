"""Choosing routes: which provider/model pairs can take a request, and in what order.

A candidate is a route whose provider has credentials, whose modes, aspect ratios and limits
accept the request, and whose quote fits ``max_cost_usd``. Candidates come back cheapest
first. Why each other route was left out is kept, so "no route" errors can say.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .errors import BudgetExceeded, InputError, NoRouteError
from .media import PreparedRequest
from .models import Quote, Route
from .provider import Provider


KIND_ORDER = {"cloud": 0, "local": 1, "test": 2}


@dataclass(frozen=True)
class Candidate:
    provider: Provider
    route: Route
    quote: Quote


def candidates(pairs: Iterable[tuple[Provider, Route]], prepared: PreparedRequest, *,
               provider: str | None = None, model: str | None = None,
               max_cost_usd: float | None = None, can_synthesize: bool = False) -> list[Candidate]:
    """Routes able to run ``prepared``: cloud before local before test routes, then cheapest. With one provider named, its own
    ``InputError`` is raised as is (the user asked for it); otherwise a ``NoRouteError`` (or
    ``BudgetExceeded`` when price was the only obstacle) lists why each route was left out."""
    found: list[Candidate] = []
    reasons: list[str] = []
    over_budget = False
    pairs = [(p, r) for p, r in pairs
             if (provider is None or p.name == provider) and (model is None or r.model == model)]
    if not pairs:
        what = " ".join(x for x in (provider and f"provider {provider!r}", model and f"model {model!r}") if x)
        raise NoRouteError(f"no installed route matches {what or 'the request'}")
    for prov, route in pairs:
        if not prov.configured():
            reasons.append(f"{route.id}: credentials not configured (set {', '.join(prov.env_vars)})")
            continue
        if prepared.request.text is not None and not route.native_text and not can_synthesize:
            reasons.append(f"{route.id}: takes audio only and no text-to-speech engine is installed")
            continue
        try:
            prov.validate(prepared, route)
        except InputError as exc:
            if provider is not None:
                raise
            reasons.append(f"{route.id}: {exc}")
            continue
        quote = prov.estimate(prepared, route)
        if max_cost_usd is not None and quote.cost_usd > max_cost_usd + 1e-9:
            over_budget = True
            reasons.append(f"{route.id}: ${quote.cost_usd:.4f} is over the ${max_cost_usd:.4f} maximum")
            continue
        found.append(Candidate(prov, route, quote))
    if not found:
        detail = "; ".join(reasons)
        if over_budget and all("maximum" in r for r in reasons):
            raise BudgetExceeded(f"every route costs more than allowed: {detail}")
        raise NoRouteError(f"no usable route: {detail}")
    found.sort(key=lambda c: (KIND_ORDER[c.route.kind], c.quote.cost_usd, c.route.id))
    return found
