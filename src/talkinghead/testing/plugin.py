"""A pytest plugin for apps built on talkinghead (registered through ``pytest11``).

While it is active:

* no socket may connect to anything but loopback: ``socket.socket.connect`` (which every
  client uses, plain httpx, requests, asyncio and talkinghead's own alike) raises
  ``SocketBlocked`` naming the host, and a lookup of a non-loopback host name is refused the
  same way. ``SocketBlocked`` is a ``NetworkBlocked`` and also a ``ConnectionRefusedError``,
  so an HTTP library reports it as its own connection error (``httpx.ConnectError``) carrying
  the same message. Loopback stays open for local fake servers, and so do Unix sockets;
* talkinghead's own HTTP client also refuses a non-loopback URL before any connection, naming
  the provider; a ``@pytest.mark.vcr`` test replaying a cassette (``--record-mode=none``) is
  answered by VCR alone. A test opts out of both with ``@pytest.mark.allow_network``; a whole
  run with ``--talkinghead-allow-network``;
* ``TALKINGHEAD_HOME`` points at a temporary directory, so tests never touch the real journal.

Fixtures: ``mock_provider`` (the mock backend, configurable with
``@pytest.mark.mock_provider(latency=0, steps=3, fail="server_error@run")``),
``talkinghead_client`` (a sync ``Client`` on it, which may route to the mock unnamed),
``talkinghead_async_client`` and
``mock_calls`` (what the mock was asked). See docs/testing.md.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from ..errors import NetworkBlocked

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_HOW = ("tests may only reach loopback (127.0.0.1, ::1); use a fake server, a cassette or the mock "
        "provider, or mark the test @pytest.mark.allow_network")


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
    from ..http import guard

    allowed = (request.config.getoption("--talkinghead-allow-network")
               or request.node.get_closest_marker("allow_network") is not None
               or _replaying_cassette(request))
    network = (request.config.getoption("--talkinghead-allow-network")
               or request.node.get_closest_marker("allow_network") is not None)
    monkeypatch.setattr(guard, "enabled", not allowed)
    if not network:
        _guard_sockets(monkeypatch)
    monkeypatch.setenv("TALKINGHEAD_HOME", str(tmp_path_factory.mktemp("talkinghead-home")))
    yield


class SocketBlocked(NetworkBlocked, ConnectionRefusedError):
    """A test tried to reach a host that is not loopback."""

    def __init__(self, host: str, what: str) -> None:
        NetworkBlocked.__init__(self, f"{what} blocked by the talkinghead pytest plugin: {_HOW}")
        self.host = host


def _loopback(host: str) -> bool:
    if host.lower().rstrip(".") in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _guard_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse, for this test, every IP connection that is not to loopback, and every lookup of
    a name that is not loopback (so not even a DNS query leaves). Restored by ``monkeypatch``."""
    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host = str(address[0])
            if not _loopback(host):
                raise SocketBlocked(host, f"connection to {host} port {address[1]}")

    real_connect, real_connect_ex, real_getaddrinfo = (
        socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo)

    def connect(self: socket.socket, address: Any) -> None:
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(self, address)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and not _loopback(name):
            try:
                ipaddress.ip_address(name.split("%", 1)[0])  # an address: connect() decides
            except ValueError:
                raise SocketBlocked(name, f"lookup of host {name}") from None
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _replaying_cassette(request: pytest.FixtureRequest) -> bool:
    """A pytest-recording test in ``--record-mode=none``: VCR answers every request from the
    cassette and refuses anything not in it, so nothing can reach a real host."""
    if request.node.get_closest_marker("vcr") is None:
        return False
    try:
        return bool(request.config.getoption("--record-mode") == "none")
    except ValueError:  # pytest-recording not installed
        return False


@pytest.fixture
def mock_provider(request: pytest.FixtureRequest) -> Any:
    """The ``mock`` provider from the installed mock plugin, found through the plugin seam."""
    from ..plugins import get_provider_classes

    cls = get_provider_classes().get("mock")
    if cls is None:
        pytest.skip("the talkinghead-mock plugin is not installed")
    marker = request.node.get_closest_marker("mock_provider")
    return cls(dict(marker.kwargs) if marker else {})


@pytest.fixture
def mock_calls(mock_provider: Any) -> list[Any]:
    calls: list[Any] = mock_provider.calls
    return calls


@pytest.fixture
def talkinghead_client(mock_provider: Any) -> Iterator[Any]:
    from ..client import Client

    with Client(providers=[mock_provider], allow_test_routes=True) as client:
        yield client


@pytest.fixture
def talkinghead_async_client(mock_provider: Any) -> Any:
    """An ``AsyncClient`` on the mock provider. A plain fixture, so it works under any async
    test runner (pytest-asyncio, anyio); the mock holds no connections to close."""
    from ..client import AsyncClient

    return AsyncClient(providers=[mock_provider], allow_test_routes=True)
