"""The clients: ``AsyncClient`` (async-first) and ``Client`` (sync, for scripts and threads).

A facade: the client holds the configuration (providers, routes, budgets, the journal),
validates and quotes a request before any money (no network), picks the route, and hands the
job's life (reserve, create, follow, settle, fetch, resume) to ``lifecycle.Lifecycle``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import checks, log, media, plugins, route_table, routing, tts
from .config import Settings
from .errors import ConfigError, InputError, JobTimeout, ProviderError
from .ledger import BudgetLimits, Ledger, open_ledger
from .lifecycle import Lifecycle, Step, UpdateCallback, next_step, notify, over_quote, token_hash  # noqa: F401 - re-exported
from .models import AvatarRequest, Job, JobStatus, JobUpdate, Quote, Route, VideoResult, new_job_id
from .provider import Provider

if TYPE_CHECKING:
    from .syncloop import LoopRunner

# asyncio and the sync client's loop runner are imported where they are used, so the CLI's
# listing and quoting commands (which run no event loop) never load them (start-up).
DEFAULT_TIMEOUT = 30 * 60.0  # Kling Avatar takes minutes for long clips
T = TypeVar("T")


class AsyncClient:
    """Submit requests to providers and follow them to a video.

    ``providers``: provider instances to use instead of the installed plugins (tests, apps
    with their own). ``config``: extra per-provider config, e.g. ``{"mock": {"latency": 1}}``.
    ``ledger``: the journal (default: SQLite under ``TALKINGHEAD_HOME``). ``budget_usd``: a
    limit on what this client's jobs may commit, on top of the configured limits.
    ``policy``/``priority``: how routes are ordered when no provider is named.
    ``allow_test_routes``: let the router pick a test double (the mock) without it being named
    (default: ``TALKINGHEAD_ALLOW_TEST_ROUTES=1`` in the environment; the pytest fixtures set it).
    """

    def __init__(self, providers: Iterable[Provider] | None = None, *, settings: Settings | None = None,
                 ledger: Ledger | None = None, config: Mapping[str, Mapping[str, Any]] | None = None,
                 timeout: float = DEFAULT_TIMEOUT, budget_usd: float | None = None,
                 policy: str | None = None, priority: Iterable[str] | None = None,
                 webhook_base: str | None = None, allow_test_routes: bool | None = None,
                 preload: bool = True) -> None:
        budget_usd = checks.number("budget_usd", budget_usd)  # nan would pass every limit check
        timeout = checks.number("timeout", timeout, inclusive=False, none_ok=False)
        webhook_base = checks.http_url("webhook_base",
                                       webhook_base or os.environ.get("TALKINGHEAD_WEBHOOK_BASE") or None)
        self.settings = settings or Settings.load()
        if providers is None:
            providers = []
            for name, cls in plugins.get_provider_classes().items():
                cfg = {**self.settings.provider_config(name), **dict((config or {}).get(name, {}))}
                providers.append(cls(cfg))
        self.providers: dict[str, Provider] = {p.name: p for p in providers}
        self._route_cache: dict[tuple[Any, ...], tuple[list[tuple[Provider, Route]],
                                                       str | Sequence[str] | None]] = {}
        for p in self.providers.values():
            for secret in p.secrets():
                log.add_secret(secret)
        self.routing = routing.RoutingConfig.from_settings(self.settings.routing)
        if policy is not None:
            self.routing = routing.RoutingConfig.from_settings({**self.settings.routing, "policy": policy})
        if priority is not None:
            self.routing.priority = list(priority)
        self.ledger: Ledger = ledger if ledger is not None else open_ledger(
            self.settings, budget_limits(self.settings.budget))
        if budget_usd is not None:
            self.ledger.limits.session_usd = budget_usd
        self.session = new_job_id()  # groups this client's jobs for a per-run budget
        # Where `talkinghead serve` is reachable; each job then gets its own callback URL.
        self.webhook_base = (webhook_base or "").rstrip("/") or None
        self.timeout = timeout
        # Test doubles (the mock) run only when named, unless a test allows them explicitly.
        self.allow_test_routes = (allow_test_routes if allow_test_routes is not None
                                  else os.environ.get(routing.ALLOW_TEST_ENV, "") not in ("", "0"))
        me = weakref.proxy(self)  # no reference cycle: providers go (and clean up) with the client
        self.lifecycle = Lifecycle(ledger=self.ledger, provider=lambda name: me.provider(name),
                                   prepare=lambda request, prov, model: me._prepare_again(request, prov, model),
                                   home=self.settings.home, output_dir=self.settings.output_dir,
                                   session=self.session, timeout=timeout)
        if preload:
            self.preload()

    @functools.cached_property
    def _log(self) -> log.Logger:
        return log.get_logger("talkinghead.client")  # made on first use

    def preload(self) -> None:
        """Load now what the first job would load on its way: the HTTP stack and its transport,
        and PyAV (media checks); providers' own modules load when they register. Done when
        the client is made (``preload=False`` skips it, as the CLI does for commands that make
        no job), so the first job costs about what later ones do; ``import talkinghead``
        itself stays light."""
        from . import http, probe

        http.preload()
        probe.preload()

    # -- what is available ---------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.providers)) or "none installed"
            raise ConfigError(f"unknown provider {name!r} (available: {known})") from None

    def routes(self, model: str | Sequence[str] | None = None, *, stand_ins: bool = False
               ) -> list[tuple[Provider, Route]]:
        """Every route of every provider, with the user's price and limit overrides; with
        ``stand_ins``, also the stand-ins for ``model`` (see ``route_table.installed``)."""
        return route_table.installed(self.providers.values(), self.settings.prices, model, stand_ins=stand_ins)

    def _pairs(self, provider: str | None, model: str | Sequence[str] | None
               ) -> tuple[list[tuple[Provider, Route]], str | Sequence[str] | None]:
        if provider is not None:
            self.provider(provider)  # a ConfigError naming the known ones
        # A client's providers, prices and default model do not change: the routes a
        # (provider, model) may take are worked out once, not on every request (~0.2 ms).
        key = (provider, model if model is None or isinstance(model, str) else tuple(model))
        found = self._route_cache.get(key)
        if found is None:
            found = self._route_cache[key] = route_table.for_request(
                self.providers, self.settings.prices, self.settings.default_model, provider, model)
        return list(found[0]), found[1]

    # -- before any money ----------------------------------------------------------------

    async def prepare(self, request: AvatarRequest, *, synthesize: bool = True,
                      decode: bool = True) -> media.PreparedRequest:
        """Probe and check the media (off the event loop: it reads and decodes files). A text
        request gets speech from the local TTS engine when one is installed, so routes that
        take audio only can run it and the quote is exact. ``decode=False`` reads headers
        only, for a quote (``media.prepare``)."""
        import asyncio

        if (request.text is None or not synthesize) and media.remembered(request, decode=decode):
            return self._prepare_now(request, synthesize, decode)  # files probed before: no I/O
        return await asyncio.to_thread(self._prepare_now, request, synthesize, decode)

    def _prepare_now(self, request: AvatarRequest, synthesize: bool, decode: bool) -> media.PreparedRequest:
        """``prepare``, blocking."""
        prepared = media.prepare(request, decode=decode)
        if request.text is not None and synthesize:
            engine = tts.default_engine(config=self.settings.tts)
            if engine is not None:
                prepared = self._speak(engine, prepared)
        return prepared

    def _prepare_for(self, request: AvatarRequest, pairs: list[tuple[Provider, Route]],
                     decode: bool = True) -> media.PreparedRequest:
        """``prepare`` (blocking), synthesizing speech only when a route needs it. When some
        routes speak the text themselves, a voice the local engine does not know (a HeyGen id,
        say) leaves the audio-only routes out instead of failing the request."""
        needs_speech = any(not r.native_text for _, r in pairs)
        if not (needs_speech and request.text is not None and any(r.native_text for _, r in pairs)):
            return self._prepare_now(request, needs_speech, decode)
        try:
            return self._prepare_now(request, True, decode)
        except InputError as exc:
            if exc.field != "voice":
                raise
            self._log.info("tts.skipped", reason=str(exc))
            return self._prepare_now(request, False, decode)

    def _speak(self, engine: tts.TTSEngine, prepared: media.PreparedRequest) -> media.PreparedRequest:
        request = prepared.request
        folder = self.settings.home / "speech"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{request.digest()}.wav"
        try:
            speech = engine.synthesize(request.text or "", target, voice=request.voice)
            # A short line still makes a valid clip: pad with silence up to the shared minimum.
            speech = tts.pad_to(speech, media.SHARED.audio_min_seconds)
            # The same rules as uploaded audio.
            audio = media.inspect_audio(speech.path, field="text", decode=prepared.decoded)
        except BaseException:
            target.unlink(missing_ok=True)  # no speech left behind for a request refused
            raise
        return dataclasses.replace(prepared, audio=audio, speech=speech)

    async def _ranked(self, request: AvatarRequest, provider: str | None, model: str | Sequence[str] | None,
                      max_cost_usd: float | None, decode: bool, check_face: bool = False, **constraints: Any
                      ) -> tuple[media.PreparedRequest, list[routing.Candidate], list[routing.Excluded]]:
        """Prepare ``request`` (``decode``: in full, or headers only for a quote) and rank the
        routes matching ``provider`` and ``model`` (``routing.rank``). The media are probed
        off the event loop (that reads and decodes files), unless every file was probed before."""
        import asyncio

        pairs, model = self._pairs(provider, model)
        if request.text is None and media.remembered(request, decode=decode):
            prepared = self._prepare_for(request, pairs, decode)  # files probed before: no I/O
        else:
            prepared = await asyncio.to_thread(self._prepare_for, request, pairs, decode)
        if check_face:
            await asyncio.to_thread(_check_face, prepared.image)
        return prepared, *self._rank(pairs, prepared, provider, model, max_cost_usd, **constraints)

    def _rank(self, pairs: list[tuple[Provider, Route]], prepared: media.PreparedRequest, provider: str | None,
              model: str | Sequence[str] | None, max_cost_usd: float | None, **constraints: Any
              ) -> tuple[list[routing.Candidate], list[routing.Excluded]]:
        return routing.rank(
            pairs, prepared, provider=provider, model=model, max_cost_usd=max_cost_usd,
            can_synthesize=prepared.speech is not None, cooldowns=self.ledger.cooldowns(),
            policy=self.routing.policy, priority=self.routing.priority,
            medians=self.ledger.median_seconds() if self.routing.policy == "fastest" else None,
            allow_test=self.allow_test_routes, **constraints)

    async def _candidates(self, request: AvatarRequest, provider: str | None, model: str | None,
                          max_cost_usd: float | None, check_face: bool = False, **constraints: Any
                          ) -> tuple[media.PreparedRequest, list[routing.Candidate]]:
        """The usable routes for a submit (media decoded in full), best first; when there is
        none, the error ``routing.usable`` raises."""
        prepared, found, excluded = await self._ranked(request, provider, model, max_cost_usd, True,
                                                       check_face, **constraints)
        return prepared, routing.usable(found, excluded)

    async def estimate(self, request: AvatarRequest, *, provider: str | None = None,
                       model: str | None = None, **constraints: Any) -> list[Quote]:
        """Quotes from every route that can take the request, in routing order. No network;
        the media's headers are read, not decoded (a submit decodes them)."""
        _, found, excluded = await self._ranked(request, provider, model, None, False, **constraints)
        return [c.quote for c in routing.usable(found, excluded)]

    async def estimate_all(self, request: AvatarRequest, *, provider: str | None = None,
                           model: str | Sequence[str] | None = None, max_cost_usd: float | None = None
                           ) -> tuple[list[routing.Candidate], list[routing.Excluded]]:
        """Every matching route: the usable ones in routing order, then the others with why
        each is left out (and its quote where it could be made). No network; the media's
        headers are read, not decoded (a submit decodes them, and may refuse what this
        quoted)."""
        _, found, excluded = await self._ranked(request, provider, model, max_cost_usd, False)
        return found, excluded

    def estimate_all_now(self, request: AvatarRequest, *, provider: str | None = None,
                         model: str | Sequence[str] | None = None, max_cost_usd: float | None = None
                         ) -> tuple[list[routing.Candidate], list[routing.Excluded]]:
        """``estimate_all`` without an event loop, blocking while it reads the media's headers
        (a quote makes no network call): what ``talkinghead estimate`` runs, so it never loads
        asyncio. Not for use inside a running event loop."""
        pairs, model = self._pairs(provider, model)
        return self._rank(pairs, self._prepare_for(request, pairs, False), provider, model, max_cost_usd)

    async def quotes(self, request: AvatarRequest, *, provider: str | None = None,
                     model: str | None = None) -> list[routing.Candidate]:
        """``estimate_all`` seen as one list: a quote from every route that accepts the
        request, configured or not, cheapest first; ``needs`` says what an unusable one lacks
        (``"needs FAL_KEY"``). No network, and nothing here can be submitted without what it
        needs."""
        return routing.every_quote(*await self.estimate_all(request, provider=provider, model=model))

    # -- submit and follow ---------------------------------------------------------------

    async def submit(self, request: AvatarRequest, *, provider: str | None = None, model: str | None = None,
                     webhook_url: str | None = None, max_cost_usd: float | None = None,
                     include: Iterable[str] | None = None, exclude: Iterable[str] = (),
                     check_face: bool = False, output: str | Path | None = None) -> Job:
        """Validate, quote, journal and reserve, then create the task on the best route,
        falling back to the next when a route fails on the provider's side before accepting
        the job. An ``InputError`` goes straight back: every route would refuse it.
        ``output``: where the video should go, journaled so a resume after a crash puts it there."""
        webhook_url = checks.http_url("webhook_url", webhook_url)
        max_cost_usd = checks.number("max_cost_usd", max_cost_usd)
        prepared, found = await self._candidates(
            request, provider, model, max_cost_usd, check_face,
            include=list(include) if include is not None else None, exclude=list(exclude))
        last_error: ProviderError | None = None
        for cand in found:
            try:
                job = await self._submit_to(cand, prepared, webhook_url, output)
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
                         webhook_url: str | None, output: str | Path | None = None) -> Job:
        request = prepared.request
        job = Job(provider=cand.route.provider, model=cand.route.model, mode=request.mode,
                  quote=cand.quote, request_digest=request.digest(), webhook_url=webhook_url,
                  reserved_usd=cand.quote.cost_usd, input_summary=_summary(prepared),
                  destination=str(Path(output).resolve()) if output else None)  # noqa: ASYNC240 - one realpath
        bound = self._log.bind(job_id=job.id, provider=job.provider, route=job.route_id)
        bound.info("job.validated", seconds=prepared.seconds)
        bound.info("job.quoted", cost_usd=cand.quote.cost_usd, upper_bound=cand.quote.upper_bound,
                   unconfirmed_price=cand.quote.unconfirmed)
        for warning in media.route_warnings(request, cand.route):
            bound.warning("request.field_unused", detail=warning)
        return await self.lifecycle.start(cand.provider, job, prepared, self.webhook_base)

    async def _prepare_again(self, request: AvatarRequest, provider: Provider, model: str) -> media.PreparedRequest:
        """A journaled request probed again, for a job killed before its create was sent."""
        # The route may be a stand-in (the local renderer for a cloud model): look it up as routed.
        route = next((r for p, r in self.routes(model, stand_ins=True) if p is provider and r.model == model),
                     None) or provider.route(model)
        prepared = await self.prepare(request, synthesize=not route.native_text)
        provider.validate(prepared, route)
        return prepared

    # -- the job's life: see lifecycle.py ------------------------------------------------

    def stream(self, job: Job, *, timeout: float | None = None) -> AsyncGenerator[JobUpdate, None]:
        """Updates for ``job`` until it ends; ``job`` is updated in place and journaled."""
        return self.lifecycle.follow(job, timeout=timeout)

    async def wait(self, job: Job, *, timeout: float | None = None,
                   on_update: UpdateCallback | None = None) -> Job:
        """Follow ``job`` to its end. Raises ``JobFailed`` if it failed or was cancelled."""
        return await self.lifecycle.wait(job, timeout=timeout, on_update=on_update)

    async def cancel(self, job: Job, *, timeout: float = 60.0) -> Job:
        """Ask the provider to cancel, then follow the job until the backend says it ended:
        a task being cancelled can still complete and be billed, so the journal only records
        what the backend reports. Returns the job, ended or (after ``timeout``) not yet."""
        if not job.task_id or job.status.terminal or job.status is JobStatus.LOST:
            return job
        try:
            await self.provider(job.provider).cancel(job)
        except ProviderError as exc:
            if exc.status_code != 404:
                raise
            self.lifecycle._lost(job, exc)  # nothing to cancel: the backend no longer knows it
            return job
        self._log.info("job.cancel_requested", job_id=job.id, provider=job.provider)
        with contextlib.suppress(JobTimeout):
            async for _ in self.stream(job, timeout=timeout):
                pass
        return job

    async def download(self, job: Job, dest: str | Path | None = None) -> Path:
        """Get the result of a completed job to ``dest`` (kept under ``results`` if it cannot)."""
        return await self.lifecycle.fetch(job, dest)

    async def run(self, request: AvatarRequest, *, provider: str | None = None, model: str | None = None,
                  output: str | Path | None = None, webhook_url: str | None = None,
                  max_cost_usd: float | None = None, timeout: float | None = None,
                  on_update: UpdateCallback | None = None, check_face: bool = False) -> VideoResult:
        """Submit, wait and download: the whole job in one call."""
        # Checked before anything is paid for: a video with nowhere to go is money lost.
        timeout = checks.number("timeout", timeout, inclusive=False)
        output = checks.output_path("output", output) if output is not None else None
        job = await self.submit(request, provider=provider, model=model, webhook_url=webhook_url,
                                max_cost_usd=max_cost_usd, check_face=check_face, output=output)
        if on_update is not None:
            await notify(on_update, job, JobUpdate(status=job.status, task_id=job.task_id, progress=job.progress))
        return await self.finish(job, output=output, timeout=timeout, on_update=on_update)

    async def finish(self, job: Job, *, output: str | Path | None = None, timeout: float | None = None,
                     on_update: UpdateCallback | None = None) -> VideoResult:
        """Wait for a submitted (or resumed) job and download its result."""
        return await self.lifecycle.finish(job, output=output, timeout=timeout, on_update=on_update)

    async def resume(self, job: Job, *, output: str | Path | None = None,
                     timeout: float | None = None, on_update: UpdateCallback | None = None) -> VideoResult:
        """Finish a journaled job after a crash (lifecycle.next_step says how); never sends a
        create that may already have been sent."""
        return await self.lifecycle.resume(job, output=output, timeout=timeout, on_update=on_update)

    async def receive_webhook(self, provider: str, token: str, headers: Mapping[str, str], body: bytes) -> Job:
        """Apply a backend's callback to the job whose receiver URL carries ``token``."""
        return await self.lifecycle.receive_webhook(provider, token, headers, body)

    async def aclose(self) -> None:
        for p in self.providers.values():
            await p.aclose()
        await self.lifecycle.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


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
            "mode": req.mode, "aspect_ratio": req.aspect_ratio, "resolution": req.resolution,
            "seed": req.seed, "voice": req.voice, "language": req.language}


