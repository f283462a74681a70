"""The data of the fake Kling server (``fake.py``): its switches, the requests it records,
the tasks it runs and the errors it answers with. Plain dataclasses, no server dependencies."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from talkinghead.testing.loopback import SteppedTask

ENDPOINTS = ("create", "query", "list", "tts", "output", "audio", "hook")
STATUSES = ("submitted", "processing", "succeed")
TERMINAL = frozenset({"succeed", "failed"})

# HTTP status -> (Kling code, message) used when a failure is given as a bare status (§9).
DEFAULT_CODES: dict[int, tuple[int, str]] = {
    400: (1201, "Invalid parameters, such as incorrect key or illegal value"),
    401: (1002, "Authorization is invalid"),
    403: (1103, "Unauthorized access to requested resource"),
    404: (1203, "The requested resource does not exist"),
    429: (1303, "parallel task over resource pack limit"),
    500: (5000, "Server internal error"),
    503: (5001, "Server temporarily unavailable, usually due to maintenance"),
    504: (5002, "Server internal timeout, usually due to a backlog"),
}
# Kling code -> (HTTP status, message), for failures given as a bare code (§9).
CODES: dict[int, tuple[int, str]] = {
    1000: (401, "Authentication failed"), 1001: (401, "Authorization is empty"),
    1002: (401, "Authorization is invalid"), 1003: (401, "Authorization is not yet valid"),
    1004: (401, "Authorization has expired"), 1100: (429, "Account exception"),
    1101: (429, "Account in arrears"), 1102: (429, "Account balance not enough"),
    1103: (403, "Unauthorized access to requested resource"), 1200: (400, "Invalid request parameters"),
    1201: (400, "Invalid parameters, such as incorrect key or illegal value"),
    1202: (404, "The requested method is invalid"), 1203: (404, "The requested resource does not exist"),
    1300: (400, "Trigger strategy of the platform"), 1301: (400, "Trigger the content security policy"),
    1302: (429, "The API request is too fast"), 1303: (429, "parallel task over resource pack limit"),
    1304: (429, "Trigger the platform's IP whitelisting policy"), 5000: (500, "Server internal error"),
    5001: (503, "Server temporarily unavailable"), 5002: (504, "Server internal timeout"),
}


@dataclass
class Switches:
    """What the fake does. Change them with ``fake.configure(...)`` at any time."""

    access_key: str | None = None      # if set (with secret_key), every JWT is verified (§2.1)
    secret_key: str | None = None
    api_key: str | None = None         # if set, this single key is accepted as the bearer token too (§2.2)
    unreachable: tuple[str, ...] = ()  # input URLs containing one of these get 1201 "cannot fetch" (§14)
    check_voices: bool = True          # TTS refuses a voice_id not listed for its voice_language (§14)
    clock_offset: float = 0.0          # seconds added to the fake's clock when checking exp/nbf
    statuses: tuple[str, ...] = STATUSES  # a task's path; the last one is where it ends
    step_latency: float = 0.0          # seconds per status step (0: the task is at its end at once)
    task_error: str | None = None      # the task ends "failed" with this task_status_msg
    output_duration: str | None = "6.900"  # task_result.videos[0].duration (a string, as Kling sends it)
    tts_duration: str | None = None    # TTS audios[0].duration; None: made up from the text
    failures: dict[str, list[Any]] = field(default_factory=dict)  # endpoint -> answers in order:
    #   200 (behave), an HTTP status (Kling's usual code for it), (status, code) or (status, code, message)
    retry_after: float | None = None   # Retry-After header on 429/503 answers
    create_delay: float = 0.0          # the create makes the task, then waits this long to answer
    create_stall: float = 0.0          # the create waits this long *before* making the task
    concurrency: int | None = None     # creates beyond this many unfinished tasks get 429/1303
    external_lookup: bool = True       # GET .../{external_task_id} finds tasks (False: 1203)
    send_webhooks: bool = True         # POST each status change to the task's (loopback) callback_url
    answer_without_task_id: bool = False  # the create answers code 0 with no data.task_id


@dataclass
class FakeTask(SteppedTask):
    """One avatar task (Kling has no cancel: it always runs to its end)."""

    task_id: str
    external_task_id: str | None
    body: dict[str, Any]
    error: str | None
    created_ms: int = field(default_factory=lambda: now_ms())


def now_ms() -> int:
    return int(time.time() * 1000)
