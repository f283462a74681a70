"""The ``talkinghead`` command. Heavy modules load inside commands, so ``--help`` stays fast.

Exit codes: 0 success, 2 invalid input (nothing was sent or reserved), 3 budget exceeded or no
usable route, 4 provider or job failure (a backend refusal included), 130 interrupted.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # annotations only: the CLI imports the library lazily (start-up time)
    from .models import AvatarRequest

from .cli_support import FilePath, Number, OneLineGroup, handle_errors, json_or_none_listed, make_client, progress_bar

# Copies of models.MODES, models.ASPECT_RATIOS and routing.POLICIES, so that `--help` does not
# import pydantic; tests/test_cli.py checks they agree.
MODES = ("std", "pro")
ASPECTS = ("auto", "16:9", "9:16", "1:1")
RESOLUTIONS = ("360p", "480p", "540p", "720p", "1080p", "4k")
POLICIES = ("cheapest", "fastest", "priority")


def _setup_logging(verbose: int) -> None:
    from . import log

    level = os.environ.get("TALKINGHEAD_LOG_LEVEL") or ("debug" if verbose > 1 else "info" if verbose else "critical")
    log.configure(level=level, force=True, lazy=True)


def _request(image: str, audio: str | None, text: str | None, **kw: Any) -> AvatarRequest:
    from .errors import InputError
    from .models import AvatarRequest

    if (audio is None) == (text is None):
        raise InputError("audio", "give exactly one of --audio and --text")
    return AvatarRequest(image=image, audio=audio, text=text, **{k: v for k, v in kw.items() if v is not None})


def request_options(fn):
    fn = click.option("--image", required=True, metavar="PATH|URL",
                      help="Face photo: jpg/png path, http(s) URL or data URI.")(fn)
    fn = click.option("--audio", metavar="PATH|URL", help="Speech: mp3/wav/m4a/aac, 2-300 s.")(fn)
    fn = click.option("--text", metavar="TEXT", help="Text to speak instead of --audio.")(fn)
    fn = click.option("--mode", type=click.Choice(MODES), default="std", show_default=True,
                      help="Quality tier; each route maps it to its own setting.")(fn)
    fn = click.option("--resolution", type=click.Choice(RESOLUTIONS),
                      help="Output resolution (wins over --mode); routes without it are skipped.")(fn)
    fn = click.option("--aspect-ratio", type=click.Choice(ASPECTS), default="auto", show_default=True,
                      help="auto follows the photo; others only on routes that honour them.")(fn)
    fn = click.option("--voice", metavar="NAME", help="Voice for --text (see `talkinghead voices`).")(fn)
    fn = click.option("--language", metavar="NAME", help="Language for --text, on routes that speak it.")(fn)
    fn = click.option("--prompt", metavar="TEXT", help="Action/emotion prompt (<= 2500 characters).")(fn)
    fn = click.option("--seed", type=int, metavar="N", help="Seed, on routes that take one.")(fn)
    fn = click.option("--model", metavar="ID[,ID]|any",
                      help="Model(s) to consider (default: the config's default_model, kling-avatar).")(fn)
    fn = click.option("--provider", metavar="NAME", help="Use this provider (default: cheapest usable).")(fn)
    fn = click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")(fn)
    return fn


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="Log job steps to stderr (-vv for debug).")
@click.version_option(package_name="talkinghead")
def main(verbose: int) -> None:
    """Talking-head videos from one face photo and audio or text, on any backend.

    \b
    Quick start (offline, no account):
      talkinghead generate --provider mock --image face.jpg --audio hello.mp3 -o out.mp4
    """
    _setup_logging(verbose)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def providers(as_json: bool) -> None:
    """List installed providers, their routes and prices, and whether credentials are set.

    Routes are listed in the order the router prefers them when no --provider is named:
    kind cloud first, then local, then test (a test double such as the mock runs only when
    named); cheapest first within a kind. A route's kind is "cloud" unless it says otherwise."""
    import time

    from .routing import KIND_ORDER

    client = make_client()
    cooling = client.ledger.cooldowns()
    pairs = sorted(client.routes(), key=lambda pr: (KIND_ORDER[pr[1].kind], min(pr[1].price_per_second.values(),
                                                                                    default=0.0), pr[1].id))
    rows: list[dict[str, Any]]
    rows = [{"provider": p.name, "model": r.model, "route": r.id, "kind": r.kind, "modes": list(r.modes),
             "price_per_second": r.price_per_second, "price_by": r.price_by, "aspect": r.aspect,
             "aspect_ratios": list(r.aspect_ratios), "native_text": r.native_text, "configured": p.configured(),
             "credentials": list(p.env_vars), "credentials_needed": p.credentials_hint(),
             "credentials_in_use": p.credentials_in_use(), "price_source": r.price_source,
             "price_date": r.price_date, "price_unconfirmed": r.price_unconfirmed,
             "failed_jobs_billed": p.bills_failed_jobs,
             "chosen_unnamed": r.kind != "test",
             "cooldown_s": round(max(0.0, cooling.get(r.id, 0) - time.time()), 1)} for p, r in pairs]
    if json_or_none_listed(rows, as_json, "no providers installed (see TALKINGHEAD_PLUGINS)"):
        return
    for row in rows:
        prices = "  ".join(f"{k} ${v:.4f}/s" for k, v in row["price_per_second"].items())
        if row["price_unconfirmed"]:
            prices += " (unconfirmed)"
        using = f" ({' + '.join(row['credentials_in_use'])})" if row["credentials_in_use"] else ""
        ready = f"ready{using}" if row["configured"] else f"needs {row['credentials_needed']}"
        if not row["chosen_unnamed"]:
            ready += ", only by name"
        if row["cooldown_s"]:
            ready += f", cooling down {row['cooldown_s']:.0f} s"
        click.echo(f"{row['route']:<34} {row['kind']:<6} {prices:<40} {ready}")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def plugins(as_json: bool) -> None:
    """List installed plugins: name, version, entry point, routes, and why one failed to load."""
    from . import plugins as seam

    by_plugin = seam.plugin_providers()
    rows: list[dict[str, Any]] = []
    for info in seam.report():
        routes: list[str] = []
        for cls in by_plugin.get(info.name, []):
            try:
                routes += [r.id for r in cls({}).routes()]
            except Exception as exc:  # a plugin author needs to see this, not a traceback
                routes.append(f"<{cls.__name__}.routes() failed: {type(exc).__name__}: {exc}>")
        state = "loaded" if info.loaded else "failed" if info.error else "not loaded (TALKINGHEAD_PLUGINS)"
        rows.append({"name": info.name, "distribution": info.distribution, "version": info.version,
                     "entry_point": info.entry_point, "status": state, "routes": routes, "error": info.error})
    if json_or_none_listed(rows, as_json, "no plugins installed"):
        return
    for row in rows:
        click.echo(f"{row['name']:<14} {row['distribution'] or '?'} {row['version'] or '?'}  "
                   f"[{row['entry_point']}]  {row['status']}")
        for route in row["routes"]:
            click.echo(f"    route {route}")
        if row["error"]:
            click.echo(f"    error {row['error']}")


