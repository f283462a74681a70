"""The nouns of talkinghead (see docs/concepts.md): request, route, quote, job, update, result."""

from __future__ import annotations

import enum
import hashlib
import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, model_validator

from .errors import InputError

Mode = Literal["std", "pro"]
AspectRatio = Literal["16:9", "9:16", "1:1"]
MODES: tuple[str, ...] = get_args(Mode)
ASPECT_RATIOS: tuple[str, ...] = get_args(AspectRatio)
PROMPT_MAX_CHARS = 2500

MB = 1024 * 1024


def redact_url(url: str) -> str:
    """A callback URL without what makes it a capability: its query and our receiver's token."""
    base = url.split("?", 1)[0].split("#", 1)[0]
    return re.sub(r"(/webhooks/[^/]+/)[^/]+$", r"\1[token]", base)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_job_id() -> str:
    # Sortable by creation time, unguessable enough to double as a webhook path part.
    return f"j{int(utcnow().timestamp() * 1000):x}{secrets.token_hex(6)}"


class AvatarRequest(BaseModel):
    """What the user wants: a face, and audio or text for it to speak.

    ``image`` and ``audio`` take a local path, an http(s) URL, a data URI or base64 text.
    Exactly one of ``audio`` and ``text`` is given. Bad values raise ``InputError``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    image: str | Path
    audio: str | Path | None = None
    text: str | None = None
    prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    mode: Mode = "std"
    aspect_ratio: AspectRatio = "16:9"
    voice: str | None = None

    def __init__(self, **data: Any) -> None:
        # A typed InputError naming field, value and limit, rather than pydantic's report.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise input_error_from(exc) from None

    @model_validator(mode="after")
    def _audio_xor_text(self) -> AvatarRequest:
        if (self.audio is None) == (self.text is None):
            which = "both were given" if self.audio is not None else "neither was given"
            raise ValueError(f"give exactly one of audio and text; {which}")
        if self.text is not None and not self.text.strip():
            raise ValueError("text is empty")
        return self

    def digest(self) -> str:
        """Stable hash of the request, used to spot a request already done (batch, resume)."""
        raw = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(raw).hexdigest()[:32]


def input_error_from(exc: ValidationError) -> InputError:
    err = exc.errors(include_url=False)[0]
    # The field itself: a union's member ("image.str", "image.function-after[...]") is noise.
    field = str(err["loc"][0]) if err["loc"] else "request"
    value, ctx = err.get("input"), err.get("ctx") or {}
    if err["type"] == "string_too_long":
        limit = ctx.get("max_length")
        return InputError(field, f"{len(value)} characters is longer than the {limit} maximum",
                          value=len(value), limit=limit)
    if err["type"] == "literal_error":
        return InputError(field, f"{value!r} is not one of {ctx.get('expected')}", value=value,
                          limit=ctx.get("expected"))
    if err["type"] == "value_error" and not err["loc"]:
        msg = str(ctx.get("error", err["msg"]))
        return InputError("text" if "text is empty" in msg else "audio", msg)
    shown = repr(value) if not isinstance(value, (str, bytes)) or len(value) < 80 else f"<{len(value)} chars>"
    return InputError(field, f"{err['msg'].lower()} (got {shown})", value=value)


class Limits(BaseModel):
    """What a route accepts. Shared defaults are Kling Avatar's published limits."""

    model_config = ConfigDict(frozen=True)

    image_formats: tuple[str, ...] = ("jpeg", "png")
    image_max_bytes: int = 10 * MB
    image_min_side: int | None = None
    image_aspect_range: tuple[float, float] | None = None  # width/height, inclusive
    audio_formats: tuple[str, ...] = ("mp3", "wav", "m4a", "aac")
    audio_max_bytes: int = 5 * MB
    audio_min_seconds: float = 2.0
    audio_max_seconds: float = 300.0
    prompt_max_chars: int = PROMPT_MAX_CHARS
    text_max_chars: int | None = None


class Route(BaseModel):
    """One provider serving one model, with its own prices and limits."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    modes: tuple[Mode, ...] = ("std", "pro")
    price_per_second: dict[str, float]  # USD per second of output, by mode
    aspect_ratios: tuple[AspectRatio, ...] = ("16:9", "9:16", "1:1")
    native_text: bool = False  # accepts text without the core synthesizing audio first
    limits: Limits = Limits()
    # The router's first preference when no provider is named: cloud routes, then the local
    # renderer (the default with no credentials), then test doubles.
    kind: Literal["cloud", "local", "test"] = "cloud"
    price_source: str = ""
    price_date: str = ""  # ISO date the price was read from its source

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"


class Quote(BaseModel):
    """A route's cost estimate for one request: seconds x price for the mode."""

    model_config = ConfigDict(frozen=True)

    provider: str
    model: str
    mode: Mode
    seconds: float
    price_per_second: float
    cost_usd: float
    upper_bound: bool = False  # duration unknown before the run (URL audio, text): max is quoted
    currency: Literal["USD"] = "USD"

    @property
    def route_id(self) -> str:
        return f"{self.provider}/{self.model}"


