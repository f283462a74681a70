"""Writes the hand-authored Kling cassettes in cassettes/kling/.

They are authored from the protocol notes (docs/protocols/kling-official.md; section
numbers below), not recorded: see cassettes/README.md, which also says how to re-record the
ones a live account can produce. The committed YAML is what the tests replay; this script
only makes it reproducible. Run from the repository root:

    python cassettes/make_kling.py

It uses vcrpy's own serializer, so the files are exactly what vcrpy / pytest-recording read.
Secrets never appear: Authorization is "REDACTED" (the JWT changes on every run, §2.1), and
base64 media in request bodies are stored as placeholders, as the tests' vcr_config leaves them.
All ids, URLs and request ids are invented (as in the notes); only field names and shapes
come from the sources the notes cite.
"""

from __future__ import annotations

import json
from functools import partial
from http import HTTPStatus
from pathlib import Path

from authoring import answer as _resp  # beside this script
from authoring import write
from vcr.request import Request

from talkinghead.testing.loopback import tiny_mp4

OUT = Path(__file__).resolve().parent / "kling"
API = "https://api-singapore.klingai.com"
AVATAR = f"{API}/v1/videos/avatar/image2video"
TTS = f"{API}/v1/audio/tts"
CDN = "https://cdn.klingai.com/bs2/upload-kling-api/0000000000"
HEADER = ("# Hand-authored from docs/protocols/kling-official.md by cassettes/make_kling.py\n"
          "# (not a recording; see cassettes/README.md for how to re-record with a live key).\n")
IMAGE_URL = "https://images.example.org/anchor.png"
AUDIO_URL = "https://audio.example.org/script.mp3"
HOOK = "https://hooks.example.com/kling/jexamplestdurl0001"
# Placeholders for base64 bodies: examples/face.jpg and examples/hello.mp3 (see vcr_config).
IMAGE_B64 = "<base64: 99952 chars>"
AUDIO_B64 = "<base64: 74980 chars>"
T0 = 1760000000000  # created_at, Unix ms (§3)


# A real (tiny) MP4: the client checks a downloaded result is a whole video.
VIDEO = tiny_mp4(seconds=0.5, size=32)


def _req(method, uri, body=None):
    headers = {"Authorization": ["REDACTED"], "Content-Type": ["application/json"]}
    return Request(method, uri, json.dumps(body) if body is not None else None, headers)


def _ok(data, rid):
    # §3: the envelope; "SUCCEED" as seen in real answers [V-real].
    return _resp({"code": 0, "message": "SUCCEED", "request_id": rid, "data": data})


def _err(status, code, message, rid):
    # §9: {code, message, request_id}; a data: null field is reported by a mirror [3P]. The
    # status line's reason is the standard phrase of the status.
    return _resp({"code": code, "message": message, "request_id": rid, "data": None}, status=status,
                 message=HTTPStatus(status).phrase)


def _task(tid, status, external, *, updated=0, msg="", video=None, units=None):
    task = {"task_id": tid, "task_status": status, "task_status_msg": msg,
            "task_info": {"external_task_id": external}, "created_at": T0, "updated_at": T0 + updated}
    if video is not None:
        task["task_result"] = {"videos": [video]}
    if units is not None:
        task["final_unit_deduction"] = units
    return task


def _created(tid, external):
    # §4: the create's answer (no task_status_msg there).
    return {"task_id": tid, "task_status": "submitted", "task_info": {"external_task_id": external},
            "created_at": T0, "updated_at": T0}


def _video(tid, duration):
    return {"id": str(int(tid) + 137000), "url": f"{CDN}/avatar/{tid}-output.mp4", "duration": duration}


def _create(external, *, image, sound_file=None, audio_id=None, mode="std", prompt="", callback=None):
    body = {"image": image}
    if audio_id is not None:
        body["audio_id"] = audio_id
    else:
        body["sound_file"] = sound_file
    body.update(prompt=prompt, mode=mode)
    if callback:
        body["callback_url"] = callback
    body["external_task_id"] = external
    return _req("POST", AVATAR, body)


