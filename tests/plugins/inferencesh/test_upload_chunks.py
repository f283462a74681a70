"""Uploads are the file's exact bytes however they are read: a small file in one read on the
event loop, a large one chunk by chunk in a worker thread (the last chunk and the read that
confirms the end in one hop), bytes in memory directly."""

from __future__ import annotations

import asyncio
import base64
import io
import shutil
from dataclasses import replace

from talkinghead import http as provider_module  # the shared upload body lives in core http

from .conftest import FACE, MP3, WAV, job_for, prepared


async def test_small_and_large_files_upload_intact(fake, provider, tmp_path, monkeypatch):
    hops = []
    real = asyncio.to_thread

    async def counting(fn, *args):
        hops.append(fn.__name__)
        return await real(fn, *args)

    monkeypatch.setattr(provider_module.asyncio, "to_thread", counting)
    big = tmp_path / "big.wav"  # larger than two chunks, ending mid-chunk (only uploaded, not probed)
    data = WAV.read_bytes()
    while len(data) < 2 * provider_module.UPLOAD_CHUNK + 1000:
        data += WAV.read_bytes()[44:]
    big.write_bytes(data)
    shutil.copy(FACE, tmp_path / "face.jpg")
    request = prepared(tmp_path / "face.jpg", WAV)
    request = replace(request, audio=replace(request.audio, path=big, size=len(data), filename="big.wav"))
    job = job_for()
    job.apply(await provider.submit(job, request))
    assert job.task_id
    assert fake.uploaded() == {"face.jpg": FACE.read_bytes(), "big.wav": big.read_bytes()}
    assert hops == ["_next_chunks"] * 3  # 256 KiB, 256 KiB, then the tail and the end together


def test_next_chunks_reads_a_stream_that_grows_after_a_short_read():
    class Growing(io.BytesIO):
        reads = 0

        def read(self, n=-1):
            self.reads += 1
            return b"ab" if self.reads == 1 else b"cd" if self.reads == 2 else b""

    stream = Growing()
    assert provider_module._next_chunks(stream) == ([b"ab", b"cd"], False)
    assert provider_module._next_chunks(stream) == ([], True)


async def test_bytes_and_small_files_upload_without_a_thread(fake, provider, monkeypatch):
    async def no_threads(*a, **k):
        raise AssertionError("bytes in memory and one-chunk files need no worker thread")

    monkeypatch.setattr(provider_module.asyncio, "to_thread", no_threads)
    uri = "data:image/jpeg;base64," + base64.b64encode(FACE.read_bytes()).decode()
    job = job_for()
    job.apply(await provider.submit(job, prepared(uri, MP3)))
    assert fake.uploaded() == {"image.jpg": FACE.read_bytes(), "hello.mp3": MP3.read_bytes()}
