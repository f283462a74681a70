"""Every error talkinghead raises, in one place.

    TalkingHeadError                  base; ``exit_code`` is what the CLI exits with
    ├── InputError                    2  bad request: names the field, the value and the limit
    ├── ConfigError                   2  bad configuration (unknown provider, bad config file)
    ├── RoutingError                  3  nothing may run this request
    │   ├── NoRouteError              3  no configured route accepts the request
    │   └── BudgetExceeded            3  the quote is over a limit
    ├── ProviderError                 4  the backend said no, or could not be reached
    │   ├── RequestRefused            4  the backend refused the request as invalid (400/422)
    │   ├── AuthenticationError       4  bad or missing credentials (names the env var)
    │   ├── BillingError              4  no balance / payment refused / rejected task
    │   ├── RateLimitError            4  429 or a concurrency limit; ``retry_after`` seconds
    │   ├── ServerError               4  5xx or a malformed answer
    │   ├── ContentPolicyError        4  the backend refused the content
    │   ├── ProviderTimeout           4  the backend did not answer in time
    │   ├── SubmitOutcomeUnknown      4  a create call was sent and no answer came back:
    │   │                                it may have been charged, so it is never resent
    │   └── NetworkBlocked            4  the network guard stopped a real request
    ├── WebhookRejected               4  a callback failed verification (bad signature, stale,
    │   │                                replayed); the receiver answers 401 and changes nothing
    │   └── WebhookIgnored            4  a genuine callback with nothing to apply (non-terminal):
    │                                    answered 200, changes nothing
    ├── JobFailed                     4  the job ran and ended failed or cancelled
    ├── JobTimeout                    4  the job did not finish within the wait timeout
    └── DownloadError                 4  the result could not be fetched
        └── ResultExpired             4  the result URL answered 403/404/410: expired or gone

``ProviderError.retryable`` tells the router whether another route may be tried; an
``InputError`` never is, since every route would refuse it the same way.
"""

from __future__ import annotations

from typing import Any


class TalkingHeadError(Exception):
    exit_code = 1

    def __str__(self) -> str:
        return self.args[0] if self.args else self.__class__.__name__


class InputError(TalkingHeadError, ValueError):
    """A request that cannot be run as given. Raised before any network call or reservation."""

    exit_code = 2

    def __init__(self, field: str, message: str, *, value: Any = None, limit: Any = None) -> None:
        self.field = field
        self.value = value
        self.limit = limit
        self.detail = message
        super().__init__(f"{field}: {message}")


class ConfigError(TalkingHeadError):
    exit_code = 2

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field  # the setting at fault ("budget.total_usd", "TALKINGHEAD_BUDGET_USD")
        super().__init__(message)


class RoutingError(TalkingHeadError):
    exit_code = 3


class NoRouteError(RoutingError):
    pass


class BudgetExceeded(RoutingError):
    def __init__(self, message: str, *, needed: float = 0.0, available: float = 0.0) -> None:
        self.needed = needed
        self.available = available
        super().__init__(message)


class ProviderError(TalkingHeadError):
    exit_code = 4
    retryable = False  # whether the router may fall back to another route

    def __init__(self, message: str, *, provider: str | None = None, status_code: int | None = None) -> None:
        self.provider = provider
        self.status_code = status_code
        prefix = f"{provider}: " if provider and not message.startswith(f"{provider}:") else ""
        super().__init__(prefix + message)


class AuthenticationError(ProviderError):
    """Credentials missing or refused. Names every env var the provider needs: ``env_vars``
    (all of them), or ``needs`` when there are alternatives ("A, or B and C")."""

    def __init__(self, message: str, *, provider: str | None = None, env_var: str | None = None,
                 status_code: int | None = None, env_vars: tuple[str, ...] = (),
                 needs: str | None = None) -> None:
        self.env_vars = tuple(env_vars) or ((env_var,) if env_var else ())
        self.env_var = env_var or (self.env_vars[0] if self.env_vars else None)
        needs = needs or " and ".join(self.env_vars)
        if needs and not all(v in message for v in self.env_vars):
            message = f"{message} (set {needs})"
        super().__init__(message, provider=provider, status_code=status_code)


class BillingError(ProviderError):
    retryable = True  # another provider's account may still have balance


class RateLimitError(ProviderError):
    retryable = True

    def __init__(self, message: str, *, provider: str | None = None, status_code: int | None = None,
                 retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message, provider=provider, status_code=status_code)


class RequestRefused(ProviderError):
    """The backend answered 400/422: it refused the request after it was sent (exit 4, not 2:
    2 means nothing was sent). ``field`` is the input it named, when it named one."""

    def __init__(self, message: str, *, provider: str | None = None, status_code: int | None = None,
                 field: str | None = None) -> None:
        self.field = field
        super().__init__(message, provider=provider, status_code=status_code)


class ServerError(ProviderError):
    retryable = True


class ContentPolicyError(ProviderError):
    pass


class ProviderTimeout(ProviderError):
    retryable = True


class SubmitOutcomeUnknown(ProviderError):
    """The create request may have reached the backend; resending it could charge twice."""


class NetworkBlocked(ProviderError):
    pass


class WebhookRejected(TalkingHeadError):
    exit_code = 4

    def __init__(self, message: str, *, status_code: int = 401) -> None:
        self.status_code = status_code  # what the receiver answers: 401 bad signature, 404 token
        super().__init__(message)


class WebhookIgnored(WebhookRejected):
    """A genuine callback with nothing to apply (e.g. a non-terminal status a backend may
    send): the receiver answers 200, so the backend does not retry it, and changes nothing."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status_code=200)


class JobFailed(TalkingHeadError):
    exit_code = 4

    def __init__(self, message: str, *, job_id: str | None = None, provider: str | None = None,
                 kind: str | None = None) -> None:
        self.job_id = job_id
        self.provider = provider
        self.kind = kind  # the backend's failure kind when it says: "content_policy", ...
        super().__init__(message)


class JobTimeout(JobFailed):
    pass


class DownloadError(TalkingHeadError):
    exit_code = 4


class ResultExpired(DownloadError):
    """The backend's result URL no longer serves the video (HTTP 403, 404 or 410)."""
