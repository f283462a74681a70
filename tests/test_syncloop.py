"""The sync Client's loop runs in the calling thread; threads sharing a client take turns."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from talkinghead import AvatarRequest, Client, JobStatus
from talkinghead.plugins import get_provider_classes
from talkinghead.syncloop import LoopRunner


@pytest.fixture(autouse=True, params=[None, "uvloop"], ids=["default", "uvloop"])
def loop_kind(request, monkeypatch):
    """Every test here runs on both loops a sync Client can own: the default (asyncio's) and
    uvloop's, asked for by name."""
    if request.param is None:
        monkeypatch.delenv("TALKINGHEAD_EVENT_LOOP", raising=False)
        return "asyncio"
    monkeypatch.setenv("TALKINGHEAD_EVENT_LOOP", request.param)
    return request.param


def test_the_loop_is_asyncio_unless_uvloop_is_asked_for(loop_kind):
    runner = LoopRunner()
    try:
        assert type(runner.loop).__module__.split(".")[0] == loop_kind
    finally:
        runner.close()


def test_a_call_from_the_main_thread_leaves_the_signal_wakeup_fd_alone(loop_kind):
    """The app's signal wakeup fd is the app's: a default Client call must not move it, even
    for the call's duration (uvloop's loop does: that is why it is opt-in)."""
    import signal
    import socket

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal.set_wakeup_fd works in the main thread only")
    a, b = socket.socketpair()
    a.setblocking(False)
    previous = signal.set_wakeup_fd(a.fileno())
    runner = LoopRunner()
    try:
        async def during() -> int:
            return _current_wakeup_fd()

        seen = runner.run(during())
        assert signal.set_wakeup_fd(previous) == a.fileno()  # restored after the call
        if loop_kind == "asyncio":
            assert seen == a.fileno()  # and untouched during it
    finally:
        runner.close()
        a.close()
        b.close()


def _current_wakeup_fd() -> int:
    import signal

    fd = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(fd)
    return fd


def test_a_call_runs_on_the_calling_thread():
    runner = LoopRunner()

    async def where():
        return threading.get_ident()
    try:
        assert runner.run(where()) == threading.get_ident()
    finally:
        runner.close()


def test_threads_sharing_a_runner_all_finish_and_none_waits_for_a_longer_call():
    runner = LoopRunner()
    done: dict[int, float] = {}
    start = time.monotonic()

    async def sleep_for(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    def worker(i: int, seconds: float) -> None:
        assert runner.run(sleep_for(seconds)) == seconds
        done[i] = time.monotonic() - start

    # One long call and several short ones, started together: the short ones must return in
    # their own time, not when the long one (whichever thread drives the loop) ends.
    threads = [threading.Thread(target=worker, args=(0, 1.5))]
    threads += [threading.Thread(target=worker, args=(i, 0.05 * i)) for i in range(1, 6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        assert sorted(done) == [0, 1, 2, 3, 4, 5]
        assert max(done[i] for i in range(1, 6)) < 1.2
        assert done[0] >= 1.5
    finally:
        runner.close()


def test_an_error_reaches_its_own_caller_and_the_loop_keeps_working():
    runner = LoopRunner()

    async def boom():
        raise ValueError("bad")

    async def fine():
        return 42
    try:
        with pytest.raises(ValueError, match="bad"):
            runner.run(boom())
        assert runner.run(fine()) == 42
    finally:
        runner.close()


def test_a_closed_runner_refuses_calls():
    runner = LoopRunner()
    runner.close()

    async def fine():
        return 1
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(fine())


def test_threads_share_one_sync_client(face, speech):
    provider = get_provider_classes()["mock"]({})
    results: list[JobStatus] = []
    errors: list[BaseException] = []
    with Client(providers=[provider]) as client:
        def one() -> None:
            try:
                job = client.submit(AvatarRequest(image=face, audio=speech), provider="mock")
                results.append(client.wait(job).status)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
        threads = [threading.Thread(target=one) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert results == [JobStatus.COMPLETED] * 4
