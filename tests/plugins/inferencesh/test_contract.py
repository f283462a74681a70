"""The inference.sh provider keeps the provider contract against its loopback fake."""

from __future__ import annotations

from typing import Any

import pytest

from talkinghead.testing.contract import ProviderContract
from talkinghead_inferencesh import InferenceShProvider
from talkinghead_inferencesh.fake import RESET

from .conftest import FAST, TEST_KEY


class TestInferenceShContract(ProviderContract):
    @pytest.fixture
    def contract_fake(self, fake: Any) -> Any:
        return fake.configure(step_latency=0.01)

    def make_provider(self, fake: Any, **config: Any) -> InferenceShProvider:
        return InferenceShProvider({"api_key": TEST_KEY, **FAST, "base_url": fake.url, **config})

    def creates(self, fake: Any, provider: Any) -> int:
        return len(fake.creates)

    def lose_create_answer(self, fake: Any) -> dict[str, Any]:
        fake.configure(failures={"create": [RESET]})  # the task is made, the answer cut
        return {}

    def wrong_credentials(self, fake: Any) -> dict[str, Any]:
        fake.configure(api_key=TEST_KEY)
        return {"api_key": None}
