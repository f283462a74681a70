"""Writes the hand-authored inference.sh cassettes in cassettes/inferencesh/.

They are authored from the protocol notes (docs/protocols/inference-sh.md; section numbers
below), not recorded: see cassettes/README.md, which also says how to re-record the ones a
live account can produce. The committed YAML is what the tests replay; this script only makes
it reproducible. Run from the repository root:

    python cassettes/make_inferencesh.py

It uses vcrpy's own serializer, so the files are exactly what vcrpy 9 / pytest-recording read.
Secrets never appear: Authorization is "REDACTED" and signed upload URLs carry
"X-Signature=REDACTED", as the tests' vcr_config scrubbing would leave them.
"""

from __future__ import annotations

import json
from pathlib import Path

from authoring import answer as _ok  # beside this script
from authoring import write
from result_video import video_download
from vcr.request import Request

OUT = Path(__file__).resolve().parent / "inferencesh"
API = "https://api.inference.sh"
STORAGE = "https://storage.example.com/bucket"
CLOUD = "https://cloud.inference.sh/u/exampleuser"
AUTH = {"Authorization": ["REDACTED"]}
HEADER = ("# Hand-authored from docs/protocols/inference-sh.md by cassettes/make_inferencesh.py\n"
          "# (not a recording; see cassettes/README.md for how to re-record with a live key).\n")


def _problem(status, code, title, detail, headers=None):
    # v2 error (§1.1, §10): application/problem+json
    body = {"type": f"https://api.inference.sh/errors/{code}", "title": title, "status": status,
            "detail": detail}
    return _ok(body, status=status, message=title, content_type="application/problem+json",
               headers=headers)


def _v1(dto):
    return {"success": True, "status": 200, "data": dto}


def _req(method, uri, body=None, headers=None):
    h = dict(AUTH) if uri.startswith(API) else {}
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
        h["Content-Type"] = ["application/json"]
    h.update({k: [v] for k, v in (headers or {}).items()})
    return Request(method, uri, body, h)


def _ndjson(*lines):
    return "".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines)


HEARTBEAT = {"type": "heartbeat"}
STREAM_HEADERS = {"Accept": "application/x-ndjson", "Cache-Control": "no-cache", "Accept-Encoding": "identity"}


def _stream_req(task_id):
    return _req("GET", f"{API}/tasks/{task_id}/stream", headers=STREAM_HEADERS)


def _stream_resp(text):
    return _ok(text, content_type="application/x-ndjson")


def _task(task_id, status, *, mode="std", output=None, error=None, image=None, audio=None,
          prompt=None, webhook=None, updated="2026-08-20T10:00:00Z"):
    inputs = {"image": image or f"{CLOUD}/face.jpg", "audio": audio or f"{CLOUD}/hello.wav"}
    if prompt:
        inputs["prompt"] = prompt
    inputs.update({"mode": mode, "aspect_ratio": "16:9"})
    return {"id": task_id, "status": status, "error": error, "session_id": None,
            "app_id": "01jexampleapp000000000000c", "function": "run", "infra": "cloud",
            "input": inputs, "output": output, "webhook": webhook, "logs": [],
            "events": [{"id": "ev1", "created_at": "2026-08-20T10:00:00Z", "event_time": "2026-08-20T10:00:00Z",
                        "task_id": task_id, "status": 1}],
            "created_at": "2026-08-20T10:00:00Z", "updated_at": updated}


def _output(name, seconds, mode):
    # §7 and §11: the File object, and output_meta with the billed seconds.
    return {"video": {"uri": f"{CLOUD}/{name}", "content_type": "video/mp4", "filename": name, "size": 5242880},
            "output_meta": {"outputs": [{"type": "video", "seconds": seconds,
                                         "extra": {"quality": mode, "model": "kling-avatar"}}]}}


def _partial(task_id, updated, **fields):
    names = list(fields) + ["updated_at"]
    return {"data": {"id": task_id, **fields, "updated_at": updated}, "fields": names}


