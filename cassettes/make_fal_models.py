"""Writes the hand-authored fal cassettes of the models other than Kling Avatar, in
cassettes/fal/ (``<model>_happy``, ``<model>_validation_error``, ``<model>_task_failed``).

Authored, not recorded: each endpoint's input fields and output shape come from fal's JS client
types (github.com/fal-ai/fal-js, ``libs/client/src/types/endpoints.ts``) and the endpoints'
``llms.txt`` pages, as docs/protocols/models.md gives them; the queue transport is the one make_fal.py
authors. Status, result and cancel live at the endpoint's ``{owner}/{app}`` path. Run from the
repository root:

    python cassettes/make_fal_models.py
"""

from __future__ import annotations

from authoring import write_per_model  # beside this script
from make_fal import CDN, OUT, QUEUE, _fal_error, _req, _resp

HEADER = ("# Hand-authored by cassettes/make_fal_models.py from fal's published endpoint schemas\n"
          "# (github.com/fal-ai/fal-js types, llms.txt pages; docs/protocols/models.md). Not a recording.\n")
IMAGE, AUDIO = "https://images.example.org/anchor.png", "https://audio.example.org/script.mp3"

# model -> (endpoint, body talkinghead sends, output of a finished run, the failure detail a
#           finished request may answer its result with)
MODELS = {
    "omnihuman_1_5": (
        "fal-ai/bytedance/omnihuman/v1.5",
        {"image_url": IMAGE, "audio_url": AUDIO, "resolution": "720p"},
        {"duration": 6.9},
        {"loc": ["body", "audio_url"], "msg": "Failed to download the file", "type": "file_download_error"}),
    "fabric_1_0": (
        "veed/fabric-1.0", {"image_url": IMAGE, "audio_url": AUDIO, "resolution": "480p"},
        {},  # Fabric's output is the video only: no duration
        {"loc": ["body", "image_url"], "msg": "No face detected in the image", "type": "face_not_detected"}),
    "aurora": (
        "fal-ai/creatify/aurora", {"image_url": IMAGE, "audio_url": AUDIO, "resolution": "480p"},
        {"video_extra": {"duration": 6.9, "fps": 25, "width": 854, "height": 480}},
        {"loc": ["body", "audio_url"], "msg": "Audio is longer than 60 seconds", "type": "audio_too_long"}),
    "heygen_photo": (
        "fal-ai/heygen/avatar4/image-to-video",
        {"image_url": IMAGE, "prompt": "Hello there", "voice": "Melissa", "resolution": "720p",
         "aspect_ratio": "auto"},
        {},
        {"loc": ["body", "voice"], "msg": "Unknown voice", "type": "value_error"}),
}


def _urls(app, rid):
    root = f"{QUEUE}/{app}/requests/{rid}"
    return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}


def _submit(endpoint, rid, body, answer=None):
    app = "/".join(endpoint.split("/")[:2])
    if answer is None:
        answer = _resp({"status": "IN_QUEUE", "request_id": rid, **_urls(app, rid), "queue_position": 0})
    return _req("POST", f"{QUEUE}/{endpoint}", body), answer


def _completed(app, rid):
    body = {"status": "COMPLETED", "request_id": rid, **_urls(app, rid), "logs": [],
            "metrics": {"inference_time": 61.5}}
    return _req("GET", f"{QUEUE}/{app}/requests/{rid}/status", params={"logs": "1"}), _resp(body)


def happy(name, endpoint, body, output, _failure):
    rid = f"0d{sum(map(ord, name)):06d}-0000-4000-8000-000000000001"  # stable across runs
    app = "/".join(endpoint.split("/")[:2])
    video = {"url": f"{CDN}/penguin/{name}.mp4", "content_type": "video/mp4", "file_name": f"{name}.mp4",
             "file_size": 1048576, **output.get("video_extra", {})}
    result = {"video": video, **{k: v for k, v in output.items() if k != "video_extra"}}
    return [_submit(endpoint, rid, body), _completed(app, rid),
            (_req("GET", f"{QUEUE}/{app}/requests/{rid}"), _resp(result, headers={"x-fal-request-id": rid}))]


def validation_error(name, endpoint, body, _output, failure):
    missing = next(iter(body))  # as if the endpoint's schema no longer had what we send
    detail = {"detail": [{"loc": ["body", missing], "msg": "field required", "type": "missing"}]}
    return [_submit(endpoint, "", body, answer=_fal_error(422, "Unprocessable Entity", detail))]


def task_failed(name, endpoint, body, _output, failure):
    rid = f"0d{sum(map(ord, name)):06d}-0000-4000-8000-0000000000ff"
    app = "/".join(endpoint.split("/")[:2])
    answer = _fal_error(422, "Unprocessable Entity", {"detail": [failure]}, headers={"X-Fal-Retryable": "false"})
    return [_submit(endpoint, rid, body), _completed(app, rid), (_req("GET", f"{QUEUE}/{app}/requests/{rid}"), answer)]


def main() -> None:
    write_per_model(OUT, HEADER, MODELS, {"happy": happy, "validation_error": validation_error,
                                          "task_failed": task_failed})


if __name__ == "__main__":
    main()
