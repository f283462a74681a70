"""``talkinghead models`` and ``voices``, and how ``estimate`` and ``generate`` show what
routes can and cannot do. Each listing reads only the routes' declarations."""

from __future__ import annotations

import json
from typing import Any

import click

from .cli_support import handle_errors, json_or_none_listed, make_client


def route_row(provider: Any, route: Any) -> dict[str, Any]:
    """One route's declarations, as ``models --json`` prints them."""
    text = "native" if route.native_text else "via text-to-speech"
    return {
        "model": route.model, "route": route.id, "provider": route.provider, "endpoint": route.endpoint,
        "kind": route.kind, "configured": provider.configured(), "credentials": list(provider.env_vars),
        "credentials_needed": provider.credentials_hint(),
        "inputs": {"audio": route.audio_input, "text": text, "voices": list(route.voices),
                   "voice_any": route.voice_any, "voice_required": route.voice_required,
                   "voice_note": route.voice_note, "languages": list(route.languages),
                   "prompt": route.prompt, "seed": route.seed},
        "modes": list(route.modes), "resolutions": list(route.resolutions),
        "tier_resolution": dict(route.tier_resolution),
        "aspect": route.aspect, "aspect_ratios": list(route.aspect_ratios),
        "limits": route.limits.model_dump(mode="json"),
        "price": {"per_second": dict(route.price_per_second), "by": route.price_by, "billed": route.billed,
                  "min_billed_seconds": route.min_billed_seconds, "round_up": route.round_up,
                  "source": route.price_source, "read_on": route.price_date,
                  "unconfirmed": route.price_unconfirmed},
    }


def _price(route: Any) -> str:
    text = " ".join(f"{k} ${v:.4g}" for k, v in route.price_per_second.items()) + "/s"
    if route.min_billed_seconds:
        text += f", min {route.min_billed_seconds:g} s"
    if route.round_up:
        text += ", whole s"
    return text + (" UNCONFIRMED" if route.price_unconfirmed else "")


def _inputs(route: Any) -> str:
    parts = ["audio"] if route.audio_input else []
    if route.native_text:
        parts.append("text" + ("+voice" if route.voices or route.voice_any else "")
                      + ("+language" if route.languages else ""))
    else:
        parts.append("text(tts)")
    if route.prompt:
        parts.append("prompt")
    if route.seed:
        parts.append("seed")
    return ",".join(parts)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def models(as_json: bool) -> None:
    """List models x routes: inputs, resolutions, aspect control, limits and prices."""
    client = make_client()
    pairs = sorted(client.routes(), key=lambda pr: (pr[1].model != "kling-avatar", pr[1].kind != "cloud",
                                                   pr[1].model, pr[1].provider))
    rows = [route_row(p, r) for p, r in pairs]
    if json_or_none_listed(rows, as_json, "no providers installed (see TALKINGHEAD_PLUGINS)"):
        return
    click.echo(f"{'model':<15} {'route':<28} {'inputs':<30} {'resolutions':<22} {'aspect':<20} price (USD)")
    for (_, r), row in zip(pairs, rows, strict=True):
        res = ",".join(r.resolutions) or "-"
        aspect = "follows photo" if r.aspect == "follows_photo" else "sets " + ",".join(r.aspect_ratios)
        ready = "" if row["configured"] else f"  [needs {row['credentials_needed']}]"
        click.echo(f"{r.model:<15} {r.id:<28} {_inputs(r):<30} {res:<22} {aspect:<20} {_price(r)}{ready}")
    click.echo("local and mock stand in for every model (local renders its own preview at $0).")


