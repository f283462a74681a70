"""Checks of the options around a request (numbers, URLs, paths, the output destination),
done before anything is uploaded or reserved. Media content is ``media``'s concern; this
module judges what a user types next to it.

Every refusal is an ``InputError`` naming the field, the value and the limit.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any, Literal, overload
from urllib.parse import urlsplit, urlunsplit

from .errors import InputError

# Characters refused in prompts and text: C0 and C1 controls and DEL (NUL, ESC of an ANSI
# escape sequence, ...). Tab, newline and carriage return are ordinary text.
_ALLOWED_CONTROLS = frozenset("\t\n\r")


@overload
def number(field: str, value: Any, *, minimum: float = 0.0, inclusive: bool = True,
           maximum: float | None = None, none_ok: Literal[False]) -> float: ...
@overload
def number(field: str, value: Any, *, minimum: float = 0.0, inclusive: bool = True,
           maximum: float | None = None, none_ok: bool = True) -> float | None: ...
def number(field: str, value: Any, *, minimum: float = 0.0, inclusive: bool = True,
           maximum: float | None = None, none_ok: bool = True) -> float | None:
    """``value`` as a finite float within [minimum, maximum] (``inclusive`` decides whether
    the minimum itself is allowed). nan and inf are refused: every comparison with nan is
    false, so a nan limit would let everything through."""
    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(field, f"expected a number, got {type(value).__name__}", value=value)
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(field, f"{_short(value)} is not a number", value=value) from None
    if not math.isfinite(out):
        raise InputError(field, f"{_short(value)} is not a finite number", value=out,
                         limit="finite")
    bound = f"at least {minimum:g}" if inclusive else f"more than {minimum:g}"
    if out < minimum or (not inclusive and out <= minimum):
        what = "negative" if out < 0 <= minimum else "out of range"
        raise InputError(field, f"{out:g} is {what}; it must be {bound}", value=out, limit=minimum)
    if maximum is not None and out > maximum:
        raise InputError(field, f"{out:g} is out of range; it must be at most {maximum:g}",
                         value=out, limit=maximum)
    return out + 0.0  # -0.0 becomes 0.0


def http_url(field: str, value: str | None) -> str | None:
    """An absolute http(s) URL with a host, or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(field, f"expected a URL, got {type(value).__name__}", value=value)
    try:
        parts = urlsplit(value.strip())
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise InputError(field, f"{_short(safe_url(value))} is not a valid URL",
                         value=safe_url(value)) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InputError(field, f"{_short(safe_url(value))} is not an absolute http(s) URL",
                         value=safe_url(value), limit=("http", "https"))
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in value.strip()):
        raise InputError(field, "contains spaces or control characters", value=safe_url(value))
    return value.strip()


def safe_url(url: str) -> str:
    """A URL fit for a journal or a log line: no user:password@, no query string (signed
    URLs carry their signature there), no fragment."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return re.split(r"[?#]", url, maxsplit=1)[0].rsplit("@", 1)[-1]
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def user_path(field: str, value: str | os.PathLike[str]) -> Path:
    """A path with ``~`` expanded; a home that cannot be found (``~nosuchuser/``) or a NUL
    byte is an ``InputError`` rather than a RuntimeError or ValueError later."""
    text = os.fspath(value)
    if "\0" in text:
        raise InputError(field, "a path cannot contain a NUL character", value=_short(text))
    try:  # journaled as JSON text: a name that is not Unicode (a lone surrogate) cannot be
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(field, f"the path is not valid Unicode (character {exc.start + 1} is "
                         f"{text[exc.start]!a})", value=ascii(_short(text))) from None
    try:
        return Path(text).expanduser()
    except RuntimeError:
        user = text[1:].split("/", 1)[0] or "~"
        raise InputError(field, f"{_short(text)}: cannot expand ~{user} (no such user or no home)",
                         value=_short(text)) from None


def output_path(field: str, value: str | os.PathLike[str]) -> Path:
    """Where a result will be written, checked before anything is paid for: not a directory,
    not something other than a regular file, and inside a folder we can create a file in
    (missing folders are fine when the nearest existing one is writable)."""
    path = user_path(field, value)
    try:
        return _writable(field, value, path)
    except OSError as exc:  # a name too long, a loop of symlinks, ...
        raise InputError(field, f"{_short(str(value))}: {exc.strerror or exc}", value=_short(str(value))) from None


def _writable(field: str, value: str | os.PathLike[str], path: Path) -> Path:
    if not str(path).strip() or path.is_dir():
        raise InputError(field, f"{_short(str(value))} is a directory; give a file name",
                         value=_short(str(value)))
    if path.exists() and not path.is_file():
        raise InputError(field, f"{_short(str(value))} exists and is not a regular file",
                         value=_short(str(value)))
    folder = path.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(field, f"{_short(str(value))} is under {folder}, which is a file, not a folder",
                         value=_short(str(value)))
    try:  # the only sure test of writability (root, read-only mounts, /proc, ACLs)
        with tempfile.TemporaryFile(dir=folder, prefix=".talkinghead-probe-"):
            pass
    except OSError as exc:
        raise InputError(field, f"cannot write in {folder}: {exc.strerror or exc}",
                         value=_short(str(value))) from None
    return path


def plain_text(field: str, text: str | None) -> None:
    """Refuse control characters (NUL, ESC and the rest of C0/C1, DEL) in text sent to a
    backend or spoken; tab, newline and carriage return are allowed."""
    if not text:
        return
    for i, ch in enumerate(text):
        if ch not in _ALLOWED_CONTROLS and unicodedata.category(ch) == "Cc":
            raise InputError(field, f"contains the control character U+{ord(ch):04X} at character "
                             f"{i + 1}; only tab, newline and carriage return are allowed",
                             value=f"U+{ord(ch):04X}", limit="no control characters")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:56] + "...'"


__all__ = ["http_url", "number", "output_path", "plain_text", "safe_url", "user_path"]
