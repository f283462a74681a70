"""talkinghead: talking-head videos from one face photo and audio or text, on any backend.

The public API is re-exported here and imported lazily, so ``import talkinghead`` stays
cheap (pydantic, httpx and PyAV load on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "AsyncClient": "client", "Client": "client",
    "AvatarRequest": "models", "Route": "models", "Limits": "models", "Quote": "models",
    "Job": "models", "JobStatus": "models", "JobUpdate": "models", "VideoResult": "models",
    "Provider": "provider",
    "PreparedRequest": "media", "MediaFile": "media",
    "hookimpl": "hookspecs",
    "TalkingHeadError": "errors", "InputError": "errors", "ConfigError": "errors",
    "RoutingError": "errors", "NoRouteError": "errors", "BudgetExceeded": "errors",
    "ProviderError": "errors", "AuthenticationError": "errors", "BillingError": "errors",
    "RateLimitError": "errors", "ServerError": "errors", "ContentPolicyError": "errors", "RequestRefused": "errors",
    "ProviderTimeout": "errors", "SubmitOutcomeUnknown": "errors", "NetworkBlocked": "errors",
    "JobFailed": "errors", "WebhookRejected": "errors", "WebhookIgnored": "errors", "JobTimeout": "errors",
    "DownloadError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'talkinghead' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .client import AsyncClient, Client
    from .errors import *  # noqa: F403
    from .hookspecs import hookimpl
    from .media import MediaFile, PreparedRequest
    from .models import AvatarRequest, Job, JobStatus, JobUpdate, Limits, Quote, Route, VideoResult
    from .provider import Provider
