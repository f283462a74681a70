"""The inference.sh wire protocol as pure functions: envelopes, statuses, errors, outputs.

Nothing here does I/O, so every rule can be unit tested on plain dicts. Section numbers
refer to the protocol notes (``docs/protocols/inference-sh.md``), which say where each
fact was verified. Parsing is lenient throughout: the server has three envelope variants
(§1.1), two status numberings in the wild (§4) and loosely specified outputs (§7).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import urlsplit

from talkinghead.models import JobStatus, JobUpdate
from talkinghead.payload import parse_json as parse_json  # re-exported: the provider reads answers with it
from talkinghead.payload import seconds as _seconds
from talkinghead.payload import text as _str
from talkinghead.payload import whole_answer

# §4.1, the current numbering (Python SDK 0.36.0). 9 is *uploading*, 10 is *completed*.
STATUS_NAMES: tuple[str, ...] = (
    "unknown", "received", "queued", "dispatched", "preparing", "serving", "setting_up",
    "running", "cancelling", "uploading", "completed", "failed", "cancelled", "rejected",
)
COMPLETED, FAILED, CANCELLED, REJECTED = 10, 11, 12, 13
TERMINAL_STEPS = frozenset({COMPLETED, FAILED, CANCELLED, REJECTED})

_JOB_STATUS: dict[str, JobStatus] = {
    "unknown": JobStatus.QUEUED,      # the task exists; nothing more is known yet
    "received": JobStatus.QUEUED,
    "queued": JobStatus.QUEUED,
    "dispatched": JobStatus.QUEUED,
    "preparing": JobStatus.RUNNING,
    "serving": JobStatus.RUNNING,
    "setting_up": JobStatus.RUNNING,
    "running": JobStatus.RUNNING,
    "cancelling": JobStatus.RUNNING,  # not over until 12 arrives
    "uploading": JobStatus.RUNNING,   # the output is still being stored: NOT completed
    "completed": JobStatus.COMPLETED,
    "failed": JobStatus.FAILED,
    "cancelled": JobStatus.CANCELLED,
    "rejected": JobStatus.FAILED,     # refused at admission (no balance): never ran
}

# Coarse progress from the status step: the app reports nothing finer (§5).
_PROGRESS: dict[str, float] = {
    "unknown": 0.0, "received": 2.0, "queued": 5.0, "dispatched": 8.0, "preparing": 12.0,
    "serving": 15.0, "setting_up": 20.0, "running": 40.0, "uploading": 90.0, "completed": 100.0,
}

# Spellings a future string-status API might use; cheap to accept.
_ALIASES = {
    "canceled": "cancelled", "canceling": "cancelling", "complete": "completed",
    "succeeded": "completed", "success": "completed", "error": "failed", "pending": "queued",
    "scheduled": "dispatched", "in_progress": "running", "processing": "running",
    "setting-up": "setting_up", "setup": "setting_up",
}

_BILLING_CODES = frozenset({"payment_required", "payment_method_required", "limit_exceeded",
                            "insufficient_balance", "insufficient_funds", "insufficient_credits"})
_BILLING_TEXT = re.compile(r"insufficient\s+(balance|funds|credits?)|payment (method )?required|"
                           r"no payment method|out of credits", re.IGNORECASE)
_CONTENT_TEXT = re.compile(r"risk control|content polic|moderation|inappropriate|"
                           r"sensitive content|safety (check|filter|system)", re.IGNORECASE)


# -- envelopes (§1.1) ------------------------------------------------------------------------

def unwrap(payload: Any) -> Any:
    """The DTO inside any envelope: ``{"data": ...}`` (v1 and the SDK's "v3") is unwrapped,
    anything else (v2 bare DTOs, lists) is returned as it is. Task and file DTOs have no
    top-level ``data`` key, so this is safe."""
    if isinstance(payload, dict) and "data" in payload:
        return payload["data"]
    return payload


def is_error_envelope(payload: Any) -> bool:
    """A v1 error body (``success: false``), which a server could send even with HTTP 200."""
    return isinstance(payload, dict) and payload.get("success") is False


def error_message(payload: Any, text: str = "") -> tuple[str, str | None]:
    """``(message, code)`` from an error body, in the SDK's order of preference (§10):
    problem+json ``detail``/``title``, a ``message``, v1 ``error.message``; then the whole
    JSON, or the first 500 characters of a non-JSON body. The code is what follows
    ``/errors/`` in ``type``, or v1's ``error.code``."""
    code: str | None = None
    message: str | None = None
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            code = _str(err.get("code"))
            message = _str(err.get("message")) or _str(err.get("detail"))
        elif isinstance(err, str) and err.strip():
            message = err
        type_ = _str(payload.get("type"))
        if type_ and "/errors/" in type_:
            code = type_.rsplit("/errors/", 1)[1].strip("/") or code
        code = code or _str(payload.get("code"))
        message = (_str(payload.get("detail")) or _str(payload.get("title"))
                   or _str(payload.get("message")) or message)
        errors = payload.get("errors")
        if isinstance(errors, list) and errors:  # 412 requirements not met
            parts = [_str(e.get("message")) or _str(e.get("key")) for e in errors if isinstance(e, dict)]
            listed = "; ".join(p for p in parts if p)
            if listed:
                message = f"{message}: {listed}" if message else listed
    return message or whole_answer(payload, text), code


def is_billing_problem(status_code: int | None, code: str | None, message: str | None) -> bool:
    """Insufficient balance, missing payment method or a plan limit (HTTP 402 and friends)."""
    if status_code == 402 or (code and code.lower() in _BILLING_CODES):
        return True
    return bool(message and _BILLING_TEXT.search(message))


# -- statuses (§4) ---------------------------------------------------------------------------

@dataclass(frozen=True)
class StatusInfo:
    status: JobStatus
    name: str                 # the platform's name for it ("running", "uploading", ...)
    step: int | None          # the number, when known under the current numbering
    progress: float | None

    @property
    def terminal(self) -> bool:
        return self.status.terminal


def status_name(status: Any, status_text: Any = None) -> str:
    """The platform's status name. ``status_text`` wins when it is a known name: that is how
    an ambiguous number (old table: 9 = completed) is settled (§4.2)."""
    text = _norm(status_text)
    if text in _JOB_STATUS:
        return text
    if isinstance(status, bool):
        return "unknown"
    if isinstance(status, int):
        return STATUS_NAMES[status] if 0 <= status < len(STATUS_NAMES) else f"status {status}"
    if isinstance(status, str):
        word = _norm(status)
        if word.isdigit():
            return status_name(int(word))
        return word or "unknown"
    return "unknown" if status is None else f"status {status!r}"


def map_status(status: Any, status_text: Any = None) -> StatusInfo:
    """A status number or name to a ``JobStatus``. Unknown values are never fatal: they count
    as running, so the job keeps being watched."""
    name = status_name(status, status_text)
    job_status = _JOB_STATUS.get(name, JobStatus.RUNNING)
    step = STATUS_NAMES.index(name) if name in STATUS_NAMES else None
    return StatusInfo(job_status, name, step, _PROGRESS.get(name))


def _norm(value: Any) -> str:
    if not isinstance(value, str):
        return ""
    word = value.strip().lower().replace(" ", "_")
    return _ALIASES.get(word, word)


# -- task objects (§7) -----------------------------------------------------------------------

def output_url(output: Any) -> str | None:
    """The video URL of a task output, leniently: ``output.video.uri``, ``output.video.url``,
    ``output.video`` as a plain string, or a string/``uri``/``url`` output itself."""
    if isinstance(output, str):
        return output.strip() or None
    if not isinstance(output, dict):
        return None
    for key in ("video", "output", "result"):
        url = _file_url(output.get(key))
        if url:
            return url
    return _file_url(output) or _str(output.get("video_url"))


def _file_url(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        return _str(value.get("uri")) or _str(value.get("url"))
    if isinstance(value, list) and value:
        return _file_url(value[0])
    return None


def output_seconds(output: Any) -> float | None:
    """``output.output_meta.outputs[0].seconds``: the duration the app bills (§11)."""
    try:
        return _seconds(output["output_meta"]["outputs"][0]["seconds"])
    except (KeyError, IndexError, TypeError):
        return None


def task_id_of(task: Any) -> str | None:
    if not isinstance(task, dict):
        return None
    value = task.get("id") or task.get("task_id")
    return str(value) if value not in (None, "") else None


def error_kind_for(info: StatusInfo, error: str | None) -> str | None:
    if info.name == "rejected":
        return "billing"
    if info.status is JobStatus.FAILED and error:
        if _BILLING_TEXT.search(error):
            return "billing"
        if _CONTENT_TEXT.search(error):
            return "content_policy"
    return None


def task_update(task: Mapping[str, Any]) -> JobUpdate:
    """A ``JobUpdate`` from a task object (a GET, a create answer, a stream snapshot or a
    webhook body)."""
    info = map_status(task.get("status"), task.get("status_text"))
    output = task.get("output")
    error: str | None = None
    if info.status is JobStatus.FAILED:
        error = _str(task.get("error")) or ("rejected: insufficient balance or no payment method"
                                            if info.name == "rejected" else "task failed")
    return JobUpdate(
        status=info.status,
        task_id=task_id_of(dict(task)),
        progress=info.progress,
        message=info.name,
        output_url=output_url(output) if info.status is JobStatus.COMPLETED else None,
        duration_s=output_seconds(output),
        # what the app bills by (§11): output_meta's seconds, reported once the task ended
        billed_seconds=output_seconds(output) if info.status is JobStatus.COMPLETED else None,
        error=error,
        error_kind=error_kind_for(info, error),
    )


# -- finding a task whose create answer was lost ----------------------------------------------

_WEBHOOK_TOKEN = re.compile(r"/webhooks/[^/?#]+/([^/?#]+)")


def list_body(limit: int, cursor: str | None = None) -> dict[str, Any]:
    """A ``POST /tasks/list`` body: the JS SDK's ``tasks.list`` sends a ``CursorListRequest``
    (types of the Python SDK 0.36.0: ``cursor``, ``limit``, ``sort`` [{field, dir}], ...).
    Newest first; no server-side filter is relied on (their semantics are not documented)."""
    body: dict[str, Any] = {"limit": limit, "sort": [{"field": "created_at", "dir": "desc"}]}
    if cursor:
        body["cursor"] = cursor
    return body


def list_page(payload: Any) -> tuple[list[dict[str, Any]], str | None]:
    """``(items, next_cursor)`` of a ``CursorListResponse`` (``next_cursor`` only if ``has_next``)."""
    page = unwrap(payload)
    if isinstance(page, list):
        return [t for t in page if isinstance(t, dict)], None
    if not isinstance(page, dict):
        return [], None
    items = [t for t in page.get("items") or [] if isinstance(t, dict)]
    cursor = page.get("next_cursor")
    more = page.get("has_next", bool(cursor))
    return items, (str(cursor) if more and cursor else None)


def created_at(task: Mapping[str, Any]) -> datetime | None:
    value = task.get("created_at")
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_jobs_task(task: Mapping[str, Any], *, token_hash: str | None, mode: str,
                 sources: Mapping[str, str | None]) -> bool:
    """Whether a listed task is the one a job's lost create made. With a webhook, only the
    per-job token in its URL can say so (compared by hash: the journal keeps only that). Else
    the inputs: the same mode, each URL input the same URL (query aside), each uploaded input a
    file of the same name (``sources``: field -> the journaled source)."""
    if token_hash is not None:
        match = _WEBHOOK_TOKEN.search(str(task.get("webhook") or ""))
        return match is not None and hashlib.sha256(match.group(1).encode()).hexdigest() == token_hash
    given = task.get("input")
    if not isinstance(given, dict):
        given = {}
    if given.get("mode", "std") != mode:
        return False
    for field, source in sources.items():
        sent = given.get(field)
        if not source or not isinstance(sent, str):
            return False
        if source.startswith(("http://", "https://")):
            if sent.split("?", 1)[0] != source.split("?", 1)[0]:
                return False
        elif PurePosixPath(urlsplit(sent).path).stem != PurePosixPath(source.replace("\\", "/")).stem:
            return False
    return True


def first_file(payload: Any) -> dict[str, Any] | None:
    """The FileDTO from a ``POST /files`` answer: a list under v2, inside ``data`` under v1
    (§6); tolerate a ``{"files": [...]}`` object or a single DTO too."""
    body = unwrap(payload)
    if isinstance(body, dict) and isinstance(body.get("files"), list):
        body = body["files"]
    if isinstance(body, list):
        body = body[0] if body else None
    return body if isinstance(body, dict) else None


# -- requests (§3, §6) ----------------------------------------------------------------------

_EXTENSIONS = {"jpeg": (".jpg", ".jpeg"), "png": (".png",), "mp3": (".mp3",), "wav": (".wav",),
               "m4a": (".m4a",), "aac": (".aac",)}
_CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "mp3": "audio/mpeg", "wav": "audio/wav",
                  "m4a": "audio/mp4", "aac": "audio/aac"}


def run_body_for(app: str, inputs: dict[str, Any], *, webhook: str | None) -> dict[str, Any]:
    """The ``POST /apps/run`` body for any app: its input fields as mapped by ``routes.py``,
    and ``webhook`` only when given. Fields without a value are left out, never sent as null."""
    body: dict[str, Any] = {"app": app, "input": {k: v for k, v in inputs.items() if v is not None}}
    if webhook:
        body["webhook"] = webhook
    return body


def upload_filename(filename: str | None, format: str | None, field: str = "file") -> str:
    """A filename whose extension matches the content. The app transcodes audio whose URL does
    not end in ``.mp3``/``.wav`` (§11), so mp3 and wav must carry those extensions."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name or field
    extensions = _EXTENSIONS.get(format or "")
    if not extensions:
        return name
    path = PurePosixPath(name)
    if path.suffix.lower() in extensions:
        return name
    return f"{path.stem or field}{extensions[0]}"


def content_type_for(format: str | None) -> str:
    return _CONTENT_TYPES.get(format or "", "application/octet-stream")


# -- the NDJSON stream (§5) ------------------------------------------------------------------

LineKind = Literal["heartbeat", "task", "ignore", "bad"]


def parse_stream_line(line: str | bytes) -> tuple[LineKind, dict[str, Any] | None]:
    """Classify one stream line: a heartbeat, task fields (from a partial ``{data, fields}``
    line, a ``{data}``-wrapped or a bare full snapshot), something to ignore (blank lines,
    SSE comments and event names, LLM deltas), or a bad line (not a JSON object)."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    text = line.strip()
    if not text or text.startswith(":") or text.startswith(("event:", "id:", "retry:")):
        return "ignore", None
    if text.startswith("data:"):  # the pre-2026-03 SSE form carried the same JSON
        text = text[5:].strip()
    try:
        obj = json.loads(text)
    except ValueError:
        return "bad", None
    if not isinstance(obj, dict):
        return "bad", None
    if obj.get("type") == "heartbeat":
        return "heartbeat", None
    if obj.get("event") == "delta":  # LLM token deltas; video apps never send them
        return "ignore", None
    data = obj.get("data")
    if isinstance(data, dict) and ("fields" in obj or not ({"id", "status"} & obj.keys())):
        return "task", data
    if {"id", "status", "output", "error"} & obj.keys():
        return "task", obj
    return "ignore", None


def merge(snapshot: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """Fold a partial update into the last known task (a partial line may omit ``output``)."""
    snapshot.update(fields)
    return snapshot


# -- secrets ---------------------------------------------------------------------------------

def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every credential replaced, so no error message can carry one."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text

