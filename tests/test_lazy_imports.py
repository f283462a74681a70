"""Plugins register their provider classes without loading heavy dependencies (start-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
HEAVY = ("httpx", "numpy", "cv2", "jwt", "cryptography", "structlog", "av")

SCRIPT = f"""
import json, sys, types
from talkinghead.plugins import get_provider_classes
classes = get_provider_classes()
for cls in classes.values():
    cls({{}}).routes()
loaded = [m for m in {HEAVY!r} if isinstance(sys.modules.get(m), types.ModuleType)
          and type(sys.modules[m]) is types.ModuleType]
print(json.dumps({{"providers": sorted(classes), "loaded": loaded}}))
"""


def test_registering_and_listing_providers_loads_no_heavy_module():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"inferencesh", "kling", "fal", "local", "mock"} <= set(found["providers"])
    assert found["loaded"] == []


def test_a_lazy_module_is_the_real_module_once_used():
    code = ("import sys; from talkinghead import lazy; sys.modules.pop('colorsys', None); "
            "m = lazy.module('colorsys'); assert 'colorsys' in sys.modules; "
            "print(m.rgb_to_hsv(1, 0, 0), sys.modules['colorsys'] is m, type(m).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(0.0, 1.0, 1) True module"


def test_log_events_below_the_level_never_load_structlog_and_written_ones_are_redacted():
    # Library logging goes to the stdlib logger; here the app configured logging at warning.
    code = ("import logging, sys; logging.basicConfig(level=logging.WARNING); "
            "from talkinghead import log; log.add_secret('sk-canary-0123456789'); "
            "l = log.get_logger(job_id='j1').bind(provider='p'); l.info('job.step', note='sk-canary-0123456789'); "
            "print('structlog' in sys.modules); l.warning('job.warn', note='key sk-canary-0123456789'); "
            "print('structlog' in sys.modules)")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TALKINGHEAD_LOG_LEVEL"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "False"]  # structlog is never needed to log
    assert "job.warn" in out.stderr and "job_id='j1'" in out.stderr and "provider='p'" in out.stderr
    assert "job.step" not in out.stderr and "sk-canary" not in out.stderr


async def test_plain_http_never_builds_the_tls_context_and_https_gets_the_shared_one():
    import httpx

    from talkinghead import http

    transport = http.GuardedTransport("t")
    try:
        assert transport._route(httpx.Request("GET", "http://127.0.0.1:1/x")) is transport.inner
        assert transport._tls is None
        tls = transport._route(httpx.Request("GET", "https://example.invalid/x"))
        assert tls is transport._tls and tls is not transport.inner
        assert tls._ssl is http.ssl_context()  # the aiohttp transport's TLS context
    finally:
        await transport.aclose()


COMMAND_SCRIPT = f"""
import json, sys, types
from talkinghead.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
except SystemExit:
    pass
loaded = [m for m in {HEAVY + ("asyncio", "ssl")!r} if isinstance(sys.modules.get(m), types.ModuleType)
          and type(sys.modules[m]) is types.ModuleType]
print(json.dumps(loaded))
"""


@pytest.mark.parametrize("args", [["providers"], ["estimate", "--image", str(EXAMPLES / "face.jpg"), "--audio",
                                                  str(EXAMPLES / "hello.mp3")]], ids=["providers", "estimate"])
def test_listing_and_quoting_load_no_heavy_module_nor_an_event_loop(args, tmp_path):
    """``providers`` and ``estimate`` (headers only: no PyAV, no face detector) in a fresh
    process load neither the heavy libraries nor asyncio (start-up, docs/performance.md)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALKINGHEAD_")}
    env["TALKINGHEAD_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", COMMAND_SCRIPT, *args], capture_output=True, text=True,
                         check=True, env=env)
    lines = out.stdout.strip().splitlines()
    assert any("local/" in line for line in lines[:-1]), out.stdout  # the command did its work
    assert json.loads(lines[-1]) == []


def test_a_lazy_submodule_is_reachable_from_its_package_as_an_import_makes_it():
    """``import talkinghead.http`` after a plugin bound it lazily must give a module that its
    package holds, or ``talkinghead.http.x`` raises AttributeError (fresh process: nothing of
    the HTTP stack loaded before)."""
    code = ("import talkinghead.lazy_http, talkinghead.http, sys\n"
            "assert talkinghead.http is sys.modules['talkinghead.http']\n"
            "print(talkinghead.http.call_timeout(5).read)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) == 5.0
