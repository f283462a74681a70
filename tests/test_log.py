"""Logging: lifecycle events, JSON format, and keys never reaching a log line."""

from __future__ import annotations

import io
import json

from talkinghead import log


def capture(fmt: str) -> io.StringIO:
    out = io.StringIO()
    log.configure(fmt=fmt, level="debug", stream=out, force=True)
    return out


def test_registered_secret_never_logged():
    out = capture("json")
    log.add_secret("sk-canary-0123456789abcdef")
    log.get_logger().info("job.submitted", note="key is sk-canary-0123456789abcdef",
                          nested={"list": ["sk-canary-0123456789abcdef"]})
    text = out.getvalue()
    assert "sk-canary" not in text
    assert json.loads(text)["event"] == "job.submitted"


def test_authorization_headers_and_key_shapes_are_redacted():
    out = capture("console")
    log.get_logger().info("http", headers={"Authorization": "Bearer abcdefghijklmnop123"},
                          msg="Authorization: Bearer zyxwvutsrqponm987 and inf_abcdef123456789",  # fake secret: the scanner must catch its shape
                          url="https://s.example.com/u?X-Amz-Signature=deadbeefcafe&x=1")
    text = out.getvalue()
    for leaked in ("abcdefghijklmnop123", "zyxwvutsrqponm987", "inf_abcdef123456789", "deadbeefcafe"):  # fake secret: the scanner must catch its shape
        assert leaked not in text
    assert "x=1" in text  # only the secret part of the URL goes


def test_key_from_environment_never_in_json_logs(monkeypatch, face, speech, tmp_path):
    """A provider whose key is in the environment and which carelessly logs it: a whole run's
    JSON log holds every lifecycle event and nothing of the key."""
    import asyncio
    import os

    from talkinghead import AsyncClient, AvatarRequest
    from talkinghead.plugins import get_provider_classes

    key = "canary-key-5f2b9c1e7a"
    monkeypatch.setenv("CANARY_API_KEY", key)

    class Careless(get_provider_classes()["mock"]):
        name = "careless"
        env_vars = ("CANARY_API_KEY",)

        def routes(self):
            return [r.model_copy(update={"provider": "careless"}) for r in super().routes()]

        async def submit(self, job, prepared):
            log.get_logger().info("careless.debug", env=os.environ["CANARY_API_KEY"],
                                  url=f"https://api.example.com/run?k={key}")
            return await super().submit(job, prepared)

    out = capture("json")

    async def go():
        async with AsyncClient(providers=[Careless()]) as client:
            await client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "o.mp4")

    asyncio.run(go())
    text = out.getvalue()
    events = [json.loads(line) for line in text.splitlines()]
    names = {e["event"] for e in events}
    assert {"job.validated", "job.quoted", "job.submitted", "job.completed", "careless.debug"} <= names
    submitted = next(e for e in events if e["event"] == "job.submitted")
    assert submitted["provider"] == "careless" and submitted["job_id"] and submitted["route"]
    assert key not in text