def _uploads(file_ids, *, wrap=False):
    """POST /files + PUT upload_url for the image, then the audio (§6, §12.4)."""
    pairs = []
    for fid, name, ctype, size in file_ids:
        record = {"uri": "", "filename": name, "content_type": ctype, "path": None, "size": size, "public": None}
        dto = [{"id": fid, "uri": f"{CLOUD}/{name}", "upload_url": f"{STORAGE}/{fid}/{name}?X-Signature=REDACTED",
                "filename": name, "content_type": ctype, "size": size, "path": "",
                "created_at": "2026-08-20T09:59:58Z"}]
        pairs.append((_req("POST", f"{API}/files", {"files": [record]}), _ok(_v1(dto) if wrap else dto)))
        put = Request("PUT", f"{STORAGE}/{fid}/{name}?X-Signature=REDACTED", f"<{size} bytes of {name}>",
                      {"Content-Type": [ctype], "Content-Length": [str(size)]})
        pairs.append((put, _ok("", content_type="application/xml")))
    return pairs


def _run_req(mode, *, image, audio, prompt=None, webhook=None):
    inputs = {"image": image, "audio": audio}
    if prompt:
        inputs["prompt"] = prompt
    inputs.update({"mode": mode, "aspect_ratio": "16:9"})
    body = {"app": "klingai/avatar", "input": inputs}
    if webhook:
        body["webhook"] = webhook
    return _req("POST", f"{API}/apps/run", body)


# The sizes are those of examples/face.jpg and examples/hello.wav; only their order matters
# for replay (requests are matched on method, host and path).
IMAGE = ("01jexamplefile00000000000b", "face.jpg", "image/jpeg", 74962)
AUDIO = ("01jexamplefile00000000000d", "hello.wav", "audio/wav", 306170)


def happy_std():
    tid = "01jexampletaskstd0000000001"
    pairs = _uploads([IMAGE, AUDIO])
    pairs.append((_run_req("std", image=f"{CLOUD}/face.jpg", audio=f"{CLOUD}/hello.wav"),
                  _ok(_task(tid, 1))))
    pairs.append((_stream_req(tid), _stream_resp(_ndjson(
        _partial(tid, "2026-08-20T10:00:01Z", status=2),
        HEARTBEAT,
        _partial(tid, "2026-08-20T10:00:20Z", status=7),
        HEARTBEAT,
        _partial(tid, "2026-08-20T10:03:05Z", status=9),
        _partial(tid, "2026-08-20T10:03:10Z", status=10, output=_output("out-std.mp4", 6.9, "std")),
    ))))
    pairs.append(video_download(f"{CLOUD}/out-std.mp4"))  # the result, so Client.run replays whole
    return pairs


def happy_pro():
    # The v1 envelope ({success, status, data}) on every answer, and full task snapshots
    # (not partial lines) on the stream, with status strings: the lenient paths (§1.1, §4, §5).
    tid = "01jexampletaskpro0000000002"
    pairs = _uploads([IMAGE, AUDIO], wrap=True)
    prompt = "Smiles and nods while talking"
    pairs.append((_run_req("pro", image=f"{CLOUD}/face.jpg", audio=f"{CLOUD}/hello.wav", prompt=prompt),
                  _ok(_v1(_task(tid, 1, mode="pro", prompt=prompt)))))
    running = _task(tid, "running", mode="pro", prompt=prompt, updated="2026-08-20T10:00:30Z")
    done = _task(tid, "completed", mode="pro", prompt=prompt, updated="2026-08-20T10:04:00Z",
                 output=_output("out-pro.mp4", 6.9, "pro"))
    pairs.append((_stream_req(tid), _stream_resp(_ndjson(running, HEARTBEAT, done))))
    pairs.append(video_download(f"{CLOUD}/out-pro.mp4"))
    return pairs


def url_passthrough():
    tid = "01jexampletaskurl0000000003"
    image, audio = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"
    hook = "https://hooks.example.com/infsh/3f9c2a?token=opaque"
    pairs = [(_run_req("std", image=image, audio=audio, webhook=hook),
              _ok(_task(tid, 2, image=image, audio=audio, webhook=hook)))]
    done = _task(tid, 10, image=image, audio=audio, webhook=hook, updated="2026-08-20T10:02:00Z",
                 output={"video": {"url": f"{CLOUD}/out-url.mp4"}})  # `url`, not `uri`: lenient read
    pairs.append((_req("GET", f"{API}/tasks/{tid}"), _ok(done)))
    return pairs