def _get(tid):
    return _req("GET", f"{AVATAR}/{tid}")


def _succeeded(tid, ext, rid, *, updated, duration, units=None):
    # §5: the query that finds the task done, its video listed (and what it billed, §14).
    return (_get(tid), _ok(_task(tid, "succeed", ext, updated=updated, video=_video(tid, duration), units=units),
                           rid))


def _refused(ext, status, code, message, rid, *, image=IMAGE_URL, **fields):
    return [(_create(ext, image=image, sound_file=AUDIO_URL, **fields), _err(status, code, message, rid))]


def happy_std_url():
    # URLs passed through (§4), a callback URL, then processing -> succeed (§5).
    tid, ext = "862311975201234567", "jexamplestdurl0001"
    return [
        (_create(ext, image=IMAGE_URL, sound_file=AUDIO_URL, callback=HOOK),
         _ok(_created(tid, ext), "a1b2c3d4-0000-4a1b-9c2d-111122223333")),
        (_get(tid), _ok(_task(tid, "processing", ext, updated=12000), "b2c3d4e5-1111-4b2c-8d3e-222233334444")),
        _succeeded(tid, ext, "c3d4e5f6-2222-4c3d-9e4f-333344445555", updated=185000, duration="6.941", units="2.8"),
        # §13.4: the result on Kling's CDN, a tiny stand-in body (no Authorization goes there).
        (Request("GET", f"{CDN}/avatar/{tid}-output.mp4", None, {}),
         _resp(VIDEO, content_type="video/mp4")),
    ]


def happy_pro_base64():
    # Local files sent as raw base64, no data: prefix (§4); pro with a prompt. The real answer
    # of Sept. 2025 had no final_unit_deduction [V-real]: left out here.
    tid, ext = "862311975201234568", "jexampleprob640002"
    prompt = "Speaks warmly to camera, slight nods, gentle smile"
    return [
        (_create(ext, image=IMAGE_B64, sound_file=AUDIO_B64, mode="pro", prompt=prompt),
         _ok(_created(tid, ext), "a1b2c3d4-0001-4a1b-9c2d-111122223333")),
        (_get(tid), _ok(_task(tid, "submitted", ext, updated=3000), "b2c3d4e5-1112-4b2c-8d3e-222233334444")),
        (_get(tid), _ok(_task(tid, "processing", ext, updated=40000), "b2c3d4e5-1113-4b2c-8d3e-222233334444")),
        _succeeded(tid, ext, "c3d4e5f6-2223-4c3d-9e4f-333344445555", updated=330000, duration="6.941"),
    ]


def text_tts():
    # §7: Kling TTS answers inline; its audios[0].id becomes the avatar's audio_id.
    tid, ext, aid = "862311975201234569", "jexampletexttts0003", "862311900000000002"
    text = "Good evening. Here are tonight's headlines, read by a talking head."
    tts = {"task_id": "862311900000000001", "task_status": "succeed", "task_status_msg": "",
           "task_result": {"audios": [{"id": aid, "url": f"{CDN}/tts/output.mp3", "duration": "4.52"}]},
           "final_unit_deduction": "0.5", "created_at": T0, "updated_at": T0 + 3000}
    return [
        (_req("POST", TTS, {"text": text, "voice_id": "oversea_male1", "voice_language": "en", "voice_speed": 1.0}),
         _ok(tts, "f6a7b8c9-5555-4f6a-8b7c-666677778888")),
        (_create(ext, image=IMAGE_URL, audio_id=aid), _ok(_created(tid, ext), "a1b2c3d4-0003-4a1b-9c2d-111122223333")),
        _succeeded(tid, ext, "c3d4e5f6-2224-4c3d-9e4f-333344445555", updated=150000, duration="4.520", units="1.8"),
    ]


