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

def test_home_is_temporary():
    import os
    assert "talkinghead-home" in os.environ["TALKINGHEAD_HOME"]
'''


def test_pytest_plugin_for_apps(pytester):
    pytester.makepyfile(test_app=APP_TESTS)
    pytester.makeini("[pytest]\nasyncio_mode = auto\n")
    result = pytester.runpytest_subprocess("-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