@main.command()
@request_options
@click.option("--max-cost", type=Number(0), metavar="USD", help="Mark routes quoting more than this.")
@handle_errors
def estimate(image: str, audio: str | None, text: str | None, provider: str | None, model: str | None,
             as_json: bool, max_cost: float | None, **fields: Any) -> None:
    """Quote a request on every matching route, usable ones first (cheapest first under the
    cheapest policy), then the others with why each is left out. No network."""
    from .cli_models import print_estimate

    request = _request(image, audio, text, **fields)
    found, excluded = make_client().estimate_all_now(request, provider=provider, model=model, max_cost_usd=max_cost)
    print_estimate(request, found, excluded, as_json)


@main.command()
@request_options
@click.option("-o", "--output", type=FilePath(dir_okay=False, path_type=Path), default=Path("talkinghead.mp4"),
              show_default=True, help="Where to write the MP4.")
@click.option("--webhook", metavar="URL", help="Ask the backend to POST here when the job ends.")
@click.option("--max-cost", type=Number(0), metavar="USD", help="Refuse routes quoting more than this.")
@click.option("--budget", "budget_usd", type=Number(0), metavar="USD", help="Most this run may commit.")
@click.option("--policy", type=click.Choice(POLICIES), help="Route order when no provider is named.")
@click.option("--check-face", is_flag=True, help="Refuse a photo without exactly one usable face, before paying.")
@click.option("--timeout", type=Number(0, inclusive=False), default=1800, show_default=True,
              help="Seconds to wait for the job.")
