"""HttpProvider: the cloud providers' client slots, opened on first use and closed by aclose."""

from __future__ import annotations

import httpx

from talkinghead.provider import HttpProvider


class TwoClients(HttpProvider):
    name = "two"
    clients = ("_api", "_uploads")
    _uploads: httpx.AsyncClient | None

    def api(self) -> httpx.AsyncClient:
        if self._api is None:
            self._api = httpx.AsyncClient()
        return self._api


async def test_clients_start_unopened_and_aclose_closes_the_opened_ones_once():
    provider = TwoClients({})
    assert provider._api is None and provider._uploads is None and provider.marks_create
    api = provider.api()
    await provider.aclose()
    assert api.is_closed and provider._api is None and provider._uploads is None
    await provider.aclose()  # twice is harmless
    again = provider.api()  # a closed provider opens a new client when used again
    assert again is not api and not again.is_closed
    await provider.aclose()
    assert again.is_closed
