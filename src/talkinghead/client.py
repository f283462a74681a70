"""The clients: ``AsyncClient`` (async-first) and ``Client`` (sync, for scripts and threads).

The flow of a job, and where money is protected:
validate (media + route limits, no network) -> quote -> journal + reserve -> provider.submit
-> follow (stream or poll) -> settle -> download. A create call whose outcome is unknown
leaves the job ``unknown`` and reserved: it is never resubmitted automatically.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import hashlib
import os
import secrets
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from . import checks, log, media, plugins, routing, tts
from .config import Settings
from .errors import (
    ConfigError, DownloadError, InputError, JobFailed, JobTimeout, ProviderError, SubmitOutcomeUnknown, TalkingHeadError,
    WebhookRejected,
)
from .ledger import BudgetLimits, Ledger, SQLiteLedger, settled_cost
from .models import AvatarRequest, Job, JobStatus, JobUpdate, Quote, Route, VideoResult, new_job_id
from .provider import Provider
from .syncloop import LoopRunner

DEFAULT_TIMEOUT = 30 * 60.0  # Kling Avatar takes minutes for long clips
UpdateCallback = Callable[[Job, JobUpdate], Any]


class AsyncClient:
    """Submit requests to providers and follow them to a video.

    ``providers``: provider instances to use instead of the installed plugins (tests, apps
    with their own). ``config``: extra per-provider config, e.g. ``{"mock": {"latency": 1}}``.
    ``ledger``: the journal (default: SQLite under ``TALKINGHEAD_HOME``). ``budget_usd``: a
    limit on what this client's jobs may commit, on top of the configured limits.
    ``policy``/``priority``: how routes are ordered when no provider is named.
    """

    def __init__(self, providers: Iterable[Provider] | None = None, *, settings: Settings | None = None,
                 ledger: Ledger | None = None, config: Mapping[str, Mapping[str, Any]] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, budget_usd: float | None = None,
                 policy: str | None = None, priority: Iterable[str] | None = None,
                 webhook_base: str | None = None) -> None:
        budget_usd = checks.number("budget_usd", budget_usd)  # nan would pass every limit check
        timeout = checks.number("timeout", timeout, inclusive=False, none_ok=False)  # type: ignore[assignment]
        webhook_base = checks.http_url("webhook_base", webhook_base or os.environ.get("TALKINGHEAD_WEBHOOK_BASE") or None)
        self.settings = settings or Settings.load()
        if providers is None:
            providers = []
            for name, cls in plugins.get_provider_classes().items():
                cfg = {**self.settings.provider_config(name), **dict((config or {}).get(name, {}))}
                providers.append(cls(cfg))
        self.providers: dict[str, Provider] = {p.name: p for p in providers}
        for p in self.providers.values():
            for secret in p.secrets():
                log.add_secret(secret)
        self.routing = routing.RoutingConfig.from_settings(self.settings.routing)
        if policy is not None:
            self.routing = routing.RoutingConfig.from_settings({**self.settings.routing, "policy": policy})
        if priority is not None:
            self.routing.priority = list(priority)
        self.ledger: Ledger = ledger if ledger is not None else SQLiteLedger(
            self.settings.database, budget_limits(self.settings.budget))
        if budget_usd is not None:
            self.ledger.limits.session_usd = budget_usd
        self.session = new_job_id()  # groups this client's jobs for a per-run budget
        # Where `talkinghead serve` is reachable; each job then gets its own callback URL.
        self.webhook_base = (webhook_base or "").rstrip("/") or None
        self.timeout = timeout

    @functools.cached_property
    def _log(self) -> log.Logger:
        return log.get_logger()  # made on first use: structlog stays unloaded until a job logs

    # -- what is available ---------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none installed"
            raise ConfigError(f"unknown provider {name!r} (available: {known})") from None

    def routes(self) -> list[tuple[Provider, Route]]:
        """Every route of every provider, with the user's price overrides applied."""
        out = []
        for p in self.providers.values():
            override = self.settings.prices.get(p.name)
            for r in p.routes():
                if override:
                    r = r.model_copy(update={"price_per_second": {**r.price_per_second, **override}})
                out.append((p, r))
        return out

    # -- before any money ----------------------------------------------------------------

    async def prepare(self, request: AvatarRequest, *, synthesize: bool = True) -> media.PreparedRequest:
        """Probe and check the media (off the event loop: it reads and decodes files). A text
        request gets speech from the local TTS engine when one is installed, so routes that
        take audio only can run it and the quote is exact."""
        prepared = await asyncio.to_thread(media.prepare, request)
        if request.text is not None and synthesize:
            engine = tts.default_engine(config=self.settings.tts)
            if engine is not None:
                prepared = await asyncio.to_thread(self._speak, engine, prepared)
        return prepared

    def _speak(self, engine: tts.TTSEngine, prepared: media.PreparedRequest) -> media.PreparedRequest:
        request = prepared.request
        folder = self.settings.home / "speech"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{request.digest()}.wav"
        try:
            speech = engine.synthesize(request.text or "", target, voice=request.voice)
            # A short line still makes a valid clip: pad with silence up to the shared minimum.
            speech = tts.pad_to(speech, media.SHARED.audio_min_seconds)
            audio = media.inspect_audio(speech.path, field="text")  # the same rules as uploaded audio
        except BaseException:
            target.unlink(missing_ok=True)  # no speech left behind for a request refused
            raise
        return dataclasses.replace(prepared, audio=audio, speech=speech)

    async def _candidates(self, request: AvatarRequest, provider: str | None, model: str | None,
                          max_cost_usd: float | None, check_face: bool = False, **constraints: Any
                          ) -> tuple[media.PreparedRequest, list[routing.Candidate]]:
        if provider is not None:
            self.provider(provider)
        pairs = [(p, r) for p, r in self.routes() if provider is None or p.name == provider]
        needs_speech = any(not r.native_text for _, r in pairs)
        prepared = await self.prepare(request, synthesize=needs_speech)
        if check_face:
            await asyncio.to_thread(_check_face, prepared.image)
        found = routing.candidates(
            pairs, prepared, provider=provider, model=model, max_cost_usd=max_cost_usd,
            can_synthesize=prepared.speech is not None, cooldowns=self.ledger.cooldowns(),
            policy=self.routing.policy, priority=self.routing.priority,
            medians=self.ledger.median_seconds() if self.routing.policy == "fastest" else None,
            **constraints)
        return prepared, found

    async def estimate(self, request: AvatarRequest, *, provider: str | None = None,
                       model: str | None = None, **constraints: Any) -> list[Quote]:
        """Quotes from every route that can take the request, in routing order. No network."""
        _, found = await self._candidates(request, provider, model, None, **constraints)
        return [c.quote for c in found]

    # -- submit and follow ---------------------------------------------------------------

    async def submit(self, request: AvatarRequest, *, provider: str | None = None, model: str | None = None,
                     webhook_url: str | None = None, max_cost_usd: float | None = None,
                     include: Iterable[str] | None = None, exclude: Iterable[str] = (),
                     check_face: bool = False) -> Job:
        """Validate, quote, journal and reserve, then create the task on the best route,
        falling back to the next when a route fails on the provider's side before accepting
        the job. An ``InputError`` goes straight back: every route would refuse it."""
        webhook_url = checks.http_url("webhook_url", webhook_url)
        max_cost_usd = checks.number("max_cost_usd", max_cost_usd)
        prepared, found = await self._candidates(
            request, provider, model, max_cost_usd, check_face,
            include=list(include) if include is not None else None, exclude=list(exclude))
        last_error: ProviderError | None = None
        for cand in found:
            try:
                job = await self._submit_to(cand, prepared, webhook_url)
            except ProviderError as exc:
                if not exc.retryable:
                    raise
                cfg = self.routing
                if self.ledger.route_failed(cand.route.id, threshold=cfg.failure_threshold,
                                            window_s=cfg.failure_window_s, cooldown_s=cfg.cooldown_s):
                    self._log.warning("route.cooldown", route=cand.route.id, seconds=cfg.cooldown_s)
                if provider is not None:
                    raise
                last_error = exc
                self._log.warning("route.fallback", route=cand.route.id, error=str(exc))
                continue
            self.ledger.route_succeeded(cand.route.id)
            return job
        assert last_error is not None
        raise last_error

    async def _submit_to(self, cand: routing.Candidate, prepared: media.PreparedRequest,
                         webhook_url: str | None) -> Job:
        request = prepared.request
        job = Job(provider=cand.route.provider, model=cand.route.model, mode=request.mode,
                  quote=cand.quote, request_digest=request.digest(), webhook_url=webhook_url,
                  reserved_usd=cand.quote.cost_usd, input_summary=_summary(prepared))
        if webhook_url is None and self.webhook_base:
            token = secrets.token_urlsafe(24)  # per-job capability; only its hash is journaled
            job.webhook_url = f"{self.webhook_base}/webhooks/{job.provider}/{token}"
            job.webhook_token_hash = token_hash(token)
        bound = self._log.bind(job_id=job.id, provider=job.provider, route=job.route_id)
        bound.info("job.validated", seconds=prepared.seconds)
        bound.info("job.quoted", cost_usd=cand.quote.cost_usd, upper_bound=cand.quote.upper_bound)
        self.ledger.open(job, session=self.session)  # journaled and reserved before the create
        try:
            update = await cand.provider.submit(job, prepared)
        except SubmitOutcomeUnknown as exc:
            current = self.ledger.get(job.id)
            if current is not None and current.task_id:
                # The answer was lost, but the backend's callback already told us the task.
                bound.info("job.submitted", task_id=current.task_id, status=current.status.value,
                           via="webhook")
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
        job.apply(update)
        self.ledger.record(job)  # the task id, the moment it is known
        bound.info("job.submitted", task_id=job.task_id, status=job.status.value)
        if job.status.terminal:
            self._finish(job)
        return job

    async def stream(self, job: Job, *, timeout: float | None = None) -> AsyncIterator[JobUpdate]:
        """Updates for ``job`` until it ends; ``job`` is updated in place and journaled."""
        if job.status.terminal:
            return
        if not job.task_id:
            raise JobFailed(f"job {job.id} has no task id (status {job.status.value}); it cannot be "
                            "followed", job_id=job.id, provider=job.provider)
        provider = self.provider(job.provider)
        bound = self._log.bind(job_id=job.id, provider=job.provider, route=job.route_id)
        limit = timeout if timeout is not None else self.timeout
        deadline = asyncio.get_running_loop().time() + limit
        updates = provider.stream(job)
        try:
            while True:
                try:
                    # A timeout scope per read, not wait_for: no extra task per update.
                    async with asyncio.timeout_at(deadline):
                        update = await anext(updates)
                except StopAsyncIteration:
                    return
                seen = (job.status, job.task_id)
                if job.apply(update):
                    if (job.status, job.task_id) != seen:  # journal status changes, not every tick
                        self.ledger.record(job)
                    bound.info("job.progress", status=job.status.value, progress=job.progress)
                yield update
                if job.status.terminal:
                    self._finish(job)
                    return
        except TimeoutError:
            bound.warning("job.timeout", status=job.status.value)
            raise JobTimeout(f"job {job.id} did not finish within {limit:g} s (last status "
                             f"{job.status.value}); it may still complete: talkinghead jobs resume",
                             job_id=job.id, provider=job.provider) from None
        finally:
            await updates.aclose()

    def _finish(self, job: Job) -> None:
        cost = settled_cost(job)
        self.ledger.close(job, cost)
        bound = self._log.bind(job_id=job.id, provider=job.provider, route=job.route_id)
        if job.status is JobStatus.COMPLETED:
            bound.info("job.completed", cost_usd=cost, output_url=job.output_url)
        else:
            bound.error("job.failed", status=job.status.value, error=job.error)

    async def wait(self, job: Job, *, timeout: float | None = None,
                   on_update: UpdateCallback | None = None) -> Job:
        """Follow ``job`` to its end. Raises ``JobFailed`` if it failed or was cancelled."""
        async for update in self.stream(job, timeout=timeout):
            if on_update is not None:
                on_update(job, update)
        if job.status is not JobStatus.COMPLETED:
            raise JobFailed(f"job {job.id} {job.status.value}: {job.error or 'no reason given'}",
                            job_id=job.id, provider=job.provider, kind=job.error_kind)
        return job

    async def cancel(self, job: Job, *, timeout: float = 60.0) -> Job:
        """Ask the provider to cancel, then follow the job until the backend says it ended:
        a task being cancelled can still complete and be billed, so the journal only records
        what the backend reports. Returns the job, ended or (after ``timeout``) not yet."""
        if not job.task_id or job.status.terminal:
            return job
        await self.provider(job.provider).cancel(job)
        self._log.info("job.cancel_requested", job_id=job.id, provider=job.provider)
        with contextlib.suppress(JobTimeout):
            async for _ in self.stream(job, timeout=timeout):
                pass
        return job

    async def download(self, job: Job, dest: str | Path | None = None) -> Path:
        """Fetch the result of a completed job (streamed to a temp file, then renamed)."""
        if job.status is not JobStatus.COMPLETED or not job.output_url:
            raise JobFailed(f"job {job.id} has no result to download (status {job.status.value})",
                            job_id=job.id, provider=job.provider)
        dest = Path(dest) if dest else self.settings.output_dir / f"{job.id}.mp4"
        from .http import download as http_download  # httpx loads on first use (start-up)

        path = await http_download(job.output_url, dest, provider=job.provider,
                                   client=self._download_client(job.provider, job.output_url))
        await asyncio.to_thread(_check_video, path)
        job.output_path = str(path.resolve())
        self.ledger.record(job)
        return path

    async def run(self, request: AvatarRequest, *, provider: str | None = None, model: str | None = None,
                  output: str | Path | None = None, webhook_url: str | None = None,
                  max_cost_usd: float | None = None, timeout: float | None = None,
                  on_update: UpdateCallback | None = None, check_face: bool = False) -> VideoResult:
        """Submit, wait and download: the whole job in one call."""
        # Checked before anything is paid for: a video with nowhere to go is money lost.
        timeout = checks.number("timeout", timeout, inclusive=False)
        output = checks.output_path("output", output) if output is not None else None
        job = await self.submit(request, provider=provider, model=model, webhook_url=webhook_url,
                                max_cost_usd=max_cost_usd, check_face=check_face)
        if on_update is not None:
            on_update(job, JobUpdate(status=job.status, task_id=job.task_id, progress=job.progress))
        return await self.finish(job, output=output, timeout=timeout, on_update=on_update)

    async def finish(self, job: Job, *, output: str | Path | None = None, timeout: float | None = None,
                     on_update: UpdateCallback | None = None) -> VideoResult:
        """Wait for a submitted (or resumed) job and download its result."""
        await self.wait(job, timeout=timeout, on_update=on_update)
        path = Path(job.output_path) if job.output_path and output is None and Path(job.output_path).exists() \
            else await self.download(job, output)
        return VideoResult(job_id=job.id, provider=job.provider, model=job.model, url=job.output_url,
                           path=path, duration_s=job.duration_s, cost_usd=job.settled_usd or 0.0)

    async def resume(self, job: Job, *, output: str | Path | None = None,
                     timeout: float | None = None, on_update: UpdateCallback | None = None) -> VideoResult:
        """Finish a journaled job after a crash, never submitting it again. A job whose create
        call was never answered is looked up by our job id where the backend allows it;
        otherwise it becomes ``unknown`` for a person to resolve."""
        if not job.task_id and not job.status.terminal:
            found = await self.provider(job.provider).find_task(job)
            if found is None:
                job.status = JobStatus.UNKNOWN
                job.error = ("the create call may or may not have reached the backend and it cannot be "
                             "looked up; check the provider's dashboard, then: talkinghead jobs resolve")
                self.ledger.record(job)
                raise SubmitOutcomeUnknown(f"job {job.id}: {job.error}", provider=job.provider)
            job.apply(found)
            self.ledger.record(job)
            if job.status.terminal:
                self._finish(job)  # it already ended: settle it here (stream() returns at once)
        if job.status is JobStatus.UNKNOWN:
            raise SubmitOutcomeUnknown(f"job {job.id} has an unknown outcome and is never resubmitted "
                                       "automatically: talkinghead jobs resolve", provider=job.provider)
        return await self.finish(job, output=output or job.output_path, timeout=timeout, on_update=on_update)

    async def receive_webhook(self, provider: str, token: str, headers: Mapping[str, str], body: bytes) -> Job:
        """Apply a backend's callback to the job whose receiver URL carries ``token``.

        The token must match the job's; signed callbacks are verified by the provider and
        replays (a delivery id seen before) change nothing; unsigned ones are only a hint, so
        the task is re-read with our own credentials and that is what is recorded. Duplicates
        and out-of-order deliveries are harmless: a finished job stays finished."""
        prov = self.provider(provider)
        job = self.ledger.by_webhook(provider, token_hash(token))
        if job is None:
            raise WebhookRejected(f"{provider}: no job has this webhook token", status_code=404)
        update = await prov.parse_webhook(headers, body)
        if update.task_id and job.task_id and update.task_id != job.task_id:
            raise InputError("webhook", f"the callback is for task {update.task_id}, not this job's task")
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
                self._finish(job)
        return job

    async def _confirm_task(self, prov: Provider, job: Job, task_id: str) -> JobUpdate:
        try:
            update = await prov.poll(job.model_copy(update={"task_id": task_id}))
        except ProviderError as exc:
            raise InputError("webhook", f"the callback names task {task_id}, which cannot be read: {exc}") from None
        if update.error_kind == "not_found":
            raise InputError("webhook", f"the callback names task {task_id}, which does not exist")
        return update.model_copy(update={"task_id": task_id})

    def _download_client(self, provider: str, url: str) -> Any:
        """One pooled HTTP client per provider for results, kept for the client's life: a new
        connection (and client) per download costs more CPU than the rest of a poll loop."""
        if not url.startswith(("http://", "https://")):
            return None
        clients = self.__dict__.setdefault("_downloads", {})
        if provider not in clients:
            from .http import DOWNLOAD_TIMEOUT, async_client

            clients[provider] = async_client(provider, timeout=DOWNLOAD_TIMEOUT)
        return clients[provider]

    async def aclose(self) -> None:
        for p in self.providers.values():
            await p.aclose()
        for client in self.__dict__.pop("_downloads", {}).values():
            await client.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _check_video(path: Path) -> None:
    """A download that arrived whole by its length can still be cut short at the source: the
    result must open as a video with a video stream, or it is not kept."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
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


def _check_face(image: media.MediaFile) -> None:
    if image.kind == "url":
        raise InputError("image", "--check-face needs the image itself; a URL is not fetched")
    plugins.load_plugins()  # a client given explicit providers may not have loaded them yet
    if not plugins.pm.hook.check_face(image=image):
        raise ConfigError("checking the face needs a face detector: install talkinghead-local")


def budget_limits(data: Mapping[str, Any]) -> BudgetLimits:
    try:
        return BudgetLimits(total_usd=data.get("total_usd"), daily_usd=data.get("daily_usd"),
                            per_provider=dict(data.get("providers", {})))
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[budget] in the config file: {exc}") from None


def _summary(prepared: media.PreparedRequest) -> dict[str, Any]:
    """What the journal keeps of the inputs: never their content, never a secret."""
    def one(m: media.MediaFile | None) -> dict[str, Any] | None:
        if m is None:
            return None
        where = str(m.path) if m.path else (checks.safe_url(m.url) if m.url else f"<{m.size} bytes>")
        return {"source": where, "format": m.format, "size": m.size, "width": m.width,
                "height": m.height, "duration_s": m.duration_s}
    req = prepared.request
    return {"image": one(prepared.image), "audio": one(prepared.audio),
            "text_chars": len(req.text) if req.text else None, "prompt_chars": len(req.prompt or ""),
            "mode": req.mode, "aspect_ratio": req.aspect_ratio}


class Client:
    """The sync client: the same methods as ``AsyncClient``, usable from plain scripts, worker
    threads and notebooks. Its event loop runs in the calling thread (``syncloop``), so a
    call crosses no thread; threads sharing one client take turns driving it."""

    def __init__(self, providers: Iterable[Provider] | None = None, **kwargs: Any) -> None:
        self._runner = LoopRunner()
        self._async = self._call(_make_async(providers, kwargs))

    def _call(self, coro: Any) -> Any:
        return self._runner.run(coro)

    @property
    def providers(self) -> dict[str, Provider]:
        return self._async.providers

    @property
    def ledger(self) -> Ledger:
        return self._async.ledger

    def routes(self) -> list[tuple[Provider, Route]]:
        return self._async.routes()

    def estimate(self, request: AvatarRequest, **kw: Any) -> list[Quote]:
        return self._call(self._async.estimate(request, **kw))

    def submit(self, request: AvatarRequest, **kw: Any) -> Job:
        return self._call(self._async.submit(request, **kw))

    def wait(self, job: Job, **kw: Any) -> Job:
        return self._call(self._async.wait(job, **kw))

    def stream(self, job: Job, **kw: Any) -> Iterator[JobUpdate]:
        agen = self._async.stream(job, **kw)
        try:
            while True:
                try:
                    yield self._call(anext(agen))
                except StopAsyncIteration:
                    return
        finally:
            self._call(agen.aclose())

    def cancel(self, job: Job) -> Job:
        return self._call(self._async.cancel(job))

    def download(self, job: Job, dest: str | Path | None = None) -> Path:
        return self._call(self._async.download(job, dest))

    def run(self, request: AvatarRequest, **kw: Any) -> VideoResult:
        return self._call(self._async.run(request, **kw))

    def finish(self, job: Job, **kw: Any) -> VideoResult:
        return self._call(self._async.finish(job, **kw))

    def resume(self, job: Job, **kw: Any) -> VideoResult:
        return self._call(self._async.resume(job, **kw))

    def receive_webhook(self, provider: str, token: str, headers: Mapping[str, str], body: bytes) -> Job:
        return self._call(self._async.receive_webhook(provider, token, headers, body))

    def close(self) -> None:
        if not self._runner.loop.is_closed():
            with contextlib.suppress(Exception):
                self._call(self._async.aclose())
            self._runner.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make_async(providers: Iterable[Provider] | None, kwargs: dict[str, Any]) -> AsyncClient:
    return AsyncClient(providers, **kwargs)
