"""The result download every happy-path cassette ends with, shared by the make_*.py scripts.

An app replaying ``Client.run`` on a cassette needs the whole run, download included. The body
is a real, tiny MP4 (64x64, 2 s, the example face, silent) made with talkinghead's own
encoder, because the client decodes what it downloads before keeping it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from vcr.request import Request


def video_download(url: str) -> tuple[Request, dict]:
    from talkinghead import video

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.mp4"
        face = Path(__file__).resolve().parent.parent / "examples" / "face.jpg"
        video.encode_mp4(out, video.frame_image(face, "1:1", (64, 64)), duration_s=2.0)
        data = out.read_bytes()
    response = {"status": {"code": 200, "message": "OK"},
                "headers": {"Content-Type": ["video/mp4"], "Content-Length": [str(len(data))]},
                "body": {"string": data}}
    return Request("GET", url, None, {}), response