class JobStatus(str, enum.Enum):
    CREATED = "created"        # journaled, create call not yet answered
    QUEUED = "queued"          # accepted by the backend
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"        # create sent, no answer: may exist and be billed; never resent
    LOST = "lost"              # the backend no longer knows the task (404): may have been billed

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobUpdate(BaseModel):
    """One observation of a job: from a poll, a stream line or a webhook."""

    status: JobStatus
    task_id: str | None = None
    progress: float | None = Field(default=None, ge=0, le=100)
    message: str | None = None
    output_url: str | None = None
    duration_s: float | None = None  # output length as the backend reports it (for billing)
    error: str | None = None
    error_kind: str | None = None  # "content_policy", "billing", ... when the backend says
    delivery_id: str | None = None  # a webhook delivery's own id, for replay protection
    # What the backend reported as billed, in whichever terms it gives (settling prefers
    # these to the quote): its own units (Kling's final_unit_deduction), seconds of output,
    # or money. ``billed_usd`` is set by a provider that can convert its units.
    billed_units: float | None = Field(default=None, ge=0)
    billed_seconds: float | None = Field(default=None, ge=0)
    billed_usd: float | None = Field(default=None, ge=0)
    # Facts a provider keeps about its task between calls (e.g. the status/result/cancel URLs
    # fal's submit answer gives); merged into ``Job.provider_data``. Never secrets.
    provider_data: dict[str, str] | None = None


BILLED = ("billed_units", "billed_seconds", "billed_usd")


class Job(BaseModel):
    """One submitted request: local id, route, provider task id, status, costs."""

    id: str = Field(default_factory=new_job_id)
    provider: str
    model: str
    mode: Mode = "std"
    status: JobStatus = JobStatus.CREATED
    task_id: str | None = None
    quote: Quote | None = None
    request_digest: str | None = None
    input_summary: dict[str, Any] = Field(default_factory=dict)
    webhook_url: str | None = None  # serialized without its query or token: it is a capability
    webhook_token_hash: str | None = None  # sha256 of the per-job token our receiver checks
    progress: float | None = None
    output_url: str | None = None
    output_path: str | None = None
    # Where the user asked for the video: a completed job is finished only once it is there
    # (or kept under ``$TALKINGHEAD_HOME/results`` when that cannot be written).
    destination: str | None = None
    # The request's fields (paths, URLs, prompt, text; never inline media), so a job killed
    # before its create was sent can be created again by ``jobs resume``.
    request: dict[str, Any] | None = None
    # Set, and journaled, immediately before the create request is sent: without it the
    # backend cannot have the task, so resuming is safe; with it and no task id, it may.
    create_sent_at: datetime | None = None
    duration_s: float | None = None
    reserved_usd: float = 0.0
    settled_usd: float | None = None
    billed_units: float | None = None  # as the backend reported them (see JobUpdate)
    billed_seconds: float | None = None
    billed_usd: float | None = None
    provider_data: dict[str, str] = Field(default_factory=dict)  # see JobUpdate.provider_data
    error: str | None = None
    error_kind: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def route_id(self) -> str:
        return f"{self.provider}/{self.model}"

    @field_serializer("webhook_url")
    def _hide_webhook_secret(self, url: str | None) -> str | None:
        return redact_url(url) if url else url

    def _observed(self) -> tuple:
        # What an update can change (cheaper than dumping the whole model, twice per update).
        return (self.task_id, self.status, self.progress, self.output_url, self.duration_s,
                self.error, self.error_kind, self.billed_units, self.billed_seconds, self.billed_usd,
                len(self.provider_data))

    def apply(self, update: JobUpdate) -> bool:
        """Fold an update in; returns whether anything changed. Terminal states are final."""
        if self.status.terminal:
            return False
        before = self._observed()
        if update.task_id and not self.task_id:
            self.task_id = update.task_id
        self.status = update.status
        if update.progress is not None:
            # Progress never goes backwards, whatever order updates arrive in.
            self.progress = max(self.progress or 0.0, update.progress)
        if update.status is JobStatus.COMPLETED:
            self.progress = 100.0
        for name in ("output_url", "duration_s", "error", "error_kind", *BILLED):
            value = getattr(update, name)
            if value is not None:
                setattr(self, name, value)
        if update.provider_data:
            self.provider_data = {**self.provider_data, **update.provider_data}
        changed = self._observed() != before
        if changed:
            self.updated_at = utcnow()
        return changed


class VideoResult(BaseModel):
    """A finished video: where it is and what it cost."""

    job_id: str
    provider: str
    model: str
    url: str | None
    path: Path | None
    duration_s: float | None
    cost_usd: float
    status: JobStatus = JobStatus.COMPLETED
    quote_usd: float | None = None  # what the job was quoted (and reserved) before it ran
