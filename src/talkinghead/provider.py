"""The provider interface: what a backend plugin implements.

A provider is a thin translation of one HTTP protocol. It declares its routes and implements
``submit``, ``poll`` and ``cancel`` (plus ``stream`` and ``parse_webhook`` where the backend
has them). The core owns everything else: validation of the shared rules, quoting, the await
loop, retries policy, downloads, the journal and logging.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, ClassVar

from . import checks
from .errors import AuthenticationError, InputError
from .models import Job, JobUpdate, Quote, Route

if TYPE_CHECKING:
    import httpx

    from .media import PreparedRequest

# Set by the job lifecycle around ``submit``: journals the "create about to be sent" mark.
CREATE_MARK: ContextVar[Callable[[Job], None] | None] = ContextVar("talkinghead_create_mark", default=None)


_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def speech_seconds_bound(text: str) -> float:
    """A generous upper bound on how long a speech engine takes to say ``text``: slower than
    usual speech (2 words/s, 3 CJK characters/s) plus a second."""
    cjk = len(_CJK.findall(text))
    return len(_WORD.findall(_CJK.sub(" ", text))) * 0.5 + cjk / 3.0 + 1.0


class Provider:
    """Base class for backends. Subclass it and register the class from a plugin:

    >>> @hookimpl
    ... def register_providers(register):
    ...     register(MyProvider)

    The class is instantiated with ``config``: this provider's table from the user's config
    file (``[providers.<name>]``) merged with keyword arguments given to the client.
    """

    name: ClassVar[str]
    #: environment variables holding credentials; all must be set for ``configured``
    env_vars: ClassVar[tuple[str, ...]] = ()
    #: the config-file key for each credential env var (default: the env var in lower case)
    config_keys: ClassVar[dict[str, str]] = {}
    #: whether webhooks are signed and verified by ``parse_webhook``; if not, the core
    #: confirms each webhook by polling the task with our own credentials
    signs_webhooks: ClassVar[bool] = False
    #: whether the backend may charge for a job that failed (e.g. fal: a 422 after the model
    #: ran "may be charged"). A provider saying True reports ``billed_*`` on such failed
    #: updates and the ledger settles them; otherwise failed jobs settle at $0.
    bills_failed_jobs: ClassVar[bool] = False
    #: True when ``find_task`` answers for every task ever created for a job id, so None means
    #: "never created" (not "cannot tell"): a queue worker may then release and rerun a job whose
    #: worker died before the create's answer was journaled (workqueue.py). False is safe.
    lookup_is_authoritative: ClassVar[bool] = False
    #: polling cadence for the default ``stream``: first interval, factor, ceiling (seconds);
    #: a provider may set its own per instance, from its config
    poll_interval: tuple[float, float, float] = (1.0, 1.5, 10.0)
    #: whether ``submit`` calls ``create_sending(job)`` right before its create request; if
    #: not, the core marks the create as sent before ``submit`` starts (the safe assumption)
    marks_create: ClassVar[bool] = False
    #: the tunables (config keys) ``setting`` reads, with their defaults
    defaults: ClassVar[Mapping[str, float]] = {}

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config: dict[str, Any] = dict(config or {})
        for key in self.defaults.keys() & self.config.keys():  # a bad number fails here, before any job
            self.setting(key)

    def __repr__(self) -> str:  # never show config: it may hold keys
        return f"<{type(self).__name__} {self.name!r}>"

    # -- declaration ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def stand_in(self, model: str, declared: list[Route]) -> Route | None:
        """A route of this provider for a model it does not itself serve (``declared``: the
        cloud routes that do), or None. The local renderer and test doubles override it."""
        return None

    def secret(self, env_var: str, key: str | None = None) -> str | None:
        """A credential from config (``key``, else ``config_keys[env_var]``) or the environment."""
        key = key or self.config_keys.get(env_var) or env_var.lower()
        value = self.config.get(key) or os.environ.get(env_var)
        return value or None

    def setting(self, key: str) -> float:
        """A tunable from config, else its default (``defaults``)."""
        value = self.config.get(key)
        if value is None:
            return self.defaults[key]
        # Finite and not negative: a nan timeout or price would pass every comparison.
        return checks.number(f"providers.{self.name}.{key}", value, none_ok=False)

    def required_secret(self, env_var: str) -> str:
        """The credential ``secret(env_var)``, or ``AuthenticationError`` naming the variable."""
        value = self.secret(env_var)
        if not value:
            raise AuthenticationError("no API key configured", provider=self.name, env_var=env_var)
        return value

    def configured(self) -> bool:
        """Whether credentials are present (not whether they are valid: that costs a call)."""
        return all(self.secret(v) for v in self.env_vars)

    def credentials_hint(self) -> str:
        """The env vars to set, in words ("A and B"; a provider with alternatives says so)."""
        return " and ".join(self.env_vars)

    def credentials_in_use(self) -> list[str]:
        """The credential env vars whose values this provider would use now (names only)."""
        return [v for v in self.env_vars if self.secret(v)]

    def secrets(self) -> list[str]:
        """Every credential value this provider holds, so logs and errors can scrub them."""
        return [s for v in self.env_vars if (s := self.secret(v))]

    def route(self, model: str | None = None) -> Route:
        routes = self.routes()
        for r in routes:
            if model is None or r.model == model:
                return r
        raise InputError("model", f"{model!r} is not served by {self.name}",
                         value=model, limit=[r.model for r in routes])

    # -- before any money: no network ----------------------------------------------------

    def validate(self, prepared: PreparedRequest, route: Route) -> None:
        """Raise ``InputError`` if this route cannot take the request. Override to add rules;
        call ``super().validate`` to keep the route's declared limits."""
        from .media import check_route

        check_route(prepared, route)

    def estimate(self, prepared: PreparedRequest, route: Route) -> Quote:
        """Billed seconds x the route's price for the tier or resolution. The billed seconds
        are the audio's, after the route's minimum and rounding. Without a known duration (URL
        audio) the longest allowed clip is quoted, and text the route speaks itself is bounded
        generously from its words, so a reservation is never short."""
        request = prepared.request
        resolution = route.resolution_for(request)
        price = route.price_for(request.mode, resolution)
        limits = route.limits
        seconds = None if request.text is not None and route.native_text else prepared.seconds
        upper = seconds is None
        if seconds is None:
            high = limits.audio_max_at(resolution)
            seconds = high if request.text is None else min(high, max(limits.audio_min_seconds,
                                                                       speech_seconds_bound(request.text)))
        billed = route.billed_seconds(seconds)
        return Quote(provider=route.provider, model=route.model, mode=request.mode, seconds=round(billed, 3),
                     price_per_second=price, cost_usd=round(billed * price, 4), upper_bound=upper,
                     resolution=resolution, unconfirmed=route.price_unconfirmed,
                     min_billed_seconds=route.min_billed_seconds, round_up=route.round_up)

    # -- the protocol ----------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        """Upload what the backend needs and create the task. Returns an update carrying the
        backend's ``task_id``. Must not resend the create call if it may have been received:
        raise ``SubmitOutcomeUnknown`` instead."""
        raise NotImplementedError

    def create_sending(self, job: Job) -> None:
        """Call immediately before sending the create request (after any uploads): the core
        journals that the task may now exist. A job killed before this is simply submitted
        again by ``jobs resume``; one killed after it is looked up or left ``unknown``."""
        mark = CREATE_MARK.get()
        if mark is not None:
            mark(job)

    async def poll(self, job: Job) -> JobUpdate:
        """One status read of ``job.task_id``."""
        raise NotImplementedError

    async def stream(self, job: Job) -> AsyncGenerator[JobUpdate, None]:
        """Updates until a terminal one. Default: ``poll`` with backoff; override where the
        backend streams natively (an async generator: the core closes it when done)."""
        import asyncio
        delay, factor, ceiling = self.poll_interval
        while True:
            update = await self.poll(job)
            yield update
            if update.status.terminal:
                return
            await asyncio.sleep(delay)
            delay = min(delay * factor, ceiling)

    async def cancel(self, job: Job) -> None:
        raise NotImplementedError

    async def find_task(self, job: Job) -> JobUpdate | None:
        """Look up the task a create call made for ``job`` when its answer was lost (e.g. by an
        external id set to ``job.id``). None means the backend offers no way to tell; the job
        then becomes ``unknown`` rather than risk a second charge."""
        return None

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> JobUpdate:
        """Turn a backend callback into an update carrying ``task_id``. Raise ``InputError``
        on a body that is not this backend's."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections. Called by the client on close."""


class HttpProvider(Provider):
    """A provider speaking to its backend's API over HTTP (``talkinghead.http``): it marks its
    create as sent (``create_sending``) right before the create request, and holds its httpx
    clients in the attributes ``clients`` names: each None until the provider opens it on
    first use, all closed by ``aclose``."""

    marks_create = True
    clients: ClassVar[tuple[str, ...]] = ("_api",)
    _api: httpx.AsyncClient | None  # the API's authenticated client

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        for name in self.clients:
            setattr(self, name, None)

    async def aclose(self) -> None:
        opened = [getattr(self, name) for name in self.clients]
        for name in self.clients:
            setattr(self, name, None)
        for client in opened:
            if client is not None:
                await client.aclose()


__all__ = ["HttpProvider", "Provider"]
