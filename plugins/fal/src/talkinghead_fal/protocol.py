"""The fal queue protocol for Kling AI Avatar, as pure functions (no I/O).

Every rule comes from the protocol notes (``docs/protocols/fal.md``; section numbers below),
which tag each fact with where it was verified: fal's client source, fal's docs, third
parties, or inference. Parsing is lenient where the notes say shapes vary (two ``detail``
forms, optional status fields) and strict where money is at stake (a ``COMPLETED`` status is
not success until the result has been read, §5.2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from talkinghead.models import JobStatus, JobUpdate
from talkinghead.payload import parse_json as parse_json  # re-exported: the provider reads answers with it
from talkinghead.payload import seconds as _seconds
from talkinghead.payload import text as _str
from talkinghead.payload import whole_answer

# §4: hosts. The JWKS host is uncertain (§6, §11): configurable.
QUEUE_URL = "https://queue.fal.run"
QUEUE_BACKUP_HOST = "queue.falrun.com"  # fal's documented backup queue host (§4)
REST_URL = "https://rest.fal.ai"
CDN_URL = "https://v3.fal.media"  # where fal_client POSTs a file with a CDN token (§7 B, §11)
JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json"

# §1: the tier is chosen by the endpoint id; there is no `mode` field (§2).
ENDPOINTS: dict[str, str] = {
    "std": "fal-ai/kling-video/ai-avatar/v2/standard",
    "pro": "fal-ai/kling-video/ai-avatar/v2/pro",
}
PRICES: dict[str, float] = {"std": 0.0562, "pro": 0.115}
# §7, §11: how files are uploaded, as the official Python client does it: a CDN token
# (``storage/auth/token?storage_type=fal-cdn-v3``) then ``POST {cdn}/files/upload``; when that
# fails, ``storage/upload/initiate?storage_type=gcs`` then a PUT to the signed URL.
STORAGE_CDN = "fal-cdn-v3"
STORAGE_GCS = "gcs"
STORAGE_TYPES = (STORAGE_CDN, STORAGE_GCS)
URL_KEYS = ("status_url", "response_url", "cancel_url")
LOGS_PARAM = {"logs": "1"}   # §5.2: the docs' and JS client's form (the Python client sends "true")

# §5.2: the three statuses. Anything else is an error to both official clients; we keep
# watching instead (see ``status_update``).
IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
_PROGRESS = {IN_QUEUE: 5.0, IN_PROGRESS: 40.0, COMPLETED: 100.0}

_BILLING = re.compile(r"user is locked|exhausted balance|insufficient (balance|funds|credits?)|"
                      r"out of credits|payment (method )?required|billing", re.IGNORECASE)
_CONTENT = re.compile(r"content.?polic|nsfw|moderation|inappropriate|sensitive content|"
                      r"safety (check|filter|system)|risk control", re.IGNORECASE)
_CANCELLED_TYPES = frozenset({"client_cancelled"})
# fal's input field -> ours, for an InputError that names the field the user gave.
_FIELDS = {"image_url": "image", "audio_url": "audio", "prompt": "prompt"}


# -- URLs (§5, the URL rule) ----------------------------------------------------------------

def endpoint_for(mode: str) -> str:
    return ENDPOINTS[mode]


def app_path(endpoint: str) -> str:
    """``{owner}/{app}`` of an endpoint id: status, result and cancel drop the subpath, so
    ``fal-ai/kling-video/ai-avatar/v2/pro`` -> ``fal-ai/kling-video``."""
    parts = [p for p in endpoint.strip("/").split("/") if p]
    if len(parts) < 2:
        raise ValueError(f"not a fal endpoint id: {endpoint!r}")
    return "/".join(parts[:2])


def returned_urls(payload: Any, queue_url: str) -> dict[str, str]:
    """The ``status_url``/``response_url``/``cancel_url`` of a submit answer (§5.1: fal's docs
    advise using them), kept only when each is on our queue host (or fal's backup queue host):
    our key is sent to them, so a URL elsewhere is never trusted (it is rebuilt instead)."""
    if not isinstance(payload, dict):
        return {}
    ours = _origin(queue_url)
    kept = {}
    for key in URL_KEYS:
        value = payload.get(key)
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            origin = _origin(value)
            if origin == ours or (origin[0] == "https" and origin[1] == QUEUE_BACKUP_HOST):
                kept[key] = value
    return kept


def _origin(url: str) -> tuple[str, str]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.scheme, parts.netloc.lower()


def metrics_ran(payload: Any) -> bool:
    """Whether a ``COMPLETED`` status says the model ran (``metrics.inference_time`` > 0):
    then a 422 from its result "may be charged" (fal docs, errors)."""
    metrics = payload.get("metrics") if isinstance(payload, dict) else None
    value = metrics.get("inference_time") if isinstance(metrics, dict) else None
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def request_path(endpoint: str, request_id: str, action: str = "") -> str:
    """The queue path of one request: ``{owner}/{app}/requests/{id}[/status|/cancel]``."""
    path = f"/{app_path(endpoint)}/requests/{request_id}"
    return f"{path}/{action}" if action else path


# -- bodies (§2, §7) ------------------------------------------------------------------------

def submit_body(*, image_url: str, audio_url: str, prompt: str | None) -> dict[str, Any]:
    """The avatar input. ``prompt`` is left out when there is none (fal's default is ``"."``)."""
    body: dict[str, Any] = {"image_url": image_url, "audio_url": audio_url}
    if prompt is not None:
        body["prompt"] = prompt
    return body


def submit_params(webhook: str | None) -> dict[str, str]:
    """``fal_webhook`` only when a webhook is wanted (§6); httpx URL-encodes it."""
    return {"fal_webhook": webhook} if webhook else {}


def initiate_body(file_name: str, content_type: str) -> dict[str, str]:
    return {"file_name": file_name, "content_type": content_type}


# -- parsing ---------------------------------------------------------------------------------


def request_id_of(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    value = payload.get("request_id")
    return value.strip() if isinstance(value, str) and value.strip() else None


def status_update(payload: Any, request_id: str) -> JobUpdate:
    """A status read (§5.2) as an update. ``COMPLETED`` comes back as ``completed`` with no
    output: the caller must read the result to learn whether it succeeded. An unknown status
    counts as running (the job keeps being watched and can be resumed; both official clients
    raise instead, which would abandon a job that may still finish and be billed)."""
    body = payload if isinstance(payload, dict) else {}
    status = body.get("status")
    name = status.strip().upper() if isinstance(status, str) else ""
    if name == IN_QUEUE:
        position = body.get("queue_position")
        message = "in queue" + (f" (position {position})" if isinstance(position, int) else "")
        return JobUpdate(status=JobStatus.QUEUED, task_id=request_id, progress=_PROGRESS[name], message=message)
    if name == IN_PROGRESS:
        return JobUpdate(status=JobStatus.RUNNING, task_id=request_id, progress=_PROGRESS[name],
                         message=last_log(body.get("logs")) or "in progress")
    if name == COMPLETED:
        return JobUpdate(status=JobStatus.COMPLETED, task_id=request_id, message="completed")
    return JobUpdate(status=JobStatus.RUNNING, task_id=request_id,
                     message=f"unrecognised status {status!r}" if status else "no status")


def status_error(payload: Any) -> tuple[str | None, str | None]:
    """``(error, error_type)`` a ``COMPLETED`` status may carry (§5.2), e.g.
    ``("Runner disconnected", "runner_disconnected")``."""
    if not isinstance(payload, dict):
        return None, None
    return _str(payload.get("error")), _str(payload.get("error_type"))


def last_log(logs: Any) -> str | None:
    """The last log line's message (``logs`` may be null or missing, §5.2)."""
    if not isinstance(logs, list):
        return None
    for entry in reversed(logs):
        if isinstance(entry, dict) and (message := _str(entry.get("message"))):
            return message[:200]
    return None


def output_url(output: Any) -> str | None:
    """``video.url`` of the output (§3); a bare string ``video`` is tolerated."""
    if not isinstance(output, dict):
        return None
    video = output.get("video")
    if isinstance(video, str):
        return video.strip() or None
    if isinstance(video, dict):
        return _str(video.get("url"))
    return None


def output_seconds(output: Any) -> float | None:
    """``duration`` of the output in seconds (§3): what fal bills by."""
    return _seconds(output.get("duration")) if isinstance(output, dict) else None


def result_update(output: Any, request_id: str) -> JobUpdate | None:
    """A 200 result (§5.3) as a completed update, or ``None`` if it holds no video URL."""
    url = output_url(output)
    if not url:
        return None
    seconds = output_seconds(output)
    return JobUpdate(status=JobStatus.COMPLETED, task_id=request_id, progress=100.0, message="completed",
                     output_url=url, duration_s=seconds, billed_seconds=seconds)  # fal bills output seconds


def failure_update(request_id: str, message: str, *, error_type: str | None = None,
                   status_code: int | None = None) -> JobUpdate:
    """A request that ended without a video: failed, or cancelled when fal says the client
    cancelled it (``client_cancelled``, §5.5)."""
    kind = error_kind(status_code, message, error_type)
    status = JobStatus.CANCELLED if error_type in _CANCELLED_TYPES else JobStatus.FAILED
    return JobUpdate(status=status, task_id=request_id, message=error_type or "failed",
                     error=message, error_kind=kind)


# -- errors (§5.5) ---------------------------------------------------------------------------

def error_info(payload: Any, text: str = "", header_type: str | None = None
               ) -> tuple[str, str | None, str | None]:
    """``(message, error_type, field)`` from an error body of either shape: a ``detail`` list
    of ``{loc, msg, type}`` (validation), a ``detail`` string with ``error_type`` (request
    errors), or a plain ``error``/``message``. ``error_type`` falls back to the
    ``X-Fal-Error-Type`` header, then to the first validation ``type``; ``field`` is ours
    (``image``, ``audio``, ``prompt``) when the validation ``loc`` names one."""
    error_type = header_type.strip() if header_type and header_type.strip() else None
    field: str | None = None
    message: str | None = None
    if isinstance(payload, dict):
        error_type = _str(payload.get("error_type")) or error_type
        detail = payload.get("detail")
        if isinstance(detail, list) and detail:
            parts = []
            for item in detail:
                if not isinstance(item, dict):
                    continue
                loc = [str(p) for p in item.get("loc") or [] if p != "body"]
                where = ".".join(loc)
                field = field or _FIELDS.get(loc[0] if loc else "")
                msg = _str(item.get("msg")) or _str(item.get("type")) or "invalid"
                parts.append(f"{where}: {msg}" if where else msg)
                error_type = error_type or _str(item.get("type"))
            message = "; ".join(parts) or None
        elif isinstance(detail, str):
            message = _str(detail)
        message = message or _str(payload.get("error")) or _str(payload.get("message"))
    return message or whole_answer(payload, text), error_type, field


def is_billing_problem(status_code: int | None, message: str | None, error_type: str | None = None) -> bool:
    """No balance: HTTP 402, or a locked account ("User is locked. Reason: Exhausted
    balance", reported with 403, §5.5)."""
    if status_code == 402:
        return True
    return bool(_BILLING.search(message or "") or _BILLING.search(error_type or ""))


def is_content_policy(message: str | None, error_type: str | None = None) -> bool:
    return bool(_CONTENT.search(message or "") or _CONTENT.search(error_type or ""))


def error_kind(status_code: int | None, message: str | None, error_type: str | None) -> str | None:
    """The failure's kind, for ``JobFailed.kind``: ``content_policy``, ``billing``,
    ``input`` (400/422 validation), ``cancelled``, or fal's own ``error_type``."""
    if is_content_policy(message, error_type):
        return "content_policy"
    if is_billing_problem(status_code, message, error_type):
        return "billing"
    if error_type in _CANCELLED_TYPES:
        return "cancelled"
    if status_code in (400, 422) or (message and "status code: 422" in message):
        return "input"
    return error_type


# -- webhooks (§6) ----------------------------------------------------------------------------

def webhook_update(payload: Any, *, delivery_id: str | None = None) -> JobUpdate:
    """A webhook body as an update. Raises ``ValueError`` for a body that is not fal's.

    ``OK`` with a video: completed. ``OK`` whose ``payload`` is null (``payload_error``, the
    output could not be serialised): still running as far as we know, so the core's poll reads
    the result from the queue. ``ERROR``: failed, with fal's error and the ``detail`` of the
    payload."""
    if not isinstance(payload, dict):
        raise ValueError("the body is not a JSON object")
    request_id = request_id_of(payload)
    if not request_id:
        raise ValueError("the body has no request_id")
    status = payload.get("status")
    inner = payload.get("payload")
    if status == "OK":
        update = result_update(inner, request_id)
        if update is not None:
            return update.model_copy(update={"delivery_id": delivery_id})
        reason = _str(payload.get("payload_error")) or "no video in the payload"
        return JobUpdate(status=JobStatus.RUNNING, task_id=request_id, delivery_id=delivery_id,
                         message=f"webhook without output ({reason[:200]}); the result is read from the queue")
    if status == "ERROR":
        detail, error_type, _ = error_info(inner) if isinstance(inner, dict) else (None, None, None)
        error = _str(payload.get("error")) or "request failed"
        message = f"{error}: {detail}" if detail and detail != error else error
        status_code = _status_in(error)
        if status_code == 422:
            # A 422 after the model ran "may be charged": whether it ran is in the request's
            # status, which the webhook does not carry; the queue is read before it is settled.
            return JobUpdate(status=JobStatus.RUNNING, task_id=request_id, delivery_id=delivery_id,
                             message=f"webhook: {message[:200]}; the queue is read to settle it")
        return failure_update(request_id, message, error_type=error_type,
                              status_code=status_code).model_copy(update={"delivery_id": delivery_id})
    if status in (IN_QUEUE, IN_PROGRESS):
        raise NonTerminal(f"a {status} delivery for request {request_id}: nothing to apply")
    raise ValueError(f"unknown webhook status {status!r}")


class NonTerminal(ValueError):
    """A webhook delivery for a request still queued or running (one guide says fal may send
    them; fal's docs describe only OK/ERROR): answered 200, applied never."""


def _status_in(error: str) -> int | None:
    """The HTTP status in fal's ``"Invalid status code: 422"`` webhook error."""
    match = re.search(r"status code:?\s*(\d{3})", error, re.IGNORECASE)
    return int(match.group(1)) if match else None


# -- secrets ---------------------------------------------------------------------------------

def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every credential (and each half of an ``id:secret`` key) replaced."""
    for secret in secrets:
        if not secret:
            continue
        for part in (secret, *secret.split(":")):
            if len(part) >= 6:
                text = text.replace(part, "***")
    return text


def headers_lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}

