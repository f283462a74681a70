"""Drawing ahead of the encoder, in a worker thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator


def ahead(items: Iterator[object], depth: int = 6) -> Iterator[object]:
    """``items``, produced by a worker thread up to ``depth`` ahead of the consumer. Drawing
    is numpy/OpenCV work that releases the GIL, so it overlaps the encoder instead of
    alternating with it (about 1.5x faster end to end on two cores). An exception in the
    worker (``RenderCancelled`` included) is raised in the consumer; a consumer that stops
    early stops the worker."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: tuple[object, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                q.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((done, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put((done, exc))

    worker = threading.Thread(target=work, name="talkinghead-local-draw", daemon=True)
    worker.start()
    try:
        while True:
            item, error = q.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()


__all__ = ["ahead"]
