"""Unit tests for the pure protocol rules (no I/O)."""

from __future__ import annotations

import json

import pytest

from talkinghead.models import JobStatus
from talkinghead_inferencesh import protocol as p

TASK = "01jexampletask00000000000a"
VIDEO = "https://cloud.inference.sh/u/exampleuser/out01.mp4"


# -- envelopes ---------------------------------------------------------------------------

@pytest.mark.parametrize("payload, expected", [
    ({"success": True, "status": 200, "data": {"id": TASK}}, {"id": TASK}),     # v1
    ({"data": {"id": TASK}, "messages": [{"level": "info"}]}, {"id": TASK}),   # the SDK's "v3"
    ({"id": TASK, "status": 1}, {"id": TASK, "status": 1}),                     # v2 bare
    ([{"id": "f1"}], [{"id": "f1"}]),                                          # POST /files under v2
    (None, None),
])
def test_unwrap_accepts_every_envelope(payload, expected):
    assert p.unwrap(payload) == expected


def test_error_envelope_is_only_success_false():
    assert p.is_error_envelope({"success": False, "status": 401, "error": {}})
    assert not p.is_error_envelope({"success": True, "data": {}})
    assert not p.is_error_envelope({"id": TASK})
    assert not p.is_error_envelope([1])


def test_parse_json_is_lenient():
    assert p.parse_json(b'{"a": 1}') == {"a": 1}
    assert p.parse_json(b"") is None
    assert p.parse_json(b"<html>bad gateway</html>") is None
    assert p.parse_json(b"\xff\xfe") is None


@pytest.mark.parametrize("payload, text, message, code", [
    ({"type": "https://api.inference.sh/errors/unauthorized", "title": "Unauthorized", "status": 401,
      "detail": "Invalid or missing API key"}, "", "Invalid or missing API key", "unauthorized"),
    ({"type": "https://api.inference.sh/errors/rate_limited", "title": "Too Many Requests"}, "",
     "Too Many Requests", "rate_limited"),
    ({"success": False, "status": 401, "error": {"code": "unauthorized", "message": "bad key"}}, "",
     "bad key", "unauthorized"),
    ({"message": "plain message"}, "", "plain message", None),
    ({"error": "a string error"}, "", "a string error", None),
    ({"weird": 1}, "", '{"weird": 1}', None),
    (None, "<html>502 Bad Gateway</html>", "<html>502 Bad Gateway</html>", None),
    (None, "", "no error message", None),
])
def test_error_message_follows_the_sdk_order(payload, text, message, code):
    assert p.error_message(payload, text) == (message, code)


def test_error_message_lists_412_requirements():
    body = {"satisfied": False, "errors": [
        {"type": "secret", "key": "KLING_KEY", "message": "secret KLING_KEY is missing"},
        {"type": "scope", "key": "video"}]}
    message, _ = p.error_message(body)
    assert message == "secret KLING_KEY is missing; video"


def test_error_message_caps_non_json_bodies():
    message, _ = p.error_message(None, "x" * 2000)
    assert len(message) == 500


@pytest.mark.parametrize("status, code, message, billing", [
    (402, None, "anything", True),
    (400, "payment_method_required", "no card", True),
    (403, "limit_exceeded", "plan limit", True),
    (400, None, "Insufficient balance: add credits", True),
    (400, None, "you are out of credits", True),
    (400, "validation_error", "image is required", False),
    (429, "rate_limited", "slow down", False),
])
def test_billing_problems_are_recognised(status, code, message, billing):
    assert p.is_billing_problem(status, code, message) is billing


# -- statuses ----------------------------------------------------------------------------

@pytest.mark.parametrize("raw, status, name", [
    (0, JobStatus.QUEUED, "unknown"),
    (1, JobStatus.QUEUED, "received"),
    (2, JobStatus.QUEUED, "queued"),
    (3, JobStatus.QUEUED, "dispatched"),
    (4, JobStatus.RUNNING, "preparing"),
    (5, JobStatus.RUNNING, "serving"),
    (6, JobStatus.RUNNING, "setting_up"),
    (7, JobStatus.RUNNING, "running"),
    (8, JobStatus.RUNNING, "cancelling"),
    (9, JobStatus.RUNNING, "uploading"),       # NOT completed: that was the old table
    (10, JobStatus.COMPLETED, "completed"),
    (11, JobStatus.FAILED, "failed"),
    (12, JobStatus.CANCELLED, "cancelled"),
    (13, JobStatus.FAILED, "rejected"),
])
def test_current_status_numbering(raw, status, name):
    info = p.map_status(raw)
    assert (info.status, info.name, info.step) == (status, name, raw)
    assert p.map_status(name).status is status  # the same by name