def stream_heartbeats_partial():
    # Partial lines only; the completing line names `output` in no field (§13.4: what the
    # server puts in partial lines is not known), so the client reads the task whole.
    tid = "01jexampletaskhb00000000004"
    pairs = [(_stream_req(tid), _stream_resp(_ndjson(
        HEARTBEAT, HEARTBEAT,
        _partial(tid, "2026-08-20T10:00:05Z", status=4),
        HEARTBEAT,
        _partial(tid, "2026-08-20T10:00:09Z", status=7),
        HEARTBEAT, HEARTBEAT, HEARTBEAT,
        _partial(tid, "2026-08-20T10:02:40Z", status=9),
        _partial(tid, "2026-08-20T10:02:44Z", status=10),
    )))]
    pairs.append((_req("GET", f"{API}/tasks/{tid}"),
                  _ok(_task(tid, 10, updated="2026-08-20T10:02:44Z", output=_output("out-hb.mp4", 7.0, "std")))))
    return pairs


def stream_dropped_resumed():
    # The first connection ends mid-line with no terminal status; the client re-reads the task
    # (still running) and reconnects with no resume token (§5, §12.2).
    tid = "01jexampletaskdrop000000005"
    first = _ndjson(_partial(tid, "2026-08-20T10:00:10Z", status=7), HEARTBEAT) + '{"data":{"id":"' + tid + '","sta'
    pairs = [(_stream_req(tid), _stream_resp(first))]
    pairs.append((_req("GET", f"{API}/tasks/{tid}"), _ok(_task(tid, 7, updated="2026-08-20T10:00:10Z"))))
    pairs.append((_stream_req(tid), _stream_resp(_ndjson(
        _partial(tid, "2026-08-20T10:00:40Z", status=7),
        _partial(tid, "2026-08-20T10:02:50Z", status=9),
        _partial(tid, "2026-08-20T10:02:55Z", status=10, output=_output("out-drop.mp4", 6.9, "std")),
    ))))
    return pairs


def task_failed():
    tid = "01jexampletaskfail000000006"
    image, audio = f"{CLOUD}/face.jpg", f"{CLOUD}/hello.wav"
    error = "Task failed: no face detected in the image"
    return [
        (_run_req("std", image=image, audio=audio), _ok(_task(tid, 1))),
        (_stream_req(tid), _stream_resp(_ndjson(
            _partial(tid, "2026-08-20T10:00:05Z", status=7),
            _partial(tid, "2026-08-20T10:00:40Z", status=11, error=error),
        ))),
    ]


def task_rejected():
    # Status 13: refused at admission (no balance / payment method), never ran (§4.1).
    tid = "01jexampletaskrej0000000007"
    image, audio = f"{CLOUD}/face.jpg", f"{CLOUD}/hello.wav"
    return [(_run_req("std", image=image, audio=audio),
             _ok(_task(tid, 13, error="insufficient balance: add credits to run klingai/avatar")))]


def cancel():
    # Submitted with uploads, cancelled at once; the task reads 8 (cancelling) then 12 (§8).
    tid = "01jexampletaskcxl0000000008"
    pairs = _uploads([IMAGE, AUDIO])
    pairs.append((_run_req("std", image=f"{CLOUD}/face.jpg", audio=f"{CLOUD}/hello.wav"), _ok(_task(tid, 1))))
    pairs.append((_req("POST", f"{API}/tasks/{tid}/cancel"), _ok({"id": tid, "status": 8, "cancelled": True})))
    pairs.append((_req("GET", f"{API}/tasks/{tid}"), _ok(_task(tid, 8, updated="2026-08-20T10:00:02Z"))))
    pairs.append((_req("GET", f"{API}/tasks/{tid}"), _ok(_task(tid, 12, updated="2026-08-20T10:00:30Z"))))
    return pairs


