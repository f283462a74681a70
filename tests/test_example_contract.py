"""The example third-party plugin (examples/talkinghead-still) keeps the provider contract, as
docs/writing-a-plugin.md tells plugin authors to check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkinghead.testing.contract import ProviderContract
from talkinghead_still import StillProvider

FACE = Path(__file__).resolve().parent.parent / "examples" / "face.jpg"


class TestStillContract(ProviderContract):
    def make_provider(self, fake: Any, **config: Any) -> StillProvider:
        return StillProvider(config)

    def sample_image(self) -> tuple[str, bytes]:
        return "face.jpg", FACE.read_bytes()
