"""``httpx`` and ``talkinghead.http`` for providers, loaded on the first request rather than
when a plugin registers (start-up: ``talkinghead providers`` and ``estimate`` never load the
HTTP stack). ``from talkinghead.lazy_http import http, httpx`` instead of the two imports."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import lazy

if TYPE_CHECKING:
    import httpx as httpx

    from . import http as http
else:
    httpx = lazy.module("httpx")
    http = lazy.module("talkinghead.http")

__all__ = ["http", "httpx"]
