"""What every cloud plugin's tests share: fixtures made per plugin by ``backend_fixtures`` (one
loopback fake for the session, reset for each test, and providers built with test credentials
and tiny timeouts that are closed after the test) and ``cassette_fixtures`` (VCR configuration,
re-recording), the patterns of the secret scan over cassettes, the CLI run in a subprocess, and
the helpers of the every-model tests and of following a job. The test suites made from these
for each plugin are in ``tests.plugins.suites``."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from talkinghead import AsyncClient, AvatarRequest, http
from talkinghead.errors import (
    AuthenticationError,
)
from talkinghead.ledger import SQLiteLedger, settled_cost
from talkinghead.models import JobStatus
from talkinghead.testing.loopback import serve_fake, tiny_mp4

ROOT = Path(__file__).resolve().parents[2]
FACE = ROOT / "examples" / "face.jpg"
MP3 = ROOT / "examples" / "hello.mp3"


def backend_fixtures(fake_type: type, provider_type: type, credentials: dict[str, Any],
                     fast_config: dict[str, Any], reset: dict[str, Any] | None = None) -> dict[str, Any]:
    """``video_bytes``, ``fake_server``, ``fake``, ``make_provider``, ``provider`` and ``client``
    fixtures; a conftest does ``globals().update(backend_fixtures(...))``. ``reset`` holds the switches
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

    @pytest.fixture
    async def client(provider: Any, tmp_path: Path) -> AsyncIterator[AsyncClient]:
        """A client over the test's provider and a fresh SQLite journal."""
        c = AsyncClient(providers=[provider], ledger=SQLiteLedger(tmp_path / "j.db"))
        yield c
        await c.aclose()

    return {"video_bytes": video_bytes, "fake_server": fake_server, "fake": fake,
            "make_provider": make_provider, "provider": provider, "client": client}


# -- cassettes: scrubbing, VCR configuration, re-recording -----------------------------------

# Query parameters of signed storage URLs (S3, GCS, Azure, fal's CDN token).
SIGNED_URL_PARAM = re.compile(
    r"(?i)\b(x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential"
    r"|x-signature|signature|sig|se|sp|sv|token)=([^&\s\"'<>\\]+)")


def scrub_signed_urls(text: str) -> str:
    """Signed-URL query values replaced by REDACTED (in URIs and in response bodies)."""
    return SIGNED_URL_PARAM.sub(lambda m: f"{m.group(1)}=REDACTED", text)


