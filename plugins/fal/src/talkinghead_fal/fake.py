"""A loopback fake of the fal subset the plugin speaks, with switches for faults.

A Starlette app (``FakeFal(...).app``) and ``serve()``, which runs it under uvicorn on
127.0.0.1 and a free port in a background thread. One server plays every fal host, so a
provider needs only ``base_url`` (or ``FAL_BASE_URL``)::

    run_fake(serve(step_latency=0.05, failures={"submit": [429, 200]}, retry_after=0) as fake:
        provider = FalProvider({"api_key": "k", "base_url": fake.url})
        ...
        assert len(fake.submits) == 2

It speaks (protocol notes ``docs/protocols/fal.md``):

- the queue: ``POST /{endpoint id}`` (``?fal_webhook=``), ``GET /{owner}/{app}/requests/{id}/status``
  (202 while queued or running, 200 when done), ``GET /{owner}/{app}/requests/{id}`` (the
  result), ``PUT /{owner}/{app}/requests/{id}/cancel``; status, result and cancel only at the
  app path, as on fal (§5);
- storage, as fal's official client uses it (§7, §11): ``POST /storage/auth/token?storage_type=
  fal-cdn-v3`` for a CDN token and ``POST /files/upload`` with it (flow B); ``POST
  /storage/upload/initiate`` and a ``PUT`` to a signed-looking URL on itself (flow A); uploaded
  files are served back at their URL;
- the output video at ``/outputs/{id}.mp4``;
- webhooks: a finished request's result is POSTed to its loopback ``fal_webhook``, signed with
  the fake's own Ed25519 key, whose public half is served at ``/.well-known/jwks.json`` (§6);
  ``POST /hooks/...`` is a sink that accepts any webhook (point jobs at ``fake.url + "/hooks/x"``).

Every request is recorded (method, path, query, headers, JSON body, raw body) in
``fake.requests``. Switches (``Switches`` in ``fake_model.py``) cover HTTP failures per
endpoint, Retry-After, a wrong key, a locked account, a slow submit, a COMPLETED status
carrying an error, a failing result, stale or tampered webhook deliveries and key rotation.

Needs the ``[fake]`` extra (starlette, uvicorn). Run standalone with
``python -m talkinghead_fal.fake --port 8000``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any
from urllib.parse import quote

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from talkinghead.testing.loopback import EarlyAnswer, FakeStorage, Recorded, entered, fake_arguments, run_fake
from talkinghead.testing.loopback import request_base as _base

from . import fake_apps, webhooks
from .fake_model import ENDPOINTS, ERRORS, LOCKED, FakeRequest, Switches
from .protocol import COMPLETED, IN_PROGRESS, IN_QUEUE

__all__ = ["ENDPOINTS", "FakeFal", "FakeRequest", "Recorded", "Switches", "serve"]


class FakeFal(FakeStorage):
    """The fake's state, switches and Starlette app. ``url`` is set by ``serve()``."""

    name = "fal"
    switches_type = Switches
    endpoints = ENDPOINTS
    file_name_key = "file_name"

    def __init__(self, *, video: bytes | None = None, **switches: Any) -> None:
        super().__init__(video=video, **switches)
        self.private_key = Ed25519PrivateKey.generate()  # signs webhook deliveries
        self.retired_keys: list[Ed25519PrivateKey] = []

    # -- for tests -----------------------------------------------------------------------

    def reset(self, **switches: Any) -> FakeFal:
        """Forget every request and file, and go back to the default switches (so one running
        server can serve many tests). The signing key is kept."""
        self.queue: dict[str, FakeRequest] = {}
        self.cdn_tokens: set[str] = set()
        return super().reset(**switches)

    def rotate_key(self) -> Ed25519PrivateKey:
        """Sign with a new key from now on; the JWKS publishes only the new one."""
        self.retired_keys.append(self.private_key)
        self.private_key = Ed25519PrivateKey.generate()
        return self.private_key

    @property
    def jwks(self) -> dict[str, Any]:
        return webhooks.jwks_for(self.private_key)

    def sign(self, body: bytes, request_id: str, **kwargs: Any) -> dict[str, str]:
        """Signature headers for ``body``, as the fake's deliveries carry them."""
        kwargs.setdefault("user_id", self.switches.webhook_user_id)
        return webhooks.sign(self.private_key, body, request_id=request_id, **kwargs)

    @property
    def submits(self) -> list[Recorded]:
        return self.requests_to("submit")

    # -- plumbing ------------------------------------------------------------------------

    def _error(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
        headers = {**(headers or {}), **self._retry_after(status)}
        return JSONResponse(body if body is not None else ERRORS.get(status, {"detail": "error"}),
                            status_code=status, headers=headers)

    def _failure(self, request: Request, status: int) -> Response | None:
        return self._error(status) if status >= 300 else None

    def _auth(self, rec: Recorded) -> Response | None:
        auth = rec.header("authorization") or ""
        if not auth.startswith("Key ") or not auth[4:].strip():
            return self._error(401, {"detail": "Missing authorization header"})
        if self.switches.api_key is not None and auth[4:] != self.switches.api_key:
            return self._error(401)
        return None

    def _urls(self, req: FakeRequest, base: str) -> dict[str, str]:
        root = f"{base}/{req.app}/requests/{req.id}"
        return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}

    def _lookup(self, request: Request, missing: Response | None = None) -> FakeRequest:
        """The request at this app path, else a 404 answer (``missing``, or fal's usual one)."""
        req = self.queue.get(request.path_params["rid"])
        app = f"{request.path_params['owner']}/{request.path_params['app']}"
        if req is None or req.app != app:
            raise EarlyAnswer(missing if missing is not None else self._error(404, {"detail": "Request not found"}))
        return req

    # -- storage (§7 flow B: a CDN token, then POST /files/upload) ------------------------------

    @entered("token", "POST /storage/auth/token")
    async def token(self, request: Request, rec: Recorded) -> Response:
        if request.query_params.get("storage_type") != "fal-cdn-v3" or not self.switches.cdn_tokens:
            return self._error(403, {"detail": "CDN token not available for this storage type"})
        token = "cdn-" + uuid.uuid4().hex
        self.cdn_tokens.add(token)
        expires = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(time.time() + 3600))
        return JSONResponse({"token": token, "token_type": "Bearer", "base_url": _base(request),
                             "expires_at": expires})

    @entered("cdn_upload", "POST /files/upload", auth=False)
    async def cdn_upload(self, request: Request, rec: Recorded) -> Response:
        if (rec.token or "") not in self.cdn_tokens:
            return self._error(401, {"detail": "Invalid or expired CDN token"})
        name = rec.header("x-fal-file-name") or "upload.bin"
        ctype = rec.header("content-type") or "application/octet-stream"
        fid = uuid.uuid4().hex[:12]
        self.files[fid] = {"file_name": name, "content_type": ctype, "data": rec.body, "storage_type": "fal-cdn-v3"}
        return JSONResponse({"access_url": f"{_base(request)}/files/{fid}/{quote(name)}"})

    # -- storage (§7 flow A) ---------------------------------------------------------------

    @entered("initiate", "POST /storage/upload/initiate")
    async def initiate(self, request: Request, rec: Recorded) -> Response:
        body = rec.json if isinstance(rec.json, dict) else {}
        name, ctype = body.get("file_name"), body.get("content_type")
        storage = request.query_params.get("storage_type")
        if storage not in self.switches.storage_types:
            return self._error(422, {"detail": [{"loc": ["query", "storage_type"],
                                                 "msg": f"unknown storage type {storage!r}", "type": "enum"}]})
        if not isinstance(name, str) or not name or not isinstance(ctype, str):
            return self._error(422, {"detail": [{"loc": ["body", "file_name"], "msg": "field required",
                                                 "type": "missing"}]})
        fid = uuid.uuid4().hex[:12]
        base = _base(request)
        self.files[fid] = {"file_name": name, "content_type": ctype, "data": None,
                           "storage_type": request.query_params.get("storage_type")}
        return JSONResponse({
            "upload_url": f"{self.switches.upload_base or base}/upload/{fid}"
                          f"?X-Goog-Expires=900&X-Goog-Signature=fakesig{fid[:6]}",
            "file_url": f"{base}/files/{fid}/{quote(name)}",
        })

    # -- the queue (§5) ------------------------------------------------------------------

    @entered("submit", "POST /{endpoint:path}")
    async def submit(self, request: Request, rec: Recorded) -> Response:
        s, queue = self.switches, self.queue  # a reset during the delay leaves the next test's queue alone
        if s.locked:
            return self._error(403, {"detail": LOCKED})
        if s.submit_delay:
            await asyncio.sleep(s.submit_delay)
        endpoint = request.path_params["endpoint"].strip("/")
        if len(endpoint.split("/")) < 2:
            return self._error(404, {"detail": f"Application {endpoint!r} not found"})
        if endpoint not in fake_apps.SCHEMAS:
            return self._error(404, {"detail": f"Application {endpoint!r} not found"})
        body = rec.json if isinstance(rec.json, dict) else {}
        invalid = fake_apps.check(endpoint, body)
        if invalid:  # the endpoint's input schema refuses it: nothing is queued
            return self._error(422, {"detail": invalid})
        webhook = request.query_params.get("fal_webhook")
        req = FakeRequest(str(uuid.uuid4()), endpoint, body, webhook, s.completed_error, s.result_error,
                          statuses=s.statuses, step_latency=s.step_latency)
        queue[req.id] = req
        base = _base(request)
        answer: dict[str, Any] = {"status": IN_QUEUE, "request_id": req.id}
        if s.submit_urls:
            answer.update(self._urls(req, base), queue_position=0)
        if webhook:
            answer["gateway_request_id"] = req.id
            if s.send_webhooks:
                self._spawn(self._deliver_webhook(req, base))
        return JSONResponse(answer, status_code=s.submit_status)

    @entered("status", "GET /{owner}/{app}/requests/{rid}/status")
    async def status(self, request: Request, rec: Recorded) -> Response:
        req = self._lookup(request)
        status = req.status()
        body: dict[str, Any] = {"status": status, "request_id": req.id, **self._urls(req, _base(request))}
        logs = request.query_params.get("logs") in ("1", "true")
        body["logs"] = None if not logs else (
            [] if status == IN_QUEUE else [{"message": "Generating video...", "level": "INFO", "source": "USER",
                                            "timestamp": "2026-08-01T10:00:05.123Z"}])
        if status == IN_QUEUE:
            body["queue_position"] = 0
        if status == COMPLETED:
            if IN_PROGRESS in req.statuses or req.cancelled:  # the model ran (only then is there a time)
                body["metrics"] = {"inference_time": 1.5}
            error = self._completed_error(req)
            if error:
                body["error"], body["error_type"] = error[0], error[1]
        return JSONResponse(body, status_code=200 if status == COMPLETED else 202)

    def _completed_error(self, req: FakeRequest) -> tuple[str, str, int] | None:
        if req.cancelled:
            return ("Request cancelled by client", "client_cancelled", 499)
        return req.completed_error

    @entered("result", "GET /{owner}/{app}/requests/{rid}")
    async def result(self, request: Request, rec: Recorded) -> Response:
        req = self._lookup(request)
        if req.status() != COMPLETED:
            return self._error(400, {"detail": "Request is still in progress"})
        code, body = self._outcome(req, _base(request))
        headers = {"x-fal-request-id": req.id}
        if code >= 300 and isinstance(body, dict) and body.get("error_type"):
            headers["X-Fal-Error-Type"] = body["error_type"]
        return JSONResponse(body, status_code=code, headers=headers)

    def _outcome(self, req: FakeRequest, base: str) -> tuple[int, Any]:
        error = self._completed_error(req)
        if error:
            return error[2], {"detail": error[0], "error_type": error[1]}
        if req.result_error:
            return req.result_error
        output: dict[str, Any] = {"video": {"url": f"{base}/outputs/{req.id}.mp4", "content_type": "video/mp4",
                                            "file_name": "output.mp4", "file_size": len(self.video)}}
        if self.switches.output_duration is not None:
            output["duration"] = self.switches.output_duration
        return 200, output

    @entered("cancel", "PUT /{owner}/{app}/requests/{rid}/cancel")
    async def cancel(self, request: Request, rec: Recorded) -> Response:
        req = self._lookup(request, JSONResponse({"status": "NOT_FOUND"}, status_code=404))
        if req.status() == COMPLETED:
            return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
        req.cancelled_at = time.monotonic()
        return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

    def _has_output(self, job_id: str) -> bool:
        return job_id in self.queue

    @entered("jwks", "GET /.well-known/jwks.json", auth=False)
    async def jwks_endpoint(self, request: Request, rec: Recorded) -> Response:
        return JSONResponse(self.jwks)

    # -- webhooks (§6) ---------------------------------------------------------------------

    def webhook_body(self, req: FakeRequest, base: str) -> dict[str, Any]:
        """What fal POSTs when ``req`` ends: ``OK`` with the output, or ``ERROR``."""
        code, output = self._outcome(req, base)
        body: dict[str, Any] = {"request_id": req.id, "gateway_request_id": req.id}
        if code < 300:
            body.update(status="OK", payload=output)
            if self.switches.webhook_payload_error:
                body.update(payload=None, payload_error="Output is not JSON serializable")
        else:
            body.update(status="ERROR", error=f"Invalid status code: {code}", payload=output)
        return body

    async def _deliver_webhook(self, req: FakeRequest, base: str) -> None:
        url = req.webhook
        if url is None:  # spawned only for a request that named one
            return
        generation = self._generation
        sent = 0  # statuses of req's path already delivered (each one once, none skipped)

        async def progress(upto: int) -> None:
            nonlocal sent
            while self.switches.webhook_progress and sent < upto and generation == self._generation:
                status, sent = req.statuses[sent], sent + 1
                raw = json.dumps({"request_id": req.id, "gateway_request_id": req.id, "status": status}).encode()
                headers = self.sign(raw, req.id, timestamp=int(time.time()))
                await self._deliver(url, {"url": url, "request_id": req.id, "headers": headers,
                                                  "body": raw, "status": status},
                                    content=raw, headers={**headers, "Content-Type": "application/json"})

        while req.status() != COMPLETED:
            if req.status() in req.statuses:
                await progress(req.statuses.index(req.status()) + 1)
            tick = req.step_latency / 4 if self.switches.webhook_progress else 0.05  # see every status
            await asyncio.sleep(max(0.005, min(req.ends_at - time.monotonic(), 0.05, tick)))
        await progress(len(req.statuses) - 1)  # any step passed between two looks
        if generation != self._generation:
            return  # the fake was reset meanwhile: this request belongs to a finished test
        s = self.switches
        raw = json.dumps(self.webhook_body(req, base)).encode()
        headers = self.sign(raw, req.id, timestamp=int(time.time() + s.webhook_timestamp_offset))
        if s.webhook_tamper:
            raw = raw.replace(b'"status": "OK"', b'"status": "ERROR"').replace(b"output.mp4", b"evil.mp4")
        delivery: dict[str, Any] = {"url": req.webhook, "request_id": req.id, "headers": headers, "body": raw}
        await self._deliver(url, delivery, content=raw, headers={**headers, "Content-Type": "application/json"})


serve = FakeFal.serving


def main(argv: list[str] | None = None) -> None:
    args = fake_arguments("Run the fake fal queue, storage and JWKS on 127.0.0.1.").parse_args(argv)
    run_fake(serve(port=args.port, step_latency=args.step_latency),
             "fake fal at {url} (Ctrl-C to stop; FAL_BASE_URL={url})")


if __name__ == "__main__":
    main()
