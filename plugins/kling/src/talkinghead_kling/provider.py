"""``KlingProvider``: Kling Avatar on Kling's own API, spoken to over httpx.

One HTTP protocol, translated (the notes: ``docs/protocols/kling-official.md``):

- every request carries the single API key as its bearer token when one is set, else a JWT
  made from the access and secret keys (``auth.py``, §2);
- text requests are spoken by Kling's TTS first (``POST /v1/audio/tts``, §7) and the avatar
  is made from its ``audio_id``; audio and image go as URLs or raw base64 (§4);
- create: ``POST /v1/videos/avatar/image2video`` with ``external_task_id`` = our job id.
  It is resent only when Kling refused it (1302/1303 rate limits, 503 maintenance). When
  the answer is lost (read timeout, gateway error) the task is looked up by that external
  id instead (``find_task``), so a create whose answer never came is never sent twice;
- follow: ``GET /v1/videos/avatar/image2video/{task_id}`` with backoff (§5); Kling has no
  cancel endpoint; callbacks are unsigned (§8), so the core confirms them by polling.
"""

from __future__ import annotations

# asyncio is imported inside the coroutines: registering the class (`talkinghead providers`,
# `estimate`) never loads it.
import os
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from talkinghead import log
from talkinghead.errors import (
    AuthenticationError,
    ContentPolicyError,
    InputError,
    ProviderError,
    ProviderTimeout,
    RequestRefused,
    ServerError,
    SubmitOutcomeUnknown,
    TalkingHeadError,
)
from talkinghead.lazy_http import http, httpx  # loaded on the first request (start-up)
from talkinghead.models import Job, JobUpdate, Limits, Quote, Route
from talkinghead.provider import HttpProvider

from . import protocol
from .protocol import AVATAR_PATH, CREDENTIALS, ENV_ACCESS_KEY, ENV_API_KEY, ENV_SECRET_KEY, ENV_VARS, TTS_PATH

if TYPE_CHECKING:
    from talkinghead.media import PreparedRequest

    from .auth import KlingAuth, KlingKeyAuth

ENV_BASE_URL = "KLING_BASE_URL"
ENV_REGION = "KLING_REGION"
MODEL = "kling-avatar"
PRICE_SOURCE = (
    "Kling publishes no USD price for Avatar: it bills prepaid resource-pack units (final_unit_deduction). "
    "0.056 (std) / 0.112 (pro) USD per output second is what resellers of the official Avatar API charge "
    "(the same figure inference.sh publishes), i.e. about 0.4 / 0.8 units per second at the standard "
    "pack's ~0.14 USD/unit; unconfirmed against a real final_unit_deduction (protocol notes §11). "
    "Set price_std / price_pro in [providers.kling] to your own pack's rate."
)
PRICE_DATE = "2026-12-01"

# Tunables (config keys) and their defaults, in seconds unless noted.
DEFAULTS: dict[str, float] = {
    "timeout": 30.0,               # one REST call
    "retry_attempts": 4,           # reads, and creates Kling refused (count)
    "retry_backoff": 1.0,          # first delay; Kling asks for >= 1 s after a 1303 (§9)
    "retry_backoff_max": 30.0,
    "token_lifetime": 1800.0,      # the JWT's exp - now (§2.1)
    "token_renew_before": 60.0,    # renew the cached JWT this long before it expires
    "poll_first": 5.0,             # polling: first delay, factor, ceiling (notes: every 5-10 s)
    "poll_factor": 1.3,
    "poll_max": 15.0,
    "find_pages": 2,               # pages of the task list searched for an external id (count)
    "find_page_size": 500,         # the list's maximum page size (§6)
    "voice_speed": 1.0,            # Kling TTS speed, 0.8-2.0
    "audio_max_seconds": 300.0,    # the official limit; a mirror says 60 (§14): lower it if needed
    "price_std": 0.056,            # USD per second of output
    "price_pro": 0.112,
    "unit_price": 0.14,            # USD per resource-pack unit (standard pack, §11): final_unit_deduction -> USD
}


