"""The mock provider keeps the provider contract (talkinghead.testing.contract)."""

from __future__ import annotations

from typing import Any

from talkinghead.testing.contract import ProviderContract
from talkinghead_mock import MockProvider


class TestMockContract(ProviderContract):
    def make_provider(self, fake: Any, **config: Any) -> MockProvider:
        return MockProvider({"steps": 2, **config})

    def creates(self, fake: Any, provider: Any) -> int:
        return len(provider.calls_to("submit"))
