"""Test suites every cloud plugin runs, made per plugin: each factory returns test functions and
a plugin's test module does ``globals().update(factory(...))``, naming what differs (its fake's
endpoints, its key's variable, its backend's words). The fixtures they take (``fake``,
``provider``, ``make_provider``, ``cassette_provider``, ``cli``, ``vcr``) come from the plugin's
conftest, built with ``tests.plugins.shared``."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from talkinghead import http
from talkinghead.errors import (
    AuthenticationError,
    NetworkBlocked,
    ProviderError,
    ProviderTimeout,
    RateLimitError,
    RequestRefused,
    ServerError,
    SubmitOutcomeUnknown,
)
from talkinghead.models import JobStatus
from talkinghead.provider import CREATE_MARK
from tests.plugins.shared import (
    ROOT,
    assert_unauthorized,
    generate_args,
    poll_to_end,
    recorded_answer,
    scrub_signed_urls,
)

# -- against the fake server -----------------------------------------------------------------

def fake_server_tests(job_for: Callable[..., Any], prepared: Callable[..., Any], urls: tuple[str, str], *,
                      create: str, unknown_task: tuple[str, str], real_url: str,
                      uploads_off_machine: dict[str, Any] | None = None, unconfigured: tuple[type, str] | None = None,
                      retries: tuple[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
    """The tests every cloud plugin runs against its fake (``fake``, ``provider`` and
    ``make_provider`` fixtures), submitting ``prepared(*urls)`` to the fake's ``create`` endpoint;
    a test module does ``globals().update(...)``.

    Always: an unreachable host is retried, then reported as a timeout; ``aclose`` is idempotent
    and the provider makes new clients after it; a task the backend does not know is a
    ``ProviderError`` (``unknown_task``: its id and the words to match); with the network guard on,
    the provider cannot reach its backend (``real_url``), nor, given ``uploads_off_machine`` (the
    fake's switches that send uploads to a signed URL elsewhere), upload. Given ``unconfigured``
    (the provider class and its key's variable): a provider without a key sends nothing, not even
    the local files of ``prepared()``. Given ``retries`` (the endpoint that reads a task, and what
    gives the tasks the fake made): which failed creates and reads are retried, and that a create
    whose request may have arrived is never sent again."""

    def creates(fake: Any) -> int:
        return len(fake.requests_to(create))

    async def test_connect_error_is_retried_then_reported(make_provider: Callable[..., Any]) -> None:
        with socket.socket() as s:  # a port nobody listens on: connect errors, provably never sent
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        provider = make_provider(f"http://127.0.0.1:{port}")
        with pytest.raises(ProviderTimeout, match="cannot reach"):
            await provider.submit(job_for(), prepared(*urls))

    async def test_aclose_is_idempotent_and_clients_come_back(fake: Any, provider: Any) -> None:
        await provider.aclose()
        await provider.aclose()
        await provider.submit(job_for(), prepared(*urls))
        assert creates(fake) == 1

    async def test_unknown_task_is_a_provider_error(fake: Any, provider: Any) -> None:
        with pytest.raises(ProviderError, match=unknown_task[1]):
            await provider.poll(job_for(unknown_task[0]))

    async def test_the_network_guard_covers_every_client(fake: Any, make_provider: Callable[..., Any],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(http.guard, "enabled", True)
        job = job_for(unknown_task[0])
        with pytest.raises(NetworkBlocked, match=re.escape(urlsplit(real_url).netloc)) as exc:
            await make_provider(real_url).poll(job)
        assert exc.value.provider == job.provider
        if uploads_off_machine is not None:
            fake.configure(upload_base="https://storage.example.com", **uploads_off_machine)
            with pytest.raises(NetworkBlocked, match="storage.example.com"):
                await make_provider(fake.url).submit(job_for(), prepared())
            assert fake.requests_to("upload") == []

    async def test_the_create_is_marked_once_right_before_it_is_sent(fake: Any, provider: Any) -> None:
        """The rule ``jobs resume`` relies on not to pay twice: the provider journals "the
        create may now exist" once, after every other request (the uploads) and before the
        create; nothing but the create follows the mark."""
        marks: list[tuple[int, int]] = []  # (creates sent, all requests) at each mark
        token = CREATE_MARK.set(lambda job: marks.append((creates(fake), len(fake.requests))))
        try:
            await provider.submit(job_for(), prepared())  # local files: uploaded first
        finally:
            CREATE_MARK.reset(token)
        assert len(marks) == 1 and marks[0][0] == 0
        assert creates(fake) == 1 and len(fake.requests) == marks[0][1] + 1

    tests: list[Callable[..., Any]] = [
        test_connect_error_is_retried_then_reported, test_aclose_is_idempotent_and_clients_come_back,
        test_unknown_task_is_a_provider_error, test_the_network_guard_covers_every_client,
        test_the_create_is_marked_once_right_before_it_is_sent]
    if unconfigured:
        provider_type, env_var = unconfigured

        async def test_missing_key_fails_before_any_request(fake: Any, monkeypatch: pytest.MonkeyPatch) -> None:
            monkeypatch.delenv(env_var, raising=False)
            provider = provider_type({"base_url": fake.url})
            assert not provider.configured()
            with pytest.raises(AuthenticationError, match=env_var):
                await provider.submit(job_for(), prepared())
            assert fake.requests == []

        tests.append(test_missing_key_fails_before_any_request)
    if retries:
        tests += _retry_tests(job_for, lambda: prepared(*urls), create, creates, *retries)
    return {f.__name__: f for f in tests}


def _retry_tests(job_for: Callable[..., Any], request: Callable[[], Any], create: str, creates: Callable[[Any], int],
                 read: str, made: Callable[[Any], Any]) -> list[Callable[..., Any]]:
    """See ``fake_server_tests``."""

    async def test_create_read_timeout_is_never_resent(fake: Any, make_provider: Callable[..., Any]) -> None:
        fake.configure(**{f"{create}_delay": 0.6})
        provider = make_provider(fake.url, timeout=0.15)
        with pytest.raises(SubmitOutcomeUnknown, match="not resent"):
            await provider.submit(job_for(), request())
        for _ in range(200):  # the server makes the (billed) task anyway once its delay is over
            if made(fake):
                break
            await asyncio.sleep(0.025)  # a fixed sleep flaked on a loaded machine
        assert creates(fake) == 1 and len(made(fake)) == 1

    async def test_create_429_then_success_waits_for_retry_after(fake: Any, provider: Any) -> None:
        fake.configure(failures={create: [429, 200]}, retry_after=0.3)
        start = time.monotonic()
        update = await provider.submit(job_for(), request())
        assert time.monotonic() - start >= 0.3  # Retry-After honoured
        assert update.task_id and creates(fake) == 2 and len(made(fake)) == 1

    async def test_create_503_is_retried(fake: Any, provider: Any) -> None:
        fake.configure(failures={create: [503, 503, 200]}, retry_after=0)
        await provider.submit(job_for(), request())
        assert creates(fake) == 3

    async def test_create_500_is_not_retried(fake: Any, provider: Any) -> None:
        fake.configure(failures={create: [500, 200]})
        with pytest.raises(ServerError, match="500"):
            await provider.submit(job_for(), request())
        assert creates(fake) == 1

    @pytest.mark.parametrize("code", [502, 504])
    async def test_create_gateway_error_is_outcome_unknown(fake: Any, provider: Any, code: int) -> None:
        fake.configure(failures={create: [code, 200]})
        with pytest.raises(SubmitOutcomeUnknown):
            await provider.submit(job_for(), request())
        assert creates(fake) == 1

    async def test_create_429_until_attempts_run_out(fake: Any, provider: Any) -> None:
        fake.configure(failures={create: [429] * 10}, retry_after=0)
        with pytest.raises(RateLimitError, match="rate limited") as exc:
            await provider.submit(job_for(), request())
        assert exc.value.retryable and creates(fake) == 4  # retry_attempts

    async def test_read_errors_end_after_bounded_retries(fake: Any, provider: Any) -> None:
        job = job_for()
        job.apply(await provider.submit(job, request()))
        fake.configure(failures={read: [500] * 4})
        with pytest.raises(ServerError):
            await provider.poll(job)
        assert len(fake.requests_to(read)) == 4
        assert (await provider.poll(job)).status is JobStatus.COMPLETED  # and the next read succeeds

    return [test_create_read_timeout_is_never_resent, test_create_429_then_success_waits_for_retry_after,
            test_create_503_is_retried, test_create_500_is_not_retried, test_create_gateway_error_is_outcome_unknown,
            test_create_429_until_attempts_run_out, test_read_errors_end_after_bounded_retries]


# -- cassettes ---------------------------------------------------------------------------------

def dual_mode_cassette_tests(job_for: Callable[[], Any], *, files: Callable[[], Any], urls: Callable[[], Any],
                             cancel: tuple[str, str], poll: dict[str, Any], ended: Callable[[Any, bool], None],
                             refused: Callable[[Callable[..., Any], str], Any], keys: tuple[str, str],
                             env_var: str, message: str) -> dict[str, Any]:
    """The tests of ``cancel.yaml`` and ``unauthorized.yaml`` every cloud plugin has (replayed, or
    re-recorded live); a test module does ``globals().update(...)``.

    Cancel: submit ``files()``, cancel (which answers nothing), poll to the end (``poll``: the
    ``rounds`` and ``what`` of ``poll_to_end``); ``ended(update, live)`` checks the last update, and
    the cancel went to ``cancel`` (method and path, ``{}`` for the task id). Unauthorized: a
    provider made by ``refused(make_provider, key)`` submits ``urls()`` with the first of ``keys``
    (live) or the second (replayed): see ``assert_unauthorized``."""

    @pytest.mark.live
    @pytest.mark.default_cassette("cancel.yaml")
    async def test_cancel_then_read_to_the_end(vcr: Any, cassette_provider: Any, live: bool) -> None:
        job = job_for()
        job.apply(await cassette_provider.submit(job, files()))
        assert await cassette_provider.cancel(job) is None
        ended(await poll_to_end(cassette_provider, job, live, **poll), live)
        assert (cancel[0], cancel[1].format(job.task_id)) in [(r.method, r.path) for r in vcr.requests]
        assert live or vcr.all_played

    @pytest.mark.live
    @pytest.mark.default_cassette("unauthorized.yaml")
    async def test_401_names_the_env_var_and_never_the_key(vcr: Any, make_provider: Any, live: bool) -> None:
        key = keys[0] if live else keys[1]
        await assert_unauthorized(vcr, refused(make_provider, key), job_for(), urls(), live=live, key=key,
                                  env_var=env_var, message=message)

    return {f.__name__: f for f in (test_cancel_then_read_to_the_end, test_401_names_the_env_var_and_never_the_key)}


def model_cassette_tests(models: dict[str, tuple[str, dict[str, Any], float | None, str]],
                         submit: Callable[..., Any], *, refused: str) -> dict[str, Any]:
    """The tests of each model's hand-authored cassettes (``<name>_happy``, ``_validation_error``
    and ``_task_failed``, replayed with the ``cassette_provider`` fixture). ``models`` maps a name to
    the model, the request's fields, the seconds the backend reports and the failed task's error;
    ``submit(provider, vcr, model, fields)`` submits (checking the body sent is the cassette's) and
    returns the job; ``refused`` is matched in the validation error. A test module does
    ``globals().update(...)``."""

    def cases(kind: str) -> list[Any]:
        return [pytest.param(name, *spec, marks=pytest.mark.default_cassette(f"{name}_{kind}.yaml"), id=name)
                for name, spec in models.items()]

    async def submit_and_read(provider: Any, vcr: Any, model: str, fields: dict[str, Any]) -> Any:
        job = await submit(provider, vcr, model, fields)
        job.apply(await provider.poll(job))
        return job

    @pytest.mark.vcr
    @pytest.mark.parametrize("name, model, fields, seconds, failure", cases("happy"))
    async def test_happy(vcr: Any, cassette_provider: Any, name: str, model: str, fields: dict[str, Any],
                         seconds: float | None, failure: str) -> None:
        job = await submit_and_read(cassette_provider, vcr, model, fields)
        assert job.status is JobStatus.COMPLETED and job.output_url.endswith(f"/{name}.mp4")
        assert job.duration_s == seconds  # what the backend reports (some meter a fixed length)
        assert vcr.all_played

    @pytest.mark.vcr
    @pytest.mark.parametrize("name, model, fields, seconds, failure", cases("validation_error"))
    async def test_validation_error(vcr: Any, cassette_provider: Any, name: str, model: str, fields: dict[str, Any],
                                    seconds: float | None, failure: str) -> None:
        with pytest.raises(RequestRefused, match=refused):  # it was sent: exit 4, not 2
            await submit(cassette_provider, vcr, model, fields)
        assert vcr.all_played

    @pytest.mark.vcr
    @pytest.mark.parametrize("name, model, fields, seconds, failure", cases("task_failed"))
    async def test_task_failed(vcr: Any, cassette_provider: Any, name: str, model: str, fields: dict[str, Any],
                               seconds: float | None, failure: str) -> None:
        job = await submit_and_read(cassette_provider, vcr, model, fields)
        assert job.status is JobStatus.FAILED and job.error == failure and job.output_url is None
        assert vcr.all_played

    return {f.__name__: f for f in (test_happy, test_validation_error, test_task_failed)}


# -- the secret scan over cassette files ------------------------------------------------------

def secret_scan_tests(files: list[Path], find_secrets: Callable[[str], list[str]], *, expected: set[str],
                      catches: list[str], leaves_alone: list[str]) -> dict[str, Any]:
    """The scan's tests for one plugin: the ``files`` exist (``expected`` names among them) and
    hold no secret, and the scanner catches each of ``catches`` and none of ``leaves_alone``; a
    test module does ``globals().update(secret_scan_tests(...))``."""

    def test_there_are_cassettes_to_scan() -> None:
        assert expected <= {p.name for p in files}

    @pytest.mark.parametrize("path", files, ids=lambda p: str(p.relative_to(ROOT)))
    def test_no_secret_in_cassette_files(path: Path) -> None:
        text = path.read_bytes().decode("utf-8", errors="replace")
        assert find_secrets(text) == [], f"{path.relative_to(ROOT)} looks like it holds a secret"

    @pytest.mark.parametrize("sample", catches)
    def test_the_scanner_catches_secrets(sample: str) -> None:
        assert find_secrets(sample)

    @pytest.mark.parametrize("sample", leaves_alone)
    def test_the_scanner_leaves_ordinary_text_alone(sample: str) -> None:
        assert find_secrets(sample) == []

    return {f.__name__: f for f in (test_there_are_cassettes_to_scan, test_no_secret_in_cassette_files,
                                    test_the_scanner_catches_secrets, test_the_scanner_leaves_ordinary_text_alone)}


def upload_recording_test(find_secrets: Callable[[str], list[str]], before_record_request: Callable[[Any], Any],
                          before_record_response: Callable[[dict[str, Any]], dict[str, Any]], *, put_url: str,
                          media: bytes, answer: bytes, kept: bytes, param: str) -> dict[str, Any]:
    """The test that the ``vcr_config`` hooks leave nothing secret of a live upload exchange: the
    PUT of ``media`` to a signed URL loses the signature and the media (a size instead); an
    ``answer`` naming a signed URL loses its signature but keeps ``kept`` and drops the cookie;
    and the signed-URL scrubber redacts ``param``. A test module does ``globals().update(...)``."""

    def test_recording_hooks_scrub_what_a_live_recording_would_hold() -> None:
        from vcr.request import Request

        put = before_record_request(Request("PUT", put_url, media, {"Content-Type": "application/octet-stream"}))
        assert find_secrets(put.uri) == [] and put.body == f"<{len(media)} bytes>".encode()
        recorded = before_record_response(recorded_answer(answer))
        assert find_secrets(recorded["body"]["string"].decode()) == []
        assert kept in recorded["body"]["string"] and "Set-Cookie" not in recorded["headers"]
        assert scrub_signed_urls(f"a?{param}=1&b=2") == f"a?{param}=REDACTED&b=2"

    return {test_recording_hooks_scrub_what_a_live_recording_would_hold.__name__:
            test_recording_hooks_scrub_what_a_live_recording_would_hold}


# -- the CLI in a subprocess ------------------------------------------------------------------

def cli_exit_4_tests(provider: str, *, failure: dict[str, Any], says: str, env_var: str,
                     created: Callable[[Any], list[Any]]) -> dict[str, Any]:
    """The CLI's tests of a backend's refusals (with the plugin's ``cli`` and ``fake`` fixtures):
    a job the fake fails (``failure``: its switches) exits 4 with the backend's words (``says``),
    no traceback and no output file; a key the fake refuses exits 4 naming ``env_var``, before
    anything is created (``created(fake)``). A test module does ``globals().update(...)``."""

    def test_failed_job_exits_4_with_the_backends_error(cli: Any, fake: Any, tmp_path: Path) -> None:
        fake.configure(**failure)
        result = cli(*generate_args(provider, tmp_path / "out.mp4"))
        assert result.returncode == 4
        assert says in result.stderr and "Traceback" not in result.stderr
        assert not (tmp_path / "out.mp4").exists()

    def test_wrong_key_exits_4_naming_the_env_var(cli: Any, fake: Any, tmp_path: Path) -> None:
        fake.configure(api_key="the-right-key-000000")
        result = cli(*generate_args(provider, tmp_path / "out.mp4"))
        assert result.returncode == 4 and env_var in result.stderr
        assert created(fake) == []

    return {f.__name__: f for f in (test_failed_job_exits_4_with_the_backends_error,
                                    test_wrong_key_exits_4_naming_the_env_var)}