class KlingProvider(HttpProvider):
    """Kling Avatar on Kling's API. Config (``[providers.kling]``): ``api_key`` (or
    ``KLING_API_KEY``; preferred when set), else ``access_key`` / ``secret_key`` (or
    ``KLING_ACCESS_KEY`` / ``KLING_SECRET_KEY``), ``custom_voices`` (voice ids of your own to
    allow for text), ``region``
    (``singapore``, ``beijing``; or ``KLING_REGION``), ``base_url`` (or ``KLING_BASE_URL``,
    which wins over the region), ``voice`` (``voice_id`` or ``voice_id#language``) and
    ``voice_language`` for text requests, and the tunables in ``DEFAULTS``."""

    name = "kling"
    env_vars = ENV_VARS  # the single key, or the pair: see ``configured``
    config_keys = {ENV_API_KEY: "api_key", ENV_ACCESS_KEY: "access_key", ENV_SECRET_KEY: "secret_key"}
    signs_webhooks = False  # §8: no signature documented; the core re-reads the task instead
    defaults = DEFAULTS

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._auth: KlingAuth | KlingKeyAuth | None = None
        self.poll_interval = (self.setting("poll_first"), self.setting("poll_factor"), self.setting("poll_max"))

    # -- declaration ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        limits = Limits(image_min_side=300, image_aspect_range=(0.4, 2.5), text_max_chars=protocol.TEXT_MAX_CHARS,
                        audio_max_seconds=self.setting("audio_max_seconds"))
        return [Route(provider=self.name, model=MODEL, native_text=True, limits=limits, endpoint=protocol.AVATAR_PATH,
                      voice_any=True, voice_note="a Kling TTS voice id, optionally '<id>#<language>' (zh or en)",
                      price_per_second={"std": self.setting("price_std"), "pro": self.setting("price_pro")},
                      price_source=PRICE_SOURCE, price_date=PRICE_DATE)]

    # -- credentials: the single key, or the access/secret pair ----------------------------

    def configured(self) -> bool:
        return bool(self.secret(ENV_API_KEY) or (self.secret(ENV_ACCESS_KEY) and self.secret(ENV_SECRET_KEY)))

    def credentials_hint(self) -> str:
        return CREDENTIALS

    def credentials_in_use(self) -> list[str]:
        if self.secret(ENV_API_KEY):
            return [ENV_API_KEY]
        pair = [ENV_ACCESS_KEY, ENV_SECRET_KEY]
        return pair if all(self.secret(v) for v in pair) else []

    @property
    def base_url(self) -> str:
        url = self.config.get("base_url") or os.environ.get(ENV_BASE_URL)
        if not url:
            region = str(self.config.get("region") or os.environ.get(ENV_REGION) or protocol.DEFAULT_REGION)
            url = protocol.REGIONS.get(region.strip().lower())
            if url is None:
                raise InputError(f"providers.{self.name}.region", f"{region!r} is not a Kling region",
                                 value=region, limit=sorted(protocol.REGIONS))
        return str(url).rstrip("/")

    def voice(self, request_voice: str | None) -> tuple[str, str]:
        """``(voice_id, language)`` for a text request, checked against Kling's voices."""
        language = str(self.config.get("voice_language") or protocol.DEFAULT_VOICE_LANGUAGE).lower()
        default_voice, default_language = protocol.parse_voice(
            str(self.config.get("voice") or protocol.DEFAULT_VOICE), protocol.DEFAULT_VOICE, language)
        voice_id, language = protocol.parse_voice(request_voice, default_voice, default_language)
        custom = self.config.get("custom_voices") or ()
        protocol.check_voice(voice_id, language, [custom] if isinstance(custom, str) else custom)
        return voice_id, language

    # -- before any money: no network ----------------------------------------------------

    def validate(self, prepared: PreparedRequest, route: Route) -> None:
        super().validate(prepared, route)
        text = prepared.request.text
        if text is not None:
            self.voice(prepared.request.voice)  # a wrong voice fails here, not after the TTS call
            # The avatar refuses audio under 2 s only after the TTS call was paid for: refuse a
            # text whose speech would most likely be shorter, before either call.
            likely = protocol.speech_seconds_estimate(text, self.setting("voice_speed"))
            if likely < protocol.AUDIO_MIN_SECONDS:
                raise InputError("text", f"Kling's speech for it would last about {likely:.1f} s, under the "
                                 f"{protocol.AUDIO_MIN_SECONDS:g} s an avatar takes; give a longer text",
                                 value=round(likely, 2), limit=protocol.AUDIO_MIN_SECONDS)

    def estimate(self, prepared: PreparedRequest, route: Route) -> Quote:
        """Audio: the measured seconds (the video is as long as the audio). Text: Kling's TTS
        speaks it, so its length is bounded from the text, generously (an upper bound)."""
        request = prepared.request
        if request.text is None:
            return super().estimate(prepared, route)
        limits = route.limits
        bound = protocol.speech_seconds_bound(request.text, self.setting("voice_speed"))
        seconds = round(min(limits.audio_max_seconds, max(limits.audio_min_seconds, bound)), 3)
        price = float(route.price_per_second[request.mode])
        return Quote(provider=route.provider, model=route.model, mode=request.mode, seconds=seconds,
                     price_per_second=price, cost_usd=round(seconds * price, 4), upper_bound=True)

    # -- HTTP plumbing -------------------------------------------------------------------

    def _authenticator(self) -> KlingAuth | KlingKeyAuth:
        """The single API key when set (sent as-is), else a JWT from the pair."""
        if self._auth is None:
            from .auth import KlingAuth, KlingKeyAuth  # httpx loads on first use, not at registration

            key = self.secret(ENV_API_KEY)
            if key:
                self._auth = KlingKeyAuth(key)
                return self._auth
            access, secret = self.secret(ENV_ACCESS_KEY), self.secret(ENV_SECRET_KEY)
            if not access or not secret:
                raise AuthenticationError(f"no credentials configured: set {CREDENTIALS}", provider=self.name,
                                          env_vars=ENV_VARS, needs=CREDENTIALS)
            self._auth = KlingAuth(access, secret, lifetime=self.setting("token_lifetime"),
                                   renew_before=self.setting("token_renew_before"), on_token=log.add_secret)
        return self._auth

    def _client(self) -> httpx.AsyncClient:
        if self._api is None:
            auth = self._authenticator()
            self._api = http.async_client(self.name, base_url=self.base_url,
                                          headers={"Content-Type": "application/json"},
                                          timeout=http.call_timeout(self.setting("timeout")))
            self._api.auth = auth
        return self._api

    def secrets(self) -> list[str]:
        found = super().secrets()
        if self._auth is not None:
            found += [s for s in self._auth.secrets() if s not in found]
        return found

    def _backoff(self, attempt: int) -> float:
        base = self.setting("retry_backoff")
        return min(base * (2.0 ** attempt), self.setting("retry_backoff_max")) * (1 + random.random() / 4)

    async def _send(self, method: str, path: str, *, create: bool = False,
                    **kwargs: Any) -> tuple[httpx.Response, Any]:
        """Send with Kling's retry rules (``protocol.is_retryable``); returns the last answer
        and its JSON. A create that may have arrived unanswered raises ``SubmitOutcomeUnknown``
        (from ``talkinghead.http.send``); one that provably never left is retried."""
        import asyncio
        attempts = max(1, int(self.setting("retry_attempts")))
        for attempt in range(attempts):
            last = attempt == attempts - 1
            try:
                response = await http.send(self._client(), method, path, provider=self.name,
                                           idempotent=not create, attempts=1, **kwargs)
            except (ProviderTimeout, ServerError):
                # A connect failure (any request), or a read's transport error: safe to repeat.
                if last:
                    raise
                await asyncio.sleep(self._backoff(attempt))
                continue
            payload = protocol.parse_json(response.content)
            if last or protocol.is_success(response.status_code, payload) or \
                    not protocol.is_retryable(response.status_code, payload, create=create):
                return response, payload
            wait = http.retry_after(response)
            await asyncio.sleep(wait if wait is not None else self._backoff(attempt))
        raise AssertionError("unreachable")

    def _error(self, response: httpx.Response, payload: Any) -> Exception:
        wait = http.retry_after(response)
        if wait is None and response.status_code == 429:
            wait = self.setting("retry_backoff")
        return protocol.error_for(response.status_code, payload, text=_text(response), secrets=self.secrets(),
                                  retry_after=wait)

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One read; returns the answer's ``data`` or raises the typed error."""
        response, payload = await self._send(method, path, **kwargs)
        if protocol.is_success(response.status_code, payload):
            return payload.get("data")
        raise self._error(response, payload)

    # -- submit --------------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        import asyncio
        request = prepared.request
        image = await asyncio.to_thread(protocol.media_value, prepared.image)
        audio: dict[str, str] = {}
        tts_units = 0.0  # what the speech cost: part of what this job billed
        if request.text is not None:
            audio["audio_id"], tts_units = await self._speak(request.text, request.voice)
        elif prepared.audio is not None:
            audio["sound_file"] = await asyncio.to_thread(protocol.media_value, prepared.audio)
        else:
            raise InputError("audio", "give audio or text")
        body = protocol.create_body(image=image, external_task_id=job.id, mode=request.mode, prompt=request.prompt,
                                    callback_url=job.webhook_url, **audio)
        self.create_sending(job)  # from here the task may exist (marked on the journal's own job)
        if tts_units:
            job = job.model_copy(update={"provider_data": {**job.provider_data, "tts_units": f"{tts_units:g}"}})
        try:
            response, payload = await self._send("POST", AVATAR_PATH, create=True, json=body)
        except SubmitOutcomeUnknown as exc:
            return await self._after_lost_answer(job, exc)
        if protocol.is_success(response.status_code, payload):
            task = protocol.task_of(payload)
            if task is not None and protocol.task_id_of(task):
                return self._update(task, job)
            lost = SubmitOutcomeUnknown(f"POST {AVATAR_PATH} was accepted but the answer carried no task id; "
                                        "the task may exist and be billed, so it was not resent", provider=self.name)
            return await self._after_lost_answer(job, lost)
        if protocol.create_outcome_unknown(response.status_code, payload):
            error = self._error(response, payload)
            said = str(error).removeprefix(f"{self.name}: ")
            lost = SubmitOutcomeUnknown(f"POST {AVATAR_PATH} got HTTP {response.status_code} ({said}); the task "
                                        "may exist and be billed, so it was not resent", provider=self.name)
            # Kling's own "internal error" (5000) with no task found: it was not created.
            return await self._after_lost_answer(job, lost, otherwise=error if protocol.code_of(payload) == 5000
                                                 else None)
        error = self._error(response, payload)
        if isinstance(error, RequestRefused) and protocol.is_fetch_failure(protocol.message_of(payload)):
            raise _fetch_error(prepared, error) from None
        raise error

    def _update(self, task: Mapping[str, Any], job: Job | None = None) -> JobUpdate:
        """The task as an update. For a text job, the units its speech cost (kept in
        ``provider_data["tts_units"]`` from the TTS answer's ``final_unit_deduction``) are added
        to the avatar's, so the billed figure is the whole job's."""
        update = protocol.task_update(task, unit_price=self.setting("unit_price"))
        tts = protocol.seconds(job.provider_data.get("tts_units")) if job is not None else None
        if not tts:
            return update
        extra: dict[str, Any] = {"provider_data": {"tts_units": f"{tts:g}"}}
        if update.billed_units is not None:
            units = round(update.billed_units + tts, 6)
            extra.update(billed_units=units, billed_usd=round(units * self.setting("unit_price"), 6))
        return update.model_copy(update=extra)

    async def _after_lost_answer(self, job: Job, lost: SubmitOutcomeUnknown,
                                 otherwise: Exception | None = None) -> JobUpdate:
        """The create may have made a task: look it up by our external id before anything
        else. Found: that is the answer. Not found (or the lookup failed): re-raise, and the
        job stays ``unknown``; ``talkinghead jobs resume`` looks it up again later."""
        logger = log.get_logger(provider=self.name, job_id=job.id)
        try:
            found = await self.find_task(job)
        except TalkingHeadError as exc:
            logger.warning("kling.lookup_failed", error=str(exc))
            found = None
        if found is not None:
            logger.warning("kling.create_answer_lost_task_found", task_id=found.task_id)
            return found
        raise otherwise or lost

    async def _speak(self, text: str, voice: str | None) -> tuple[str, float]:
        """Kling TTS (§7): the ``audio_id`` to make the avatar from, and the units it cost
        (``final_unit_deduction``, 0 if not given). A paid call, so it is never resent once it
        may have arrived; its answer is inline (synchronous)."""
        voice_id, language = self.voice(voice)
        body = protocol.tts_body(text, voice_id, language, self.setting("voice_speed"))
        try:
            response, payload = await self._send("POST", TTS_PATH, create=True, json=body)
        except SubmitOutcomeUnknown:
            raise ProviderTimeout(f"POST {TTS_PATH} was sent but no answer came back; the speech may have been "
                                  "made (and billed a few units), the video task was not created",
                                  provider=self.name) from None
        if not protocol.is_success(response.status_code, payload):
            raise self._error(response, payload)
        audio = protocol.tts_audio(payload)
        if audio is None:
            task = protocol.task_of(payload) or {}
            reason = task.get("task_status_msg") or f"status {task.get('task_status')!r} and no audio"
            if protocol.error_kind_for(str(reason)) == "content_policy":
                raise ContentPolicyError(f"Kling TTS refused the text: {reason}", provider=self.name)
            raise ServerError(f"Kling TTS answered without audio: {reason}", provider=self.name)
        seconds = protocol.seconds(audio.get("duration"))
        low, high = protocol.AUDIO_MIN_SECONDS, self.setting("audio_max_seconds")
        if seconds is not None and not low <= seconds <= high:
            raise InputError("text", f"Kling's speech for it lasts {seconds:g} s, outside the {low:g} to {high:g} s "
                             "an avatar takes", value=seconds, limit=(low, high))
        return str(audio["id"]), protocol.units_of(protocol.task_of(payload) or {}) or 0.0

    # -- follow --------------------------------------------------------------------------

    async def get_task(self, task_or_external_id: str) -> dict[str, Any]:
        data = await self._call("GET", f"{AVATAR_PATH}/{quote(task_or_external_id, safe='')}")
        task = protocol.task_of(data)
        if task is None or not protocol.task_id_of(task):
            raise ServerError(f"GET {AVATAR_PATH}/{task_or_external_id} answered with no task", provider=self.name)
        return task

    async def poll(self, job: Job) -> JobUpdate:
        if not job.task_id:
            raise ProviderError(f"job {job.id} has no Kling task id", provider=self.name)
        try:
            task = await self.get_task(job.task_id)
        except RequestRefused as exc:  # 1203: "the requested resource does not exist"
            raise ProviderError(f"task {job.task_id} not found: {exc}", provider=self.name) from None
        update = self._update(task, job)
        return update if update.task_id else update.model_copy(update={"task_id": job.task_id})

    async def find_task(self, job: Job) -> JobUpdate | None:
        """The task whose ``external_task_id`` is ``job.id``: queried by that id (the query
        path takes either id, §5), then searched for in the most recent pages of the task list
        (§6). None when no task has it: the create never arrived, or not yet."""
        external = job.id
        try:
            task = await self.get_task(external)
        except ProviderError as exc:
            if type(exc) not in (RequestRefused, ProviderError, ServerError):
                raise  # credentials, rate limits, the network guard: the list would fail the same way
            task = None  # 1201/1203/404: this path does not take it, or no such task
        if task is not None and protocol.external_id_of(task) in (external, None):
            return self._update(task, job)
        size = max(1, min(500, int(self.setting("find_page_size"))))
        for page in range(1, int(self.setting("find_pages")) + 1):
            items = await self._call("GET", AVATAR_PATH, params={"pageNum": page, "pageSize": size})
            if not isinstance(items, list):
                break
            for item in items:
                if isinstance(item, dict) and protocol.external_id_of(item) == external:
                    return self._update(item, job)
            if len(items) < size:
                break
        return None

    async def cancel(self, job: Job) -> None:
        raise ProviderError("Kling's API has no way to cancel an Avatar task: it runs to its end and is billed",
                            provider=self.name)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> JobUpdate:
        """Kling's callback (§8: the bare task object, sent on each status change) as an
        update. Unsigned: the core confirms it with ``poll`` before trusting it."""
        return self._update(protocol.parse_callback(body))


