"""Probe and validate the image and audio of a request, before any network call or spend.

Formats are judged by content (magic bytes), never by extension. Inputs may be a local path,
an http(s) URL (passed through, not fetched), or base64 / a data URI (decoded and checked like
a file). Every violation raises ``InputError`` naming the field, the value found and the limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from .errors import InputError
from .models import AvatarRequest, Limits, Route

SHARED = Limits()  # the rules every route shares; a route may only narrow them


@dataclass(frozen=True)
class MediaFile:
    field: str                                   # "image" or "audio"
    kind: Literal["path", "url", "bytes"]
    filename: str                                # a sensible name for uploads ("face.jpg")
    path: Path | None = None                     # kind == "path"
    url: str | None = None                       # kind == "url"
    data: bytes | None = None                    # kind == "bytes" (decoded base64 / data URI)
    format: str | None = None                    # jpeg|png|mp3|wav|m4a|aac; None for a URL
    content_type: str | None = None              # image/jpeg, audio/mpeg, ...
    size: int | None = None                      # bytes
    width: int | None = None                     # images
    height: int | None = None
    duration_s: float | None = None              # audio, measured

    def open(self) -> IO[bytes]:
        """A binary stream of the content, read from disk in chunks for paths."""
        raise NotImplementedError


@dataclass(frozen=True)
class PreparedRequest:
    """A request whose media has been probed and checked against the shared rules."""

    request: AvatarRequest
    image: MediaFile
    audio: MediaFile | None

    @property
    def seconds(self) -> float | None:
        return self.audio.duration_s if self.audio else None


def inspect_image(value: str | Path, field: str = "image") -> MediaFile:
    raise NotImplementedError


def inspect_audio(value: str | Path, field: str = "audio") -> MediaFile:
    raise NotImplementedError


def prepare(request: AvatarRequest) -> PreparedRequest:
    """Probe the request's media and apply the shared rules (no network)."""
    raise NotImplementedError


def check_route(prepared: PreparedRequest, route: Route) -> None:
    """Apply one route's own limits (formats, min side, aspect range, text length, ...)."""
    raise NotImplementedError