def task_failed():
    # §5 [INF]: the shape is documented, the message text is the notes' invented one.
    tid, ext = "862311975201234570", "jexamplefailed0004"
    return [
        (_create(ext, image=IMAGE_URL, sound_file=AUDIO_URL),
         _ok(_created(tid, ext), "a1b2c3d4-0004-4a1b-9c2d-111122223333")),
        (_get(tid), _ok(_task(tid, "failed", ext, updated=30000, msg="Failure to pass the risk control system"),
                        "d4e5f6a7-3333-4d4e-8f5a-444455556666")),
    ]


def read_rate_limited():
    # 429/1303 on a query, then the task (§9: retry with backoff, first delay >= 1 s).
    tid, ext = "862311975201234571", "jexamplereadrl0005"
    return [
        (_get(tid), _err(429, 1303, "parallel task over resource pack limit",
                         "9d0e1f2a-6666-4a7b-8c9d-777788889999")),
        _succeeded(tid, ext, "c3d4e5f6-2225-4c3d-9e4f-333344445555", updated=200000, duration="9.433", units="3.8"),
    ]


def create_rate_limited():
    # §10: over the concurrency limit the create is refused with 429/1303 and no task is made
    # (a task takes a slot only from `submitted`), so resending it is safe.
    tid, ext = "862311975201234572", "jexamplecreaterl0006"
    create = _create(ext, image=IMAGE_URL, sound_file=AUDIO_URL)
    return [
        (create, _err(429, 1303, "parallel task over resource pack limit",
                      "9d0e1f2a-6667-4a7b-8c9d-777788889999")),
        (create, _ok(_created(tid, ext), "a1b2c3d4-0006-4a1b-9c2d-111122223333")),
    ]


def token_expired_renewed():
    # §2.1/§9: 401/1004 (message invented in the notes); a fresh JWT, the same query again.
    tid, ext = "862311975201234573", "jexampletoken0008"
    return [
        (_get(tid), _err(401, 1004, "Auth failed: token expired",
                         "0a1b2c3d-7777-4b8c-9d0e-88889999aaaa")),
        (_get(tid), _ok(_task(tid, "processing", ext, updated=20000), "b2c3d4e5-1114-4b2c-8d3e-222233334444")),
    ]


def lost_create_resolved():
    # The create's answer is a gateway timeout (504/5002 "internal timeout, usually due to a
    # backlog"): the task may exist. It is queried by our external_task_id (§5, newer doc:
    # "choose either"), found, and the create is not sent again.
    tid, ext = "862311975201234574", "jexamplelost0010"
    return [
        (_create(ext, image=IMAGE_URL, sound_file=AUDIO_URL),
         _err(504, 5002, "Server internal timeout, usually due to a backlog",
              "2a3b4c5d-9999-4d0e-8f1a-aaaabbbbcccc")),
        (_get(ext), _ok(_task(tid, "submitted", ext, updated=1000), "b2c3d4e5-1115-4b2c-8d3e-222233334444")),
    ]


def find_task_via_list():
    # `jobs resume` of a job whose create was never answered: the query by external id is
    # refused (1203: the path form is "not tested in practice", §5), so the task list (§6) is
    # searched for it; then the task is followed and its video downloaded.
    tid, ext = "862311975201234575", "jexampleresume0011"
    other = _task("862311975201230000", "succeed", "some-other-job", updated=90000,
                  video=_video("862311975201230000", "5.000"))
    done = _task(tid, "succeed", ext, updated=240000, video=_video(tid, "6.941"), units="2.8")
    return [
        (_get(ext), _err(404, 1203, "The requested resource does not exist",
                         "3a4b5c6d-aaaa-4e1f-8a2b-bbbbccccdddd")),
        (_req("GET", f"{AVATAR}?pageNum=1&pageSize=500"),
         _ok([_task(tid, "processing", ext, updated=60000), other], "e5f6a7b8-4444-4e5f-9a6b-555566667777")),
        (_get(tid), _ok(done, "c3d4e5f6-2226-4c3d-9e4f-333344445555")),
        (Request("GET", f"{CDN}/avatar/{tid}-output.mp4", None, {}),
         _resp(VIDEO, content_type="video/mp4")),
    ]


