"""The data of the fake inference.sh server (``fake.py``): its switches, the requests it
records and the tasks it runs. Plain dataclasses, no server dependencies."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from talkinghead.testing.loopback import SteppedTask

TERMINAL = frozenset({10, 11, 12, 13})
ENDPOINTS = ("files", "upload", "create", "get", "list", "status", "stream", "cancel", "output", "download",
             "hook")
ERRORS = {
    400: ("invalid_request", "Bad Request", "the request is malformed"),
    401: ("unauthorized", "Unauthorized", "Invalid or missing API key"),
    402: ("payment_required", "Payment Required", "Insufficient balance: add credits to run this app"),
    403: ("forbidden", "Forbidden", "You do not have access to this app"),
    404: ("not_found", "Not Found", "task not found"),
    409: ("invalid_transition", "Conflict", "the task already moved on"),
    422: ("validation_error", "Unprocessable Entity", "input.image: field required"),
    429: ("rate_limited", "Too Many Requests", "rate limit exceeded, slow down"),
    500: ("internal_error", "Internal Server Error", "something went wrong"),
    502: ("bad_gateway", "Bad Gateway", "upstream failed"),
    503: ("app_maintenance", "Service Unavailable", "the app is paused by its owner"),
    504: ("gateway_timeout", "Gateway Timeout", "upstream timed out"),
}


@dataclass
class Switches:
    """What the fake does. Change them with ``fake.configure(...)`` at any time."""

    api_key: str | None = None                 # if set, any other bearer token gets 401
    echo_key: bool = False                     # that 401 quotes the key it got (some APIs do)
    envelope: Literal["v1", "v2", "v3"] = "v2"  # v1 {success,status,data}; v2 bare; v3 {data,messages}
    statuses: tuple[int, ...] = (1, 2, 7, 9, 10)  # a task's path; the last one is where it ends
    step_latency: float = 0.0                  # seconds per status step
    task_error: str | None = None              # the task ends failed (11) with this error
    reject: bool = False                       # the create answers status 13 (no balance)
    failures: dict[str, list[int]] = field(default_factory=dict)  # endpoint -> statuses, in order; 200 = behave;
    #                                          1 RESET, 2 TRUNCATE, 3 STALL: handled, answer damaged (fake_faults.py)
    stall_seconds: float = 5.0                 # how long a STALL holds the answer back
    per_task: Callable[[dict[str, Any]], dict[str, Any]] | None = None  # create input -> overrides of
    #                                          statuses / step_latency / task_error for that task
    retry_after: float | None = None           # Retry-After header on failures
    create_delay: float = 0.0                  # the create sleeps this long first (then still runs)
    answer_delay: float = 0.0                  # the create makes the task, then waits this long to answer
    stream_partial: bool = True                # {data, fields} lines, else full snapshots
    stream_drops: int = 0                      # the first N stream connections drop mid-line
    stream_drop_after: int = 1                 # task lines sent before a drop
    stream_quiet: int = 0                      # the first N stream connections send only heartbeats
    stream_malformed: bool = False             # junk lines (not JSON, half objects) among the updates
    stream_omit_output: bool = False           # the completing stream line carries no output
    heartbeat_interval: float = 0.05
    stream_max_seconds: float = 30.0           # a connection never lasts longer than this
    output_form: Literal["object", "url", "string"] = "object"  # video.uri / video.url / plain string
    output_seconds: float | None = 6.9         # output_meta.outputs[0].seconds (None: no output_meta)
    strict_upload: bool = True                 # the PUT refuses Authorization and a wrong size/type
    upload_base: str | None = None             # presigned URLs point here instead of at the fake
    send_webhooks: bool = True                 # POST the finished task to the run's (loopback) webhook


@dataclass
class FakeTask(SteppedTask):
    """One task run by an app; a cancelled one is cancelling (8) for a step, then cancelled (12)."""

    CANCELLING = 8
    CANCELLED = 12

    id: str
    app: str
    input: dict[str, Any]
    webhook: str | None
    error: str | None
    created_at: str = field(default_factory=lambda: now_iso())

    def next_change(self, now: float) -> float:
        """Seconds until the status may change (for sleeping in the stream)."""
        if self.step_latency <= 0:
            return 3600.0
        elapsed = now - (self.cancelled_at if self.cancelled_at is not None else self.created)
        return self.step_latency - (elapsed % self.step_latency)


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
