"""Running the async client's coroutines from sync code, in the calling thread.

The sync ``Client`` owns one event loop for its whole life (its HTTP connections belong to
it). A call runs that loop in the thread that made it, so a call costs no thread hop: the
earlier design ran the loop on a private thread and paid a cross-thread hand-off (two
wake-ups and a future) for every call, about 1.7 ms of CPU per job.

Several threads may share one ``Client``. Exactly one thread drives the loop at a time; a
call made while another thread drives is scheduled onto the running loop and its thread
waits. When the driving thread's own call ends while others are still pending, it hands
the loop over to one of them, which drives until its own call ends, and so on: no call
ever waits for another thread's work to finish before it returns, and every pending call
keeps running. A thread that already runs an event loop (a notebook cell) cannot run a
second one, so its calls go to one helper thread, which drives in the same way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def new_loop() -> asyncio.AbstractEventLoop:
    """The loop a sync ``Client`` owns: asyncio's, or uvloop's with
    ``TALKINGHEAD_EVENT_LOOP=uvloop`` (uvloop installed: the ``speed`` extra; a few percent
    less CPU per job, ``docs/performance.md``). Not uvloop by default: a uvloop loop run in the
    main thread takes over the process's signal wakeup fd while it runs, and the sync client
    runs its loop in the caller's thread, so that choice is the app's to make."""
    if os.environ.get("TALKINGHEAD_EVENT_LOOP", "").lower() == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


class _Call(Generic[T]):
    __slots__ = ("future", "wake", "drive")

    def __init__(self, future: concurrent.futures.Future[T]) -> None:
        self.future = future
        self.wake = threading.Event()  # set when the call is done, or when asked to drive
        self.drive = False


class LoopRunner:
    """``runner.run(coro)``: run ``coro`` on this runner's loop and return its result."""

    def __init__(self) -> None:
        self.loop = new_loop()
        self._lock = threading.Lock()
        self._driving = False
        self._waiting: list[_Call[Any]] = []
        self._helper: concurrent.futures.ThreadPoolExecutor | None = None

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if asyncio._get_running_loop() is not None:  # this thread already runs a loop
            return self._helper_pool().submit(self.run, coro).result()
        with self._lock:
            if self.loop.is_closed():
                coro.close()
                raise RuntimeError("this client is closed")
            if not self._driving:
                self._driving = True
                call = None
            else:
                future = asyncio.run_coroutine_threadsafe(coro, self.loop)
                call = _Call(future)
                self._waiting.append(call)
                wake = call.wake
                future.add_done_callback(lambda _f: wake.set())
        if call is None:
            return self._drive(self.loop.create_task(coro))
        try:
            call.wake.wait()
        except BaseException:  # interrupted while another thread drives: give up our call
            with self._lock:
                if call in self._waiting:
                    self._waiting.remove(call)
                handed = call.drive
            call.future.cancel()
            if handed:
                self._hand_over()
            raise
        if call.drive:
            return self._drive(asyncio.wrap_future(call.future, loop=self.loop))
        return call.future.result()

    def _drive(self, own: asyncio.Future[T]) -> T:
        try:
            self.loop.run_until_complete(own)
        except BaseException:
            # KeyboardInterrupt and the like: cancel our own call, never leave it half-run.
            if not own.done():
                own.cancel()
                try:
                    self.loop.run_until_complete(own)
                except BaseException:
                    pass
            raise
        finally:
            self._hand_over()
        return own.result()

    def _hand_over(self) -> None:
        with self._lock:
            self._waiting = [c for c in self._waiting if not c.future.done()]
            if self._waiting:
                nxt = self._waiting.pop(0)
                nxt.drive = True
                nxt.wake.set()  # still _driving: that thread takes the loop over
            else:
                self._driving = False

    def _helper_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        with self._lock:
            if self._helper is None:
                self._helper = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="talkinghead-loop")
            return self._helper

    def close(self) -> None:
        if self.loop.is_closed():
            return
        # Async generators (a stream left open) and the default executor are finished on the
        # loop that made them, or Python reports "Task was destroyed but it is pending".
        self.run(self.loop.shutdown_asyncgens())  # through the helper thread if need be
        self.run(self.loop.shutdown_default_executor())
        with self._lock:
            helper, self._helper = self._helper, None
        if helper is not None:
            helper.shutdown(wait=True)
        self.loop.close()
