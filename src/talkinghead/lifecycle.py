"""A job's life, top to bottom: reserve, create, follow, settle, fetch, and what ``jobs resume``
does with a job found in any state after a crash.

Every write to the journal happens before the step it protects:

1. ``reserve``: the job row and its budget reservation, before anything is uploaded.
2. ``create``: uploads, then the *create mark* (``create_sent_at``) is journaled immediately
   before the create request; the task id the moment the answer names it.
3. ``follow``: status changes, until the backend says the job ended. Transport errors on
   these reads are retried with backoff until the caller's timeout; a 404 makes it ``lost``.
4. ``settle``: the reservation becomes the billed cost (0 if it did not complete).
5. ``fetch``: the video is downloaded into ``$TALKINGHEAD_HOME/results`` and moved where the
   user asked; only then is a completed job finished. If that place cannot be written, the
   video stays in ``results`` and the error names it.

After a crash each job is in exactly one of the states of ``next_step``, and ``jobs resume``
takes that state's one action (docs/faults.md has the table). Nothing here ever sends a
create for a job whose create may already have been sent.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import inspect
import os
import secrets
import shutil
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from . import log
from .errors import (
    DownloadError,
    InputError,
    JobFailed,
    JobTimeout,
    ProviderError,
    ResultExpired,
    SubmitOutcomeUnknown,
    TalkingHeadError,
    WebhookRejected,
)
from .ledger import Ledger, settled_cost
from .media import PreparedRequest
from .models import AvatarRequest, Job, JobStatus, JobUpdate, VideoResult, utcnow
from .provider import CREATE_MARK, Provider

# ``on_update(job, update)``: a plain function or a coroutine function (awaited before the job
# is followed further). Called once when the job is submitted, then only when something the
# caller can see changed (task id, status, progress, result URL, error); never for a poll
# that changed nothing. An exception from it stops following the job (it stays journaled).
UpdateCallback = Callable[[Job, JobUpdate], Any]


async def notify(on_update: UpdateCallback, job: Job, update: JobUpdate) -> None:
    """Call an ``on_update`` callback; a coroutine function's result is awaited, in order."""
    result = on_update(job, update)
    if inspect.isawaitable(result):
        await result
Prepare = Callable[[AvatarRequest, Provider, str], Awaitable[PreparedRequest]]
READ_BACKOFF = 0.5  # first wait after a failed status read; doubles up to 8 s


class Step(str, enum.Enum):
    """What ``jobs resume`` does with a job, decided by its journaled state alone."""

    CREATE = "create"          # killed before the create mark: upload and create it now
    LOOK_UP = "look up"        # create sent, no task id: ask the backend by our id, else unknown
                               # (unknown: needs a person, unless the backend can be asked)
    FOLLOW = "follow"          # the backend has the task: follow it to its end, then fetch
    FETCH = "fetch"            # completed and paid, but the video is not on disk: download it
    PERSON = "needs a person"  # lost: may have been billed; talkinghead jobs resolve
    NONE = "nothing"           # finished: delivered, failed or cancelled


OVER_QUOTE_TOLERANCE = 1e-4  # quotes are rounded to 4 decimals; settlements to 6


def over_quote(job: Job) -> float:
    """How much a settled job cost beyond its quote (its reservation); 0 if it did not."""
    over = (job.settled_usd or 0.0) - job.reserved_usd
    return round(over, 6) if over > OVER_QUOTE_TOLERANCE else 0.0


def delivered(job: Job) -> bool:
    return job.output_path is not None and job.output_path != "" and Path(job.output_path).is_file()


def next_step(job: Job) -> Step:
    if job.status is JobStatus.LOST:
        return Step.PERSON
    if job.status is JobStatus.UNKNOWN:  # looked up again each time: a backend may find it now
        return Step.FOLLOW if job.task_id else Step.LOOK_UP
    if job.status is JobStatus.COMPLETED:  # without a URL: given up by hand (--forget-video)
        return Step.NONE if delivered(job) or not job.output_url else Step.FETCH
    if job.status.terminal:
        return Step.NONE
    if job.task_id:
        return Step.FOLLOW
    return Step.LOOK_UP if job.create_sent_at is not None else Step.CREATE


