"""Writes the hand-authored inference.sh cassettes of the models other than Kling Avatar, in
cassettes/inferencesh/ (``<model>_happy``, ``<model>_validation_error``, ``<model>_task_failed``).

Authored, not recorded: each app's input fields, output shape and failure text come from its
public source in github.com/inference-sh/grid (``api/bytedance/vision/omnihuman-1-5``,
``api/falai/fabric-1-0``, ``api/heygen/photo-video``, ``api/pruna/p-video-avatar``) as
docs/protocols/models.md gives them; the transport is the one make_inferencesh.py authors. Run from the
repository root:

    python cassettes/make_inferencesh_models.py
"""

from __future__ import annotations

from authoring import write_per_model  # beside this script
from make_inferencesh import API, CLOUD, OUT, _ok, _problem, _req

HEADER = ("# Hand-authored by cassettes/make_inferencesh_models.py from the apps' public source\n"
          "# (github.com/inference-sh/grid; docs/protocols/models.md). Not a recording.\n")
IMAGE, AUDIO = f"{CLOUD}/face.jpg", f"{CLOUD}/hello.wav"

# model -> (app, the input talkinghead sends, output_meta of a finished run, the app's failure text,
#           the validation error the platform would give a drifted schema)
MODELS = {
    "omnihuman_1_5": (
        "bytedance/omnihuman-1-5", {"image": IMAGE, "audio": AUDIO},
        {"type": "video", "seconds": 6.9, "fps": 30, "width": 0, "height": 0,
         "extra": {"model": "omnihuman-1.5", "mask_index": 0, "subjects_detected": 1}},
        "Avatar video generation failed: Video generation failed: 50500 internal error",
        "input.audio: field required"),
    "fabric_1_0": (
        "falai/fabric-1-0", {"image": IMAGE, "audio": AUDIO, "resolution": "480p"},
        # The app meters 5 s when fal gives no duration, and Fabric's output has none.
        {"type": "video", "width": 854, "height": 480, "resolution": "480p", "seconds": 5.0},
        "Talking video generation failed: Unprocessable Entity: face not found",
        "input.resolution: '1080p' is not one of ['480p', '720p']"),
    "heygen_photo": (
        "heygen/photo-video", {"image": IMAGE, "script": "Hello there", "voice_id": "v_example_01",
                               "resolution": "720p", "aspect_ratio": "16:9"},
        {"type": "video", "width": 1280, "height": 720, "seconds": 3.2, "fps": 24},
        "Video generation failed [photo_check_failed]: No face detected, please try another photo.",
        "input.voice: extra fields not permitted"),
    "p_video_avatar": (
        "pruna/p-video-avatar", {"image": IMAGE, "voice_script": "Hello there", "resolution": "720p"},
        {"type": "video", "width": 720, "height": 1280, "resolution": "720p", "seconds": 4.1},
        "Prediction failed: image rejected by the safety checker",
        "input.voice: 'Nobody' is not one of ['Zephyr (Female)', 'Kore (Female)']"),
}


def _task(tid, app, inputs, status, *, output=None, error=None):
    return {"id": tid, "status": status, "error": error, "session_id": None, "app_id": "01jexampleapp000000000000m",
            "function": "run", "infra": "cloud", "input": inputs, "output": output, "webhook": None, "logs": [],
            "events": [{"id": "ev1", "task_id": tid, "status": 1}],
            "created_at": "2026-12-01T10:00:00Z", "updated_at": "2026-12-01T10:01:00Z"}


def happy(name, app, inputs, meta, _failure, _invalid):
    tid = f"01jexample{name[:10]:_<10}happy01"
    output = {"video": {"uri": f"{CLOUD}/{name}.mp4", "content_type": "video/mp4", "filename": f"{name}.mp4",
                        "size": 1048576}, "output_meta": {"outputs": [meta]}}
    if app == "pruna/p-video-avatar":
        output["seed"] = 424242
    return [(_req("POST", f"{API}/apps/run", {"app": app, "input": inputs}), _ok(_task(tid, app, inputs, 1))),
            (_req("GET", f"{API}/tasks/{tid}"), _ok(_task(tid, app, inputs, 10, output=output)))]


def validation_error(name, app, inputs, _meta, _failure, invalid):
    return [(_req("POST", f"{API}/apps/run", {"app": app, "input": inputs}),
             _problem(422, "validation_error", "Unprocessable Entity", invalid))]


def task_failed(name, app, inputs, _meta, failure, _invalid):
    tid = f"01jexample{name[:10]:_<10}fail001"
    return [(_req("POST", f"{API}/apps/run", {"app": app, "input": inputs}), _ok(_task(tid, app, inputs, 1))),
            (_req("GET", f"{API}/tasks/{tid}"), _ok(_task(tid, app, inputs, 11, error=failure)))]


def main() -> None:
    write_per_model(OUT, HEADER, MODELS, {"happy": happy, "validation_error": validation_error,
                                          "task_failed": task_failed})


if __name__ == "__main__":
    main()
