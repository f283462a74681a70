"""CLI for a fleet on PostgreSQL: ``talkinghead worker`` (``batch --queue`` is in cli_jobs)."""

from __future__ import annotations

import click

from .cli_support import handle_errors, make_client


@click.command()
@click.option("-c", "--concurrency", type=click.IntRange(1, 256), default=4, show_default=True,
              help="Jobs this worker runs at once.")
@click.option("--stalled-after", type=click.FloatRange(1, 3600), default=30, show_default=True, metavar="SECONDS",
              help="Re-queue tasks of workers silent this long (they died); they resume from the journal.")
@click.option("--until-idle", is_flag=True, help="Exit once the queue is empty instead of waiting for more.")
@handle_errors
def worker(concurrency: int, stalled_after: float, until_idle: bool) -> None:
    """Run queued batch lines (talkinghead batch --queue) on this host, from the shared
    database in TALKINGHEAD_DATABASE_URL. Start one per host, or several; stop with Ctrl-C."""
    import asyncio

    from .workqueue import run_worker, worker_name

    client = make_client()
    click.echo(f"talkinghead: worker {worker_name()} taking up to {concurrency} jobs at once", err=True)

    async def go():
        async with client:
            await run_worker(client, concurrency=concurrency, stalled_after=stalled_after, wait=not until_idle)

    asyncio.run(go())
