"""The webhook receiver under real uvicorn on loopback, with real HTTP posts."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
import pytest

from talkinghead import AsyncClient, AvatarRequest, InputError, JobStatus, WebhookRejected
from talkinghead.ledger import SQLiteLedger
from talkinghead.plugins import get_provider_classes
from talkinghead.testing.loopback import serve_asgi
from talkinghead.webhooks import create_app

MOCK = get_provider_classes()["mock"]


@pytest.fixture(autouse=True)
def _mock_may_be_chosen(monkeypatch):
    """These tests let the router pick the mock without naming it: the explicit test setting
    (a test double is otherwise used only by name)."""
    monkeypatch.setenv("TALKINGHEAD_ALLOW_TEST_ROUTES", "1")
SIGNING_KEY = b"test-signing-key"


class Signed(MOCK):
    """A backend that signs its callbacks (HMAC here; fal's Ed25519 is tested in its plugin)."""

    name = "signed"
    signs_webhooks = True

    def routes(self):
        return [r.model_copy(update={"provider": "signed"}) for r in super().routes()]

    async def parse_webhook(self, headers, body):
        stamp = headers.get("x-timestamp", "")
        expected = hmac.new(SIGNING_KEY, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-signature", ""), expected):
            raise WebhookRejected("signed: bad signature")
        if not stamp.isdigit() or abs(time.time() - int(stamp)) > 300:
            raise WebhookRejected("signed: stale timestamp")
        update = await super().parse_webhook(headers, body)
        return update.model_copy(update={"delivery_id": headers.get("x-delivery-id")})

    async def poll(self, job):
        raise AssertionError("a verified signed callback must not need a confirming read")


def sign(body: bytes, stamp: int | None = None, delivery: str = "d1", key: bytes = SIGNING_KEY) -> dict:
    stamp = int(time.time()) if stamp is None else stamp
    sig = hmac.new(key, str(stamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"x-timestamp": str(stamp), "x-signature": sig, "x-delivery-id": delivery}


@pytest.fixture
def world(tmp_path, face, speech):
    """A submitting client and a receiver (its own client, as in another process) sharing the
    journal and the mock's task state, with the receiver under uvicorn on 127.0.0.1."""
    db, state = tmp_path / "th.db", tmp_path / "mock"

    def providers():
        return [MOCK({"state_dir": state, "steps": 3}), Signed({"state_dir": tmp_path / "signed", "steps": 3})]

    receiver = AsyncClient(providers=providers(), ledger=SQLiteLedger(db))
    with serve_asgi(create_app(receiver, max_body=4096)) as url:
        submitter = AsyncClient(providers=providers(), ledger=SQLiteLedger(db), webhook_base=url)
        yield submitter, url, AvatarRequest(image=face, audio=speech)


def post(url: str, body: bytes, headers: dict | None = None) -> httpx.Response:
    return httpx.post(url, content=body, headers={"content-type": "application/json", **(headers or {})})


def snapshot(client: AsyncClient, job_id: str) -> str:
    return client.ledger.get(job_id).model_dump_json()


async def test_each_job_gets_its_own_callback_and_only_its_hash_is_journaled(world):
    client, url, request = world
    job = await client.submit(request, provider="mock")
    assert job.webhook_url.startswith(f"{url}/webhooks/mock/")
    token = job.webhook_url.rsplit("/", 1)[1]
    row = client.ledger._conn().execute("SELECT data, webhook_hash FROM jobs").fetchone()
    assert token not in row[0] and row[1] == hashlib.sha256(token.encode()).hexdigest()
    assert json.loads(row[0])["webhook_url"].endswith("/webhooks/mock/[token]")


async def test_unsigned_callbacks_are_confirmed_by_reading_the_task(world):
    client, url, request = world
    job = await client.submit(request, provider="mock")
    forged = json.dumps({"id": job.task_id, "status": "completed",
                         "output": {"video": {"uri": "https://evil.example.com/x.mp4"}}}).encode()
    r = post(job.webhook_url, forged)
    assert r.status_code == 200 and r.json()["status"] == "running"  # the read says running
    saved = client.ledger.get(job.id)
    assert saved.output_url is None and saved.status is JobStatus.RUNNING
    for _ in range(3):  # each callback's confirming read advances the mock a step
        r = post(job.webhook_url, forged)
    assert r.json()["status"] == "completed"
    done = client.ledger.get(job.id)
    assert done.status is JobStatus.COMPLETED and done.output_url.startswith("file://")
    assert done.settled_usd == pytest.approx(done.quote.cost_usd, abs=0.002)
    # a late, out-of-order "running" callback changes nothing
    late = post(job.webhook_url, json.dumps({"id": job.task_id, "status": "running"}).encode())
    assert late.status_code == 200 and late.json()["status"] == "completed"
    assert snapshot(client, job.id) == done.model_dump_json()


@pytest.mark.parametrize("case", ["bad_token", "other_provider", "malformed", "not_object", "wrong_task",
                                  "too_large", "unknown_provider"])
async def test_rejections_leave_the_journal_untouched(world, case):
    client, url, request = world
    job = await client.submit(request, provider="mock")
    before = snapshot(client, job.id)
    token = job.webhook_url.rsplit("/", 1)[1]
    good = json.dumps({"id": job.task_id, "status": "completed"}).encode()
    target, body, expected = {
        "bad_token": (f"{url}/webhooks/mock/not-the-token", good, 404),
        "other_provider": (f"{url}/webhooks/signed/{token}", good, 404),
        "malformed": (job.webhook_url, b"{not json", 400),
        "not_object": (job.webhook_url, b"[1, 2]", 400),
        "wrong_task": (job.webhook_url, json.dumps({"id": "mock-999999", "status": 10}).encode(), 400),
        "too_large": (job.webhook_url, b" " * 5000 + good, 413),
        "unknown_provider": (f"{url}/webhooks/nosuch/{token}", good, 404),
    }[case]
    r = post(target, body)
    assert r.status_code == expected, r.text
    assert snapshot(client, job.id) == before


async def test_signed_callbacks_verified_replays_ignored(world):
    client, url, request = world
    job = await client.submit(request, provider="signed")
    before = snapshot(client, job.id)
    body = json.dumps({"id": job.task_id, "status": "running", "progress": 40}).encode()
    assert post(job.webhook_url, body, sign(body, key=b"wrong")).status_code == 401
    assert post(job.webhook_url, body, sign(body, stamp=int(time.time()) - 3600)).status_code == 401
    assert post(job.webhook_url, body + b" ", sign(body)).status_code == 401  # tampered
    assert snapshot(client, job.id) == before
    ok = post(job.webhook_url, body, sign(body, delivery="d-1"))
    assert ok.status_code == 200 and client.ledger.get(job.id).progress == 40
    done = json.dumps({"id": job.task_id, "status": "completed",
                       "output": {"video": {"uri": "https://cdn.example.com/v.mp4"}}}).encode()
    assert post(job.webhook_url, done, sign(done, delivery="d-2")).json()["status"] == "completed"
    finished = snapshot(client, job.id)
    replay = post(job.webhook_url, body, sign(body, delivery="d-1"))  # the same delivery again
    assert replay.status_code == 200 and snapshot(client, job.id) == finished
    assert client.ledger.get(job.id).output_url == "https://cdn.example.com/v.mp4"


async def test_receive_webhook_directly(world):
    client, _, request = world
    job = await client.submit(request, provider="mock")
    token = job.webhook_url.rsplit("/", 1)[1]
    with pytest.raises(InputError):
        await client.receive_webhook("mock", token, {}, b"garbage")
    got = await client.receive_webhook("mock", token, {}, json.dumps({"id": job.task_id, "status": 7}).encode())
    assert got.id == job.id and got.status is JobStatus.RUNNING and got.progress > 0


def test_health(world):
    _, url, _ = world
    assert httpx.get(f"{url}/healthz").json()["providers"] == ["mock", "signed"]


async def test_mock_posts_its_completion_callback_offline(world):
    """Given a webhook URL, the mock POSTs an inference.sh-shaped payload when the job ends,
    and the receiver accepts it (confirming it by reading the task)."""
    client, url, request = world
    job = await client.submit(request, provider="mock")
    mock = client.provider("mock")
    while not (await mock.poll(job)).status.terminal:  # the backend runs; the journal is not told
        pass
    assert client.ledger.get(job.id).status is JobStatus.QUEUED
    await mock.aclose()  # waits for the callback on its way to the receiver
    saved = client.ledger.get(job.id)  # the receiver confirmed it and recorded the end
    assert saved.status is JobStatus.COMPLETED and saved.output_url.startswith("file://")
    assert saved.settled_usd > 0


async def test_mock_callback_payload_shape(tmp_path, face, speech):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    got: list[dict] = []

    async def sink(request):
        got.append(json.loads(await request.body()))
        return Response(status_code=204)

    with serve_asgi(Starlette(routes=[Route("/hook", sink, methods=["POST"])])) as url:
        client = AsyncClient(providers=[MOCK()], ledger=SQLiteLedger(tmp_path / "th.db"))
        await client.run(AvatarRequest(image=face, audio=speech), webhook_url=f"{url}/hook", output=tmp_path / "v.mp4")
        await client.aclose()
    (payload,) = got
    assert set(payload) >= {"id", "status", "output", "error", "session_id", "created_at", "updated_at"}
    assert payload["status"] == 10 and payload["output"]["video"]["uri"].startswith("file://")


async def test_local_posts_its_completion_callback_offline(tmp_path, face, speech):
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    local = get_provider_classes().get("local")
    if local is None:
        pytest.skip("talkinghead-local is not installed")
    got: list[dict] = []

    async def sink(request):
        got.append(json.loads(await request.body()))
        return Response(status_code=204)

    with serve_asgi(Starlette(routes=[Route("/hook", sink, methods=["POST"])])) as url:
        client = AsyncClient(providers=[local({"resolution": 180})], ledger=SQLiteLedger(tmp_path / "th.db"))
        result = await client.run(AvatarRequest(image=face, audio=speech), webhook_url=f"{url}/hook",
                                  output=tmp_path / "v.mp4")
        await client.aclose()  # the render thread has posted by the time the pool is idle
    (payload,) = got
    assert set(payload) >= {"id", "status", "output", "error", "session_id", "created_at", "updated_at"}
    assert payload["status"] == 10 and payload["output"]["video"]["uri"].startswith("file://")
    assert payload["output"]["output_meta"]["outputs"][0]["seconds"] == pytest.approx(result.duration_s)


async def test_callback_resolves_a_job_whose_create_answer_was_lost(world):
    """The create reached the backend but its answer was lost: the job is `unknown`, with no
    task id. The backend's callback to the job's own URL names the task; a read with our key
    confirms it, and the job is followed to the end instead of staying unknown."""
    client, url, request = world
    job = await client.submit(request, provider="mock")
    task_id = job.task_id
    job.task_id, job.status = None, JobStatus.UNKNOWN  # as if the answer never arrived
    client.ledger.record(job)
    body = json.dumps({"id": task_id, "status": "running"}).encode()
    for _ in range(4):
        r = post(job.webhook_url, body)
    saved = client.ledger.get(job.id)
    assert r.status_code == 200 and saved.task_id == task_id
    assert saved.status is JobStatus.COMPLETED and saved.settled_usd > 0


async def test_callback_naming_a_task_that_does_not_exist_is_not_adopted(world):
    client, url, request = world
    job = await client.submit(request, provider="mock")
    job.task_id, job.status = None, JobStatus.UNKNOWN
    client.ledger.record(job)
    before = snapshot(client, job.id)
    r = post(job.webhook_url, json.dumps({"id": "mock-424242", "status": "completed"}).encode())
    assert r.status_code == 400 and "does not exist" in r.json()["error"]
    assert snapshot(client, job.id) == before  # still unknown, still reserved