class Client:
    """The sync client: the same methods as ``AsyncClient``, usable from plain scripts, worker
    threads and notebooks. Its event loop runs in the calling thread (``syncloop``), so a
    call crosses no thread; threads sharing one client take turns driving it."""

    def __init__(self, providers: Iterable[Provider] | None = None, **kwargs: Any) -> None:
        from .syncloop import LoopRunner

        self._runner: LoopRunner = LoopRunner()
        self._async: AsyncClient = self._call(_make_async(providers, kwargs))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
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

    def quotes(self, request: AvatarRequest, **kw: Any) -> list[routing.Candidate]:
        return self._call(self._async.quotes(request, **kw))

    def submit(self, request: AvatarRequest, **kw: Any) -> Job:
        return self._call(self._async.submit(request, **kw))

    def wait(self, job: Job, **kw: Any) -> Job:
        return self._call(self._async.wait(job, **kw))

    def stream(self, job: Job, **kw: Any) -> Iterator[JobUpdate]:
        agen = self._async.stream(job, **kw)
        try:
            while True:
                try:
                    yield self._call(_step(agen))
                except StopAsyncIteration:
                    return
        finally:
            if not self._runner.loop.is_closed():  # else close() has finalized it already
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


async def _step(agen: AsyncIterator[JobUpdate]) -> JobUpdate:
    # Started on the loop's thread, so the loop tracks the generator and finalizes it on close.
    return await anext(agen)


async def _make_async(providers: Iterable[Provider] | None, kwargs: dict[str, Any]) -> AsyncClient:
    return AsyncClient(providers, **kwargs)
