"""Text-to-speech: the seam for engines, and the synthesis the core does for text requests.

When a request has ``text`` and the chosen route takes audio only, the core synthesizes the
speech locally (free, before any quote), checks it by the same audio rules as an upload, and
submits that. Engines come from plugins through the ``register_tts`` hook.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar


@dataclass(frozen=True)
class Phoneme:
    symbol: str      # the engine's phoneme symbol
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Speech:
    """Synthesized audio, with phoneme timings when the engine gives them (for visemes)."""

    path: Path
    duration_s: float
    engine: str
    voice: str | None = None
    phonemes: tuple[Phoneme, ...] = field(default=(), repr=False)


class TTSEngine:
    """Base class for text-to-speech engines. Register the class from a plugin:

    >>> @hookimpl
    ... def register_tts(register):
    ...     register(MyEngine)
    """

    name: ClassVar[str]
    #: engines are tried in ascending priority; the first available one is the default
    priority: ClassVar[int] = 100

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        self.config = dict(config or {})

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def available(self) -> bool:
        """Whether the engine can run here (its library or binary is present)."""
        return True

    def voices(self) -> list[str]:
        return []

    def synthesize(self, text: str, out: Path, *, voice: str | None = None,
                   rate: int | None = None) -> Speech:
        """Write speech for ``text`` to ``out`` (WAV) and describe it."""
        raise NotImplementedError


def default_engine(name: str | None = None, config: Mapping[str, Any] | None = None) -> TTSEngine | None:
    """The named engine (or ``config["engine"]``), or the first available installed one; None
    when there is none. ``config`` is the ``[tts]`` table: ``[tts.<engine>]`` holds each
    engine's own settings (``voice``, ``rate``)."""
    from .errors import ConfigError
    from .plugins import get_tts_classes

    config = dict(config or {})
    name = name or config.get("engine")
    classes = get_tts_classes()
    if name is not None:
        if name not in classes:
            raise ConfigError(f"unknown text-to-speech engine {name!r} "
                              f"(available: {', '.join(sorted(classes)) or 'none installed'})")
        return classes[name](config.get(name))
    for cls in sorted(classes.values(), key=lambda c: (c.priority, c.name)):
        engine = cls(config.get(cls.name))
        if engine.available():
            return engine
    return None


def pad_to(speech: Speech, seconds: float) -> Speech:
    """Speech at least ``seconds`` long: a WAV shorter than that gets trailing silence (the
    phoneme timings stay valid: the speech itself is unchanged).

    The length is measured from the file's own frame count, never from ``duration_s``: an
    engine may report a rounded duration (1.99996 s as 2.0), and a clip padded from that
    would still be refused by the minimum."""
    import math
    import wave

    with wave.open(str(speech.path), "rb") as src:
        params, have = src.getparams(), src.getnframes()
        # one frame over the minimum, so a float sum of frame durations cannot fall under it
        want = math.ceil(seconds * params.framerate) + 1
        if have >= want:
            return speech
        frames = src.readframes(have)
    with wave.open(str(speech.path), "wb") as out:
        out.setparams(params)
        out.writeframes(frames + b"\x00" * ((want - have) * params.sampwidth * params.nchannels))
    return Speech(path=speech.path, duration_s=want / params.framerate, engine=speech.engine,
                  voice=speech.voice, phonemes=speech.phonemes)
