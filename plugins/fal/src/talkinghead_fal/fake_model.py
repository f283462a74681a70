"""The data of the fake fal server (``fake.py``): its switches, the requests it records and the
queue requests it runs. Plain dataclasses, no server dependencies."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from talkinghead.testing.loopback import SteppedTask

from .protocol import COMPLETED, IN_PROGRESS, IN_QUEUE

ENDPOINTS = ("token", "cdn_upload", "initiate", "upload", "download", "submit", "status", "result", "cancel", "output",
             "jwks", "hook")
STATUSES = (IN_QUEUE, IN_PROGRESS, COMPLETED)

# Bodies of injected failures (``failures``): bare gateway-style errors, no ``error_type``,
# except where fal documents one (§5.5).
ERRORS: dict[int, dict[str, Any]] = {
    400: {"detail": "Bad request"},
    401: {"detail": "No user found for Key ID and Secret"},
    403: {"detail": "Forbidden"},
    404: {"detail": "Not found"},
    422: {"detail": [{"loc": ["body", "image_url"], "msg": "field required", "type": "missing"}]},
    429: {"detail": "Too many requests, slow down"},
    500: {"detail": "Internal server error"},
    502: {"detail": "Bad gateway"},
    503: {"detail": "Service temporarily unavailable"},
    504: {"detail": "Gateway timeout"},
}
LOCKED = ("User is locked. Reason: Exhausted balance. Top up your balance at "
          "https://fal.ai/dashboard/billing")


@dataclass
class Switches:
    """What the fake does. Change them with ``fake.configure(...)`` at any time."""

    api_key: str | None = None                # if set, any other ``Key`` gets 401
    statuses: tuple[str, ...] = STATUSES      # a request's path; the last one is where it ends
    step_latency: float = 0.0                 # seconds per status step
    failures: dict[str, list[int]] = field(default_factory=dict)  # endpoint -> statuses in order; 200 = behave
    retry_after: float | None = None          # Retry-After header on injected 429 and 503
    submit_delay: float = 0.0                 # the submit sleeps this long first (then still queues)
    submit_status: int = 200                  # the HTTP status of an accepted submit (unverified, §11)
    submit_urls: bool = True                  # the submit answer carries status/response/cancel URLs
    locked: bool = False                      # the submit gets 403 "User is locked ... Exhausted balance"
    # The request ends COMPLETED carrying (error, error_type) and its result answers with
    # (status code): e.g. ("Runner disconnected", "runner_disconnected", 503).
    completed_error: tuple[str, str, int] | None = None
    # The result answers (status code, JSON body) although the status said nothing: e.g. 422
    # with a validation ``detail`` list.
    result_error: tuple[int, Any] | None = None
    output_duration: float | None = 6.9       # ``duration`` of the output (None: left out)
    strict_upload: bool = True                # the PUT refuses Authorization and a wrong type
    upload_base: str | None = None            # signed upload URLs point here instead of at the fake
    send_webhooks: bool = True                # POST a signed delivery to the submit's (loopback) fal_webhook
    webhook_progress: bool = False            # also POST signed IN_QUEUE / IN_PROGRESS deliveries (§11, 3P)
    cdn_tokens: bool = True                   # storage/auth/token gives CDN tokens (False: 403, a key without)
    storage_types: tuple[str, ...] = ("gcs", "fal-cdn-v3")  # what upload/initiate accepts (else 422)
    webhook_user_id: str = "fake-user-0001"
    webhook_timestamp_offset: float = 0.0     # added to the signed timestamp (-600: a stale delivery)
    webhook_tamper: bool = False              # the body is changed after signing
    webhook_payload_error: bool = False       # OK with ``payload: null`` and a ``payload_error``


@dataclass
class FakeRequest(SteppedTask):
    """One queue request and how it ends (a cancelled one runs on a step, then completes)."""

    CANCELLING = IN_PROGRESS
    CANCELLED = COMPLETED

    id: str
    endpoint: str
    input: dict[str, Any]
    webhook: str | None
    completed_error: tuple[str, str, int] | None
    result_error: tuple[int, Any] | None

    @property
    def app(self) -> str:
        return "/".join(self.endpoint.split("/")[:2])

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def ends_at(self) -> float:
        if self.cancelled_at is not None:
            return self.cancelled_at + self.step_latency
        return super().ends_at
