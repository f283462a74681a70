"""``FalProvider``: avatar models through the fal queue (Kling AI Avatar v2, and the others in
``routes.py``: endpoint, declaration and input mapping each).

One HTTP protocol, translated (the notes: ``docs/protocols/fal.md``):

- local files and base64 inputs are uploaded as fal's official Python client does (§7, §11):
  a CDN token (``POST {rest}/storage/auth/token?storage_type=fal-cdn-v3``) then ``POST
  {cdn}/files/upload``; if that fails, ``POST {rest}/storage/upload/initiate?storage_type=gcs``
  then ``PUT upload_url`` (streamed from disk, no fal auth on the PUT). ``upload_storage``
  picks the first way; http(s) URLs are passed through unchanged;
- submit: ``POST {queue}/{endpoint id}`` (``.../v2/standard`` or ``.../v2/pro`` by mode, §1)
  with ``fal_webhook`` when the job has a webhook (§6), through
  ``talkinghead.http.send(idempotent=False)``: never resent once it may have arrived;
- status, result and cancel at the ``status_url``/``response_url``/``cancel_url`` the submit
  answer gave (fal's docs advise it; kept in ``job.provider_data``, only when on our queue
  host), else built at the *app* path ``{queue}/fal-ai/kling-video/requests/{id}`` (§5, the URL
  rule); a ``COMPLETED`` status is only success once the result reads 200 with a video (§5.2);
- billing: fal bills output seconds; a 422 after the model ran "may be charged" (fal's docs),
  so such a failure reports ``billed_seconds`` (the output's, else the quoted seconds);
- webhooks are signed (Ed25519, keys from fal's JWKS): ``parse_webhook`` verifies them
  (``webhooks.py``) and the core applies the update without re-reading the request.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from talkinghead import log
from talkinghead.errors import (
    AuthenticationError,
    BillingError,
    ContentPolicyError,
    InputError,
    ProviderError,
    RequestRefused,
    ServerError,
    SubmitOutcomeUnknown,
    TalkingHeadError,
    WebhookIgnored,
)
from talkinghead.lazy_http import http, httpx  # loaded on the first request (start-up)
from talkinghead.models import Job, JobStatus, JobUpdate, Route
from talkinghead.provider import HttpProvider

from . import protocol, routes, webhooks
from .routes import Model  # by name: inside the class, ``routes`` is the method

if TYPE_CHECKING:
    from talkinghead.media import MediaFile, PreparedRequest

ENV_KEY = "FAL_KEY"
ENV_BASE_URL = "FAL_BASE_URL"     # one loopback server for everything (tests, the fake)
ENV_QUEUE_URL = "FAL_QUEUE_URL"
ENV_REST_URL = "FAL_REST_URL"
ENV_JWKS_URL = "FAL_JWKS_URL"
ENV_CDN_URL = "FAL_CDN_URL"
JWKS_PATH = "/.well-known/jwks.json"

# Tunables (config keys) and their defaults, in seconds unless noted.
DEFAULTS: dict[str, float] = {
    "timeout": 30.0,                  # queue and REST calls
    "upload_timeout": 120.0,          # the PUT of one file
    "retry_attempts": 4,              # reads, uploads and refused submits (count)
    "retry_backoff": 0.5,             # first backoff when no Retry-After is given
    "poll_interval": 0.5,             # first status poll delay (§5.2: 0.5-5 s is fine)
    "poll_max_interval": 5.0,         # ... growing 1.5x up to this
    "webhook_tolerance": webhooks.DEFAULT_TOLERANCE,          # timestamp skew accepted (s)
    "jwks_ttl": webhooks.DEFAULT_JWKS_TTL,                    # keep fal's keys this long
    "jwks_refresh_interval": webhooks.DEFAULT_REFRESH_INTERVAL,  # re-fetch on an unknown key at most this often
    "audio_max_seconds": 300.0,       # Kling Avatar's limit; fal states none (§2)
}


class FalProvider(HttpProvider):
    """Kling AI Avatar on fal. Config: ``api_key`` (or ``FAL_KEY``); hosts ``base_url``
    (``FAL_BASE_URL``: one server for queue, REST and JWKS), or each of ``queue_url``
    (``FAL_QUEUE_URL``), ``rest_url`` (``FAL_REST_URL``), ``jwks_url`` (``FAL_JWKS_URL``);
    ``webhook_user_id`` (accept only deliveries for this fal user); the tunables in
    ``DEFAULTS``."""

    name = "fal"
    env_vars = (ENV_KEY,)
    config_keys = {ENV_KEY: "api_key"}
    signs_webhooks = True  # §6: Ed25519 over request id, user id, timestamp and body hash
    bills_failed_jobs = True  # a 422 after the model ran "may be charged" (fal docs, errors)
    defaults = DEFAULTS
    clients = ("_api", "_plain")
    _plain: httpx.AsyncClient | None  # no Authorization: signed upload URLs and the public JWKS

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self._jwks: webhooks.JWKSCache | None = None
        self._cdn_token: tuple[str, float] | None = None  # "<type> <token>", expiry (epoch s)

    # -- declaration ---------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [m.route for m in routes.models(self.name, self.setting("audio_max_seconds")).values()]

    def model_for(self, model: str) -> Model:
        table = routes.models(self.name, self.setting("audio_max_seconds"))
        if model not in table:
            raise InputError("model", f"{model!r} is not served by {self.name}", value=model, limit=tuple(table))
        return table[model]

    @property
    def poll_interval(self) -> tuple[float, float, float]:  # type: ignore[override]  # read-only, from config
        first = self.setting("poll_interval")
        return first, 1.5, max(first, self.setting("poll_max_interval"))

    def _host(self, key: str, env: str, default: str, suffix: str = "") -> str:
        """The most specific setting wins: ``key`` in config, its env var, then ``base_url``
        (config or ``FAL_BASE_URL``) plus ``suffix``, then fal's own host."""
        explicit = self.config.get(key) or os.environ.get(env)
        if explicit:
            return str(explicit).rstrip("/")
        base = self.config.get("base_url") or os.environ.get(ENV_BASE_URL)
        if base:
            return str(base).rstrip("/") + suffix
        return default

    @property
    def queue_url(self) -> str:
        return self._host("queue_url", ENV_QUEUE_URL, protocol.QUEUE_URL)

    @property
    def rest_url(self) -> str:
        return self._host("rest_url", ENV_REST_URL, protocol.REST_URL)

    @property
    def cdn_url(self) -> str:
        return self._host("cdn_url", ENV_CDN_URL, protocol.CDN_URL)

    def storage_chain(self) -> list[str]:
        """Upload ways in order: ``upload_storage`` (default ``fal-cdn-v3``), then ``gcs``."""
        first = str(self.config.get("upload_storage") or protocol.STORAGE_CDN).strip().lower()
        if first not in protocol.STORAGE_TYPES:
            raise InputError(f"providers.{self.name}.upload_storage", f"{first!r} is not a fal storage type",
                             value=first, limit=list(protocol.STORAGE_TYPES))
        return [first] + [s for s in (protocol.STORAGE_GCS,) if s != first]

    @property
    def jwks_url(self) -> str:
        return self._host("jwks_url", ENV_JWKS_URL, protocol.JWKS_URL, JWKS_PATH)

    def api_key(self) -> str | None:
        return self.secret(ENV_KEY)

    # -- HTTP plumbing -------------------------------------------------------------------

    def _client(self) -> httpx.AsyncClient:
        """Queue and REST calls: ``Authorization: Key <FAL_KEY>`` (§4)."""
        if self._api is None:
            key = self.required_secret(ENV_KEY)
            self._api = http.async_client(self.name, headers={"Authorization": f"Key {key}"},
                                          timeout=http.call_timeout(self.setting("timeout")))
        return self._api

    def _plain_client(self) -> httpx.AsyncClient:
        # No Authorization at all: the signed upload URL and the public JWKS must never see
        # our key (§7: "No fal auth header on this call"). Still behind the network guard.
        if self._plain is None:
            self._plain = http.async_client(self.name, timeout=httpx.Timeout(self.setting("upload_timeout"),
                                                                              connect=10.0))
        return self._plain

    async def _send(self, method: str, url: str, *, client: httpx.AsyncClient | None = None,
                    idempotent: bool = True, attempts: int | None = None, **kwargs: Any) -> httpx.Response:
        tries = attempts if attempts is not None else max(1, int(self.setting("retry_attempts")))
        return await http.send(client or self._client(), method, url, provider=self.name, idempotent=idempotent,
                               attempts=tries, backoff=self.setting("retry_backoff"), **kwargs)

    def _error(self, response: httpx.Response, payload: Any) -> Exception:
        """The typed error for a refused call (§5.5)."""
        code = response.status_code
        message, error_type, field = protocol.error_info(payload, http.response_text(response),
                                                         response.headers.get("x-fal-error-type"))
        message = protocol.redact(message, self.secrets())
        if code != 401 and code < 500 and protocol.is_billing_problem(code, message, error_type):
            return BillingError(f"account cannot pay ({code}): {message}", provider=self.name, status_code=code)
        if code < 500 and protocol.is_content_policy(message, error_type):
            return ContentPolicyError(f"refused by content policy ({code}): {message}", provider=self.name,
                                      status_code=code)
        if code in (400, 422):
            return RequestRefused(f"fal refused the request ({code}): {message}", provider=self.name,
                                  status_code=code, field=field)
        if code == 404:
            return ProviderError(f"not found (404): {message}", provider=self.name, status_code=code)
        return http.error_for_status(response, message, provider=self.name, env_var=ENV_KEY)

    # -- submit --------------------------------------------------------------------------

    async def submit(self, job: Job, prepared: PreparedRequest) -> JobUpdate:
        request = prepared.request
        model = self.model_for(job.model)
        speaks = request.text is not None and model.route.native_text  # the endpoint speaks the text
        if prepared.audio is None and not speaks:
            raise InputError("audio", f"fal's {job.model} needs audio (the core synthesizes it from text "
                             "before submitting to a route without native text)")
        image_url = await self._input_url(prepared.image)
        # not speaks: audio was checked just above
        audio_url = None if speaks else await self._input_url(prepared.audio)  # type: ignore[arg-type]
        endpoint = model.endpoint(request, speaks)
        body = model.build(routes.Inputs(request, model.route, image_url, audio_url))
        self.create_sending(job)  # the uploads are done: from here the request may exist
        response = await self._send("POST", f"{self.queue_url}/{endpoint}", json=body,
                                    params=protocol.submit_params(job.webhook_url), idempotent=False)
        payload = protocol.parse_json(response.content)
        if response.status_code in (502, 504):
            # A gateway answered for a queue that may have accepted the request.
            raise SubmitOutcomeUnknown(
                f"POST /{endpoint} got HTTP {response.status_code} from a gateway; the request may exist "
                "and be billed, so it was not resent", provider=self.name)
        if not response.is_success:
            raise self._error(response, payload)
        request_id = protocol.request_id_of(payload)
        if not request_id:
            raise SubmitOutcomeUnknown(
                f"POST /{endpoint} was accepted but the answer carried no request_id; the request may "
                "exist and be billed, so it was not resent", provider=self.name)
        urls = protocol.returned_urls(payload, self.queue_url) or None
        if payload.get("status") in (protocol.IN_QUEUE, protocol.IN_PROGRESS):
            return protocol.status_update(payload, request_id).model_copy(update={"provider_data": urls})
        # Older answers carry only the id and the URLs (§5.1); the first poll tells more.
        return JobUpdate(status=JobStatus.QUEUED, task_id=request_id, progress=5.0, message="submitted",
                         provider_data=urls)

    def _url(self, job: Job, key: str, action: str = "") -> str:
        """The URL submit returned for ``key``, else the one built from the endpoint (§5)."""
        given = job.provider_data.get(key)
        if given and protocol.returned_urls({key: given}, self.queue_url):
            return given
        return self.queue_url + protocol.request_path(routes.app_path_of(job.model), _task_id(job), action)

    async def _input_url(self, media: MediaFile) -> str:
        if media.kind == "url":
            if not media.url:
                raise InputError(media.field, "URL input without a URL")
            return media.url  # fal fetches it; it must be public (§2)
        return await self._upload(media)

    async def _upload(self, media: MediaFile) -> str:
        """The file's public URL, uploaded the first way in ``storage_chain`` that works (the
        official client's order: CDN token, then initiate + PUT). Uploads cost nothing, so a
        failed way is simply followed by the next; the last one's error is raised."""
        chain = self.storage_chain()
        for i, storage in enumerate(chain):
            try:
                if storage == protocol.STORAGE_CDN:
                    return await self._upload_cdn(media)
                return await self._upload_initiate(media, storage)
            except (BillingError, InputError):
                raise  # the account or the file itself: another way would fail the same
            except TalkingHeadError as exc:
                # A 401 is our key, refused everywhere; a 403 may be this storage only.
                if i == len(chain) - 1 or (isinstance(exc, AuthenticationError) and exc.status_code != 403):
                    raise
                log.get_logger(provider=self.name).warning(
                    "fal.upload_fallback", field=media.field, storage=storage, error=str(exc))
        raise AssertionError("unreachable")

    async def _upload_cdn(self, media: MediaFile) -> str:
        """``POST /storage/auth/token?storage_type=fal-cdn-v3`` (Key auth) for a CDN token, then
        ``POST {cdn}/files/upload`` with the bytes, ``Authorization: <token_type> <token>`` and
        ``X-Fal-File-Name``; returns ``access_url`` (§7 B, §11)."""
        content_type = media.content_type or "application/octet-stream"
        put = await self._send("POST", f"{self.cdn_url}/files/upload", client=self._plain_client(),
                               content=http.UploadBody(media),
                               headers={"Authorization": await self._cdn_authorization(), "Content-Type": content_type,
                                        "X-Fal-File-Name": media.filename,
                                        "Content-Length": str(http.upload_size(media))})
        body = protocol.parse_json(put.content)
        url = body.get("access_url") if isinstance(body, dict) else None
        if not put.is_success or not isinstance(url, str) or not url:
            raise ServerError(f"CDN upload of {media.field} failed: HTTP {put.status_code}", provider=self.name,
                              status_code=put.status_code)
        return url

    async def _cdn_authorization(self) -> str:
        """``<token_type> <token>`` for the CDN, kept until a minute before ``expires_at``."""
        now = time.time()
        if self._cdn_token is not None and now < self._cdn_token[1]:
            return self._cdn_token[0]
        response = await self._send("POST", f"{self.rest_url}/storage/auth/token",
                                    params={"storage_type": protocol.STORAGE_CDN}, json={})
        payload = protocol.parse_json(response.content)
        if not response.is_success:
            raise self._error(response, payload)
        token = payload.get("token") if isinstance(payload, dict) else None
        kind = (payload.get("token_type") if isinstance(payload, dict) else None) or "Bearer"
        if not isinstance(token, str) or not token:
            raise ServerError("the CDN token answer carried no token", provider=self.name)
        log.add_secret(token)  # a short-lived credential: never in logs
        try:
            expires = datetime.fromisoformat(str(payload.get("expires_at"))).timestamp() - 60
        except ValueError:
            expires = now  # unknown expiry: used for this upload only
        self._cdn_token = (f"{kind} {token}", expires)
        return self._cdn_token[0]

    async def _upload_initiate(self, media: MediaFile, storage: str) -> str:
        """``POST /storage/upload/initiate?storage_type=...`` then ``PUT upload_url``; returns
        ``file_url`` (§7 A; the official client's fallback uses ``gcs``)."""
        content_type = media.content_type or "application/octet-stream"
        response = await self._send("POST", f"{self.rest_url}/storage/upload/initiate",
                                    params={"storage_type": storage},
                                    json=protocol.initiate_body(media.filename, content_type))
        payload = protocol.parse_json(response.content)
        if not response.is_success:
            raise self._error(response, payload)
        upload_url = payload.get("upload_url") if isinstance(payload, dict) else None
        file_url = payload.get("file_url") if isinstance(payload, dict) else None
        if not isinstance(upload_url, str) or not isinstance(file_url, str) or not upload_url or not file_url:
            raise ServerError(f"upload initiate answered without an upload_url and file_url for {media.field}",
                              provider=self.name)
        put = await self._send("PUT", upload_url, client=self._plain_client(), content=http.UploadBody(media),
                               headers={"Content-Type": content_type, "Content-Length": str(http.upload_size(media))})
        if not put.is_success:
            # Storage errors say nothing about our key (a 403 is usually an expired signature):
            # never an AuthenticationError, and never the signed URL in the message.
            host = httpx.URL(upload_url).host
            raise ServerError(f"upload of {media.field} to {host} failed: HTTP {put.status_code}",
                              provider=self.name, status_code=put.status_code)
        return file_url

    # -- follow --------------------------------------------------------------------------

    async def poll(self, job: Job) -> JobUpdate:
        """One status read (``?logs=1``, 202 while queued or running, 200 when done); on
        ``COMPLETED`` the result is read too, since a completed request can still have failed."""
        request_id = _task_id(job)
        response = await self._send("GET", self._url(job, "status_url", "status"), params=protocol.LOGS_PARAM)
        payload = protocol.parse_json(response.content)
        if not response.is_success:
            raise self._error(response, payload)
        update = protocol.status_update(payload, request_id)
        if update.status is JobStatus.COMPLETED:
            return await self._result(job, *protocol.status_error(payload), ran=protocol.metrics_ran(payload))
        return update

    async def _result(self, job: Job, error: str | None, error_type: str | None, *, ran: bool = False) -> JobUpdate:
        """``GET`` the result (§5.3): 200 with a video is success; fal's own error answer is the
        request's failure; a bare 5xx (after retries) is a transient read error, raised. A 422
        after the model ran (``ran``) "may be charged" (fal docs): the failure then reports
        ``billed_seconds``, the output's if fal gives them, else the quoted seconds."""
        request_id = _task_id(job)
        failed = bool(error or error_type)
        url = self._url(job, "response_url")
        # When the status already said it failed, the error answer is expected: do not retry it.
        response = await self._send("GET", url, attempts=1 if failed else None)
        payload = protocol.parse_json(response.content)
        code = response.status_code
        if response.is_success:
            update = protocol.result_update(payload, request_id)
            if update is not None:
                return update
            if failed:
                return protocol.failure_update(request_id, error or error_type or "failed", error_type=error_type)
            raise ServerError(f"the result of request {request_id} has no video URL", provider=self.name)
        message, result_type, _ = protocol.error_info(
            payload, http.response_text(response), response.headers.get("x-fal-error-type"))
        message = protocol.redact(message, self.secrets())
        # Our key, a missing request or throttling: not the request's failure. A 5xx that fal
        # does not explain (no error_type, and the status said nothing) may be a passing gateway
        # fault: raised, so the job stays open and can be resumed.
        if code in (401, 403, 404, 408, 409, 429) or (code >= 500 and not (failed or result_type)):
            raise self._error(response, payload)
        if error and error not in message:
            message = f"{error}: {message}"
        update = protocol.failure_update(request_id, message, error_type=result_type or error_type, status_code=code)
        if code == 422 and ran:
            seconds = protocol.output_seconds(payload)
            if seconds is None and job.quote is not None:
                seconds = job.quote.seconds
            update = update.model_copy(update={"billed_seconds": seconds})
        return update

    # -- cancel and webhooks -------------------------------------------------------------

    async def cancel(self, job: Job) -> None:
        """``PUT .../cancel`` (§5.4). Already completed: nothing to do."""
        response = await self._send("PUT", self._url(job, "cancel_url", "cancel"))
        payload = protocol.parse_json(response.content)
        state = payload.get("status") if isinstance(payload, dict) else None
        if state == "ALREADY_COMPLETED":
            return
        if not response.is_success or state == "NOT_FOUND":
            if state == "NOT_FOUND" and response.is_success:
                response = httpx.Response(404, headers=response.headers)
            raise self._error(response, payload)

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> JobUpdate:
        """Verify fal's signature (raises ``WebhookRejected``), then the body as an update with
        ``task_id`` (fal's request id) and ``delivery_id`` (the webhook request id header, for
        the core's replay protection). A malformed but signed body raises ``InputError``."""
        user_id = self.config.get("webhook_user_id")
        delivery = await webhooks.verify(headers, body, self._jwks_cache(),
                                         tolerance=self.setting("webhook_tolerance"),
                                         user_id=str(user_id) if user_id else None)
        payload = protocol.parse_json(body)
        try:
            return protocol.webhook_update(payload, delivery_id=delivery.request_id)
        except protocol.NonTerminal as exc:
            raise WebhookIgnored(str(exc)) from None  # 200, or fal retries it 10 times
        except ValueError as exc:
            raise InputError("webhook", f"the body is not a fal webhook payload: {exc}") from None

    def _jwks_cache(self) -> webhooks.JWKSCache:
        if self._jwks is None:
            self._jwks = webhooks.JWKSCache(self._fetch_jwks, ttl=self.setting("jwks_ttl"),
                                            refresh_interval=self.setting("jwks_refresh_interval"))
        return self._jwks

    async def _fetch_jwks(self) -> Any:
        url = self.jwks_url
        response = await self._send("GET", url, client=self._plain_client(), timeout=self.setting("timeout"))
        host = httpx.URL(url).host
        if not response.is_success:
            raise ServerError(f"fetching fal's webhook keys from {host} failed: HTTP {response.status_code}",
                              provider=self.name, status_code=response.status_code)
        payload = protocol.parse_json(response.content)
        if not webhooks.public_keys(payload):
            raise ServerError(f"fal's webhook key set at {host} holds no Ed25519 key", provider=self.name)
        return payload


def _task_id(job: Job) -> str:
    if not job.task_id:
        raise ProviderError(f"job {job.id} has no fal request id", provider="fal")
    return job.task_id


__all__ = ["FalProvider"]
