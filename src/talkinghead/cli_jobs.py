"""CLI commands over the journal: ``jobs``, ``budget`` and ``batch``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # annotations only: the CLI imports the library lazily (start-up time)
    from .client import AsyncClient
    from .models import Job

from .cli_support import FilePath, Number, handle_errors, make_client, progress_bar


def _row(job: Job) -> str:
    cost = f"${job.settled_usd:.4f}" if job.settled_usd is not None else f"(${job.reserved_usd:.4f} reserved)"
    return (f"{job.id}  {job.created_at:%Y-%m-%d %H:%M}  {job.route_id:<26} {job.mode:<3}  "
            f"{job.status.value:<9} {cost:<20} {job.output_path or job.error or ''}")


def _costs(job: Job) -> dict[str, Any]:
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
    found = client.ledger.jobs(status=status, limit=limit)
    held = client.ledger.workers([j.id for j in found])  # queue workers (talkinghead worker)
    for job in found:
        if as_json:
            click.echo(json.dumps(job.model_dump(mode="json") | {"costs": _costs(job), "worker": held.get(job.id)}))
        else:
            click.echo(_row(job) + (f"  [{held[job.id]}]" if job.id in held else ""))
    if not found and not as_json:  # say so, and where we looked (TALKINGHEAD_HOME)
        which = f" with status {status}" if status else ""
        where = getattr(client.ledger, "path", None) or repr(client.ledger)  # a PostgreSQL URL has no path
        click.echo(f"no jobs{which} in the journal at {where}", err=True)


@jobs.command()
@click.argument("job_id")
@handle_errors
def show(job_id: str) -> None:
    """Everything the journal holds about one job (an id prefix is enough)."""
    from .client import next_step, over_quote

    job = _get(make_client(), job_id)
    data = job.model_dump(mode="json")
    # quote, reservation, what the backend billed and what was settled, side by side: a
    # backend may bill more than was quoted
    data["costs"] = _costs(job) | {"over_quote_usd": over_quote(job)}
    data["next_step"] = next_step(job).value
    click.echo(json.dumps(data, indent=2))
    if data["costs"]["over_quote_usd"]:
        click.echo(f"warning: {job.id} settled at ${job.settled_usd:.4f}, above its quote of "
                   f"${job.reserved_usd:.4f}", err=True)


@jobs.command()
@click.option("--timeout", type=Number(0, inclusive=False), default=1800, show_default=True,
              help="Seconds to wait per job.")
@handle_errors
def resume(timeout: float) -> None:
    """Finish every job the journal says is not finished, each by the one action its state
    calls for (docs/faults.md): create one that was never sent, look up one whose answer was
    lost, follow one running, download one completed but not on disk. Nothing that may have
    been created is created again. Exits 4 while any job needs a person."""
    import asyncio

    from .client import Step, next_step

    client = make_client()
    jobs_ = client.ledger.unfinished() + [j for j in client.ledger.jobs(status="completed")
                                           if next_step(j) is Step.FETCH]
    pending = [j for j in jobs_ if next_step(j) is not Step.PERSON]
    person = [j for j in jobs_ if next_step(j) is Step.PERSON]
    if not jobs_:
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

    from .models import JobStatus

    failed = 0
    for job, path, exc in asyncio.run(go()):
        if exc is None:
            click.echo(f"{job.id} completed {path}")
            _warn_over_quote(job)
        elif job.status in (JobStatus.UNKNOWN, JobStatus.LOST):
            person.append(job)
        else:
            failed += 1
            click.echo(f"{job.id} {type(exc).__name__}: {exc}", err=True)
    for job in person:
        why = ("the backend no longer knows its task" if job.status is JobStatus.LOST
               else "its create was sent and may have been billed")
        click.echo(f"{job.id} {job.status.value}: needs a person ({why}); ${job.reserved_usd:.4f} stays reserved. "
                   f"Check the provider's dashboard, then: talkinghead jobs resolve {job.id}", err=True)
    if person:
        click.echo(f"{len(person)} job(s) need a person: talkinghead jobs resolve --help", err=True)
    if failed or person:
        raise SystemExit(4)


def _warn_over_quote(job: Job) -> None:
    from .client import over_quote

    if over_quote(job):
        click.echo(f"warning: {job.id} settled at ${job.settled_usd:.4f}, above its quote of "
                   f"${job.reserved_usd:.4f} (billed {job.duration_s} s); later jobs' budgets count it",
                   err=True)


@jobs.command()
@click.argument("job_id")
@handle_errors
def cancel(job_id: str) -> None:
    """Cancel a running job at its provider and release its reservation."""
    import asyncio
    client = make_client()
    job = _get(client, job_id)
    asyncio.run(client.cancel(job))
    click.echo(f"{job.id} {job.status.value}")
    if job.status.value in ("lost", "unknown"):
        click.echo(f"{job.id} needs a person: {job.error}", err=True)
        raise SystemExit(4)


@jobs.command()
@click.argument("job_id")
@click.option("--task-id", help="The task the backend shows for it: follow that (jobs resume).")
@click.option("--not-created", "--release", "release", is_flag=True,
              help="The backend did not create it, or did not charge it: release the reservation.")
@click.option("--settle", "settle_usd", type=float, metavar="USD",
              help="The backend charged this much and there is no video: settle at it.")
@click.option("--forget-video", is_flag=True,
              help="A completed job whose result can no longer be fetched: stop trying.")
@handle_errors
def resolve(job_id: str, task_id: str | None, release: bool, settle_usd: float | None, forget_video: bool) -> None:
    """Settle a job that needs a person, after checking the provider's dashboard: one whose
    create's outcome is unknown, one whose task the backend no longer knows (lost), or a
    completed one whose result URL has expired."""
    from .client import Step, next_step
    from .errors import InputError
    from .models import JobStatus

    client = make_client()
    job = _get(client, job_id)
    step = next_step(job)
    if sum((bool(task_id), release, settle_usd is not None, forget_video)) != 1:
        raise InputError("resolve", "give exactly one of --task-id, --release, --settle and --forget-video")
    if forget_video:
        if step is not Step.FETCH:
            raise InputError("job", f"{job.id} is {job.status.value} with nothing left to download")
        job.error, job.output_url = f"result given up by hand (it was at {job.output_url})", None
        client.ledger.record(job)
        click.echo(f"{job.id} will not be downloaded again")
        return
    if job.status not in (JobStatus.UNKNOWN, JobStatus.LOST) and not (
            job.status is JobStatus.CREATED and not job.task_id):
        raise InputError("job", f"{job.id} is {job.status.value}, not unknown or lost; nothing to resolve")
    if settle_usd is not None and settle_usd < 0:
        raise InputError("settle", f"{settle_usd} is negative", value=settle_usd, limit=0)
    if task_id:
        owner = client.ledger.find(job.provider, task_id)
        if owner is not None and owner.id != job.id:
            raise InputError("task-id", f"task {task_id} already belongs to job {owner.id}", value=task_id)
        job.task_id, job.status, job.error = task_id, JobStatus.QUEUED, None
        client.ledger.record(job)
        click.echo(f"{job.id} now follows task {task_id}: run talkinghead jobs resume")
    elif release:
        job.status, job.error = JobStatus.FAILED, "resolved by hand: the backend did not create or charge it"
        client.ledger.close(job, 0.0)
        click.echo(f"{job.id} released ${job.reserved_usd:.4f}")
    else:
        job.status, job.error = JobStatus.FAILED, f"resolved by hand: charged ${settle_usd:.4f}, no video"
        client.ledger.close(job, settle_usd or 0.0)
        click.echo(f"{job.id} settled at ${settle_usd:.4f}")


def _get(client: AsyncClient, job_id: str) -> Job:
    from .errors import InputError

    job = client.ledger.get(job_id)
    if job is None:
        matches = [j.id for j in client.ledger.jobs() if j.id.startswith(job_id)] if len(job_id) >= 6 else []
        if len(matches) > 1:
            raise InputError("job", f"{job_id!r} is the start of {len(matches)} job ids ({', '.join(matches[:3])}"
                             f"{', ...' if len(matches) > 3 else ''}); give more of it", value=job_id)
        raise InputError("job", f"no job {job_id!r} in the journal (give the id or at least its first 6 characters)",
                         value=job_id)
    return job


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON on stdout.")
@handle_errors
def budget(as_json: bool) -> None:
    """Limits, spent and reserved, overall and per provider."""
    from .client import over_quote

    client = make_client()
    lim = client.ledger.limits
    # Settled above the quote: already in spent (so every later reservation sees it); shown
    # on its own so an overrun is never silent.
    overruns = [over for j in client.ledger.jobs() if (over := over_quote(j))]
    data: dict[str, Any]
    data = {"limits": {"total_usd": lim.total_usd, "daily_usd": lim.daily_usd, "per_provider": lim.per_provider},
            **client.ledger.totals(), "over_quote_usd": round(sum(overruns), 6), "over_quote_jobs": len(overruns),
            "providers": client.ledger.by_provider()}
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return

    def show_limit(v):
        return "none" if v is None else f"${v:.2f}"
    click.echo(f"total limit {show_limit(lim.total_usd)}   daily limit {show_limit(lim.daily_usd)}")
    click.echo(f"spent ${data['spent_usd']:.4f}   reserved ${data['reserved_usd']:.4f}   "
               f"today ${data['today_usd']:.4f}")
    if data["over_quote_jobs"]:
        click.echo(f"overrun ${data['over_quote_usd']:.4f}: {data['over_quote_jobs']} job(s) settled above their "
                   "quote (counted in spent; limits see it)")
    for name, row in data["providers"].items():
        cap = show_limit(lim.per_provider.get(name))
        click.echo(f"  {name:<14} spent ${row['spent_usd']:.4f}  reserved ${row['reserved_usd']:.4f}  "
                   f"jobs {row['jobs']:<5} limit {cap}")


@click.command()
@click.argument("jobs_file", type=FilePath(exists=True, dir_okay=False, path_type=Path))
@click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=4, show_default=True, help="Jobs at once.")
@click.option("--budget", "budget_usd", type=Number(0), metavar="USD", help="Most this run may spend.")
@click.option("--provider", metavar="NAME", help="Provider for lines that name none.")
@click.option("--output-dir", type=FilePath(file_okay=False, path_type=Path), help="Default: <file>.out/")
@click.option("--results", type=FilePath(dir_okay=False, path_type=Path), help="Default: <file>.results.jsonl")
@click.option("--queue", "to_queue", is_flag=True,
              help="Queue the lines for `talkinghead worker`s (PostgreSQL) instead of running them here.")
@handle_errors
def batch(jobs_file: Path, concurrency: int, budget_usd: float | None, provider: str | None,
          output_dir: Path | None, results: Path | None, to_queue: bool) -> None:
    """Run one request per JSONL line; a second run skips what is done and resumes the rest."""
    import asyncio

    from .batch import read_lines, run_batch, summarize

    output_dir = output_dir or jobs_file.with_suffix(".out")
    if to_queue:
        if budget_usd is not None:
            from .errors import InputError

            raise InputError("--budget", "a run's budget holds within one process; with --queue, set [budget] "
                                         "limits, which every worker shares", value=budget_usd)
        return _enqueue(jobs_file, output_dir, provider)
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
    for line in done:
        if line.over_quote_usd:
            click.echo(f"warning: line {line.line} ({line.job_id}) settled ${line.over_quote_usd:.4f} above "
                       "its quote", err=True)
    if counts.get("failed") or counts.get("unknown") or counts.get("lost"):
        raise SystemExit(4)
    if counts.get("budget"):
        raise SystemExit(3)
    if counts.get("invalid"):
        raise SystemExit(2)


def _enqueue(jobs_file: Path, output_dir: Path, provider: str | None) -> None:
    import asyncio

    from .workqueue import enqueue

    client = make_client()
    found = asyncio.run(enqueue(client, jobs_file, output_dir=output_dir, provider=provider))
    for line in found.invalid:
        click.echo(line.to_json())
    click.echo(found.summary(), err=True)
    if found.invalid:
        raise SystemExit(2)
