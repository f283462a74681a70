"""Logging: lifecycle events, JSON format, and keys never reaching a log line."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

import pytest
import structlog

from talkinghead import log
from tests import fake_secrets

INF_KEY = fake_secrets.inference_key()


@pytest.fixture(autouse=True)
def _cli_logging_undone():
    yield
    log.unconfigure()


def capture(fmt: str) -> io.StringIO:
    """The CLI's set-up, writing to a buffer."""
    out = io.StringIO()
    log.configure(fmt=fmt, level="debug", stream=out)
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
                          msg=f"Authorization: Bearer zyxwvutsrqponm987 and {INF_KEY}",
                          url="https://s.example.com/u?X-Amz-Signature=deadbeefcafe&x=1")
    text = out.getvalue()
    for leaked in ("abcdefghijklmnop123", "zyxwvutsrqponm987", INF_KEY, "deadbeefcafe"):
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
        async with AsyncClient(providers=[Careless()], allow_test_routes=True) as client:
            await client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "o.mp4")

    asyncio.run(go())
    text = out.getvalue()
    events = [json.loads(line) for line in text.splitlines()]
    names = {e["event"] for e in events}
    assert {"job.validated", "job.quoted", "job.submitted", "job.completed", "careless.debug"} <= names
    submitted = next(e for e in events if e["event"] == "job.submitted")
    assert submitted["provider"] == "careless" and submitted["job_id"] and submitted["route"]
    assert key not in text


# -- a good citizen in an app's process ----------------------------------------------------------

@pytest.fixture
def app_structlog():
    """An app that left structlog at its defaults (or configured its own), restored after."""
    saved = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**saved)


def run_on_mock(face, speech, tmp_path):
    from talkinghead import AvatarRequest, Client
    from talkinghead.plugins import get_provider_classes

    with Client(providers=[get_provider_classes()["mock"]()], allow_test_routes=True) as client:
        return client.run(AvatarRequest(image=face, audio=speech), output=tmp_path / "o.mp4")


def test_app_structlog_configuration_untouched_by_a_run(app_structlog, face, speech, tmp_path, capsys):
    """An app's own ``structlog.get_logger().info(...)`` lines kept printing after a run:
    the library once called ``structlog.configure()`` with a warning-level filter."""
    before = structlog.get_config()
    assert not structlog.is_configured()
    run_on_mock(face, speech, tmp_path)
    assert not structlog.is_configured()
    assert structlog.get_config() == before
    structlog.get_logger().info("app.still.logging", n=1)
    assert "app.still.logging" in capsys.readouterr().out


def test_app_configured_structlog_is_left_as_it_was(app_structlog, face, speech, tmp_path):
    seen: list[dict] = []

    def keep(logger, method, event):
        seen.append(dict(event))
        raise structlog.DropEvent

    structlog.configure(processors=[keep])
    config = structlog.get_config()
    run_on_mock(face, speech, tmp_path)
    assert structlog.get_config() == config
    assert not any(str(e.get("event", "")).startswith("job.") for e in seen)  # ours go to logging
    structlog.get_logger().info("app.event")
    assert seen[-1]["event"] == "app.event"


def test_caplog_receives_talkinghead_records(caplog, face, speech, tmp_path):
    caplog.set_level(logging.INFO, logger="talkinghead")
    result = run_on_mock(face, speech, tmp_path)
    ours = [r for r in caplog.records if r.name.startswith("talkinghead")]
    events = [r.talkinghead["event"] for r in ours]
    assert {"job.validated", "job.quoted", "job.submitted", "job.completed"} <= set(events)
    done = next(r for r in ours if r.talkinghead["event"] == "job.completed")
    assert done.talkinghead["job_id"] == result.job_id and done.levelno == logging.INFO
    assert done.name == "talkinghead.lifecycle" and done.getMessage().startswith("job.completed job_id=")


def test_root_logger_untouched_and_quiet_by_default(face, speech, tmp_path):
    """No handler or level is added to the root logger; the library's own logger has only a
    NullHandler, so nothing prints until the app configures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    run_on_mock(face, speech, tmp_path)
    assert root.handlers == handlers and root.level == level
    ours = logging.getLogger("talkinghead")
    assert [type(h) for h in ours.handlers] == [logging.NullHandler]


APP = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(name)s %(levelname)s %(message)s")
from talkinghead import AvatarRequest, Client, log
from talkinghead.plugins import get_provider_classes

log.add_secret("sk-app-canary-99887766")
with Client(providers=[get_provider_classes()["mock"]()], allow_test_routes=True) as client:
    client.run(AvatarRequest(image=sys.argv[1], audio=sys.argv[2], prompt="sk-app-canary-99887766"),
               output=sys.argv[3])
log.get_logger("talkinghead.app").info("done", key="sk-app-canary-99887766")
"""


@pytest.mark.parametrize("configure_logging", [True, False])
def test_basicconfig_app_sees_records_and_no_secret(face, speech, tmp_path, configure_logging):
    app = APP if configure_logging else APP.replace("logging.basicConfig(", "dict(")
    done = subprocess.run([sys.executable, "-c", app, str(face), str(speech), str(tmp_path / "o.mp4")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    if not configure_logging:  # quiet by default: nothing on either stream
        assert done.stdout == "" and done.stderr == ""
        return
    lines = done.stdout.splitlines()
    assert any(line.startswith("talkinghead.lifecycle INFO job.completed job_id=") for line in lines)
    assert any(line.startswith("talkinghead.app INFO done key='[REDACTED]'") for line in lines)
    assert "sk-app-canary" not in done.stdout + done.stderr
