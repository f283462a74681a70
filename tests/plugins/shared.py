"""Fixtures every cloud plugin's tests share, made per plugin by ``backend_fixtures``: one
loopback fake for the session (reset for each test), and providers built with test credentials
and tiny timeouts that are closed after the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from talkinghead.testing.loopback import serve_fake, tiny_mp4


def backend_fixtures(fake_type: type, provider_type: type, credentials: dict[str, Any],
                     fast_config: dict[str, Any], reset: dict[str, Any] | None = None) -> dict[str, Any]:
    """``video_bytes``, ``fake_server``, ``fake``, ``make_provider`` and ``provider`` fixtures;
    a conftest does ``globals().update(backend_fixtures(...))``. ``reset`` holds the switches
    each test starts with (e.g. the credentials the fake verifies)."""

    @pytest.fixture(scope="session")
    def video_bytes() -> bytes:
        return tiny_mp4()

    @pytest.fixture(scope="session")
    def fake_server(video_bytes: bytes) -> Iterator[Any]:
        # One server for the session: starting uvicorn per test would cost ~0.2 s each.
        with serve_fake(fake_type(video=video_bytes)) as server:
            yield server

    @pytest.fixture
    def fake(fake_server: Any) -> Iterator[Any]:
        yield fake_server.reset(**(reset or {}))
        fake_server.reset()

    @pytest.fixture
    async def make_provider() -> AsyncIterator[Callable[..., Any]]:
        made: list[Any] = []

        def make(base_url: str | None = None, *, fast: bool = True, **config: Any) -> Any:
            cfg = {**credentials, **(fast_config if fast else {}), **config}
            if base_url:
                cfg["base_url"] = base_url
            made.append(provider_type(cfg))
            return made[-1]

        yield make
        for provider in made:
            await provider.aclose()

    @pytest.fixture
    def provider(fake: Any, make_provider: Callable[..., Any]) -> Any:
        return make_provider(fake.url)

    return {"video_bytes": video_bytes, "fake_server": fake_server, "fake": fake,
            "make_provider": make_provider, "provider": provider}
