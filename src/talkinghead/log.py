"""Logging with structlog: readable on a terminal, JSON lines with TALKINGHEAD_LOG_FORMAT=json.

A redaction processor runs last before rendering, so no API key or Authorization header can
reach a log line, whatever a provider or a user passes in.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import Any

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
_configured = False
_deferred: dict[str, Any] | None = None  # configure(lazy=True) waiting for the first logger
_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
_applied_level = 0  # the level configure() last gave structlog


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


def redaction_processor(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return _scrub(event_dict)


def configure(fmt: str | None = None, level: str | None = None, stream: Any = None,
              force: bool = False, lazy: bool = False) -> None:
    """Set up structlog for talkinghead. Leaves an app's own structlog setup alone unless
    ``force``; the CLI forces it. ``lazy``: apply it when the first logger is made, so a
    command that logs nothing never imports structlog (start-up time)."""
    global _configured, _deferred, _applied_level
    if lazy:
        _deferred = {"fmt": fmt, "level": level, "stream": stream, "force": force}
        return
    _deferred = None
    import structlog

    if (_configured or structlog.is_configured()) and not force:
        return
    fmt = (fmt or os.environ.get("TALKINGHEAD_LOG_FORMAT", "console")).lower()
    # A library stays quiet unless asked: warnings by default; -v or TALKINGHEAD_LOG_LEVEL=info
    # shows every job step.
    level = (level or os.environ.get("TALKINGHEAD_LOG_LEVEL", "warning")).upper()
    _applied_level = _LEVELS.get(level.lower(), 0)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redaction_processor,
    ]
    processors.append(structlog.processors.JSONRenderer() if fmt == "json"
                      else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def _threshold() -> int:
    """The lowest level that would be written: events below it are dropped before structlog
    is even imported (the default, warnings only, keeps every job step off that path)."""
    if _deferred is not None:
        level = _deferred["level"] or os.environ.get("TALKINGHEAD_LOG_LEVEL", "warning")
    elif _configured:
        return _applied_level
    elif "structlog" in sys.modules and sys.modules["structlog"].is_configured():
        return 0  # the app's own structlog setup decides
    else:
        level = os.environ.get("TALKINGHEAD_LOG_LEVEL", "warning")
    return _LEVELS.get(str(level).lower(), 0)


class Logger:
    """What ``get_logger`` returns: ``bind`` and the level methods of a structlog logger.
    An event below the configured level costs one comparison; one that is written goes to
    structlog, configured as ``configure`` was asked (loaded then, not at start-up)."""

    __slots__ = ("_context",)

    def __init__(self, context: dict[str, Any]) -> None:
        self._context = context

    def bind(self, **context: Any) -> Logger:
        return Logger({**self._context, **context})

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        if _LEVELS[level] < _threshold():
            return
        import structlog

        configure(**(_deferred or {}))
        getattr(structlog.get_logger("talkinghead").bind(**self._context), level)(event, **fields)

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


def get_logger(**context: Any) -> Logger:
    return Logger(context)
