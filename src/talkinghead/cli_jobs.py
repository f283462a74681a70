"""CLI commands over the journal: ``jobs``, ``budget`` and ``batch``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from .cli_support import Number, handle_errors, make_client, progress_bar


def _row(job) -> str:
    cost = f"${job.settled_usd:.4f}" if job.settled_usd is not None else f"(${job.reserved_usd:.4f} reserved)"
    return (f"{job.id}  {job.created_at:%Y-%m-%d %H:%M}  {job.route_id:<26} {job.mode:<3}  "
            f"{job.status.value:<9} {cost:<20} {job.output_path or job.error or ''}")


def _costs(job) -> dict:
    """The job's three money figures: what was quoted, what is reserved, what the backend
    billed (as it reported it) and what the ledger settled."""
    return {"quote_usd": job.quote.cost_usd if job.quote else None, "reserved_usd": job.reserved_usd,
            "billed": {"units": job.billed_units, "seconds": job.billed_seconds, "usd": job.billed_usd},
            "settled_usd": job.settled_usd}


@click.group()
def jobs() -> None:
    """List, inspect, resume, cancel and resolve journaled jobs."""


@jobs.command("list")
@click.option("--status", help="Only jobs with this status.")
@click.option("-n", "--limit", type=int, default=50, show_default=True, help="The newest N jobs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines on stdout.")
@handle_errors
def list_jobs(status: str | None, limit: int, as_json: bool) -> None:
    """Every job in the journal, oldest first, with its cost."""
    client = make_client()
    for job in client.ledger.jobs(status=status, limit=limit):
        click.echo(json.dumps(job.model_dump(mode="json") | {"costs": _costs(job)}) if as_json else _row(job))


@jobs.command()
@click.argument("job_id")
@handle_errors
def show(job_id: str) -> None:
    """Everything the journal holds about one job (an id prefix is enough)."""
    job = _get(make_client(), job_id)
    click.echo(json.dumps(job.model_dump(mode="json") | {"costs": _costs(job)}, indent=2))


@jobs.command()
@click.option("--timeout", type=Number(0, inclusive=False), default=1800, show_default=True,
              help="Seconds to wait per job.")
@handle_errors
def resume(timeout: float) -> None:
    """Follow every unfinished job to its end and download its result. Nothing is resubmitted."""
    client = make_client()
    pending = [j for j in client.ledger.unfinished() if j.status.value != "unknown"]
    unknown = client.ledger.jobs(status="unknown")
    if not pending:
        click.echo("no unfinished jobs", err=True)

    async def go():
        async def one(job):
            try:
                result = await client.resume(job, timeout=timeout)
                return job, str(result.path), None
            except Exception as exc:  # report each job; one failure must not stop the others
                return job, None, exc
        async with client:
            return await asyncio.gather(*(one(j) for j in pending))

    failed = 0
    for job, path, exc in asyncio.run(go()):
        if exc is None:
            click.echo(f"{job.id} completed {path}")
        else:
            failed += 1
            click.echo(f"{job.id} {type(exc).__name__}: {exc}", err=True)
    for job in unknown:
        click.echo(f"{job.id} unknown: never resubmitted automatically; see: talkinghead jobs resolve --help",
                   err=True)
    if failed:
        raise SystemExit(4)


@jobs.command()
@click.argument("job_id")
@handle_errors
def cancel(job_id: str) -> None:
    """Cancel a running job at its provider and release its reservation."""
    client = make_client()
    job = _get(client, job_id)
    asyncio.run(client.cancel(job))
    click.echo(f"{job.id} {job.status.value}")


@jobs.command()
@click.argument("job_id")
@click.option("--task-id", help="The task the backend shows for it: follow that (jobs resume).")
@click.option("--not-created", is_flag=True, help="The backend has no such task: release the reservation.")
@handle_errors
def resolve(job_id: str, task_id: str | None, not_created: bool) -> None:
    """Settle a job whose create call's outcome is unknown, after checking the backend."""
    from .errors import InputError
    from .models import JobStatus

    client = make_client()
    job = _get(client, job_id)
    if job.status is not JobStatus.UNKNOWN and not (job.status is JobStatus.CREATED and not job.task_id):
        raise InputError("job", f"{job.id} is {job.status.value}, not unknown; nothing to resolve")
    if bool(task_id) == not_created:
        raise InputError("resolve", "give exactly one of --task-id and --not-created")
    if task_id:
        job.task_id, job.status, job.error = task_id, JobStatus.QUEUED, None
        client.ledger.record(job)
        click.echo(f"{job.id} now follows task {task_id}: run talkinghead jobs resume")
    else:
        job.status, job.error = JobStatus.FAILED, "resolved by hand: the backend never created it"
        client.ledger.close(job, 0.0)
        click.echo(f"{job.id} released ${job.reserved_usd:.4f}")


def _get(client, job_id: str):
    from .errors import InputError

    job = client.ledger.get(job_id)
    if job is None:
        raise InputError("job", f"no job {job_id!r} in the journal (or the prefix is ambiguous)")
    return job


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def budget(as_json: bool) -> None:
    """Limits, spent and reserved, overall and per provider."""
    client = make_client()
    lim = client.ledger.limits
    data = {"limits": {"total_usd": lim.total_usd, "daily_usd": lim.daily_usd, "per_provider": lim.per_provider},
            **client.ledger.totals(), "providers": client.ledger.by_provider()}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return

    def show_limit(v):
        return "none" if v is None else f"${v:.2f}"
    click.echo(f"total limit {show_limit(lim.total_usd)}   daily limit {show_limit(lim.daily_usd)}")
    click.echo(f"spent ${data['spent_usd']:.4f}   reserved ${data['reserved_usd']:.4f}   "
               f"today ${data['today_usd']:.4f}")
    for name, row in data["providers"].items():
        cap = show_limit(lim.per_provider.get(name))
        click.echo(f"  {name:<14} spent ${row['spent_usd']:.4f}  reserved ${row['reserved_usd']:.4f}  "
                   f"jobs {row['jobs']:<5} limit {cap}")


@click.command()
@click.argument("jobs_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=4, show_default=True, help="Jobs at once.")
@click.option("--budget", "budget_usd", type=Number(0), metavar="USD", help="Most this run may spend.")
@click.option("--provider", metavar="NAME", help="Provider for lines that name none.")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path), help="Default: <file>.out/")
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path), help="Default: <file>.results.jsonl")
@handle_errors
def batch(jobs_file: Path, concurrency: int, budget_usd: float | None, provider: str | None,
          output_dir: Path | None, results: Path | None) -> None:
    """Run one request per JSONL line; a second run skips what is done and resumes the rest."""
    from .batch import read_lines, run_batch, summarize

    output_dir = output_dir or jobs_file.with_suffix(".out")
    results = results or jobs_file.with_suffix(".results.jsonl")
    total = len(read_lines(jobs_file))

    async def go():
        client = make_client(budget_usd=budget_usd)
        with progress_bar() as bar:
            task = bar.add_task("batch", total=total)
            async with client:
                return await run_batch(client, jobs_file, results=results, output_dir=output_dir,
                                       concurrency=concurrency, provider=provider,
                                       on_line=lambda r: bar.advance(task))

    done = asyncio.run(go())
    counts = summarize(done)
    click.echo(" ".join(f"{k} {v}" for k, v in sorted(counts.items())) + f"  -> {results}", err=True)
    if counts.get("failed") or counts.get("unknown"):
        raise SystemExit(4)
    if counts.get("budget"):
        raise SystemExit(3)
    if counts.get("invalid"):
        raise SystemExit(2)