def scrub_response(response: dict[str, Any], scrub: Callable[[str], str],
                   drop_headers: tuple[str, ...]) -> dict[str, Any]:
    """A recorded answer with its text body scrubbed (a binary one, e.g. a video, kept) and the
    named headers (lower case) dropped."""
    body = response.get("body", {}).get("string")
    if isinstance(body, bytes):
        try:
            response["body"]["string"] = scrub(body.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            pass  # a video
    elif isinstance(body, str):
        response["body"]["string"] = scrub(body)
    for name in list(response.get("headers", {})):
        if name.lower() in drop_headers:
            del response["headers"][name]
    return response


def cassette_fixtures(cassette_dir: Path, *, match_on: list[str], before_record_request: Callable[[Any], Any],
                      before_record_response: Callable[[dict[str, Any]], dict[str, Any]],
                      have_keys: Callable[[], bool], needs: str, cannot: str) -> dict[str, Any]:
    """``vcr_config``, ``vcr_cassette_dir`` and ``live`` fixtures and the ``pytest_runtest_setup``
    hook that keeps hand-authored cassettes from being re-recorded; a conftest does
    ``globals().update(cassette_fixtures(...))``. ``have_keys`` says whether the live keys are
    set, ``needs`` names them, ``cannot`` says who cannot produce a hand-authored cassette."""
    no_keys = f"re-recording needs {needs} (and costs money)"

    @pytest.fixture
    def vcr_config() -> dict[str, Any]:
        return {
            "filter_headers": [("authorization", "REDACTED"), ("cookie", None)],
            "match_on": match_on,
            "before_record_request": before_record_request,
            "before_record_response": before_record_response,
            "decode_compressed_response": True,
        }

    @pytest.fixture(scope="module")
    def vcr_cassette_dir() -> str:
        return str(cassette_dir)

    @pytest.fixture
    def live(record_mode: str, monkeypatch: pytest.MonkeyPatch) -> bool:
        """Whether this run re-records cassettes against the live service (any VCR record mode
        but ``none``, e.g. ``-m live --record-mode=rewrite``). Then the keys are required (the
        test is skipped without them) and the talkinghead network guard is lifted for the test."""
        if record_mode == "none":
            return False
        if not have_keys():
            pytest.skip(no_keys)
        monkeypatch.setattr(http.guard, "enabled", False)
        return True

    def pytest_runtest_setup(item: pytest.Item) -> None:
        """Before any fixture runs (pytest-recording's ``rewrite`` mode deletes the cassette file
        when its fixture is set up): a hand-authored-only cassette (no ``live`` marker) is never
        re-recorded, since the live service cannot produce it, and re-recording needs the keys."""
        if item.get_closest_marker("vcr") is None:
            return
        if (item.config.getoption("--record-mode") or "none") == "none":
            return
        if item.get_closest_marker("live") is None:
            pytest.skip(f"hand-authored cassette: {cannot} produce it, so it is not re-recorded")
        if not have_keys():
            pytest.skip(no_keys)

    return {"vcr_config": vcr_config, "vcr_cassette_dir": vcr_cassette_dir, "live": live,
            "pytest_runtest_setup": pytest_runtest_setup}


async def poll_to_end(provider: Any, job: Any, live: bool, *, rounds: int, what: str) -> Any:
    """Poll until a terminal update (every 5 s when live, at once on replay)."""
    for _ in range(rounds):
        update = await provider.poll(job)
        if update.status.terminal:
            return update
        await asyncio.sleep(5 if live else 0)
    raise AssertionError(f"the {what} did not finish")


async def download_result(job: Any, tmp_path: Path) -> None:
    """Fetch the job's result as the client does (the cassette ends with that GET); the file
    must decode as a video."""
    from talkinghead.video import probe_video

    path = await http.download(job.output_url, tmp_path / "result.mp4", provider=job.provider)
    assert probe_video(path).frame_count > 0


# -- the secret scan over cassette files ------------------------------------------------------

BEARER_TOKEN = re.compile(r"(?i)\bbearer\s+(?!REDACTED\b)[A-Za-z0-9._~+/=-]{6,}")
PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


def url_signature(names: str) -> re.Pattern[str]:
    """Unredacted values of the named (``a|b|c``) signed-URL query parameters."""
    return re.compile(rf"(?i)\b({names})=(?!REDACTED\b)[^&\s\"'<>\\]+")


SIGNED_URL_NAMES = ("x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
                    "x-goog-credential", "x-signature", "signature", "sig")


def storage_secret_patterns(*more_names: str) -> dict[str, re.Pattern[str]]:
    """What a cloud exchange with object storage may leak: bearer tokens, the values of signed-URL
    parameters (the usual ones and ``more_names``) and private keys."""
    return {"bearer token": BEARER_TOKEN, "URL signature": url_signature("|".join(SIGNED_URL_NAMES + more_names)),
            "private key": PRIVATE_KEY}


def matches(patterns: dict[str, re.Pattern[str]], text: str) -> list[str]:
    """``what: the match`` (cut short) for every pattern's match in the text."""
    return [f"{what}: {m.group(0)[:40]}" for what, p in patterns.items() for m in p.finditer(text)]


def recorded_requests(path: Path) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Each recorded request of a cassette, with its headers' names in lower case."""
    for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
        request = interaction["request"]
        yield request, {k.lower(): v for k, v in request["headers"].items()}


def recorded_answer(body: bytes, status: tuple[int, str] = (200, "OK")) -> dict[str, Any]:
    """An answer as VCR hands it to ``before_record_response``, with a cookie to drop."""
    return {"status": {"code": status[0], "message": status[1]},
            "headers": {"Set-Cookie": ["session=abc"], "Content-Type": ["application/json"]},
            "body": {"string": body}}


# -- the CLI in a subprocess ------------------------------------------------------------------

def run_cli(args: tuple[str, ...], *, tmp_path: Path, drop_env: tuple[str, ...], env: dict[str, str],
            canaries: Callable[[], set[str]]) -> subprocess.CompletedProcess[str]:
    """``talkinghead *args`` as a user runs it (the guard on: nothing but loopback may be
    reached), with the developer's own ``drop_env`` variables taken out; asserts that none of
    the ``canaries`` (asked after the run) shows in its output or in any file under tmp_path."""
    script = Path(sys.executable).with_name("talkinghead")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "talkinghead.cli"]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith((*drop_env, "TALKINGHEAD_"))}
    full_env.update(env, TALKINGHEAD_BLOCK_NETWORK="1")
    result = subprocess.run([*command, *args], env=full_env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    for canary in canaries():
        assert canary not in result.stdout and canary not in result.stderr
        leaks = [str(p) for p in tmp_path.rglob("*") if p.is_file() and canary.encode() in p.read_bytes()]
        assert leaks == []
    return result


def generate_args(provider: str, out: Path, *extra: str, audio: Path | None = MP3) -> list[str]:
    """``talkinghead -vv generate`` of the example face (speaking ``audio``, unless None) to
    ``out``, reporting in JSON."""
    speech = ["--audio", str(audio)] if audio else []
    return ["-vv", "generate", "--provider", provider, "--image", str(FACE), *speech, "--output", str(out), "--json",
            *extra]


def completed_report(result: subprocess.CompletedProcess[str], provider: str) -> dict[str, Any]:
    """The JSON report of a ``generate`` that exited 0 with the job completed on ``provider``."""
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert (report["provider"], report["model"], report["status"]) == (provider, "kling-avatar", "completed")
    return report


# -- every model end to end -------------------------------------------------------------------

def model_request(**fields: Any) -> AvatarRequest:
    """The example face with the example MP3 (unless the request speaks text)."""
    if "text" not in fields:
        fields["audio"] = str(MP3)
    return AvatarRequest(image=str(FACE), **fields)


def assert_sent_only(sent: dict[str, Any], expected: dict[str, Any]) -> None:
    """Exactly the expected fields, with the expected values where one is given (None: any)."""
    assert set(sent) == set(expected), sent
    assert {k: v for k, v in sent.items() if expected[k] is not None} == {
        k: v for k, v in expected.items() if v is not None}


# -- following a job --------------------------------------------------------------------------

async def follow(provider: Any, job: Any) -> list[Any]:
    """Every update of ``provider.stream(job)``, each applied to the job as it comes."""
    updates = []
    async for update in provider.stream(job):
        updates.append(update)
        job.apply(update)
    return updates


async def submit_and_follow(provider: Any, job: Any, request: Any) -> tuple[Any, list[Any]]:
    """Submit, then follow to the end: the job and its updates."""
    job.apply(await provider.submit(job, request))
    return job, await follow(provider, job)


async def submit_and_read(provider: Any, job: Any, request: Any) -> Any:
    """Submit, then read the task once: the job, with both applied."""
    job.apply(await provider.submit(job, request))
    job.apply(await provider.poll(job))
    return job


def assert_billed(job: Any, status: JobStatus, seconds: float, price_per_second: float) -> None:
    """The job ended ``status``, billed for ``seconds`` and settled at that many seconds' price."""
    assert job.status is status and job.billed_seconds == seconds
    assert settled_cost(job) == pytest.approx(seconds * price_per_second)


async def assert_unauthorized(vcr: Any, provider: Any, job: Any, request: Any, *, live: bool, key: str,
                              env_var: str, message: str) -> None:
    """A submit with a refused key: a 401 ``AuthenticationError`` naming the variable to set
    (and, replayed, the backend's ``message``), never showing the key; the cassette played."""
    with pytest.raises(AuthenticationError) as exc:
        await provider.submit(job, request)
    err = exc.value
    assert env_var in str(err) and err.env_var == env_var and err.status_code == 401
    assert key not in str(err) and key not in repr(err) and key not in repr(provider)
    assert live or message in str(err)
    assert live or vcr.all_played
