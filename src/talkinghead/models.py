"""The nouns of talkinghead (see docs/concepts.md): request, route, quote, job, update, result."""

from __future__ import annotations

import enum
import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer, model_validator

from .errors import InputError

Mode = Literal["std", "pro"]
# "auto" follows the photo; the others are asked for explicitly and only routes that can set
# the frame (or whose photo already has that shape) take them.
AspectRatio = Literal["auto", "16:9", "9:16", "1:1"]
Resolution = Literal["360p", "480p", "540p", "720p", "1080p", "4k"]
MODES: tuple[str, ...] = get_args(Mode)
ASPECT_RATIOS: tuple[str, ...] = get_args(AspectRatio)
RESOLUTIONS: tuple[str, ...] = get_args(Resolution)
PROMPT_MAX_CHARS = 2500
SEED_MAX = 2**31 - 1
DEFAULT_MODEL = "kling-avatar"
# Width:height of each explicit aspect ratio.
ASPECT_VALUES: dict[str, float] = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}

MB = 1024 * 1024


def frame_ratio(aspect_ratio: str, width: int | None, height: int | None) -> str:
    """An explicit ratio for a renderer that frames the video itself: ``auto`` becomes the
    explicit ratio nearest the photo's (16:9 when its shape is unknown)."""
    if aspect_ratio != "auto":
        return aspect_ratio
    if not width or not height:
        return "16:9"
    ratio = width / height
    return min(ASPECT_VALUES, key=lambda name: abs(math.log(ASPECT_VALUES[name] / ratio)))


def redact_url(url: str) -> str:
    """A callback URL without what makes it a capability: its query and our receiver's token."""
    base = url.split("?", 1)[0].split("#", 1)[0]
    return re.sub(r"(/webhooks/[^/]+/)[^/]+$", r"\1[token]", base)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_job_id() -> str:
    # Sortable by creation time, unguessable enough to double as a webhook path part.
    return f"j{int(utcnow().timestamp() * 1000):x}{secrets.token_hex(6)}"


class AvatarRequest(BaseModel):
    """What the user wants, whatever the model: a face, and audio or text for it to speak.

    ``image`` and ``audio`` take a local path, an http(s) URL, a data URI or base64 text.
    Exactly one of ``audio`` and ``text`` is given; ``voice`` and ``language`` go with text.
    ``mode`` is the quality tier (each route maps it to its own setting); an explicit
    ``resolution`` wins over the tier. ``aspect_ratio`` ``auto`` follows the photo. A route
    that cannot honour a field is never handed a changed request: it is skipped, or refused
    when named. Bad values raise ``InputError``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    image: str | Path
    audio: str | Path | None = None
    text: str | None = None
    prompt: str | None = Field(default=None, max_length=PROMPT_MAX_CHARS)
    mode: Mode = "std"
    aspect_ratio: AspectRatio = "auto"
    voice: str | None = None
    language: str | None = None
    resolution: Resolution | None = None
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)

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
        """Stable hash of the request, used to spot a request already done (batch, resume).

        Kept equal to the hash earlier versions gave an unchanged request: fields added since
        (``language``, ``resolution``, ``seed``) count only when set, and ``auto`` hashes as
        the old default ``"16:9"``, which no route ever honoured (every one followed the
        photo). An explicit ``"16:9"`` is therefore marked, so it never matches ``auto``."""
        data = self.model_dump(mode="json")
        for name in ("language", "resolution", "seed"):
            if data[name] is None:
                del data[name]
        if self.aspect_ratio == "auto":
            data["aspect_ratio"] = "16:9"
        elif self.aspect_ratio == "16:9":
            data["aspect_ratio"] = "16:9 explicit"
        raw = json.dumps(data, sort_keys=True).encode()
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
    if err["type"] in ("greater_than_equal", "less_than_equal"):
        limit = ctx.get("ge", ctx.get("le"))
        word = "at least" if "ge" in ctx else "at most"
        return InputError(field, f"{value!r} is out of range: must be {word} {limit}", value=value, limit=limit)
    if err["type"] == "literal_error":
        return InputError(field, f"{value!r} is not one of {ctx.get('expected')}", value=value,
                          limit=ctx.get("expected"))
    if err["type"] == "value_error" and not err["loc"]:
        msg = str(ctx.get("error", err["msg"]))
        return InputError("text" if "text is empty" in msg else "audio", msg)
    shown = repr(value) if not isinstance(value, (str, bytes)) or len(value) < 80 else f"<{len(value)} chars>"
    return InputError(field, f"{err['msg'].lower()} (got {shown})", value=value)


class Limits(BaseModel):
    """What a route accepts. Shared defaults are the core's outer bounds; a route narrows them."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    image_formats: tuple[str, ...] = ("jpeg", "png")
    image_max_bytes: int = 10 * MB
    image_min_side: int | None = None
    image_max_side: int | None = None
    image_aspect_range: tuple[float, float] | None = None  # width/height, inclusive
    audio_formats: tuple[str, ...] = ("mp3", "wav", "m4a", "aac")
    audio_max_bytes: int = 5 * MB
    audio_min_seconds: float = 2.0
    audio_max_seconds: float = 300.0
    # Narrower audio limits at some output resolutions (e.g. fal OmniHuman: < 30 s at 1080p).
    audio_max_seconds_by_resolution: dict[str, float] = Field(default_factory=dict)
    prompt_max_chars: int = PROMPT_MAX_CHARS
    text_max_chars: int | None = None

    def audio_max_at(self, resolution: str | None) -> float:
        return min(self.audio_max_seconds, self.audio_max_seconds_by_resolution.get(resolution or "", math.inf))


