"""Transport faults for the fake inference.sh server: answers cut, truncated or held back.

An endpoint's ``failures`` queue (``Switches.failures``) may hold, besides HTTP statuses, one
of these codes. Unlike an HTTP failure, the request is *handled* (a create makes its task, a
download reads the video) and only the answer is damaged, which is what makes these faults
dangerous for money: the backend acted, the client cannot tell.

    RESET     the answer starts (status and headers, Content-Length promising the whole
              body), half of the first body chunk is sent, then the connection is cut
    TRUNCATE  the answer ends cleanly after half of its first body chunk: a JSON answer is
              then malformed JSON, an NDJSON stream ends in the middle of its first line
    STALL     the answer is held back ``Switches.stall_seconds`` (a client read timeout)

The endpoint handler marks its request (``mark``); ``TransportFaults``, an ASGI middleware
around the fake's app, applies the fault to whatever the handler answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, MutableMapping
from typing import Any

RESET, TRUNCATE, STALL = 1, 2, 3
TRANSPORT_FAULTS = frozenset({RESET, TRUNCATE, STALL})
_KEY = "talkinghead.fake.transport_fault"


class FaultInjected(Exception):
    """Raised inside the answer: uvicorn then closes the connection mid-response."""


def mark(scope: MutableMapping[str, Any], fault: int) -> None:
    """Ask for ``fault`` on the answer to the request of ``scope``."""
    scope[_KEY] = fault


class TransportFaults:
    """ASGI middleware applying the fault an endpoint marked its request with."""

    def __init__(self, app: Any, stall_seconds: Callable[[], float]) -> None:
        self.app = app
        self.stall_seconds = stall_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: dict[str, Any] | None = None
        done = False

        async def faulty_send(message: dict[str, Any]) -> None:
            nonlocal held, done
            fault = scope.get(_KEY)
            if fault is None:
                await send(message)
                return
            if done:
                return  # whatever the handler still sends goes nowhere
            if message["type"] == "http.response.start":
                held = message  # until the first body chunk: TRUNCATE rewrites the length
                return
            if message["type"] != "http.response.body" or held is None:
                await send(message)
                return
            start, held = held, None
            body = message.get("body", b"")
            if fault == STALL:
                scope[_KEY] = None  # the rest of the answer flows normally
                await asyncio.sleep(self.stall_seconds())
                await send(start)
                await send(message)
                return
            half = body[:len(body) // 2] if len(body) > 1 else body
            done = True
            if fault == TRUNCATE:
                headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
                headers.append((b"content-length", str(len(half)).encode()))
                await send({**start, "headers": headers})
                await send({"type": "http.response.body", "body": half, "more_body": False})
                return
            await send(start)  # RESET: the full length promised, half delivered, then cut
            await send({"type": "http.response.body", "body": half, "more_body": True})
            raise FaultInjected("connection cut mid-body on purpose")

        await self.app(scope, receive, faulty_send)


__all__ = ["RESET", "STALL", "TRANSPORT_FAULTS", "TRUNCATE", "FaultInjected", "TransportFaults", "mark"]
