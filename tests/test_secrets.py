"""The secrets scan: canary credentials for every installed provider that has any, through whole
runs against each plugin's loopback fake, failures included, and the canaries looked for in
everything a run leaves behind: the logs (JSON and console, both rendered by the product's own
processor chain), exception messages, reprs and tracebacks, the journal database (raw bytes,
WAL included), every file written (outputs, cassettes recorded with the plugin's own VCR
scrubbing, the repository's cassettes/) and the CLI's stdout and stderr.

Providers are discovered through ``talkinghead.plugins.get_provider_classes()``; a canary is
set for each env var in ``cls.env_vars``, so a new plugin is covered the day it is installed.
A plugin following the fake convention (``<package>.fake.serve(**switches)``, credentials
switches named like the provider's ``config_keys``, ``failures`` by endpoint, the base URL in
the provider module's ``ENV_BASE_URL``) gets full runs; one without a fake still gets the
guarded run (the network guard stops it, the error must not carry the key).
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import re
import secrets
import subprocess
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from talkinghead import AsyncClient, log, plugins
from talkinghead.errors import AuthenticationError, SubmitOutcomeUnknown, TalkingHeadError
from talkinghead.ledger import SQLiteLedger
from talkinghead.models import AvatarRequest
from tests import fake_secrets

ROOT = Path(__file__).resolve().parent.parent
FACE = ROOT / "examples" / "face.jpg"
MP3 = ROOT / "examples" / "hello.mp3"

CLASSES = {name: cls for name, cls in sorted(plugins.get_provider_classes().items()) if cls.env_vars}
# One canary per credential env var, shaped like no known key (so only the product's knowledge
# of its own secrets can scrub it, not a pattern), and unique to this run.
CANARIES = {env: f"cnry{secrets.token_hex(3)}{i}Q{secrets.token_hex(10)}"
            for i, env in enumerate(sorted({e for c in CLASSES.values() for e in c.env_vars}))}


def test_every_credentialed_provider_is_covered():
    assert "inferencesh" in CLASSES  # today's reference plugin; kling and fal join when installed
    for name, cls in CLASSES.items():
        assert all(env in CANARIES for env in cls.env_vars), name


def find_canaries(blob: str | bytes) -> list[str]:
    """Which canaries (whole, or any 12-character piece of one) occur in ``blob``."""
    text = blob.decode("utf-8", errors="replace") if isinstance(blob, bytes) else blob
    found = []
    for env, canary in CANARIES.items():
        if any(canary[i:i + 12] in text for i in range(0, len(canary) - 11, 4)):
            found.append(env)
    return found


def scan_files(root: Path, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    leaks = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name in skip:
            continue
        hits = find_canaries(path.read_bytes())
        if hits:
            leaks[str(path)] = hits
    return leaks


def describe(exc: BaseException) -> str:
    """Everything an exception shows: message, repr, the whole chained traceback, the
    attributes of each exception in the chain."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen), repr(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


# -- plugin conventions ------------------------------------------------------------------------

def plugin_module(cls: type) -> ModuleType:
    return sys.modules[cls.__module__]


def fake_module(cls: type) -> ModuleType | None:
    package = cls.__module__.split(".")[0]
    try:
        module = importlib.import_module(f"{package}.fake")
    except ImportError:
        return None
    return module if hasattr(module, "serve") else None


def base_url_env(cls: type) -> str | None:
    return getattr(plugin_module(cls), "ENV_BASE_URL", None)


def fast_config(cls: type) -> dict[str, float]:
    """The plugin's waits (its ``DEFAULTS`` tunables: backoffs, poll intervals, delays) made tiny."""
    defaults = getattr(plugin_module(cls), "DEFAULTS", {})
    return {k: 0.01 for k in defaults
            if "backoff" in k or k.endswith("delay") or (k.startswith("poll") and "factor" not in k)}


def fake_credentials(cls: type, values: dict[str, str]) -> dict[str, str]:
    """The fake's credential switches: named like the provider's config keys."""
    return {cls.config_keys.get(env, env.lower()): values[env] for env in cls.env_vars}


def scrubbing_vcr_config(name: str) -> dict[str, Any]:
    """The plugin's own recording configuration (its tests' ``vcr_config``)."""
    conftest = importlib.import_module(f"tests.plugins.{name}.conftest")
    factory = getattr(conftest.vcr_config, "__wrapped__", conftest.vcr_config)
    config = dict(factory())
    config.pop("match_on", None)
    return config