def unauthorized():
    image, audio = f"{CLOUD}/face.jpg", f"{CLOUD}/hello.wav"
    return [(_run_req("std", image=image, audio=audio),
             _problem(401, "unauthorized", "Unauthorized", "Invalid or missing API key"))]


def insufficient_balance():
    # v1 error envelope this time (§1.1): {success: false, status, error: {code, message}}
    image, audio = f"{CLOUD}/face.jpg", f"{CLOUD}/hello.wav"
    body = {"success": False, "status": 402,
            "error": {"code": "payment_required", "message": "Insufficient balance: add credits"}}
    return [(_run_req("std", image=image, audio=audio), _ok(body, status=402, message="Payment Required"))]


def rate_limited_then_success():
    tid = "01jexampletask4290000000009"
    image, audio = f"{CLOUD}/face.jpg", f"{CLOUD}/hello.wav"
    limited = _problem(429, "rate_limited", "Too Many Requests", "run task limit is 100/min",
                       headers={"Retry-After": "0", "X-RateLimit-Remaining": "0"})
    return [
        (_run_req("std", image=image, audio=audio), limited),
        (_run_req("std", image=image, audio=audio), _ok(_task(tid, 1))),
    ]


def read_500_then_success():
    tid = "01jexampletask500000000000a"
    return [
        (_req("GET", f"{API}/tasks/{tid}"), _problem(500, "internal_error", "Internal Server Error", "try again")),
        (_req("GET", f"{API}/tasks/{tid}"),
         _ok(_task(tid, 10, updated="2026-08-20T10:03:00Z", output=_output("out-500.mp4", 6.9, "std")))),
    ]


def malformed_stream_line():
    tid = "01jexampletaskbad000000000b"
    return [(_stream_req(tid), _stream_resp(_ndjson(
        _partial(tid, "2026-08-20T10:00:05Z", status=7),
        "this is not json",
        '{"data": {"id": "' + tid + '", "status": 9',
        "[1, 2, 3]",
        HEARTBEAT,
        _partial(tid, "2026-08-20T10:02:55Z", status=10, output=_output("out-bad.mp4", 6.9, "std")),
    )))]


def find_task_via_list():
    # A create whose answer was lost: POST /tasks/list (the JS SDK's tasks.list, a
    # CursorListRequest; answered with a CursorListResponse, newest first) holds the task; it
    # is the one with the job's inputs, not the other job's. Then it is read to its end, and
    # output_meta says what was billed (§11).
    tid, other = "01jexampletasklost000000012", "01jexampletaskother00000013"
    image, audio = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"
    theirs = _task(other, 10, image="https://images.example.org/someone-else.png", audio=audio,
                   output=_output("other.mp4", 4.0, "std"))
    ours = _task(tid, 7, image=image, audio=audio)
    page = {"items": [theirs, ours], "next_cursor": "", "has_next": False, "has_previous": False,
            "items_per_page": 50}
    done = _task(tid, 10, image=image, audio=audio, updated="2026-08-20T10:03:10Z",
                 output=_output("out-lost.mp4", 7.3, "std"))
    return [(_req("POST", f"{API}/tasks/list", {"limit": 50, "sort": [{"field": "created_at", "dir": "desc"}]}),
             _ok(page)),
            (_req("GET", f"{API}/tasks/{tid}"), _ok(done))]


CASSETTES = {
    "find_task_via_list": find_task_via_list,
    "happy_std_uploads": happy_std, "happy_pro_uploads": happy_pro, "url_passthrough": url_passthrough,
    "stream_heartbeats_partial": stream_heartbeats_partial, "stream_dropped_resumed": stream_dropped_resumed,
    "task_failed": task_failed, "task_rejected": task_rejected, "cancel": cancel,
    "unauthorized": unauthorized, "insufficient_balance": insufficient_balance,
    "rate_limited_then_success": rate_limited_then_success, "read_500_then_success": read_500_then_success,
    "malformed_stream_line": malformed_stream_line,
}


def main() -> None:
    write(OUT, HEADER, CASSETTES)


if __name__ == "__main__":
    main()