class Route(BaseModel):
    """One provider serving one model: what it can do, its limits and its price table.

    Validation and routing read only these declarations; nothing in the core knows a model.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    provider: str
    model: str
    endpoint: str = ""  # the backend's app / endpoint id(s), for people reading a listing
    modes: tuple[Mode, ...] = ("std", "pro")
    # -- inputs --
    audio_input: bool = True   # takes a speech file (every route does today)
    native_text: bool = False  # speaks text itself (no speech synthesized by the core first)
    voices: tuple[str, ...] = ()  # the native voices; empty with ``voice_any``: any id/description
    voice_any: bool = False    # any voice value is passed through (HeyGen ids, a free description)
    voice_required: bool = False  # native text needs a voice
    voice_note: str = ""       # where voice ids come from, or what the value means
    languages: tuple[str, ...] = ()  # languages the native text engine can be told to speak
    prompt: bool = True        # uses the prompt (others warn once and leave it out)
    seed: bool = False         # takes a seed
    # -- output --
    resolutions: tuple[str, ...] = ()  # explicit resolutions it takes; empty: no choice
    tier_resolution: dict[str, str] = Field(default_factory=dict)  # mode -> resolution if none asked
    aspect: Literal["follows_photo", "controls"] = "follows_photo"
    aspect_ratios: tuple[str, ...] = ()  # explicit ratios it can set (``controls`` only)
    # -- price --
    price_per_second: dict[str, float]  # USD per billed second, by tier or by resolution
    price_by: Literal["tier", "resolution"] = "tier"
    billed: str = "seconds of output video"
    min_billed_seconds: float = 0.0
    round_up: bool = False      # billed seconds are rounded up to whole seconds
    price_source: str = ""
    price_date: str = ""     # ISO date the price was read from its source
    price_unconfirmed: bool = False
    limits: Limits = Limits()
    # The router's first preference when no provider is named: cloud routes, then the local
    # renderer (the default with no credentials), then test doubles.
    kind: Literal["cloud", "local", "test"] = "cloud"

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.model}"

    def resolution_for(self, request: AvatarRequest) -> str | None:
        """The output resolution this route would make: the one asked for, else the tier's."""
        return request.resolution or self.tier_resolution.get(request.mode)

    def price_for(self, mode: str, resolution: str | None) -> float:
        key = resolution if self.price_by == "resolution" else mode
        try:
            return float(self.price_per_second[key or ""])
        except KeyError:
            raise InputError("resolution" if self.price_by == "resolution" else "mode",
                             f"{key!r} has no price on route {self.id}", value=key,
                             limit=tuple(self.price_per_second)) from None

    def billed_seconds(self, seconds: float) -> float:
        if self.round_up:
            seconds = math.ceil(seconds - 1e-9)
        return max(seconds, self.min_billed_seconds)


@dataclass(frozen=True)
class ModelInputs:
    """What a cloud provider has ready for one run of a model, for the function that maps it
    to the model's input fields: the request, its route, and the media as the backend will
    fetch them (URLs or uploaded files' URIs)."""

    request: AvatarRequest
    route: Route
    image: str
    audio: str | None  # None when the route speaks the request's text itself
    image_size: tuple[int, int] | None = None  # (width, height), when known

    def speech(self, text: str, audio: str, *, voice: str | None = None,
               language: str | None = None) -> dict[str, Any]:
        """The fields that carry what is said, under the model's names for them: the request's
        text (with its voice and language, when given) for a route that speaks it, else the
        audio."""
        if self.audio is not None:
            return {audio: self.audio}
        return {text: self.request.text, **self.given(**{"voice": voice, "language": language})}

    def given(self, **fields: str | None) -> dict[str, Any]:
        """The request's optional fields that are set (``prompt``, ``seed``...), each under the
        model's name for it (``prompt="video_prompt"``); a field named None is not sent."""
        return {name: getattr(self.request, field) for field, name in fields.items()
                if name is not None and getattr(self.request, field) is not None}


class Quote(BaseModel):
    """A route's cost estimate for one request: seconds x price for the mode."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    provider: str
    model: str
    mode: Mode
    seconds: float  # billed seconds (after the route's minimum and rounding)
    price_per_second: float
    cost_usd: float
    upper_bound: bool = False  # duration unknown before the run (URL audio, text): max is quoted
    currency: Literal["USD"] = "USD"
    resolution: str | None = None
    unconfirmed: bool = False  # the route's price source is not confirmed: the cost may differ
    # The route's billing rules, kept so a job settles the way it was quoted.
    min_billed_seconds: float = 0.0
    round_up: bool = False

    def billed(self, seconds: float) -> float:
        """Seconds as the route bills them (minimum, whole seconds), for settling."""
        if self.round_up:
            seconds = math.ceil(seconds - 1e-9)
        return max(seconds, self.min_billed_seconds)

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

    model_config = ConfigDict(defer_build=True)

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

    model_config = ConfigDict(defer_build=True)

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

    model_config = ConfigDict(defer_build=True)

    job_id: str
    provider: str
    model: str
    url: str | None
    path: Path | None
    duration_s: float | None
    cost_usd: float
    status: JobStatus = JobStatus.COMPLETED
    quote_usd: float | None = None  # what the job was quoted (and reserved) before it ran