@handle_errors
def generate(image: str, audio: str | None, text: str | None, provider: str | None, model: str | None,
             as_json: bool, output: Path, webhook: str | None, max_cost: float | None, budget_usd: float | None,
             policy: str | None, check_face: bool, timeout: float, **fields: Any) -> None:
    """Make a talking-head MP4: validate, quote, submit, follow, download."""
    import asyncio
    request = _request(image, audio, text, **fields)
    client = make_client(budget_usd=budget_usd, policy=policy)
    result = asyncio.run(_generate(client, request, provider, model, output, webhook, max_cost, timeout,
                                   check_face))
    if as_json:
        click.echo(json.dumps({"job_id": result.job_id, "provider": result.provider, "model": result.model,
                               "status": result.status.value, "cost_usd": result.cost_usd,
                               "duration_s": result.duration_s, "output": str(result.path),
                               "url": result.url}))
    else:
        click.echo(str(result.path))
    from .lifecycle import OVER_QUOTE_TOLERANCE  # the journal's rule for "over its quote"

    if result.quote_usd is not None and result.cost_usd > result.quote_usd + OVER_QUOTE_TOLERANCE:
        click.echo(f"warning: {result.job_id} settled at ${result.cost_usd:.4f}, above its quote of "
                   f"${result.quote_usd:.4f} (billed {result.duration_s} s); later jobs' budgets count it",
                   err=True)


async def _generate(client, request, provider, model, output, webhook, max_cost, timeout, check_face):
    from .cli_models import warn_once

    with progress_bar() as bar:
        task = bar.add_task("validating", total=100)
        warned: set[str] = set()

        def on_update(job, update):
            warn_once(client, request, job, warned)
            bar.update(task, completed=job.progress or 0, description=f"{job.provider} {job.status.value}")

        async with client:
            return await client.run(request, provider=provider, model=model, output=output, webhook_url=webhook,
                                    max_cost_usd=max_cost, timeout=timeout, on_update=on_update,
                                    check_face=check_face)


@main.command()
@click.argument("video", type=FilePath(exists=True, dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=FilePath(dir_okay=False, path_type=Path), help="Default: VIDEO.png")
@click.option("--columns", type=int, default=4, show_default=True)
@click.option("--rows", type=int, default=3, show_default=True)
@click.option("--width", type=int, default=1280, show_default=True, help="Sheet width in pixels.")
@handle_errors
def preview(video: Path, output: Path | None, columns: int, rows: int, width: int) -> None:
    """Write a contact sheet of evenly spaced frames, to look at a result without a player."""
    from .preview import contact_sheet

    click.echo(str(contact_sheet(video, output or video.with_suffix(".png"), columns=columns, rows=rows,
                                 width=width)))


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8787, show_default=True)
@handle_errors
def serve(host: str, port: int) -> None:
    """Receive backend callbacks at POST /webhooks/{provider}/{token}.

    Set TALKINGHEAD_WEBHOOK_BASE to this server's public URL where jobs are submitted, and
    each job gets its own callback URL; the journal is updated as callbacks arrive."""
    from .webhooks import serve as run_server

    click.echo(f"talkinghead: receiving webhooks on http://{host}:{port}/webhooks/<provider>/<token>", err=True)
    run_server(make_client(), host=host, port=port)


def _register() -> None:
    from .cli_fleet import worker
    from .cli_jobs import batch, budget, jobs
    from .cli_models import models, voices
    from .cli_support import add_verbose_everywhere

    for command in (jobs, budget, batch, models, voices, worker):
        main.add_command(command)
    add_verbose_everywhere(main)


_register()

if __name__ == "__main__":  # pragma: no cover
    main()
