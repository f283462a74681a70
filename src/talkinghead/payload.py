"""Reading what a backend answered, for the providers' protocol modules (no HTTP stack
loaded: a plugin's protocol module is imported when the plugin registers)."""

from __future__ import annotations

import json
import math
from typing import Any


def parse_json(content: str | bytes | None) -> Any:
    """JSON, or ``None`` for an empty or non-JSON body."""
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None


def seconds(value: Any) -> float | None:
    """A duration a backend sent (a number, or a numeric string like ``"9.433"``) as float
    seconds; ``None`` for anything else (booleans, objects, text) or a negative or non-finite
    one (an infinite duration would settle an infinite cost)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if 0 <= number < math.inf else None


def text(value: Any) -> str | None:
    """A string field's value, stripped; ``None`` when it is blank or not a string."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def whole_answer(payload: Any, body_text: str = "", *, limit: int = 500) -> str:
    """What an error answer said when no field of it is the message: its JSON, else the text of
    its body, cut to ``limit`` characters."""
    if payload is not None:
        return json.dumps(payload)[:limit]
    return (body_text or "").strip()[:limit] or "no error message"