def api_key_auth():
    # §2.2: the single API key Kling's console issues, sent as-is as the bearer token (REDACTED
    # here like the JWT). The finished task reports what it billed: final_unit_deduction (§14).
    tid, ext = "862311975201234576", "jexampleapikey0014"
    return [
        (_create(ext, image=IMAGE_URL, sound_file=AUDIO_URL),
         _ok(_created(tid, ext), "a1b2c3d4-0014-4a1b-9c2d-111122223333")),
        _succeeded(tid, ext, "c3d4e5f6-2227-4c3d-9e4f-333344445555", updated=160000, duration="9.433", units="3.8"),
    ]


def tts_voice_not_found():
    # §14 [3P CometAPI]: a voice_id Kling does not have for voice_language answers 1201 "Voice
    # id not found". Ours checks its list first; this is a listed voice Kling refuses anyway
    # (withdrawn since the list was read): the refusal is still typed, nothing else is sent.
    text = "Good evening. Here are tonight's headlines, read by a talking head."
    return [(_req("POST", TTS, {"text": text, "voice_id": "calm_story1", "voice_language": "en", "voice_speed": 1.0}),
             _err(400, 1201, "Voice id not found", "7a8b9c0d-eeee-4c5d-8e6f-ffff00001111"))]


# Creates refused outright (§9): each of these cassettes is that one exchange, and no task is
# made. _refused(external_task_id, HTTP status, Kling code, message, request_id, the create's fields).
REFUSED_CREATES = {
    # §14 [3P]: an input URL Kling cannot download; the text does not say which input it was.
    "fetch_failed": partial(_refused, "jexamplefetch0015", 400, 1201,
                            "Something went wrong when we tried to get the contents of the file.",
                            "6a7b8c9d-dddd-4b4c-8d5e-eeeeffff0000"),
    # The doc table's wording.
    "unauthorized": partial(_refused, "jexampleauth0007", 401, 1002, "Authorization is invalid",
                            "0a1b2c3d-7776-4b8c-9d0e-88889999aaaa"),
    # The real message [V-real].
    "balance": partial(_refused, "jexamplebalance0009", 429, 1102, "Account balance not enough",
                       "1a2b3c4d-8888-4c9d-8e0f-9999aaaabbbb"),
    # Refused by the content-safety system at create time.
    "content_policy": partial(_refused, "jexamplepolicy0012", 400, 1301,
                              "Trigger the content security policy of the platform",
                              "4a5b6c7d-bbbb-4f2a-8b3c-ccccddddeeee",
                              prompt="something the content-safety system refuses"),
    # §4 note [V-3P code comment]: a data: URI instead of raw base64.
    "invalid_parameter": partial(_refused, "jexampleparam0013", 400, 1201, "File is not in a valid base64 format",
                                 "5a6b7c8d-cccc-4a3b-8c4d-ddddeeeeffff", image="data:image/png;base64,<elided>"),
}

CASSETTES = {
    "api_key_auth": api_key_auth, "tts_voice_not_found": tts_voice_not_found,
    "happy_std_url": happy_std_url, "happy_pro_base64": happy_pro_base64, "text_tts": text_tts,
    "task_failed": task_failed, "read_rate_limited": read_rate_limited, "create_rate_limited": create_rate_limited,
    "token_expired_renewed": token_expired_renewed,
    "lost_create_resolved": lost_create_resolved, "find_task_via_list": find_task_via_list,
    **REFUSED_CREATES,
}


def main() -> None:
    write(OUT, HEADER, CASSETTES)


if __name__ == "__main__":
    main()
