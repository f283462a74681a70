"""The local renderer keeps the provider contract (it renders in-process: no fake backend)."""

from __future__ import annotations

from typing import Any

from talkinghead.testing.contract import ProviderContract
from talkinghead_local.provider import LocalProvider


class TestLocalContract(ProviderContract):
    follow_timeout = 120.0  # a real render on a shared CPU

    def make_provider(self, fake: Any, **config: Any) -> LocalProvider:
        return LocalProvider({"width": 160, "height": 160, **config})

    def sample_image(self) -> tuple[str, bytes]:
        from pathlib import Path

        return "face.jpg", (Path(__file__).resolve().parents[3] / "examples" / "face.jpg").read_bytes()
