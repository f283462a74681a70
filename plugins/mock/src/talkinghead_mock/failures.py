"""Injected failures: what the ``fail`` setting asks for, and the errors it raises.

A real backend fails in two places: the create call is refused (an HTTP error, which the
provider maps to a typed talkinghead error), or the task is accepted and fails later (the
poll reports it FAILED). ``FailSpec`` says which of the two to imitate, and when;
``injected_error`` is the error a real provider would raise for the matching HTTP answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from talkinghead.errors import (
    BillingError,
    ConfigError,
    ContentPolicyError,
    ProviderTimeout,
    RateLimitError,
    ServerError,
)

FAIL_KINDS = ("rate_limited", "server_error", "content_policy", "timeout", "billing")
_STAGES: dict[str, Literal["submit", "run"]] = {"submit": "submit", "run": "run"}


@dataclass(frozen=True)
class FailSpec:
    """An injected failure: ``kind[@stage][:after]``, e.g. ``server_error@run:2``.

    * at ``submit`` (the default) the first ``after`` submits succeed, later ones raise the
      typed error a real backend's HTTP error would map to;
    * at ``run`` each job answers ``after`` polls normally, then its next poll reports it
      FAILED with ``error_kind=kind``; ``timeout@run`` instead never finishes, so the
      core's own wait timeout has to fire.

    ``times`` (mapping form only) stops injecting after that many failures, e.g.
    ``{"kind": "rate_limited", "times": 1}`` fails once and then lets a retry through.
    """

    kind: str
    stage: Literal["submit", "run"] = "submit"
    after: int = 0
    times: int | None = None

    @classmethod
    def parse(cls, value: str | Mapping[str, Any] | FailSpec | None) -> FailSpec | None:
        if isinstance(value, FailSpec):
            return value
        if value is None or value == "":
            return None
        stage: str
        if isinstance(value, Mapping):
            unknown = set(value) - {"kind", "stage", "after", "times"}
            if unknown:
                raise ConfigError(f"mock fail: unknown keys {sorted(unknown)}")
            try:
                times = value.get("times")
                kind, stage = str(value.get("kind")), str(value.get("stage", "submit"))
                after, times = int(value.get("after", 0)), None if times is None else int(times)
            except (TypeError, ValueError):
                raise ConfigError(f"mock fail: after and times must be integers in {value!r}") from None
        else:
            m = re.fullmatch(r"\s*(\w+)(?:@(\w+))?(?::(\d+))?\s*", str(value))
            if not m:
                raise ConfigError(f"mock fail: {value!r} is not kind[@stage][:after_polls]")
            kind, stage, after, times = m[1], m[2] or "submit", int(m[3] or 0), None
        if kind not in FAIL_KINDS:
            raise ConfigError(f"mock fail: kind {kind!r} is not one of {list(FAIL_KINDS)}")
        checked = _STAGES.get(stage)
        if checked is None:
            raise ConfigError(f"mock fail: stage {stage!r} is not 'submit' or 'run'")
        if after < 0 or (times is not None and times < 0):
            raise ConfigError("mock fail: after and times must not be negative")
        return cls(kind, checked, after, times)


def injected_error(kind: str, provider: str, retry_after: float) -> Exception:
    """The typed error a real provider raises for the HTTP answer that means ``kind``."""
    p = provider
    if kind == "rate_limited":
        return RateLimitError("injected rate limit", provider=p, status_code=429,
                              retry_after=retry_after)
    if kind == "server_error":
        return ServerError("injected server error", provider=p, status_code=500)
    if kind == "content_policy":
        return ContentPolicyError("injected content policy refusal", provider=p, status_code=400)
    if kind == "timeout":
        return ProviderTimeout("injected timeout: no answer in time", provider=p)
    return BillingError("injected billing failure: insufficient balance", provider=p,
                        status_code=402)