@click.command()
@click.option("--model", metavar="ID", required=True, help="The model whose voices to list.")
@click.option("--provider", metavar="NAME", help="Only this provider's route.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def voices(model: str, provider: str | None, as_json: bool) -> None:
    """List the voices each route of a model speaks text with."""
    from .errors import NoRouteError

    client = make_client()
    pairs = [(p, r) for p, r in client.routes() if r.model == model and (provider is None or p.name == provider)]
    if not pairs:
        raise NoRouteError(f"no installed route serves model {model!r}"
                           + (f" on provider {provider!r}" if provider else ""))
    rows: list[dict[str, Any]] = []
    for _, r in pairs:
        if r.native_text:
            what = "list" if r.voices else ("any" if r.voice_any else "none")
        else:
            what = "tts"
        rows.append({"route": r.id, "native_text": r.native_text, "voices": list(r.voices), "kind": what,
                     "required": r.voice_required, "note": r.voice_note, "languages": list(r.languages)})
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        if row["kind"] == "tts":
            click.echo(f"{row['route']}: no voices of its own; text is spoken by the core's text-to-speech "
                       "engine first (--voice picks that engine's voice)")
        elif row["kind"] == "none":
            click.echo(f"{row['route']}: speaks text in its own voice; no choice")
        elif row["kind"] == "any":
            click.echo(f"{row['route']}: any voice value ({row['note'] or 'passed as given'})")
        else:
            click.echo(f"{row['route']}: {len(row['voices'])} voices"
                       + (f"; languages: {', '.join(row['languages'])}" if row["languages"] else ""))
            for name in row["voices"]:
                click.echo(f"  {name}")


def print_estimate(request: Any, found: list[Any], excluded: list[Any], as_json: bool) -> None:
    from .media import route_warnings

    if as_json:
        out = [c.quote.model_dump(mode="json") | {"route": c.route.id, "usable": True, "needs": None,
                                                  "warnings": route_warnings(request, c.route)} for c in found]
        out += [(e.quote.model_dump(mode="json") if e.quote else {"provider": e.route.provider,
                                                                  "model": e.route.model})
                | {"route": e.route.id, "usable": False, "needs": e.needs, "excluded": e.why}
                for e in sorted(excluded, key=_cheapest)]
        click.echo(json.dumps(out, indent=2))
        return
    for c in found:
        click.echo(_quote_line(c.route.id, c.quote))
        for warning in route_warnings(request, c.route):
            click.echo(f"  warning: {warning}")
    for e in sorted(excluded, key=_cheapest):
        line = _quote_line(e.route.id, e.quote) if e.quote else f"{e.route.id:<34} -"
        click.echo(f"{line}  [{e.needs}]" if e.kind == "credentials" else f"{line}  [not usable: {e.why}]")
    if not found and not excluded:
        click.echo("no route matches", err=True)


def _cheapest(e: Any) -> tuple:
    """Excluded routes, cheapest first; those that could not be quoted last."""
    return (e.quote is None, e.quote.cost_usd if e.quote else 0, e.route.id)


def _quote_line(route_id: str, q: Any) -> str:
    bound = " (upper bound: duration unknown)" if q.upper_bound else ""
    res = f" {q.resolution}" if q.resolution else ""
    unconfirmed = " (price unconfirmed)" if q.unconfirmed else ""
    return (f"{route_id:<34} {q.mode}{res}  {q.seconds:7.2f} s x ${q.price_per_second:.4f}/s = "
            f"${q.cost_usd:.4f}{bound}{unconfirmed}")


def warn_once(client: Any, request: Any, job: Any, warned: set[str]) -> None:
    """On a job's first update, one warning line per field its route leaves out, and a note
    when the price is unconfirmed or the route is a stand-in."""
    if job.id in warned:
        return
    warned.add(job.id)
    from .media import route_warnings

    for _, r in client.routes(job.model, stand_ins=True):
        if r.id == job.route_id:
            for warning in route_warnings(request, r):
                click.echo(f"warning: {warning}", err=True)
            if r.price_unconfirmed:
                click.echo(f"warning: the price of {r.id} is unconfirmed ({r.price_source}); the quote may "
                           "differ from the bill", err=True)
            if r.kind == "local" and r.model != "local-preview":
                click.echo(f"note: {r.id} is the local preview renderer standing in for {r.model}, at $0",
                           err=True)
            return
