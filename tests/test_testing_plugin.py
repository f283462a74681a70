"""The pytest plugin apps use: fixtures on the mock provider, and the network guard."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

APP_TESTS = f'''
import pytest
import httpx
from talkinghead import AvatarRequest, NetworkBlocked
from talkinghead.http import async_client

FACE, SPEECH = r"{EXAMPLES / 'face.jpg'}", r"{EXAMPLES / 'hello.mp3'}"

def test_app_renders_on_mock(talkinghead_client, mock_calls, tmp_path):
    result = talkinghead_client.run(AvatarRequest(image=FACE, audio=SPEECH), output=tmp_path / "v.mp4")
    assert result.path.stat().st_size > 10_000
    assert [c.method for c in mock_calls][0] == "submit"
    assert mock_calls[0].request.image == FACE

@pytest.mark.mock_provider(fail="server_error@run")
async def test_app_sees_failures(talkinghead_async_client):
    from talkinghead import JobFailed
    with pytest.raises(JobFailed):
        await talkinghead_async_client.run(AvatarRequest(image=FACE, audio=SPEECH))

async def test_real_request_is_blocked():
    async with async_client("inferencesh") as c:
        with pytest.raises(NetworkBlocked, match="inferencesh"):
            await c.get("https://api.inference.sh/tasks/1")

@pytest.mark.allow_network
def test_opt_in_turns_the_guard_off():
    from talkinghead.http import guard
    assert guard.enabled is False

def test_raw_socket_to_a_real_address_is_blocked():
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with s, pytest.raises(NetworkBlocked, match="198.51.100.7"):
        s.connect(("198.51.100.7", 80))
    with socket.socket() as s2, pytest.raises(NetworkBlocked, match="198.51.100.7"):
        s2.connect_ex(("198.51.100.7", 443))

BLOCKED = "198.51.100.7 port 80 blocked by the talkinghead pytest plugin"

def test_plain_httpx_is_blocked():
    with pytest.raises(httpx.ConnectError, match=BLOCKED):
        httpx.get("http://198.51.100.7/", timeout=5)
    with pytest.raises(httpx.ConnectError, match="lookup of host api.inference.sh blocked"):
        httpx.get("https://api.inference.sh/", timeout=5)

def causes(exc):
    """The exception and everything chained under it (anyio groups connection errors)."""
    seen, todo = [], [exc]
    while todo:
        e = todo.pop()
        if e is not None and e not in seen:
            seen.append(e)
            todo += [e.__cause__, e.__context__, *getattr(e, "exceptions", ())]
    return seen

async def test_plain_async_httpx_is_blocked():
    from talkinghead.testing import SocketBlocked
    async with httpx.AsyncClient(timeout=5) as c:
        with pytest.raises(httpx.ConnectError) as info:
            await c.get("http://198.51.100.7/")
    blocked = [e for e in causes(info.value) if isinstance(e, SocketBlocked)]
    assert blocked and blocked[0].host == "198.51.100.7" and BLOCKED in str(blocked[0])

def test_loopback_stays_open():
    import socket
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=5):
            pass
        with socket.create_connection(("localhost", server.getsockname()[1]), timeout=5):
            pass

@pytest.mark.allow_network
def test_opt_in_turns_the_socket_guard_off():
    import socket
    from talkinghead.testing import SocketBlocked
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect(("198.51.100.7", 9))  # a documentation address: nothing answers
        except SocketBlocked:
            raise AssertionError("the guard is still on")
        except OSError:
            pass

def test_home_is_temporary():
    import os
    assert "talkinghead-home" in os.environ["TALKINGHEAD_HOME"]
'''


def test_pytest_plugin_for_apps(pytester):
    pytester.makepyfile(test_app=APP_TESTS)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=10)
