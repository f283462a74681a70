"""``MediaFile``: one probed input (an image or an audio clip) and where its content is.

Its own module so that ``media`` (validation) and ``probe`` (decoding and measuring) both use
it without importing each other.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from dataclasses import field as _field
from pathlib import Path
from typing import IO, Literal

from .errors import InputError

_SHOWN = 60  # longest value quoted in a message (base64 can be megabytes)


@dataclass(frozen=True)
class MediaFile:
    field: str                                   # "image" or "audio"
    kind: Literal["path", "url", "bytes"]
    filename: str                                # a sensible name for uploads ("face.jpg")
    path: Path | None = None                     # kind == "path"
    url: str | None = None                       # kind == "url"
    data: bytes | None = _field(default=None, repr=False)  # kind == "bytes" (decoded)
    format: str | None = None                    # jpeg|png|mp3|wav|m4a|aac; None for a URL
    content_type: str | None = None              # image/jpeg, audio/mpeg, ...
    size: int | None = None                      # bytes
    width: int | None = None                     # images
    height: int | None = None
    duration_s: float | None = None              # audio, measured
    origin: str = ""                             # for messages: "file face.png", "data URI", ...

    def open(self) -> IO[bytes]:
        """A binary stream of the content, read from disk in chunks for paths."""
        if self.kind == "path":
            try:
                return open(self.path, "rb")  # type: ignore[arg-type]  # kind "path" has a path
            except OSError as exc:
                raise InputError(self.field, f"cannot read {self.origin}: {exc.strerror or exc}",
                                 value=str(self.path)) from None
        if self.kind == "bytes":
            return io.BytesIO(self.data or b"")
        raise InputError(self.field, f"{self.origin} is passed through, not fetched, so it has no "
                         "local content to open", value=_show(self.url or ""))


def _show(text: str) -> str:
    """Quote a value for a message, cut short: base64 may be megabytes long."""
    if len(text) <= _SHOWN:
        return repr(text)
    return repr(text[:_SHOWN - 3] + "...") + f" ({len(text)} chars)"


__all__ = ["MediaFile"]
