"""The Kling fake accepts the requests Kling's documentation shows, sent the way the docs say
(there is no official Python client to run against it): the doc's JWT recipe (PyJWT, HS256,
iss/exp/nbf) or the single API key, the create sample, the TTS sample, query by task id or by
external_task_id, and the task list's paging. A fake that only understood our own requests
could not catch our mistakes."""

from __future__ import annotations

import time

import httpx
import jwt

from .conftest import TEST_AK, TEST_API_KEY, TEST_SK

AVATAR = "/v1/videos/avatar/image2video"


def _doc_headers() -> dict[str, str]:
    # the notes' minimal illustration of Kling's doc recipe, verbatim in substance
    now = int(time.time())
    token = jwt.encode({"iss": TEST_AK, "exp": now + 1800, "nbf": now - 5}, TEST_SK, algorithm="HS256",
                       headers={"alg": "HS256", "typ": "JWT"})
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def test_the_documented_create_query_and_list_are_accepted(fake):
    body = {"image": "https://example-bucket.invalid/faces/alice.png",
            "sound_file": "https://example-bucket.invalid/audio/alice-hello.mp3",
            "prompt": "Speaks warmly to camera, slight nods, gentle smile", "mode": "std",
            "external_task_id": "job-7f3a"}  # the doc's cURL sample, without a callback
    with httpx.Client(base_url=fake.url, headers=_doc_headers()) as http:
        created = http.post(AVATAR, json=body).json()
        assert created["code"] == 0 and created["message"] == "SUCCEED"
        task_id = created["data"]["task_id"]
        assert created["data"]["task_status"] == "submitted"
        assert created["data"]["task_info"] == {"external_task_id": "job-7f3a"}
        for key in (task_id, "job-7f3a"):  # "choose either task_id or external_task_id"
            got = http.get(f"{AVATAR}/{key}").json()["data"]
            assert got["task_id"] == task_id and got["task_status"] == "succeed"
            assert got["final_unit_deduction"] == "2.8" and got["task_result"]["videos"][0]["duration"] == "6.900"
        page = http.get(AVATAR, params={"pageNum": 1, "pageSize": 30}).json()["data"]
        assert [t["task_id"] for t in page] == [task_id]


def test_the_documented_tts_sample_and_a_static_key_are_accepted(fake):
    fake.configure(api_key=TEST_API_KEY)
    headers = {"Authorization": f"Bearer {TEST_API_KEY}", "Content-Type": "application/json"}
    sample = {"text": "Hello, this is a test.", "voice_id": "oversea_male1", "voice_language": "en",
              "voice_speed": 1.0}
    with httpx.Client(base_url=fake.url, headers=headers) as http:
        answer = http.post("/v1/audio/tts", json=sample).json()
        assert answer["code"] == 0 and answer["data"]["task_result"]["audios"][0]["id"]
        refused = http.post("/v1/audio/tts", json={**sample, "voice_language": "zh"})
        assert refused.status_code == 400 and refused.json() | {"request_id": None} == {
            "code": 1201, "message": "Voice id not found", "request_id": None}
        wrong = http.post("/v1/audio/tts", json=sample, headers={"Authorization": "Bearer not-the-key"})
        assert wrong.status_code == 401 and wrong.json()["code"] in (1002, 1000)
