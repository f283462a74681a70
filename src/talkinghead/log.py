"""Logging through the standard ``logging`` module.

A library never configures logging it does not own: talkinghead never calls
``structlog.configure()`` and never touches the root logger. Every event goes to a stdlib
logger named ``talkinghead`` or ``talkinghead.<part>``, which has only a ``NullHandler``: quiet
until the app configures ``logging`` (``basicConfig``, a handler, pytest's ``caplog``). Each
record's message is one readable line (``job.submitted job_id='...' provider='mock'``) and the
structured fields ride along as ``record.talkinghead`` (a dict); context an app bound with
``structlog.contextvars`` is merged in. An event below the logger's level costs one check and
imports nothing.

The CLI alone (it owns its process) calls ``configure``: readable lines on stderr, or JSON
lines with TALKINGHEAD_LOG_FORMAT=json. Redaction runs before any handler sees an event, so no
API key or Authorization header can reach a log line, wherever it is written.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any

LOGGER_NAME = "talkinghead"
# The library-logging convention: no output, and no "no handlers" fallback, until the app asks.
logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())

_secrets: set[str] = set()
_longest_first: tuple[str, ...] = ()  # _secrets, longest first (a secret may contain another)
# Shapes of credentials even when we were not told the value.
_PATTERNS = [
    re.compile(r"(?i)\b(bearer|key|token)(\s+|=|:\s*)[A-Za-z0-9._~+/=:-]{12,}"),
    re.compile(r"\binf_[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)([?&](x-amz-signature|x-signature|signature|sig|token)=)[^&\s\"']+"),
    re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]*@"),  # user:password@ in a URL
]
# What every pattern above needs somewhere in the text; most log values (ids, statuses,
# numbers) have none of it, and then the three substitutions are skipped.
_MAYBE = re.compile(r"(?i)bearer|key|token|inf_|[?&@]")
_SENSITIVE_KEYS = re.compile(r"(?i)(authorization|api[_-]?key|secret|password|token)")
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_cli_handler: logging.Handler | None = None


def add_secret(value: str | None) -> None:
    """Remember a credential value so it is scrubbed from every log line and error."""
    global _longest_first
    if value and len(value) >= 4 and value not in _secrets:
        _secrets.add(value)
        _longest_first = tuple(sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    for value in _longest_first:
        if value in text:
            text = text.replace(value, "[REDACTED]")
    if not _MAYBE.search(text):
        return text
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}[REDACTED]", text)
    text = _PATTERNS[1].sub("[REDACTED]", text)
    text = _PATTERNS[3].sub(lambda m: f"{m.group(1)}[REDACTED]@", text)
    return _PATTERNS[2].sub(lambda m: f"{m.group(1)}[REDACTED]", text)


@functools.lru_cache(maxsize=1024)
def _sensitive(key: str) -> bool:
    return _SENSITIVE_KEYS.search(key) is not None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: "[REDACTED]" if isinstance(k, str) and _sensitive(k) and v
                else _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v) for v in value)
    return value


class Logger:
    """What ``get_logger`` returns: ``bind`` and the level methods of a structlog logger,
    writing to the stdlib logger ``name``. Below that logger's level an event costs one check."""

    __slots__ = ("_logger", "_context")

    def __init__(self, logger: logging.Logger, context: dict[str, Any]) -> None:
        self._logger, self._context = logger, context

    def bind(self, **context: Any) -> Logger:
        return Logger(self._logger, {**self._context, **context})

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        number = _LEVELS[level]
        if not self._logger.isEnabledFor(number):
            return
        bound = sys.modules.get("structlog")  # an app's structlog context, never imported here
        context = bound.contextvars.get_contextvars() if bound is not None else {}
        data = _scrub({**context, **self._context, **fields})
        line = " ".join([event, *(f"{k}={v!r}" for k, v in data.items())])
        self._logger.log(number, line, extra={"talkinghead": {"event": event, **data}})

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def critical(self, event: str, **fields: Any) -> None:
        self._emit("critical", event, fields)


def get_logger(name: str = LOGGER_NAME, /, **context: Any) -> Logger:
    """A logger bound to ``context`` writing to the stdlib logger ``name`` (``talkinghead.*``)."""
    return Logger(logging.getLogger(name), context)


class Formatter(logging.Formatter):
    """How the CLI prints records: ``console`` (a readable line) or ``json`` (one object)."""

    converter: Callable[[float | None], time.struct_time] = time.gmtime  # timestamps in UTC

    def __init__(self, fmt: str = "console") -> None:
        super().__init__()
        self.json = fmt == "json"

    def format(self, record: logging.LogRecord) -> str:
        fields = dict(getattr(record, "talkinghead", None) or {"event": record.getMessage()})
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        if self.json:
            text = json.dumps({"timestamp": stamp, "level": record.levelname.lower(), "logger": record.name,
                               **fields}, default=str)
        else:
            event = fields.pop("event", "")
            text = " ".join([stamp, f"[{record.levelname.lower():<8}]", f"{event:<24}",
                             *(f"{k}={v!r}" for k, v in fields.items())]).rstrip()
        return redact(text)  # again, for values only str() shows (a Path, an exception)


def configure(fmt: str | None = None, level: str | None = None, stream: Any = None,
              force: bool = False, lazy: bool = False) -> logging.Handler:
    """For the CLI only, which owns its process: print ``talkinghead`` records to ``stream``
    (stderr) at ``level`` (default ``TALKINGHEAD_LOG_LEVEL`` or warning). The library itself
    never calls this. Replaces what an earlier call installed. ``force`` and ``lazy`` are
    accepted for compatibility: a handler costs nothing to install and imports nothing."""
    global _cli_handler
    fmt = (fmt or os.environ.get("TALKINGHEAD_LOG_FORMAT", "console")).lower()
    level = (level or os.environ.get("TALKINGHEAD_LOG_LEVEL", "warning")).upper()
    logger = logging.getLogger(LOGGER_NAME)
    unconfigure()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(Formatter(fmt))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # printed once, by us, not again by a root handler
    _cli_handler = handler
    return handler


def unconfigure() -> None:
    """Undo ``configure``: back to the library default (a NullHandler, inherited level)."""
    global _cli_handler
    logger = logging.getLogger(LOGGER_NAME)
    if _cli_handler is not None:
        logger.removeHandler(_cli_handler)
        _cli_handler = None
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