@pytest.mark.parametrize("raw", ["RUNNING", " Completed ", "canceled", "succeeded", "10", "in_progress"])
def test_status_strings_are_lenient(raw):
    assert p.map_status(raw).status in (JobStatus.RUNNING, JobStatus.COMPLETED, JobStatus.CANCELLED)
    assert p.map_status("10").status is JobStatus.COMPLETED
    assert p.map_status("canceled").status is JobStatus.CANCELLED


@pytest.mark.parametrize("raw", [14, 99, -1, "exploding", None, 3.5, True, {"x": 1}])
def test_unknown_statuses_are_never_fatal_nor_terminal(raw):
    info = p.map_status(raw)
    assert not info.terminal
    assert info.status in (JobStatus.RUNNING, JobStatus.QUEUED)


def test_status_text_settles_an_ambiguous_number():
    # Under the old table 9 meant completed; a status_text says which table the server used.
    assert p.map_status(9).status is JobStatus.RUNNING
    assert p.map_status(9, "completed").status is JobStatus.COMPLETED
    assert p.map_status(10, "failed").status is JobStatus.FAILED
    assert p.map_status(9, "gibberish").status is JobStatus.RUNNING  # unknown text: the number


def test_progress_is_coarse_and_monotonic_over_the_happy_path():
    values = [p.map_status(s).progress for s in (1, 2, 3, 4, 5, 6, 7, 9, 10)]
    assert values == sorted(values)
    assert values[-1] == 100.0 and all(0 <= v <= 100 for v in values)


# -- outputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("output", [
    {"video": {"uri": VIDEO, "content_type": "video/mp4"}},
    {"video": {"url": VIDEO}},
    {"video": VIDEO},
    {"video": [{"uri": VIDEO}]},
    {"uri": VIDEO},
    {"url": VIDEO},
    {"video_url": VIDEO},
    VIDEO,
])
def test_output_url_is_read_leniently(output):
    assert p.output_url(output) == VIDEO


@pytest.mark.parametrize("output", [None, {}, {"video": None}, {"video": {}}, "", 5, []])
def test_output_url_absent(output):
    assert p.output_url(output) is None


def test_output_seconds_from_output_meta():
    out = {"video": VIDEO, "output_meta": {"outputs": [{"type": "video", "seconds": 12.4}]}}
    assert p.output_seconds(out) == 12.4
    assert p.output_seconds({"output_meta": {"outputs": [{"seconds": "7"}]}}) == 7.0
    for bad in (None, {}, {"output_meta": {}}, {"output_meta": {"outputs": []}},
                {"output_meta": {"outputs": [{"seconds": None}]}}, {"output_meta": {"outputs": [{"seconds": -1}]}},
                {"output_meta": {"outputs": [{"seconds": True}]}}, {"output_meta": {"outputs": [{"seconds": "x"}]}}):
        assert p.output_seconds(bad) is None


# -- task updates ------------------------------------------------------------------------

def test_completed_task_update():
    task = {"id": TASK, "status": 10, "error": None,
            "output": {"video": {"uri": VIDEO}, "output_meta": {"outputs": [{"seconds": 12.4}]}}}
    update = p.task_update(task)
    assert update.status is JobStatus.COMPLETED
    assert (update.task_id, update.output_url, update.duration_s) == (TASK, VIDEO, 12.4)
    assert update.progress == 100.0 and update.error is None and update.message == "completed"


def test_uploading_task_is_not_done_and_has_no_url_yet():
    update = p.task_update({"id": TASK, "status": 9, "output": {"video": {"uri": VIDEO}}})
    assert update.status is JobStatus.RUNNING and update.output_url is None


def test_failed_task_carries_the_app_error():
    update = p.task_update({"id": TASK, "status": 11, "error": "Task failed: no face", "output": None})
    assert update.status is JobStatus.FAILED
    assert update.error == "Task failed: no face" and update.error_kind is None
    assert p.task_update({"id": TASK, "status": 11}).error == "task failed"


def test_failed_task_error_kinds():
    assert p.task_update({"id": TASK, "status": 11, "error": "Insufficient balance"}).error_kind == "billing"
    policy = p.task_update({"id": TASK, "status": 11, "error": "Task failed: Failure to pass the risk control system"})
    assert policy.error_kind == "content_policy"


