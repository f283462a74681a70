"""Mock plugin tests run on in-memory state unless a test asks for a state dir."""

import pytest


@pytest.fixture(autouse=True)
def _no_inherited_state_dir(monkeypatch):
    monkeypatch.delenv("TALKINGHEAD_MOCK_STATE_DIR", raising=False)