class Lifecycle:
    """Runs jobs against providers and keeps the journal (``ledger``) ahead of them."""

    def __init__(self, *, ledger: Ledger, provider: Callable[[str], Provider], prepare: Prepare,
                 home: Path, output_dir: Path, session: str, timeout: float) -> None:
        self.ledger = ledger
        self.provider = provider
        self.prepare = prepare  # re-probes a journaled request (resume of a job never created)
        self.results = home / "results"
        self.output_dir = output_dir
        self.session = session
        self.timeout = timeout
        self._downloads: dict[str, Any] = {}
        self._log = log.get_logger("talkinghead.lifecycle")

    def _bound(self, job: Job) -> Any:
        return self._log.bind(job_id=job.id, provider=job.provider, route=job.route_id)

    # -- 1. reserve, 2. create -----------------------------------------------------------

    async def start(self, provider: Provider, job: Job, prepared: PreparedRequest,
                    webhook_base: str | None) -> Job:
        """Journal and reserve ``job`` (``BudgetExceeded`` if it does not fit), then create it."""
        job.request = _replayable(prepared)
        if job.webhook_url is None and webhook_base:
            token = secrets.token_urlsafe(24)  # per-job capability; only its hash is journaled
            job.webhook_url = f"{webhook_base}/webhooks/{job.provider}/{token}"
            job.webhook_token_hash = token_hash(token)
        self.ledger.open(job, session=self.session)
        return await self.create(provider, job, prepared)

    async def create(self, provider: Provider, job: Job, prepared: PreparedRequest) -> Job:
        bound = self._bound(job)
        mark = CREATE_MARK.set(self._mark_create)
        try:
            if not provider.marks_create:
                self._mark_create(job)  # we cannot tell when its create goes: assume now
            update = await provider.submit(job, prepared)
        except SubmitOutcomeUnknown as exc:
            current = self.ledger.get(job.id)
            if current is not None and current.task_id:
                # The answer was lost, but the backend's callback already told us the task.
                bound.info("job.submitted", task_id=current.task_id, status=current.status.value, via="webhook")
                return current
            job.status, job.error = JobStatus.UNKNOWN, str(exc)
            self.ledger.record(job)  # stays reserved: it may have been charged
            bound.error("job.unknown", error=str(exc))
            raise
        except (TalkingHeadError, OSError) as exc:
            job.status, job.error = JobStatus.FAILED, str(exc)
            self.ledger.close(job, 0.0)
            bound.error("job.failed", error=str(exc), stage="submit")
            raise
        finally:
            CREATE_MARK.reset(mark)
        job.apply(update)
        self.ledger.record(job)  # the task id, the moment it is known
        bound.info("job.submitted", task_id=job.task_id, status=job.status.value)
        if job.status.terminal:
            self.settle(job)
        return job

    def _mark_create(self, job: Job) -> None:
        job.create_sent_at = utcnow()
        self.ledger.record(job)

    # -- 3. follow -----------------------------------------------------------------------

    async def follow(self, job: Job, *, timeout: float | None = None) -> AsyncGenerator[JobUpdate, None]:
        """Updates for ``job`` until it ends; ``job`` is updated in place and journaled. A
        read that fails for a reason that may pass (no connection, 5xx, 429) is retried with
        backoff until ``timeout``: a paid job is never abandoned because of a short outage."""
        import asyncio
        if job.status.terminal:
            return
        if not job.task_id:
            raise JobFailed(f"job {job.id} has no task id (status {job.status.value}); it cannot be "
                            "followed", job_id=job.id, provider=job.provider)
        provider = self.provider(job.provider)
        bound = self._bound(job)
        limit = timeout if timeout is not None else self.timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        failures, last_error = 0, ""
        try:
            while True:
                updates = provider.stream(job)
                try:
                    while True:
                        # A timeout scope per read, not wait_for: no extra task per update.
                        async with asyncio.timeout_at(deadline):
                            update = await anext(updates)
                        failures = 0
                        seen = (job.status, job.task_id)
                        if job.apply(update):
                            if (job.status, job.task_id) != seen:  # status changes, not every tick
                                self.ledger.record(job)
                            bound.info("job.progress", status=job.status.value, progress=job.progress)
                        yield update
                        if job.status.terminal:
                            self.settle(job)
                            return
                except StopAsyncIteration:
                    return
                except ProviderError as exc:
                    if exc.status_code == 404:
                        raise self._lost(job, exc) from None
                    if not exc.retryable:
                        raise
                    failures, last_error = failures + 1, str(exc)
                    from .http import _backoff  # httpx loads on first use (start-up cost)

                    wait = min(_backoff(failures - 1, READ_BACKOFF), deadline - loop.time())
                    bound.warning("job.read_retry", error=last_error, wait_s=round(max(wait, 0), 2))
                    if wait <= 0:
                        raise TimeoutError from None
                    await asyncio.sleep(wait)
                finally:
                    await updates.aclose()
        except TimeoutError:
            bound.warning("job.timeout", status=job.status.value)
            why = f"; last read failed: {last_error}" if failures else ""
            raise JobTimeout(f"job {job.id} did not finish within {limit:g} s (last status "
                             f"{job.status.value}{why}); it may still complete: talkinghead jobs resume",
                             job_id=job.id, provider=job.provider) from None
        except (asyncio.CancelledError, KeyboardInterrupt):
            if not job.status.terminal and self._runs_here(job):
                # A render in this process dies with it: the job ends here, cancelled.
                job.status, job.error = JobStatus.CANCELLED, "interrupted"
                self.ledger.record(job)
                self.settle(job)
            raise

    def _runs_here(self, job: Job) -> bool:
        with contextlib.suppress(TalkingHeadError):
            return self.provider(job.provider).route(job.model).kind == "local"
        return False

    def _lost(self, job: Job, exc: ProviderError) -> JobFailed:
        """The backend answered 404 for the task: ``lost``, held, for a person to resolve."""
        job.status = JobStatus.LOST
        job.error = (f"the backend no longer knows task {job.task_id} ({exc}); it may have been billed, "
                     f"so ${job.reserved_usd:.4f} stays reserved until a person checks the provider's "
                     f"dashboard: talkinghead jobs resolve {job.id} --release | --settle USD | --task-id ID")
        self.ledger.record(job)
        self._bound(job).error("job.lost", task_id=job.task_id)
        return JobFailed(f"job {job.id}: {job.error}", job_id=job.id, provider=job.provider, kind="not_found")

    async def wait(self, job: Job, *, timeout: float | None = None,
                   on_update: UpdateCallback | None = None) -> Job:
        seen = job._observed()
        async for update in self.follow(job, timeout=timeout):
            if on_update is not None and job._observed() != seen:  # a repeated poll is no news
                seen = job._observed()
                await notify(on_update, job, update)
        if job.status is not JobStatus.COMPLETED:
            raise JobFailed(f"job {job.id} {job.status.value}: {job.error or 'no reason given'}",
                            job_id=job.id, provider=job.provider, kind=job.error_kind)
        return job

    # -- 4. settle -----------------------------------------------------------------------

    def settle(self, job: Job) -> None:
        cost = settled_cost(job)
        self.ledger.close(job, cost)
        bound = self._bound(job)
        if job.status is JobStatus.COMPLETED:
            bound.info("job.completed", cost_usd=cost, output_url=job.output_url)
            if over_quote(job):
                # It cannot be undone, but it is never silent; later reservations count it.
                bound.warning("job.over_quote", quoted_usd=job.reserved_usd, settled_usd=cost)
        else:
            bound.error("job.failed", status=job.status.value, error=job.error)

    # -- 5. fetch ------------------------------------------------------------------------

    async def fetch(self, job: Job, dest: str | Path | None = None) -> Path:
        """Get the video of a completed job to ``dest`` (default: where it was asked for, else
        the output dir). It is downloaded into ``results`` first, so paid bytes are on disk
        before anything can go wrong with the destination."""
        import asyncio
        if job.status is not JobStatus.COMPLETED or not job.output_url:
            raise JobFailed(f"job {job.id} has no result to download (status {job.status.value})",
                            job_id=job.id, provider=job.provider)
        target = Path(dest or job.destination or self.output_dir / f"{job.id}.mp4")
        if job.destination != str(target):
            job.destination = str(target)
            self.ledger.record(job)  # a resume delivers it here
        kept = self.results / f"{job.id}.mp4"
        if not kept.is_file():
            await self._download(job, kept)
        # Checked (also one a killed process left behind), then moved: one worker-thread hop.
        not_moved = await asyncio.to_thread(_check_then_move, kept, target)
        if not_moved is not None:
            exc = not_moved
            job.output_path = str(kept.resolve())
            self.ledger.record(job)
            self._bound(job).error("job.kept", path=job.output_path, error=str(exc))
            raise DownloadError(f"job {job.id}: cannot write {target} ({exc.strerror or exc}); the paid "
                                f"video is kept at {job.output_path}") from None
        job.output_path = str(target.resolve())  # noqa: ASYNC240 - one realpath, after the write
        self.ledger.record(job)
        return target

    async def _download(self, job: Job, kept: Path) -> None:
        from .http import download as http_download  # httpx loads on first use (start-up cost)

        self.results.mkdir(parents=True, exist_ok=True)
        for stale in self.results.glob(f".{kept.name}.*.part"):  # left by a killed download
            stale.unlink(missing_ok=True)
        for attempt in range(2):
            try:
                await http_download(job.output_url or "", kept, provider=job.provider,
                                    client=self._download_client(job.provider, job.output_url or ""))
                break
            except ResultExpired as exc:
                # A signed URL may have expired: one fresh read of the task may give a new one.
                fresh = await self._fresh_url(job) if attempt == 0 else None
                if fresh is None:
                    raise ResultExpired(f"job {job.id}: {exc}. The job completed and was paid; the result "
                                        "can no longer be fetched from this URL") from None
                job.output_url = fresh
                self.ledger.record(job)

    async def _fresh_url(self, job: Job) -> str | None:
        with contextlib.suppress(TalkingHeadError):
            update = await self.provider(job.provider).poll(job)
            if update.output_url and update.output_url != job.output_url:
                return update.output_url
        return None

    def _download_client(self, provider: str, url: str) -> Any:
        """One pooled HTTP client per provider for results, kept for the lifecycle's life."""
        if not url.startswith(("http://", "https://")):
            return None
        if provider not in self._downloads:
            from .http import DOWNLOAD_TIMEOUT, async_client

            self._downloads[provider] = async_client(provider, timeout=DOWNLOAD_TIMEOUT)
        return self._downloads[provider]

    async def finish(self, job: Job, *, output: str | Path | None = None, timeout: float | None = None,
                     on_update: UpdateCallback | None = None) -> VideoResult:
        """Wait for a submitted (or resumed) job, then get its video where it was asked for."""
        await self.wait(job, timeout=timeout, on_update=on_update)
        asked = Path(output) if output else None
        if delivered(job) and (asked is None or Path(job.output_path or "") == asked.resolve()):
            path = Path(job.output_path or "")
        else:
            path = await self.fetch(job, asked)
        # A file:// result is the provider's temporary file, gone once copied: name the copy.
        url = path.resolve().as_uri() if (job.output_url or "").startswith("file:") else job.output_url
        return VideoResult(job_id=job.id, provider=job.provider, model=job.model, url=url,
                           path=path, duration_s=job.duration_s, cost_usd=job.settled_usd or 0.0,
                           quote_usd=job.quote.cost_usd if job.quote else None)

    # -- after a crash -------------------------------------------------------------------

    async def resume(self, job: Job, *, output: str | Path | None = None, timeout: float | None = None,
                     on_update: UpdateCallback | None = None) -> VideoResult:
        """Take the one action ``next_step`` names. Never sends a create that may have been sent."""
        step = next_step(job)
        provider = self.provider(job.provider)
        if step is Step.CREATE:
            if job.request is None:  # inline media was not journaled: nothing was sent or charged
                job.status = JobStatus.FAILED
                job.error = "stopped before its create was sent; nothing was charged: submit it again"
                self.ledger.close(job, 0.0)
                raise JobFailed(f"job {job.id}: {job.error}", job_id=job.id, provider=job.provider)
            try:
                prepared = await self.prepare(AvatarRequest(**job.request), provider, job.model)
            except TalkingHeadError as exc:  # e.g. its files are gone: still nothing was sent
                job.status, job.error = JobStatus.FAILED, f"could not be created again: {exc}"
                self.ledger.close(job, 0.0)
                raise
            # Its callback URL's token was never journaled (only its hash): follow by polling.
            job.webhook_url = None
            await self.create(provider, job, prepared)
        elif step is Step.LOOK_UP and self._runs_here(job):
            # A render on this machine died with its process: nothing was charged anywhere.
            job.status, job.error = JobStatus.FAILED, "the local render died with its process: run it again"
            self.ledger.record(job)
            self.settle(job)
            raise JobFailed(f"job {job.id}: {job.error}", job_id=job.id, provider=job.provider)
        elif step is Step.LOOK_UP:
            found = await self.look_up(provider, job)
            if found is None:
                job.status = JobStatus.UNKNOWN
                job.error = ("the create request was sent and its answer never journaled; it cannot be "
                             "looked up, so it may exist and be billed: check the provider's dashboard, "
                             f"then: talkinghead jobs resolve {job.id}")
                self.ledger.record(job)
                raise SubmitOutcomeUnknown(f"job {job.id}: {job.error}", provider=job.provider)
            job.apply(found)
            self.ledger.record(job)
            if job.status.terminal:
                self.settle(job)  # it already ended: settle it here (following returns at once)
        elif step is Step.PERSON:
            raise SubmitOutcomeUnknown(f"job {job.id} is {job.status.value} and is never resubmitted "
                                       f"automatically: talkinghead jobs resolve {job.id}", provider=job.provider)
        return await self.finish(job, output=output or job.destination, timeout=timeout, on_update=on_update)

    async def look_up(self, provider: Provider, job: Job) -> JobUpdate | None:
        """The task a lost create of ``job`` made (``Provider.find_task``), or None. A task the
        journal already holds for another job is never adopted: a backend matched by inputs
        (same files, same window) could otherwise hand one job's paid video to another."""
        found = await provider.find_task(job)
        if found is not None and found.task_id:
            owner = self.ledger.find(job.provider, found.task_id)
            if owner is not None and owner.id != job.id:
                self._bound(job).warning("job.lookup_taken", task_id=found.task_id, owner=owner.id)
                return None
        return found

    # -- webhooks ------------------------------------------------------------------------

    async def receive_webhook(self, provider: str, token: str, headers: Mapping[str, str], body: bytes) -> Job:
        """Apply a backend's callback to the job whose receiver URL carries ``token``.

        The token must match the job's; signed callbacks are verified by the provider and
        replays (a delivery id seen before) change nothing; unsigned ones are only a hint, so
        the task is re-read with our own credentials and that is what is recorded. A callback
        naming a task another job owns is refused: a task belongs to one job only."""
        prov = self.provider(provider)
        job = self.ledger.by_webhook(provider, token_hash(token))
        if job is None:
            raise WebhookRejected(f"{provider}: no job has this webhook token", status_code=404)
        update = await prov.parse_webhook(headers, body)
        if update.task_id and job.task_id and update.task_id != job.task_id:
            raise InputError("webhook", f"the callback is for task {update.task_id}, not this job's task")
        if update.task_id and not job.task_id:
            owner = self.ledger.find(provider, update.task_id)
            if owner is not None and owner.id != job.id:
                raise WebhookRejected(f"{provider}: the callback names task {update.task_id}, which belongs "
                                      "to another job", status_code=409)
        if update.delivery_id and self.ledger.seen_delivery(provider, update.delivery_id):
            self._log.info("webhook.duplicate", job_id=job.id, provider=provider)
            return job
        if not job.task_id and update.task_id:
            # The create's answer was lost (``unknown``) or not recorded yet, and the callback
            # came to this job's own URL naming its task. Unsigned, the task is adopted only
            # once a read with our key shows it exists.
            if not prov.signs_webhooks:
                update = await self._confirm_task(prov, job, update.task_id)
            job.task_id = update.task_id
            self._log.info("webhook.task_recovered", job_id=job.id, provider=provider, task_id=job.task_id)
        elif not prov.signs_webhooks:
            if not job.task_id:
                return job
            update = await prov.poll(job)
        if job.apply(update):
            self.ledger.record(job)
            self._log.info("webhook.applied", job_id=job.id, provider=provider, status=job.status.value)
            if job.status.terminal:
                self.settle(job)
        return job

    async def _confirm_task(self, prov: Provider, job: Job, task_id: str) -> JobUpdate:
        try:
            update = await prov.poll(job.model_copy(update={"task_id": task_id}))
        except ProviderError as exc:
            raise InputError("webhook", f"the callback names task {task_id}, which cannot be read: {exc}") from None
        if update.error_kind == "not_found":
            raise InputError("webhook", f"the callback names task {task_id}, which does not exist")
        return update.model_copy(update={"task_id": task_id})

    async def aclose(self) -> None:
        clients, self._downloads = list(self._downloads.values()), {}
        for client in clients:
            await client.aclose()


