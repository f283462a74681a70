"""Conformance with the official client: the ``inferencesh`` SDK (0.36.0, test-only) and our
provider run against the same fake server with the same inputs; what each sent is compared
(paths, methods, JSON bodies, auth and the headers that matter).

Where we differ on purpose, the test asserts the difference and says why.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from talkinghead.models import JobStatus

from .conftest import FACE, TEST_KEY, WAV, job_for, prepared

inferencesh = pytest.importorskip("inferencesh")

HOOK_PATH = "/hooks/conformance?token=opaque"


def _sdk(fake) -> Any:
    assert inferencesh.__version__ == "0.36.0"  # the pinned version the protocol notes describe
    return inferencesh.Inference(api_key=TEST_KEY, base_url=fake.url)


def _ids(text: str) -> str:
    """Task and file ids replaced by placeholders, so two runs can be compared."""
    return re.sub(r"01jfake(task|file)\d+", lambda m: "{" + m.group(1) + "}", text)


def _shape(records) -> list[tuple[str, str]]:
    return [(r.method, _ids(r.path)) for r in records]


def _normalise_run(body: dict[str, Any]) -> dict[str, Any]:
    out = dict(body)
    out["input"] = {k: _ids(v) if isinstance(v, str) else v for k, v in body["input"].items()}
    return out


def _inputs(fake, mode="pro", prompt="Smiles and nods", files=True) -> dict[str, Any]:
    image, audio = (str(FACE), str(WAV)) if files else ("https://img.example.org/a.png",
                                                       "https://snd.example.org/v.mp3")
    return {"image": image, "audio": audio, "prompt": prompt, "mode": mode, "aspect_ratio": "9:16"}


async def _ours(fake, make_provider, inputs, webhook):
    provider = make_provider(fake.url)
    job = job_for(webhook_url=webhook)
    request = prepared(inputs["image"], inputs["audio"], prompt=inputs["prompt"], mode=inputs["mode"],
                       aspect_ratio=inputs["aspect_ratio"])
    job.apply(await provider.submit(job, request))
    return provider, job


async def test_submit_with_local_files_matches_the_sdk(fake, make_provider):
    fake.configure(step_latency=0.01)
    webhook = fake.url + HOOK_PATH
    inputs = _inputs(fake)

    # the SDK: uploads each local path, then creates the task (wait=False: nothing more)
    await asyncio.to_thread(_sdk(fake).run, {"app": "klingai/avatar", "input": inputs, "webhook": webhook},
                            wait=False)
    sdk = [r for r in fake.requests if r.endpoint != "hook"]
    sdk_files = dict(fake.files)
    fake.reset(step_latency=0.01)

    await _ours(fake, make_provider, inputs, webhook)
    ours = [r for r in fake.requests if r.endpoint != "hook"]
    our_files = dict(fake.files)

    # the same calls, in the same order
    assert _shape(ours) == _shape(sdk) == [
        ("POST", "/files"), ("PUT", "/upload/{file}"), ("POST", "/files"), ("PUT", "/upload/{file}"),
        ("POST", "/apps/run")]

    # the same API auth; no Authorization on the presigned PUTs
    for theirs, mine in zip(sdk, ours, strict=True):
        if theirs.endpoint == "upload":
            assert theirs.header("authorization") is None and mine.header("authorization") is None
        else:
            assert theirs.header("authorization") == mine.header("authorization") == f"Bearer {TEST_KEY}"
        # Neither sends X-API-Version, so both get whatever envelope the server defaults to
        # (and both unwrap {data: ...}); see §1.1 of the protocol notes.
        assert theirs.header("x-api-version") is None and mine.header("x-api-version") is None

    # POST /files: the same record, field for field...
    sdk_records = [r.json["files"][0] for r in sdk if r.endpoint == "files"]
    our_records = [r.json["files"][0] for r in ours if r.endpoint == "files"]
    assert [set(r) for r in our_records] == [set(r) for r in sdk_records]
    for theirs, mine in zip(sdk_records, our_records, strict=True):
        assert {k: v for k, v in mine.items() if k != "content_type"} == \
               {k: v for k, v in theirs.items() if k != "content_type"}
    assert our_records[0]["content_type"] == sdk_records[0]["content_type"] == "image/jpeg"
    # ...except the WAV's type: the SDK guesses from the extension (Python's mimetypes gives the
    # non-standard "audio/x-wav"); we send the type of the sniffed content, the registered
    # "audio/wav". Storage only echoes it back as the file's type; the app decides by URL suffix.
    assert sdk_records[1]["content_type"] == "audio/x-wav"
    assert our_records[1]["content_type"] == "audio/wav"

    # the PUTs: identical bytes, a Content-Type equal to the record's, an explicit length
    sdk_puts = [r for r in sdk if r.endpoint == "upload"]
    our_puts = [r for r in ours if r.endpoint == "upload"]
    for theirs, mine, record in zip(sdk_puts, our_puts, our_records, strict=True):
        assert mine.body == theirs.body
        assert mine.header("content-length") == theirs.header("content-length") == str(len(mine.body))
        assert mine.header("content-type") == record["content_type"]
        assert mine.header("transfer-encoding") is None  # streamed from disk, but not chunked
    assert sorted(f["data"] for f in our_files.values()) == sorted(f["data"] for f in sdk_files.values())

    # POST /apps/run: the same body once the file ids are set aside
    (sdk_run,) = [r.json for r in sdk if r.endpoint == "create"]
    (our_run,) = [r.json for r in ours if r.endpoint == "create"]
    assert _normalise_run(our_run) == _normalise_run(sdk_run)
    assert list(our_run) == ["app", "input", "webhook"]
    assert our_run["input"]["image"].endswith("/face.jpg") and our_run["input"]["audio"].endswith("/hello.wav")

    # Deliberate: the SDK identifies itself, so do we; it also sends Content-Type on every
    # request (GET and bodiless POST included), where we send it only with a JSON body.
    assert sdk[0].header("user-agent") == "inference-sdk-py/0.36.0"
    assert ours[0].header("user-agent").startswith("talkinghead/")
    assert all(r.header("content-type") == "application/json" for r in sdk if r.endpoint != "upload")
    assert all(r.header("content-type") == "application/json" for r in ours if r.endpoint in ("files", "create"))


async def test_url_inputs_and_a_null_prompt(fake, make_provider):
    inputs = _inputs(fake, mode="std", prompt=None, files=False)
    await asyncio.to_thread(_sdk(fake).run, {"app": "klingai/avatar", "input": inputs}, wait=False)
    (sdk_run,) = [r.json for r in fake.creates]
    fake.reset()
    await _ours(fake, make_provider, inputs, None)
    (our_run,) = [r.json for r in fake.creates]

    # URLs pass through unchanged in both; neither uploads anything
    assert fake.requests_to("files") == []
    assert our_run["input"]["image"] == sdk_run["input"]["image"] == inputs["image"]
    # Deliberate: the SDK sends the caller's dict as-is, so a missing prompt goes out as null;
    # we leave it out. The app's default for prompt is null (§11), so the two mean the same.
    assert sdk_run["input"]["prompt"] is None and "prompt" not in our_run["input"]
    sdk_run["input"].pop("prompt")
    assert our_run == sdk_run  # and no "webhook" key from either when there is none


async def test_following_a_task_matches_the_sdk(fake, make_provider):
    fake.configure(step_latency=0.01)
    inputs = _inputs(fake, files=False)

    result = await asyncio.to_thread(_sdk(fake).run, {"app": "klingai/avatar", "input": inputs})
    assert result["status"] == 10
    sdk = list(fake.requests)
    fake.reset(step_latency=0.01)

    provider, job = await _ours(fake, make_provider, inputs, None)
    async for update in provider.stream(job):
        job.apply(update)
    assert job.status is JobStatus.COMPLETED
    ours = list(fake.requests)

    # Deliberate: the sync SDK reads the task once before opening the stream (§12.3); we go
    # straight to the stream, as the SDK's async client does: the create answer is that read.
    assert _shape(sdk) == [("POST", "/apps/run"), ("GET", "/tasks/{task}"), ("GET", "/tasks/{task}/stream")]
    assert _shape(ours) == [("POST", "/apps/run"), ("GET", "/tasks/{task}/stream")]

    sdk_stream, our_stream = sdk[-1], ours[-1]
    for name in ("accept", "cache-control", "accept-encoding", "authorization"):
        assert our_stream.header(name) == sdk_stream.header(name), name
    # requests adds "Connection: keep-alive" explicitly; httpx relies on HTTP/1.1's default.
    assert sdk_stream.header("connection") == "keep-alive"
    assert our_stream.header("connection") in (None, "keep-alive")


async def test_cancel_and_get_match_the_sdk(fake, make_provider):
    fake.configure(step_latency=1.0)
    inputs = _inputs(fake, files=False)
    sdk_client = _sdk(fake)
    task = await asyncio.to_thread(sdk_client.run, {"app": "klingai/avatar", "input": inputs}, wait=False)
    await asyncio.to_thread(sdk_client.get_task, task["id"])
    await asyncio.to_thread(sdk_client.cancel, task["id"])
    sdk = fake.requests[1:]
    fake.reset(step_latency=1.0)

    provider, job = await _ours(fake, make_provider, inputs, None)
    await provider.poll(job)
    await provider.cancel(job)
    ours = fake.requests[1:]

    assert _shape(ours) == _shape(sdk) == [("GET", "/tasks/{task}"), ("POST", "/tasks/{task}/cancel")]
    for theirs, mine in zip(sdk, ours, strict=True):
        assert mine.body == theirs.body == b""  # cancel has no body in either
        assert mine.header("authorization") == theirs.header("authorization")


async def test_a_new_app_matches_the_sdk_p_video_avatar(fake, make_provider):
    # The same comparison for another model's app: a local photo uploaded, text spoken by the
    # app itself with one of its voices and languages, and only the app's own fields.
    inputs = {"image": str(FACE), "voice_script": "Bonjour à tous", "voice": "Puck (Male)",
              "voice_language": "French", "resolution": "1080p", "video_prompt": "in a bright studio", "seed": 7}
    await asyncio.to_thread(_sdk(fake).run, {"app": "pruna/p-video-avatar", "input": inputs}, wait=False)
    sdk = list(fake.requests)
    fake.reset()

    from talkinghead.media import prepare
    from talkinghead.models import AvatarRequest, Job

    provider = make_provider(fake.url)
    request = AvatarRequest(image=str(FACE), text="Bonjour à tous", voice="Puck (Male)", language="French",
                            mode="pro", prompt="in a bright studio", seed=7)
    job = Job(provider="inferencesh", model="p-video-avatar")
    job.apply(await provider.submit(job, prepare(request)))
    ours = list(fake.requests)

    assert _shape(ours) == _shape(sdk) == [("POST", "/files"), ("PUT", "/upload/{file}"), ("POST", "/apps/run")]
    (sdk_run,) = [r.json for r in sdk if r.endpoint == "create"]
    (our_run,) = [r.json for r in ours if r.endpoint == "create"]
    assert _normalise_run(our_run) == _normalise_run(sdk_run)
    assert job.task_id in fake.tasks  # the fake took it as the app's input and made a task