def test_rejected_task_is_a_billing_failure():
    update = p.task_update({"id": TASK, "status": 13, "error": None})
    assert update.status is JobStatus.FAILED and update.error_kind == "billing"
    assert "balance" in update.error


def test_cancelled_task():
    update = p.task_update({"id": TASK, "status": 12})
    assert update.status is JobStatus.CANCELLED and update.error is None


def test_task_id_of():
    assert p.task_id_of({"id": TASK}) == TASK
    assert p.task_id_of({"task_id": 42}) == "42"
    assert p.task_id_of({"id": ""}) is None
    assert p.task_id_of([TASK]) is None


def test_first_file_in_every_shape():
    dto = {"id": "f", "uri": "inf://files/f", "upload_url": "https://s/x"}
    for payload in ([dto], {"success": True, "status": 200, "data": [dto]}, {"data": {"files": [dto]}}, dto):
        assert p.first_file(payload) == dto
    assert p.first_file([]) is None and p.first_file("nope") is None


# -- requests ----------------------------------------------------------------------------

def test_run_body_shape():
    body = p.run_body_for("klingai/avatar@abc1", {"image": "https://i/face.png", "audio": "https://a/v.mp3",
                                                  "prompt": None, "mode": "pro"}, webhook=None)
    assert body == {"app": "klingai/avatar@abc1",
                    "input": {"image": "https://i/face.png", "audio": "https://a/v.mp3", "mode": "pro"}}
    with_all = p.run_body_for("a/b", {"image": "i", "audio": "a", "prompt": "smile", "mode": "std"},
                              webhook="https://hooks.example.com/x")
    assert with_all["input"]["prompt"] == "smile" and with_all["webhook"] == "https://hooks.example.com/x"
    assert "stream" not in with_all and "wait" not in with_all  # never sent (§3)


@pytest.mark.parametrize("filename, fmt, expected", [
    ("hello.mp3", "mp3", "hello.mp3"),
    ("voice.bin", "mp3", "voice.mp3"),        # the app transcodes unless .mp3/.wav (§11)
    ("audio", "wav", "audio.wav"),
    ("take.WAV", "wav", "take.WAV"),
    ("clip.m4a", "m4a", "clip.m4a"),
    ("face.jpeg", "jpeg", "face.jpeg"),
    ("face.png", "jpeg", "face.jpg"),
    ("/tmp/dir/face.png", "png", "face.png"),
    ("", "png", "file.png"),
    ("x.dat", None, "x.dat"),
])
def test_upload_filename_matches_the_content(filename, fmt, expected):
    assert p.upload_filename(filename, fmt) == expected


# -- stream lines ------------------------------------------------------------------------

def test_stream_line_kinds():
    partial = {"data": {"id": TASK, "status": 7}, "fields": ["status"]}
    assert p.parse_stream_line(json.dumps(partial)) == ("task", {"id": TASK, "status": 7})
    assert p.parse_stream_line(json.dumps({"id": TASK, "status": 10})) == ("task", {"id": TASK, "status": 10})
    assert p.parse_stream_line('{"data": {"id": "t", "status": 2}}') == ("task", {"id": "t", "status": 2})
    assert p.parse_stream_line('{"type":"heartbeat"}') == ("heartbeat", None)
    assert p.parse_stream_line(b'data: {"id": "t", "status": 7}\n') == ("task", {"id": "t", "status": 7})
    for junk in ("this is not json", '{"data": {"id": "t", "sta', "[1, 2]", '"str"', "data: nope"):
        assert p.parse_stream_line(junk) == ("bad", None), junk
    for ignored in ("", "   ", ": keep-alive", "event: update", '{"event":"delta","data":{"delta":{}}}',
                    '{"unrelated": true}'):
        assert p.parse_stream_line(ignored) == ("ignore", None), ignored


def test_merge_keeps_fields_a_partial_line_omits():
    snapshot = {"id": TASK, "status": 9, "output": {"video": {"uri": VIDEO}}}
    p.merge(snapshot, {"status": 10, "updated_at": "t"})
    assert p.task_update(snapshot).output_url == VIDEO


def test_redact():
    assert p.redact("key inf_secret123 leaked", ["inf_secret123", None, ""]) == "key *** leaked"
    assert p.redact("abc", ["ab"]) == "abc"  # too short to be a credential: left alone
