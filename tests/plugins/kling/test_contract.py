"""The Kling provider keeps the provider contract against its loopback fake."""

from __future__ import annotations

from typing import Any

import pytest

from talkinghead.testing.contract import ProviderContract
from talkinghead_kling import KlingProvider

from .conftest import FAST, TEST_AK, TEST_SK


class TestKlingContract(ProviderContract):
    @pytest.fixture
    def contract_fake(self, fake: Any) -> Any:
        return fake

    def make_provider(self, fake: Any, **config: Any) -> KlingProvider:
        return KlingProvider({"access_key": TEST_AK, "secret_key": TEST_SK, **FAST, "base_url": fake.url,
                              **config})

    def creates(self, fake: Any, provider: Any) -> int:
        return len(fake.creates)

    def lose_create_answer(self, fake: Any) -> dict[str, Any]:
        fake.configure(create_delay=0.6)  # the task is made; the answer comes after we gave up
        return {"timeout": 0.2}

    def wrong_credentials(self, fake: Any) -> dict[str, Any]:
        return {"secret_key": None}  # the fake verifies the JWT against the test secret
