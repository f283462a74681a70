"""Shared fixtures for the core tests. The talkinghead pytest plugin (talkinghead.testing) is
active too: network guard on, TALKINGHEAD_HOME in a temp dir."""

from __future__ import annotations

from pathlib import Path

pytest_plugins = ["pytester"]

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture
def face() -> Path:
    return EXAMPLES / "face.jpg"


@pytest.fixture
def speech() -> Path:
    return EXAMPLES / "hello.mp3"


@pytest.fixture
def fresh_plugins():
    """Plugin discovery from scratch, and back to normal afterwards."""
    from talkinghead import plugins

    plugins.reset()
    yield plugins
    plugins.reset()
