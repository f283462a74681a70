"""A pytest plugin for apps built on talkinghead (registered through ``pytest11``).

While it is active:

* no provider may make a real HTTP request: an attempt raises ``NetworkBlocked`` naming the
  provider. Loopback stays open for local fake servers, and a ``@pytest.mark.vcr`` test
  replaying a cassette (``--record-mode=none``) is answered by VCR alone. A test opts in with
  ``@pytest.mark.allow_network``; a whole run with ``--talkinghead-allow-network``;
* ``TALKINGHEAD_HOME`` points at a temporary directory, so tests never touch the real journal.

Fixtures: ``mock_provider`` (the mock backend, configurable with
``@pytest.mark.mock_provider(latency=0, steps=3, fail="server_error@run")``),
``talkinghead_client`` (a sync ``Client`` on it), ``talkinghead_async_client`` and
``mock_calls`` (what the mock was asked). See docs/testing.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("talkinghead").addoption(
        "--talkinghead-allow-network", action="store_true", default=False,
        help="let talkinghead providers make real HTTP requests (live tests)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_network: let talkinghead providers reach real hosts")
    config.addinivalue_line("markers", "mock_provider(**config): configure the mock_provider fixture")


@pytest.fixture(autouse=True)
def _talkinghead_guard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from .http import guard

    allowed = (request.config.getoption("--talkinghead-allow-network")
               or request.node.get_closest_marker("allow_network") is not None
               or _replaying_cassette(request))
    monkeypatch.setattr(guard, "enabled", not allowed)
    monkeypatch.setenv("TALKINGHEAD_HOME", str(tmp_path_factory.mktemp("talkinghead-home")))
    yield


def _replaying_cassette(request: pytest.FixtureRequest) -> bool:
    """A pytest-recording test in ``--record-mode=none``: VCR answers every request from the
    cassette and refuses anything not in it, so nothing can reach a real host."""
    if request.node.get_closest_marker("vcr") is None:
        return False
    try:
        return request.config.getoption("--record-mode") == "none"
    except ValueError:  # pytest-recording not installed
        return False


@pytest.fixture
def mock_provider(request: pytest.FixtureRequest) -> Any:
    """The ``mock`` provider from the installed mock plugin, found through the plugin seam."""
    from .plugins import get_provider_classes

    cls = get_provider_classes().get("mock")
    if cls is None:
        pytest.skip("the talkinghead-mock plugin is not installed")
    marker = request.node.get_closest_marker("mock_provider")
    return cls(dict(marker.kwargs) if marker else {})


@pytest.fixture
def mock_calls(mock_provider: Any) -> list:
    return mock_provider.calls


@pytest.fixture
def talkinghead_client(mock_provider: Any) -> Iterator[Any]:
    from .client import Client

    with Client(providers=[mock_provider]) as client:
        yield client


@pytest.fixture
def talkinghead_async_client(mock_provider: Any) -> Any:
    """An ``AsyncClient`` on the mock provider. A plain fixture, so it works under any async
    test runner (pytest-asyncio, anyio); the mock holds no connections to close."""
    from .client import AsyncClient

    return AsyncClient(providers=[mock_provider])
