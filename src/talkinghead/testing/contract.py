"""The provider contract kit: the promises every provider makes, as one reusable test class.

A plugin (bundled or third-party) subclasses ``ProviderContract`` in its tests, names how to
build its provider against its fake backend, and inherits a test per promise::

    class TestMyProviderContract(ProviderContract):
        @pytest.fixture
        def contract_fake(self):
            with serve_my_fake() as fake:
                yield fake

        def make_provider(self, fake):
            return MyProvider({"api_key": "test-key", "base_url": fake.url})

        def creates(self, fake):
            return len(fake.requests_to("create"))

        def lose_create_answer(self, fake):
            fake.configure(failures={"create": ["reset"]})  # received, answer lost

The promises: declared routes and limits are consistent; ``validate`` refuses what the limits
say; ``estimate`` makes no network call; ``submit`` returns a task id and never resends a
create whose request may have arrived (it raises ``SubmitOutcomeUnknown``, or finds
the task that create made); following a task ends in a
terminal update; ``cancel`` is idempotent; a webhook body that is not the backend's raises
``InputError`` (or ``WebhookRejected`` where the backend signs); ``find_task`` finds nothing for
a job never sent and never another job's task; credentials never show in reprs or errors.
Hooks a provider cannot support (say, losing a create's answer in an in-process double) may raise
``NotImplementedError``: that test is then skipped with the reason, never passed.

Each test runs its provider inside one ``asyncio.run``, so the kit needs no async plugin.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import socket
import struct
import wave
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, NoReturn, TypeVar

import pytest

from ..errors import (
    AuthenticationError,
    InputError,
    NetworkBlocked,
    ProviderError,
    SubmitOutcomeUnknown,
    WebhookRejected,
)
from ..models import AvatarRequest, Job, JobStatus, Quote, Route
from ..provider import Provider

T = TypeVar("T")
_SECRET = "contract-secret-7f3e9a1c0b5d"  # a credential value the kit plants and then looks for


def png_bytes(width: int = 512, height: int = 512) -> bytes:
    """A valid RGB PNG of the given size (a soft gradient), written with zlib alone."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type: none
        shade = 60 + (150 * y) // max(1, height - 1)
        rows.extend(bytes((shade, 120, 200 - shade // 2)) * width)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(rows), 6))
            + chunk(b"IEND", b""))


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    """A mono 16-bit WAV of a quiet tone, ``seconds`` long."""
    frames = int(seconds * rate)
    samples = (int(3000 * math.sin(2 * math.pi * 220 * i / rate)) for i in range(frames))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return buf.getvalue()


@contextlib.contextmanager
def no_network() -> Iterator[None]:
    """Every socket connect in this process fails while inside (loopback included)."""
    real = socket.socket.connect

    def refuse(self: socket.socket, address: Any) -> None:
        raise OSError(f"the contract kit forbids network here (tried {address!r})")

    socket.socket.connect = refuse  # type: ignore[method-assign,assignment]  # patched on purpose
    try:
        yield
    finally:
        socket.socket.connect = real  # type: ignore[method-assign]  # undoing the patch above


class ProviderContract:
    """Subclass as ``Test<Name>Contract``; provide ``make_provider`` (and a ``contract_fake``
    fixture if the provider talks to a fake backend), ``creates`` and ``lose_create_answer``.
    ``model`` picks the route exercised (default: the provider's first)."""

    model: ClassVar[str | None] = None
    #: how long following one task may take against the fake
    follow_timeout: ClassVar[float] = 30.0

    # -- hooks a subclass provides ---------------------------------------------------------

    @pytest.fixture
    def contract_fake(self) -> Any:
        """The fake backend the provider talks to (None for an in-process provider)."""
        return None

    def make_provider(self, fake: Any, **config: Any) -> Provider:
        """A provider pointed at ``fake``, with test credentials; ``config`` overrides them."""
        raise NotImplementedError

    def creates(self, fake: Any, provider: Provider) -> int:
        """How many create calls the backend has received."""
        raise NotImplementedError

    def lose_create_answer(self, fake: Any) -> dict[str, Any]:
        """Make the next create reach the backend and its answer be lost on the way back
        (configure the fake); returns provider config to use for it (e.g. a short timeout)."""
        raise NotImplementedError

    def wrong_credentials(self, fake: Any) -> dict[str, Any]:
        """Make the fake refuse the kit's credentials; returns the config keys to plant them
        in (each None value becomes the kit's made-up secret)."""
        raise NotImplementedError

    def sample_image(self) -> tuple[str, bytes]:
        """A file name and the bytes of a photo the provider accepts (default: a 512 px PNG;
        a provider that looks for a face supplies a real portrait)."""
        return "face.png", png_bytes()

    # -- helpers ---------------------------------------------------------------------------

    def _run(self, fake: Any, body: Callable[[Provider], Awaitable[T]], **config: Any) -> T:
        async def main() -> T:
            provider = self.make_provider(fake, **config)
            try:
                return await body(provider)
            finally:
                await provider.aclose()
        return asyncio.run(main())

    def _route(self, provider: Provider) -> Route:
        return provider.route(self.model)

    def _request(self, tmp_path: Path, route: Route, *, image: tuple[str, bytes] | None = None,
                 audio: tuple[str, bytes] | None = None, **fields: Any) -> Any:
        """A prepared request of the kit's photo and speech, or of the (file name, bytes) given."""
        from ..media import prepare

        image = image or self.sample_image()
        audio = audio or ("speech.wav", wav_bytes(max(3.0, route.limits.audio_min_seconds + 1)))
        for name, data in (image, audio):
            (tmp_path / name).write_bytes(data)
        return prepare(AvatarRequest(image=tmp_path / image[0], audio=tmp_path / audio[0], **fields))

    @staticmethod
    def _refused_field(provider: Provider, route: Route, make: Callable[[], Any]) -> str | None:
        """The field named by the InputError that making the request (preparing it measures its
        media) or validating it must raise."""
        with pytest.raises(InputError) as caught:
            provider.validate(make(), route)
        return caught.value.field

    def _job(self, route: Route, **fields: Any) -> Job:
        return Job(provider=route.provider, model=route.model, **fields)

    async def _submitted(self, provider: Provider, tmp_path: Path) -> Job:
        """A job of the kit's request, submitted, with what submit answered applied to it."""
        route = self._route(provider)
        job = self._job(route)
        job.apply(await provider.submit(job, self._request(tmp_path, route)))
        return job

    def _unsupported(self, exc: NotImplementedError, what: str) -> NoReturn:
        pytest.skip(f"{type(self).__name__} does not support {what}: {exc or 'hook not provided'}")

    def _hook(self, hook: Callable[[Any], T], fake: Any, what: str) -> T:
        """What a hook returns, or the test skipped if the provider cannot support ``what``."""
        try:
            return hook(fake)
        except NotImplementedError as exc:
            self._unsupported(exc, what)

    # -- the promises ----------------------------------------------------------------------

    def test_routes_are_declared_consistently(self, contract_fake: Any) -> None:
        provider = self.make_provider(contract_fake)
        routes = provider.routes()
        assert routes, f"{provider.name} declares no route"
        for route in routes:
            assert route.provider == provider.name, route.id
            assert route.kind in ("cloud", "local", "test"), route.id
            assert route.modes, f"{route.id} declares no mode"
            for mode in route.modes:  # priced by tier, or by the resolution the tier picks
                key = route.tier_resolution.get(mode) if route.price_by == "resolution" else mode
                price = route.price_per_second.get(key or "")
                assert price is not None, f"{route.id} has no price for {mode}"
                assert math.isfinite(price) and price >= 0, f"{route.id}: price {price!r} for {mode}"
            lim = route.limits
            assert 0 < lim.audio_min_seconds <= lim.audio_max_seconds, route.id
            assert lim.image_max_bytes > 0 and lim.audio_max_bytes > 0, route.id
            assert lim.image_formats and lim.audio_formats, route.id
            if lim.image_aspect_range is not None:
                low, high = lim.image_aspect_range
                assert 0 < low <= 1 <= high, route.id
        assert len({r.id for r in routes}) == len(routes), "two routes share an id"

    def test_validate_refuses_a_prompt_over_the_limit(self, contract_fake: Any, tmp_path: Path) -> None:
        provider = self.make_provider(contract_fake)
        route = self._route(provider)
        prepared = self._request(tmp_path, route)
        provider.validate(prepared, route)  # the kit's request itself is acceptable
        too_long = "a" * (route.limits.prompt_max_chars + 1)
        assert self._refused_field(provider, route, lambda: _with_prompt(prepared, too_long)) == "prompt"

    def test_validate_refuses_audio_over_the_limit(self, contract_fake: Any, tmp_path: Path) -> None:
        provider = self.make_provider(contract_fake)
        route = self._route(provider)
        long = ("long.wav", wav_bytes(route.limits.audio_max_seconds + 1, rate=2000))  # small: only its length is over
        assert self._refused_field(provider, route, lambda: self._request(tmp_path, route, audio=long)) == "audio"

    def test_validate_refuses_an_image_under_the_minimum_side(self, contract_fake: Any, tmp_path: Path) -> None:
        provider = self.make_provider(contract_fake)
        route = self._route(provider)
        side = route.limits.image_min_side
        if not side:
            pytest.skip(f"{route.id} declares no minimum image side")
        small = ("small.png", png_bytes(side - 1, side - 1))
        assert self._refused_field(provider, route, lambda: self._request(tmp_path, route, image=small)) == "image"

    def test_estimate_needs_no_network(self, contract_fake: Any, tmp_path: Path) -> None:
        provider = self.make_provider(contract_fake)
        route = self._route(provider)
        prepared = self._request(tmp_path, route)
        with no_network():
            quote = provider.estimate(prepared, route)
        assert isinstance(quote, Quote)
        assert (quote.provider, quote.model) == (route.provider, route.model)
        assert math.isfinite(quote.cost_usd) and quote.cost_usd >= 0
        assert quote.seconds >= prepared.seconds - 1e-6 if prepared.seconds else quote.upper_bound

    def test_submit_returns_a_task_id_and_creates_once(self, contract_fake: Any, tmp_path: Path) -> None:
        async def body(provider: Provider) -> None:
            route = self._route(provider)
            update = await provider.submit(self._job(route), self._request(tmp_path, route))
            assert update.task_id, "submit returned no task id"
            with contextlib.suppress(NotImplementedError):  # then only the task id is checked
                assert self.creates(contract_fake, provider) == 1
        self._run(contract_fake, body)

    def test_a_create_whose_answer_was_lost_is_never_resent(self, contract_fake: Any, tmp_path: Path) -> None:
        config = self._hook(self.lose_create_answer, contract_fake, "losing a create's answer")

        async def body(provider: Provider) -> None:
            route = self._route(provider)
            try:  # either it says it cannot tell, or it found the task the create made
                update = await provider.submit(self._job(route), self._request(tmp_path, route))
            except SubmitOutcomeUnknown:
                pass
            else:
                assert update.task_id, "a lost create's answer was neither reported nor recovered"
            assert self.creates(contract_fake, provider) == 1, "the create was sent again"
        self._run(contract_fake, body, **config)

    def test_following_a_task_ends_in_a_terminal_update(self, contract_fake: Any, tmp_path: Path) -> None:
        async def body(provider: Provider) -> None:
            job = await self._submitted(provider, tmp_path)
            last = None
            async with asyncio.timeout(self.follow_timeout):
                async for update in provider.stream(job):
                    last = update
            assert last is not None and last.status.terminal, f"the stream ended on {last!r}"
            if last.status is JobStatus.COMPLETED:
                assert last.output_url, "a completed update carries the result's URL"
        self._run(contract_fake, body)

    def test_cancel_is_idempotent(self, contract_fake: Any, tmp_path: Path) -> None:
        async def body(provider: Provider) -> None:
            job = await self._submitted(provider, tmp_path)
            outcomes: list[type[ProviderError] | None] = []
            for _ in range(2):  # a second cancel answers like the first: never a new error
                try:
                    await provider.cancel(job)
                    outcomes.append(None)
                except ProviderError as exc:  # a backend with no cancel says so, every time
                    outcomes.append(type(exc))
            assert outcomes[0] == outcomes[1], f"cancel answered {outcomes[0]} then {outcomes[1]}"
            update = await provider.poll(job)
            assert update.task_id in (None, job.task_id)
        self._run(contract_fake, body)

    def test_a_webhook_that_is_not_the_backends_raises_input_error(self, contract_fake: Any) -> None:
        async def body(provider: Provider) -> None:
            for junk in (b"", b"not json", b"[1, 2, 3]", b'{"unrelated": true}'):
                try:
                    await provider.parse_webhook({"content-type": "application/json"}, junk)
                except NotImplementedError as exc:
                    self._unsupported(exc, "webhooks")
                except (InputError, WebhookRejected):  # a signed backend refuses it unsigned
                    continue
                pytest.fail(f"parse_webhook accepted {junk!r}")
        self._run(contract_fake, body)

    def test_find_task_finds_nothing_for_a_job_never_sent(self, contract_fake: Any, tmp_path: Path) -> None:
        async def body(provider: Provider) -> None:
            sent = await self._submitted(provider, tmp_path)
            found = await provider.find_task(self._job(self._route(provider)))
            assert found is None or found.task_id != sent.task_id, "another job's task was found"
            again = await provider.find_task(sent)
            assert again is None or again.task_id == sent.task_id
        self._run(contract_fake, body)

    def test_credentials_never_show_in_reprs_or_errors(self, contract_fake: Any, tmp_path: Path) -> None:
        config = self._hook(self.wrong_credentials, contract_fake, "refused credentials")

        async def body(provider: Provider) -> None:
            assert _SECRET not in repr(provider)
            route = self._route(provider)
            with pytest.raises((AuthenticationError, NetworkBlocked)) as caught:
                await provider.submit(self._job(route), self._request(tmp_path, route))
            assert _SECRET not in str(caught.value) and _SECRET not in repr(caught.value)
        self._run(contract_fake, body, **{k: (_SECRET if v is None else v) for k, v in config.items()})


def _with_prompt(prepared: Any, prompt: str) -> Any:
    import dataclasses

    request = prepared.request.model_construct(**{**dict(prepared.request), "prompt": prompt})
    return dataclasses.replace(prepared, request=request)


__all__ = ["ProviderContract", "no_network", "png_bytes", "wav_bytes"]
