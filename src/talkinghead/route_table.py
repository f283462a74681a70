"""The routes a client can use: each installed provider's declared routes with the user's price
and limit overrides applied, stand-ins for models a provider does not serve itself (the local
renderer, and a test double when named), and which of them a request may take (``--model``,
``default_model``, ``--provider``). Declarations only: no media, no network."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from . import routing
from .errors import ConfigError
from .models import DEFAULT_MODEL, Limits, Route
from .provider import Provider

Pairs = list[tuple[Provider, Route]]
Models = str | Sequence[str] | None


def installed(providers: Iterable[Provider], prices: Mapping[str, Mapping[str, float]], model: Models = None,
              *, stand_ins: bool = False) -> Pairs:
    """Every route of every provider, with the user's price overrides applied
    (``[prices."<provider>/<model>"]``, or ``[prices.<provider>]`` for its kling-avatar route,
    as before there were other models) and its limit overrides. With ``stand_ins``, providers
    also stand in for each model of ``model`` (ids; None: every model) they do not serve."""
    providers = list(providers)
    out = [(p, priced(limited(p, r), prices)) for p in providers for r in p.routes()]
    if not stand_ins:
        return out
    wanted = routing.parse_models(model) if model is not None else None
    if wanted is None:  # every model some route serves
        wanted = sorted({r.model for _, r in out})
    served = {(p.name, r.model) for p, r in out}
    for p in providers:
        for m in wanted:
            if (p.name, m) in served:
                continue
            stand_in = p.stand_in(m, [r for _, r in out if r.model == m and r.kind == "cloud"])
            if stand_in is not None:
                out.append((p, priced(stand_in, prices)))
    return out


def priced(route: Route, prices: Mapping[str, Mapping[str, float]]) -> Route:
    override = prices.get(route.id)
    if override is None and route.model == DEFAULT_MODEL:
        override = prices.get(route.provider)
    if not override:
        return route
    return route.model_copy(update={"price_per_second": {**route.price_per_second, **override},
                                    "price_source": "config file [prices] (overrides the bundled price)",
                                    "price_unconfirmed": False})


def limited(provider: Provider, route: Route) -> Route:
    """A route with the limits the user set for it (``[providers.<name>.limits."<model>"]``),
    for limits whose published sources disagree (Fabric's audio length, say)."""
    table = provider.config.get("limits")
    overrides = table.get(route.model) if isinstance(table, Mapping) else None
    if not overrides:
        return route
    where = f'[providers.{provider.name}.limits."{route.model}"]'
    unknown = sorted(set(overrides) - set(Limits.model_fields))
    if unknown:
        raise ConfigError(f"{where}: unknown limit(s) {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(Limits.model_fields))})")
    try:
        limits = Limits.model_validate({**route.limits.model_dump(), **dict(overrides)})
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return route.model_copy(update={"limits": limits})


def default_models(providers: Iterable[Provider], default_model: str, model: Models) -> Models:
    """What ``model=None`` means: ``default_model`` when an installed cloud route serves it,
    else every model (an installation of stand-ins and test routes only)."""
    if model is not None:
        return model
    wanted = routing.parse_models(default_model)
    if wanted is None:
        return None
    cloud = {r.model for p in providers for r in p.routes() if r.kind == "cloud"}
    return default_model if cloud & set(wanted) else None


def for_request(providers: Mapping[str, Provider], prices: Mapping[str, Any], default_model: str,
                provider: str | None, model: Models) -> tuple[Pairs, Models]:
    """The routes a request may take, and the model filter that chose them. A provider named
    without a model, that does not itself serve the default model, keeps its own routes (as
    before there were several models). A test double stands in for a model only when named:
    it is never chosen in place of a real model."""
    if provider is not None and model is None:
        named = providers[provider]
        wanted = routing.parse_models(default_model)
        own = [priced(limited(named, r), prices) for r in named.routes()]
        if wanted is not None and not {r.model for r in own} & set(wanted):
            return [(named, r) for r in own], None
    model = default_models(providers.values(), default_model, model)
    wanted = routing.parse_models(model)
    own_ids = {(p.name, r.model) for p in providers.values() for r in p.routes()}
    pairs = [(p, r) for p, r in installed(providers.values(), prices, model, stand_ins=True)
             if (provider is None or p.name == provider) and (wanted is None or r.model in wanted)
             and (r.kind != "test" or (p.name, r.model) in own_ids or p.name == provider)]
    return pairs, model