@contextmanager
def serve_fake(cls: type, **switches: Any) -> Iterator[Any]:
    module = fake_module(cls)
    with module.serve(**switches) as fake:
        yield fake


# -- log capture through the product's own processor chain -------------------------------------

@contextmanager
def captured_logs() -> Iterator[dict[str, io.StringIO]]:
    """Every log line rendered twice, as JSON and for the console, by the CLI's own formatter
    after the product's processors (redaction included) have run; as the CLI sets it up."""
    out = {"json": io.StringIO(), "console": io.StringIO()}
    log.configure(fmt="json", level="debug", stream=out["json"])
    console = logging.StreamHandler(out["console"])
    console.setFormatter(log.Formatter("console"))
    logging.getLogger(log.LOGGER_NAME).addHandler(console)
    try:
        yield out
    finally:
        logging.getLogger(log.LOGGER_NAME).removeHandler(console)
        log.unconfigure()


@pytest.fixture
def canary_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for env, canary in CANARIES.items():
        monkeypatch.setenv(env, canary)
    for cls in CLASSES.values():
        if base_url_env(cls):
            monkeypatch.delenv(base_url_env(cls), raising=False)
    return CANARIES


class Evidence:
    """What a test collects to scan at its end."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def add(self, what: str, value: Any) -> None:
        self.texts[what] = value if isinstance(value, str) else describe(value) \
            if isinstance(value, BaseException) else repr(value)

    def assert_clean(self) -> None:
        leaks = {what: hits for what, text in self.texts.items() if (hits := find_canaries(text))}
        assert leaks == {}, f"canary credentials leaked into: {leaks}"


async def _run(client: AsyncClient, name: str, out: Path, evidence: Evidence, label: str,
               expect: type[BaseException] | None = None, **kw: Any) -> None:
    request = AvatarRequest(image=FACE, audio=MP3, prompt="secrets scan")
    try:
        result = await client.run(request, provider=name, output=out, timeout=15, **kw)
    except TalkingHeadError as exc:
        evidence.add(f"{label}: exception", exc)
        assert expect is not None and isinstance(exc, expect), f"{label}: {describe(exc)}"
    else:
        evidence.add(f"{label}: result", result)
        assert expect is None, f"{label}: expected {expect.__name__}, got a video"


# -- in-process runs, every credentialed provider ----------------------------------------------

@pytest.mark.parametrize("name", sorted(CLASSES))
async def test_full_runs_against_the_fake_leak_nothing(name, canary_env, tmp_path, monkeypatch):
    cls = CLASSES[name]
    if fake_module(cls) is None or base_url_env(cls) is None:
        pytest.skip(f"{name}: no loopback fake (<package>.fake.serve) or ENV_BASE_URL to run against")
    evidence = Evidence()
    db = tmp_path / "journal.db"
    wrong = {env: "wrong-" + secrets.token_hex(16) for env in cls.env_vars}
    with captured_logs() as logs:
        # happy path, recorded to a cassette with the plugin's own scrubbing
        import vcr

        with serve_fake(cls, **fake_credentials(cls, canary_env)) as fake:
            monkeypatch.setenv(base_url_env(cls), fake.url)
            client = AsyncClient(ledger=SQLiteLedger(db), config={name: fast_config(cls)})
            evidence.add("client", client)
            evidence.add("provider", client.provider(name))
            recorder = vcr.VCR(**scrubbing_vcr_config(name), record_mode="all")
            with recorder.use_cassette(str(tmp_path / "cassettes" / name / "secrets_scan.yaml")):
                await _run(client, name, tmp_path / "out" / "ok.mp4", evidence, "happy")
            assert (tmp_path / "out" / "ok.mp4").stat().st_size > 0
            # every endpoint failing with 500 (retries, then a typed error)
            endpoints = [e for e in getattr(fake_module(cls), "ENDPOINTS", ()) if e not in ("hook", "jwks")]
            fake.reset(**fake_credentials(cls, canary_env), failures={e: [500] * 12 for e in endpoints})
            await _run(client, name, tmp_path / "out" / "e500.mp4", evidence, "500s", expect=TalkingHeadError)
            await client.aclose()
        # the backend does not know these credentials: 401
        with serve_fake(cls, **fake_credentials(cls, wrong)) as fake:
            monkeypatch.setenv(base_url_env(cls), fake.url)
            client = AsyncClient(ledger=SQLiteLedger(db), config={name: fast_config(cls)})
            await _run(client, name, tmp_path / "out" / "auth.mp4", evidence, "401", expect=AuthenticationError)
            await client.aclose()
        # no fake: the real host, stopped by the network guard
        monkeypatch.delenv(base_url_env(cls))
        client = AsyncClient(ledger=SQLiteLedger(db), config={name: fast_config(cls)})
        await _run(client, name, tmp_path / "out" / "guard.mp4", evidence, "guarded", expect=TalkingHeadError)
        await client.aclose()
        for job in SQLiteLedger(db).jobs():
            evidence.add(f"job {job.id}", job)
            evidence.add(f"job {job.id} json", job.model_dump_json())

    for fmt, buf in logs.items():
        text = buf.getvalue()
        assert "job.validated" in text  # the capture saw the runs
        evidence.add(f"{fmt} logs", text)
    evidence.assert_clean()
    assert scan_files(tmp_path) == {}  # journal (+ WAL), outputs, the recorded cassette
    assert list((tmp_path / "cassettes" / name).glob("*.yaml"))


async def test_inferencesh_failure_paths_leak_nothing(canary_env, tmp_path, monkeypatch):
    """The reference plugin's failures one by one: a 401 whose body quotes the key, a task
    that fails, a create whose answer never comes (``unknown``), a webhook with a bad token."""
    from talkinghead_inferencesh.fake import STALL, FakeInferenceSh, serve

    key = canary_env["INFERENCE_API_KEY"]
    evidence = Evidence()
    db = tmp_path / "journal.db"
    with captured_logs() as logs, serve(FakeInferenceSh(api_key=key, step_latency=0.01)) as fake:
        monkeypatch.setenv("INFERENCE_BASE_URL", fake.url)
        client = AsyncClient(ledger=SQLiteLedger(db), config={"inferencesh": {"timeout": 0.5, "retry_backoff": 0.01}})
        fake.configure(api_key="the-key-the-backend-wants", echo_key=True)
        await _run(client, "inferencesh", tmp_path / "a.mp4", evidence, "401 echoing the key",
                   expect=AuthenticationError)
        assert fake.requests[-1].header("authorization") == f"Bearer {key}"  # sent, and quoted back
        fake.configure(api_key=key, echo_key=False, task_error="Task failed: no face detected")
        await _run(client, "inferencesh", tmp_path / "b.mp4", evidence, "task failed", expect=TalkingHeadError)
        fake.configure(task_error=None, failures={"create": [STALL]}, stall_seconds=1.0)
        await _run(client, "inferencesh", tmp_path / "c.mp4", evidence, "unknown", expect=SubmitOutcomeUnknown)
        (unknown,) = SQLiteLedger(db).jobs(status="unknown")
        try:
            await client.resume(unknown)
        except TalkingHeadError as exc:
            evidence.add("resume unknown", exc)
        try:
            await client.receive_webhook("inferencesh", "not-a-token", {"authorization": f"Bearer {key}"}, b"{}")
        except TalkingHeadError as exc:
            evidence.add("webhook", exc)
        await client.aclose()
    for fmt, buf in logs.items():
        evidence.add(f"{fmt} logs", buf.getvalue())
    for job in SQLiteLedger(db).jobs():
        evidence.add(f"job {job.id}", job)
    evidence.assert_clean()
    assert scan_files(tmp_path) == {}


# Shapes real credentials take, so a cassette re-recorded with a live key is caught even
# though that key is no canary of ours.
KEY_SHAPES = {
    "inference.sh key": re.compile(r"\binf_[A-Za-z0-9]{20,}"),
    "JWT": re.compile(r"\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}"),
    "fal key": re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:[0-9a-f]{32}\b"),
    "bearer or key credential": re.compile(r"\b(?:Bearer|Key) [A-Za-z0-9._~+/=-]{16,}"),
}
CREDENTIAL_HEADERS = {"authorization", "x-api-key", "cookie", "set-cookie", "proxy-authorization"}


def key_shapes(text: str) -> list[str]:
    return [name for name, pattern in KEY_SHAPES.items() if pattern.search(text)]


def cassette_leaks(root: Path) -> dict[str, list[str]]:
    """Per cassette: canaries, credential-shaped strings, and credential headers recorded with
    anything but the scrubbed placeholder."""
    import yaml

    leaks: dict[str, list[str]] = {}
    for path in sorted(root.rglob("*.yaml")):
        text = path.read_text()
        found = find_canaries(text) + key_shapes(text)
        for interaction in (yaml.safe_load(text) or {}).get("interactions", []):
            for part in ("request", "response"):
                headers = interaction.get(part, {}).get("headers", {}) or {}
                found += [f"{part} header {h}" for h, values in headers.items()
                          if h.lower() in CREDENTIAL_HEADERS
                          and any(v not in ("REDACTED", "[REDACTED]") for v in (values or []))]
        if found:
            leaks[str(path.relative_to(root))] = found
    return leaks


def test_the_scanner_finds_key_shapes_and_recorded_credential_headers(tmp_path):
    fake_jwt = fake_secrets.jwt()
    (tmp_path / "c.yaml").write_text(
        "interactions:\n- request:\n    headers:\n      Authorization:\n      - Bearer " + fake_jwt +
        "\n  response:\n    headers: {}\n")
    (tmp_path / "clean.yaml").write_text("interactions:\n- request:\n    headers: {}\n  response: {}\n")
    leaks = cassette_leaks(tmp_path)
    assert set(leaks) == {"c.yaml"}
    assert {"JWT", "bearer or key credential", "request header Authorization"} <= set(leaks["c.yaml"])
    assert key_shapes(fake_secrets.inference_key()) == ["inference.sh key"]


def test_the_repository_cassettes_hold_no_canary_or_key_shape():
    cassettes = ROOT / "cassettes"
    assert len(list(cassettes.rglob("*.yaml"))) >= 30  # the scan saw the real cassettes
    assert cassette_leaks(cassettes) == {}


# -- the CLI, in real processes ----------------------------------------------------------------

def _command() -> list[str]:
    script = Path(sys.executable).with_name("talkinghead")
    return [str(script)] if script.exists() else [sys.executable, "-m", "talkinghead.cli"]


def test_cli_output_and_files_leak_nothing(tmp_path):
    """``talkinghead -vv generate`` for every provider with a fake, JSON and console logs, a
    success and a rejected key each, run in parallel; stdout, stderr and every file written
    (journal, outputs) are scanned."""
    base_env = {k: v for k, v in os.environ.items()
                if not k.startswith("TALKINGHEAD_") and k not in CANARIES
                and not any(k == base_url_env(c) for c in CLASSES.values())}
    base_env.update(CANARIES, TALKINGHEAD_BLOCK_NETWORK="1")
    runs: list[tuple[str, subprocess.Popen, Any]] = []
    stack = []
    try:
        for name, cls in CLASSES.items():
            if fake_module(cls) is None or base_url_env(cls) is None:
                continue
            for label, creds, fmt in (("ok", CANARIES, "json"), ("rejected", None, "console")):
                wanted = creds or {env: "wrong-" + secrets.token_hex(16) for env in cls.env_vars}
                ctx = serve_fake(cls, **fake_credentials(cls, wanted))
                fake = ctx.__enter__()
                stack.append(ctx)
                home = tmp_path / f"{name}-{label}"
                env = {**base_env, base_url_env(cls): fake.url, "TALKINGHEAD_HOME": str(home),
                       "TALKINGHEAD_LOG_FORMAT": fmt}
                cmd = [*_command(), "-vv", "generate", "--provider", name, "--image", str(FACE),
                       "--audio", str(MP3), "--output", str(home / "out.mp4"), "--json"]
                runs.append((f"{name} {label}", subprocess.Popen(
                    cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path), label))
        assert runs
        for what, proc, label in runs:
            out, err = proc.communicate(timeout=90)
            assert (proc.returncode == 0) == (label == "ok"), f"{what}: exit {proc.returncode}: {err.decode()[-2000:]}"
            assert find_canaries(out) == [] and find_canaries(err) == [], f"{what} printed a canary"
            assert b"job.validated" in err and b"Traceback" not in err
    finally:
        for ctx in stack:
            ctx.__exit__(None, None, None)
    assert scan_files(tmp_path) == {}