def _fetch_error(prepared: PreparedRequest, error: RequestRefused) -> RequestRefused:
    """Kling's 1201 "cannot get the contents of the file" (§14), naming the input(s) given as
    a URL (Kling does not say which) and suggesting the file itself. The create was sent and
    refused, so it stays a ``RequestRefused`` (exit 4), not an input error (exit 2)."""
    urls = [m for m in (prepared.image, prepared.audio) if m is not None and m.kind == "url"]
    if not urls:
        return error
    which = " or ".join(m.field for m in urls)
    hosts = ", ".join(sorted({httpx.URL(m.url or "").host or "?" for m in urls}))
    detail = str(error).removeprefix("kling: ")
    return RequestRefused(f"Kling could not download the {which} URL (host {hosts}): {detail}; give a local "
                          "file instead (it is sent to Kling as base64), or a URL Kling can reach",
                          provider=error.provider, status_code=error.status_code,
                          field=urls[0].field if len(urls) == 1 else which)  # hosts only: queries are capabilities


def _text(response: httpx.Response) -> str:
    try:
        return response.text
    except (httpx.ResponseNotRead, UnicodeDecodeError):
        return ""


__all__ = ["DEFAULTS", "MODEL", "PRICE_DATE", "PRICE_SOURCE", "KlingProvider"]
