"""Run an ASGI app (a fake backend, the webhook receiver) on 127.0.0.1 in a thread.

Used by tests, benchmarks and plugin fakes: real uvicorn, real sockets, loopback only.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def serve_asgi(app: Any, *, port: int = 0, name: str = "talkinghead-loopback") -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 (a free port unless ``port``); yields its base URL. Stops the
    server on exit without waiting for open streams."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=name)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"{name}: the loopback server did not start")
        time.sleep(0.005)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        server.force_exit = True
        thread.join(timeout=10)
        sock.close()


def tiny_mp4(seconds: float = 1.0, size: int = 64) -> bytes:
    """A small valid MP4 (H.264 where the encoder exists) for fakes to serve as a result."""
    import io

    import av
    import numpy as np

    codec = next((c for c in ("libx264", "h264", "mpeg4") if c in av.codecs_available), "mpeg4")
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(max(1, int(seconds * 10))):
            frame = np.full((size, size, 3), (i * 20) % 256, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buf.getvalue()
