"""Reading what a backend answered, for the providers' protocol modules (no HTTP stack
loaded: a plugin's protocol module is imported when the plugin registers)."""

from __future__ import annotations

import json
from typing import Any


def parse_json(content: str | bytes | None) -> Any:
    """JSON, or ``None`` for an empty or non-JSON body."""
    if not content:
        return None
    try:
        return json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return None
