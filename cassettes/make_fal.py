"""Writes the hand-authored fal cassettes in cassettes/fal/.

They are authored from the protocol notes (docs/protocols/fal.md; section numbers below),
not recorded: see cassettes/README.md, which also says how to re-record the ones a live
account can produce. The committed YAML is what the tests replay; this script only makes it
reproducible. Run from the repository root:

    python cassettes/make_fal.py

It uses vcrpy's own serializer, so the files are exactly what vcrpy 9 / pytest-recording read.
Secrets never appear: Authorization is "REDACTED" and signed upload URLs carry
"X-Goog-Signature=REDACTED", as the tests' vcr_config scrubbing would leave them. Request ids,
file names and URLs are invented (as in the notes).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from authoring import answer as _resp  # beside this script
from authoring import write
from result_video import video_download
from vcr.request import Request

OUT = Path(__file__).resolve().parent / "fal"
QUEUE = "https://queue.fal.run"
REST = "https://rest.fal.ai"
CDN = "https://v3.fal.media/files"
STORAGE = "https://storage.example.com/fal-uploads"  # the signed upload host is not in the notes
STD, PRO = "fal-ai/kling-video/ai-avatar/v2/standard", "fal-ai/kling-video/ai-avatar/v2/pro"
APP = "fal-ai/kling-video"
AUTH = {"Authorization": ["REDACTED"]}
HEADER = ("# Hand-authored from docs/protocols/fal.md by cassettes/make_fal.py\n"
          "# (not a recording; see cassettes/README.md for how to re-record with a live key).\n")
HOOK = "https://hooks.example.com/webhooks/fal/3f9c2a7d"
URL_IMAGE = "https://images.example.org/anchor.png"
URL_AUDIO = "https://audio.example.org/script.mp3"


def _req(method, uri, body=None, *, params=None, auth=True):
    h = dict(AUTH) if auth else {}
    if params:
        uri = f"{uri}?{urlencode(params)}"
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
        h["Content-Type"] = ["application/json"]
    return Request(method, uri, body, h)


# -- uploads (§7, §11: the official client's way: a CDN token, then POST /files/upload) ----------

# The sizes are those of examples/face.jpg and examples/hello.wav.
FACE = ("Ab12Cd34Ef", "face.jpg", "image/jpeg", 74962)
WAV = ("Gh56Ij78Kl", "hello.wav", "audio/wav", 306170)
SPEECH = ("Mn90Op12Qr", "3f1d2c4b5a6978877665544332211000.wav", "audio/wav", 306170)  # the core's TTS output


def _file_url(item):
    key, name, _, _ = item
    return f"{CDN}/koala/{key}_{name}"


CDN_HOST = "https://v3.fal.media"
# Field names verified (§7 B); values invented. The token is short and plainly fake: a real one
# would be scrubbed, and "REDACTED" itself would be registered as a secret by the provider (it
# redacts every CDN token it is given), garbling "[REDACTED]" in later log lines.
TOKEN = {"token": "ex-tok1", "token_type": "Bearer", "base_url": "https://v3b.fal.media",
         "expires_at": "2099-08-01T11:00:00+00:00"}


def _uploads(*items):
    """One CDN token (cached until ``expires_at``), then one POST per file (§7 B, §11)."""
    pairs = [(_req("POST", f"{REST}/storage/auth/token", {}, params={"storage_type": "fal-cdn-v3"}),
              _resp(TOKEN))]
    for item in items:
        key, name, ctype, size = item
        upload = Request("POST", f"{CDN_HOST}/files/upload", f"<{size} bytes of {name}>",
                         {"Authorization": ["REDACTED"], "Content-Type": [ctype], "X-Fal-File-Name": [name],
                          "Content-Length": [str(size)]})
        pairs.append((upload, _resp({"access_url": _file_url(item)})))
    return pairs


def _uploads_gcs(*items):
    """The fallback: ``initiate?storage_type=gcs`` then a PUT to the signed URL (§7 A, §11)."""
    pairs = []
    for item in items:
        key, name, ctype, size = item
        upload_url = f"{STORAGE}/{key}/{name}?X-Goog-Expires=3600&X-Goog-Signature=REDACTED"
        pairs.append((_req("POST", f"{REST}/storage/upload/initiate", {"file_name": name, "content_type": ctype},
                           params={"storage_type": "gcs"}),
                      _resp({"upload_url": upload_url, "file_url": _file_url(item)})))
        put = Request("PUT", upload_url, f"<{size} bytes of {name}>",
                      {"Content-Type": [ctype], "Content-Length": [str(size)]})
        pairs.append((put, _resp("", content_type=None)))
    return pairs


# -- the queue (§5) --------------------------------------------------------------------------

def _urls(rid):
    root = f"{QUEUE}/{APP}/requests/{rid}"
    return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}


def _submit(endpoint, rid, *, image, audio, prompt=None, webhook=None, answer=None):
    body = {"image_url": image, "audio_url": audio}
    if prompt is not None:
        body["prompt"] = prompt
    params = {"fal_webhook": webhook} if webhook else None
    if answer is None:
        answer = {"status": "IN_QUEUE", "request_id": rid, **_urls(rid), "queue_position": 0}
        if webhook:
            answer["gateway_request_id"] = rid
        answer = _resp(answer)
    return _req("POST", f"{QUEUE}/{endpoint}", body, params=params), answer


def _status(rid, status, *, code=None, **extra):
    body = {"status": status, "request_id": rid, **_urls(rid), **extra}
    code = code or (200 if status == "COMPLETED" else 202)
    return (_req("GET", f"{QUEUE}/{APP}/requests/{rid}/status", params={"logs": "1"}),
            _resp(body, status=code, message="OK" if code == 200 else "Accepted"))


def _queued(rid, position=2):
    return _status(rid, "IN_QUEUE", queue_position=position, logs=[])


def _running(rid):
    return _status(rid, "IN_PROGRESS", logs=[{"message": "Generating video...", "level": "INFO", "source": "USER",
                                              "timestamp": "2026-08-01T10:00:05.123Z"}])


def _completed(rid, **extra):
    return _status(rid, "COMPLETED", logs=[], metrics={"inference_time": 184.2}, **extra)


def _result(rid, answer=None, *, name="output.mp4", duration=6.9):
    if answer is None:
        output = {"video": {"url": f"{CDN}/penguin/{rid[:8]}_{name}", "content_type": "video/mp4",
                            "file_name": name, "file_size": 2345678}, "duration": duration}
        answer = _resp(output, headers={"x-fal-request-id": rid})
    return _req("GET", f"{QUEUE}/{APP}/requests/{rid}"), answer


def _fal_error(status, message, body, *, error_type=None, headers=None):
    h = dict(headers or {})
    if error_type:
        h["X-Fal-Error-Type"] = error_type
    return _resp(body, status=status, message=message, headers=h)


def _unprocessable(field, msg, kind, *, headers=None):
    # §5.5: a 422 whose `detail` list names the field (``loc``), fal's message and its error type,
    # documented at an anchor of fal's error page.
    detail = {"detail": [{"loc": ["body", field], "msg": msg, "type": kind,
                          "url": f"https://docs.fal.ai/errors/#{kind}"}]}
    return _fal_error(422, "Unprocessable Entity", detail, headers=headers)


# -- the cassettes ---------------------------------------------------------------------------

def happy_std_uploads():
    rid = "5b2f1c7e-8d4a-4f3b-9e21-0c6a7d8e9f10"
    return [*_uploads(FACE, WAV),
            _submit(STD, rid, image=_file_url(FACE), audio=_file_url(WAV)),
            _queued(rid), _running(rid), _completed(rid), _result(rid),
            video_download(f"{CDN}/penguin/{rid[:8]}_output.mp4")]  # the result, so Client.run replays whole


def happy_pro_uploads():
    # pro endpoint, a prompt and a webhook (fal_webhook; the answer adds gateway_request_id, §6)
    rid = "7c3e2d8f-9e5b-4a4c-8f32-1d7b8e9fa021"
    return [*_uploads(FACE, WAV),
            _submit(PRO, rid, image=_file_url(FACE), audio=_file_url(WAV), prompt="Smiles and nods while talking",
                    webhook=HOOK),
            _queued(rid, position=0), _running(rid), _running(rid), _completed(rid), _result(rid, duration=6.93),
            video_download(f"{CDN}/penguin/{rid[:8]}_output.mp4")]


def text_input_local_tts():
    # The core synthesized the text to a WAV locally (native_text=False); it is uploaded like any file.
    rid = "8d4f3e9a-af6c-4b5d-9a43-2e8c9fab1032"
    return [*_uploads(FACE, SPEECH),
            _submit(STD, rid, image=_file_url(FACE), audio=_file_url(SPEECH)),
            _running(rid), _completed(rid), _result(rid)]


def completed_with_error():
    # §5.2: COMPLETED can carry error/error_type; the result then fails (§10: a 503).
    rid = "9e5a4fab-b07d-4c6e-8b54-3f9dab0c2143"
    error = {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    return [_submit(STD, rid, image=URL_IMAGE, audio=URL_AUDIO),
            _running(rid),
            _completed(rid, error="Runner disconnected", error_type="runner_disconnected"),
            _result(rid, _fal_error(503, "Service Unavailable", error, error_type="runner_disconnected"))]


def result_validation_error():
    # §5.5 / §10: a 422 on the result with a `detail` list (the field values are invented there).
    rid = "af6b5abc-c18e-4d7f-9c65-4a0ebc1d3254"
    refused = _unprocessable("audio_url", "Audio duration must be between 2 and 60 seconds",
                             "audio_duration_out_of_range", headers={"X-Fal-Retryable": "false"})
    return [_submit(STD, rid, image=URL_IMAGE, audio=URL_AUDIO), _completed(rid), _result(rid, refused)]


def content_policy():
    # [INF] the error type for a refused face/prompt is not in the notes: a validation-shaped 422
    # whose type names the content policy.
    rid = "b07c6bcd-d29f-4e80-ad76-5b1fcd2e4365"
    refused = _unprocessable("image_url", "The image was flagged by the content checker", "content_policy_violation")
    return [_submit(PRO, rid, image=URL_IMAGE, audio=URL_AUDIO), _completed(rid), _result(rid, refused)]


def submit_validation_error():
    # A 422 on the submit itself (§5.5): an InputError naming our field and fal's message.
    refused = _unprocessable("image_url", "Failed to download the file from the given URL", "file_download_error")
    return [_submit(STD, "", image=URL_IMAGE, audio=URL_AUDIO, answer=refused)]


def rate_limited_then_success():
    rid = "c18d7cde-e3a0-4f91-be87-6c2ade3f5476"
    limited = _fal_error(429, "Too Many Requests", {"detail": "Too many requests"}, headers={"Retry-After": "0"})
    return [_submit(STD, rid, image=URL_IMAGE, audio=URL_AUDIO, answer=limited),
            _submit(STD, rid, image=URL_IMAGE, audio=URL_AUDIO)]


def rate_limited():
    # Refused every time: after the provider's 4 attempts, a RateLimitError (retryable).
    limited = _fal_error(429, "Too Many Requests", {"detail": "Too many requests"}, headers={"Retry-After": "0"})
    return [_submit(STD, "", image=URL_IMAGE, audio=URL_AUDIO, answer=limited) for _ in range(4)]


def unauthorized():
    # §5.5: 401 for a bad or missing key (the message wording is invented).
    body = {"detail": "No user found for Key ID and Secret"}
    return [_submit(STD, "", image=URL_IMAGE, audio=URL_AUDIO, answer=_fal_error(401, "Unauthorized", body))]


def locked_balance():
    # §5.5 [INF, reported]: an account out of credits is locked, reportedly with 403.
    body = {"detail": "User is locked. Reason: Exhausted balance. Top up your balance at "
                      "https://fal.ai/dashboard/billing"}
    return [_submit(STD, "", image=URL_IMAGE, audio=URL_AUDIO, answer=_fal_error(403, "Forbidden", body))]


def cancel():
    # §5.4: PUT cancel -> 202 CANCELLATION_REQUESTED. [INF] what a cancelled request then reads:
    # COMPLETED carrying client_cancelled, and a 499 result (the §5.5 type for it).
    rid = "d29e8def-f4b1-4aa2-8f98-7d3bef4a6587"
    cancelled = {"detail": "Request cancelled by client", "error_type": "client_cancelled"}
    return [*_uploads(FACE, WAV),
            _submit(STD, rid, image=_file_url(FACE), audio=_file_url(WAV)),
            (_req("PUT", f"{QUEUE}/{APP}/requests/{rid}/cancel"),
             _resp({"status": "CANCELLATION_REQUESTED"}, status=202, message="Accepted")),
            _completed(rid, error="Request cancelled by client", error_type="client_cancelled"),
            _result(rid, _fal_error(499, "Client Closed Request", cancelled, error_type="client_cancelled"))]


def status_500_then_completed():
    # A bare 500 on a status read is retried (an idempotent read); then the request completes.
    rid = "e3af9ef0-05c2-4bb3-9fa9-8e4cf05b7698"
    status_req, _ = _completed(rid)
    return [(status_req, _resp({"detail": "Internal Server Error"}, status=500, message="Internal Server Error")),
            _completed(rid), _result(rid)]


def upload_fallback_gcs():
    # The CDN token is refused (a 403 from the token endpoint); the official client then
    # uploads through initiate?storage_type=gcs and a PUT (§11); so do we, and the job runs.
    rid = "f4b0a0f1-16d3-4cc4-8ab0-9f5d016c87a9"
    refused = _fal_error(403, "Forbidden", {"detail": "CDN v3 is not enabled for this key"})
    return [(_req("POST", f"{REST}/storage/auth/token", {}, params={"storage_type": "fal-cdn-v3"}), refused),
            *_uploads_gcs(FACE),
            (_req("POST", f"{REST}/storage/auth/token", {}, params={"storage_type": "fal-cdn-v3"}), refused),
            *_uploads_gcs(WAV),
            _submit(STD, rid, image=_file_url(FACE), audio=_file_url(WAV)),
            _completed(rid), _result(rid)]


def returned_urls():
    # §5.1/§11: the submit answer's status_url/response_url/cancel_url are used as given (here
    # on the backup queue host fal documents, §4), not rebuilt from the endpoint id.
    rid = "a5c1b1f2-27e4-4dd5-9bc1-a06e127d98ba"
    backup = f"https://queue.falrun.com/{APP}/requests/{rid}"
    urls = {"response_url": backup, "status_url": f"{backup}/status", "cancel_url": f"{backup}/cancel"}
    answer = _resp({"status": "IN_QUEUE", "request_id": rid, **urls, "queue_position": 0})
    status = _req("GET", f"{backup}/status", params={"logs": "1"})
    return [_submit(STD, rid, image=URL_IMAGE, audio=URL_AUDIO, answer=answer),
            (status, _resp({"status": "IN_PROGRESS", "request_id": rid, **urls, "logs": []}, status=202,
                           message="Accepted")),
            (_req("PUT", f"{backup}/cancel"), _resp({"status": "CANCELLATION_REQUESTED"}, status=202,
                                                    message="Accepted")),
            (status, _resp({"status": "COMPLETED", "request_id": rid, **urls, "logs": [],
                            "metrics": {"inference_time": 2.0}})),
            (_req("GET", backup), _resp({"video": {"url": f"{CDN}/penguin/{rid[:8]}_output.mp4"}, "duration": 6.9},
                                        headers={"x-fal-request-id": rid}))]


CASSETTES = {
    "upload_fallback_gcs": upload_fallback_gcs, "returned_urls": returned_urls,
    "happy_std_uploads": happy_std_uploads, "happy_pro_uploads": happy_pro_uploads,
    "text_input_local_tts": text_input_local_tts, "completed_with_error": completed_with_error,
    "result_validation_error": result_validation_error, "content_policy": content_policy,
    "submit_validation_error": submit_validation_error, "rate_limited_then_success": rate_limited_then_success,
    "rate_limited": rate_limited, "unauthorized": unauthorized, "locked_balance": locked_balance,
    "cancel": cancel, "status_500_then_completed": status_500_then_completed,
}


def main() -> None:
    write(OUT, HEADER, CASSETTES)


if __name__ == "__main__":
    main()
