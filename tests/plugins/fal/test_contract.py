"""The fal provider keeps the provider contract against its loopback fake."""

from __future__ import annotations

from typing import Any

import pytest

from talkinghead.testing.contract import ProviderContract
from talkinghead_fal import FalProvider

from .conftest import FAST, TEST_KEY


class TestFalContract(ProviderContract):
    @pytest.fixture
    def contract_fake(self, fake: Any) -> Any:
        return fake

    def make_provider(self, fake: Any, **config: Any) -> FalProvider:
        return FalProvider({"api_key": TEST_KEY, **FAST, "base_url": fake.url, **config})

    def creates(self, fake: Any, provider: Any) -> int:
        return len(fake.submits)

    def lose_create_answer(self, fake: Any) -> dict[str, Any]:
        fake.configure(submit_delay=0.6)  # queued anyway; the answer comes after we gave up
        return {"timeout": 0.2}

    def wrong_credentials(self, fake: Any) -> dict[str, Any]:
        fake.configure(api_key=TEST_KEY)
        return {"api_key": None}