def _replayable(prepared: PreparedRequest) -> dict[str, Any] | None:
    """The request's fields if they can be journaled and replayed: paths and plain URLs, never
    inline media (content) or a URL carrying credentials or a signature in its query."""
    for media in (prepared.image, prepared.audio):
        if media is None:
            continue
        if media.kind == "url" and ("?" in (media.url or "") or "@" in (media.url or "")):
            return None
        if media.kind not in ("path", "url"):
            return None
    data = prepared.request.model_dump(mode="json")
    for field, media in (("image", prepared.image), ("audio", prepared.audio)):
        if media is not None and media.kind == "path" and media.path is not None:
            data[field] = str(Path(media.path).resolve())
    return data


def _check_then_move(kept: Path, target: Path) -> OSError | None:
    """Check the kept video, then move it to ``target``: the move's error is returned (the
    video stays kept), a bad video's is raised."""
    _check_video(kept)
    try:
        _move(kept, target)
    except OSError as exc:
        return exc
    return None


def _move(src: Path, dest: Path) -> None:
    """Put the kept video at ``dest``: a rename when on one file system, else a copy to a
    temporary name beside ``dest`` then a rename, so ``dest`` is never half-written."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
        return
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another file system
            raise
    tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.part")
    try:
        shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    src.unlink(missing_ok=True)


def _check_video(path: Path) -> None:
    """A download that arrived whole by its length can still be cut short at the source: the
    result must open as a video with a video stream, or it is not kept."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                path.unlink(missing_ok=True)
                raise DownloadError(f"the downloaded result {path.name} has no video stream")
            stream = container.streams.video[0]
            # Reading packets (not decoding them) finds a file cut short after its index.
            got = sum(1 for packet in container.demux(stream) if packet.size)
            if stream.frames and got < stream.frames:
                path.unlink(missing_ok=True)
                raise DownloadError(f"the downloaded result is cut short ({got} of {stream.frames} frames); "
                                    "talkinghead jobs resume downloads it again")
    except av.FFmpegError as exc:
        path.unlink(missing_ok=True)
        raise DownloadError(f"the downloaded result is not a playable video ({exc.__class__.__name__}); "
                            "talkinghead jobs resume downloads it again") from None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
