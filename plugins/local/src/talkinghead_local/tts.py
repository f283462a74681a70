"""The ``espeak`` text-to-speech engine: espeak-ng, offline, with phoneme timings.

Where the speech comes from (config ``source``; "auto" takes the first that works):

=========  ===========================================================================
system     the system's libespeak-ng (installed with the ``espeak-ng`` command, e.g.
           ``apt install espeak-ng``) and its voice data, through ctypes
binary     the ``espeak-ng`` command itself (only when its library cannot be loaded)
wheel      libespeak-ng and its voice data bundled in the ``espeakng-loader`` wheel,
           through ctypes: text-to-speech from a pip install alone
=========  ===========================================================================

Phoneme timings: through the library, espeak-ng reports a phoneme event for each phoneme
with the time (ms into the audio) it starts, in its own ASCII mnemonics ("h", "@", "l",
"'oU", "_:" for a pause); each phoneme ends where the next starts. The command gives no
timings for ordinary voices (``--pho`` writes nothing unless an MBROLA voice is used, and
``-x`` prints phonemes without times), so speech from ``binary`` has none and the renderer
falls back to loudness alone.

The WAV is 16-bit mono at espeak-ng's 22.05 kHz. Speech long enough to pass the 5 MB audio
rule at that rate (about two minutes) is written at a lower rate, down to 8 kHz at 300 s,
so every clip the duration rule allows also passes the size rule.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import threading
import wave
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.errors import ConfigError, InputError
from talkinghead.models import MB
from talkinghead.tts import Phoneme, Speech, TTSEngine

DEFAULT_VOICE = "en-us"
DEFAULT_RATE = 165             # words per minute (espeak-ng's own default is 175)
RATE_RANGE = (80, 450)         # what espeak-ng accepts
SOURCES = ("system", "binary", "wheel")
WAV_LIMIT = int(5 * MB * 0.98)  # the audio size rule, with room for the header
MIN_RATE = 8000

# espeak-ng's C API (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE = 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _Voice(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class _Library:
    """One loaded libespeak-ng. The library keeps global state, so calls are serialised."""

    def __init__(self, path: str, data: str | None) -> None:
        lib = ctypes.CDLL(path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                     data.encode() if data else None,
                                     _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise OSError(f"espeak_Initialize failed for {path} (data {data or 'built-in path'})")
        self.path, self.rate, self.lib = path, rate, lib
        self.source = ""
        self._voices: list[str] | None = None
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _Callback(self._on_audio)  # kept alive as long as the library
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            if events[i].type == _EVENT_PHONEME:
                self._events.append((events[i].id.string.decode("utf-8", "replace"),
                                     events[i].audio_position))
            i += 1
        return 0  # carry on

    def voices(self) -> list[str]:
        with self.lock:
            return self._languages()

    def _languages(self) -> list[str]:
        if self._voices is None:
            listed = self.lib.espeak_ListVoices(None)
            names: set[str] = set()
            i = 0
            while listed[i]:
                # ``languages`` is (priority byte, language) pairs; the first is the voice's
                # own language, the one that selects it. (The list after it is not reliably
                # terminated in every build, so it is not read.)
                langs = listed[i].contents.languages
                address = ctypes.cast(langs, ctypes.c_void_p).value if langs else None
                if address:
                    names.add(ctypes.string_at(address + 1)
                              .decode("ascii", "replace").lower())
                i += 1
            self._voices = sorted(n for n in names if n)
        return self._voices

    def _select(self, voice: str) -> bool:
        """A voice by name or file ("en-us", "en-us+f3"), else by the language a voice is for
        ("fr-fr"), as the espeak-ng command does. The language must be one a voice lists:
        espeak-ng would otherwise match a prefix ("no-such-voice" as Norwegian)."""
        if self.lib.espeak_SetVoiceByName(voice.encode()) == 0:
            return True
        if voice.lower() not in self._languages():
            return False
        selector = _Voice(languages=voice.lower().encode())
        return bool(self.lib.espeak_SetVoiceByProperties(ctypes.byref(selector)) == 0)

    def synthesize(self, text: str, voice: str, rate: int) -> tuple[np.ndarray, int, list[tuple[str, int]]]:
        data = text.encode("utf-8")
        with self.lock:
            if not self._select(voice):
                raise InputError("voice", f"{voice!r} is not an espeak-ng voice (e.g. en-us, en-gb, "
                                 "fr-fr, de; EspeakEngine().voices() lists them)", value=voice)
            self.lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self._chunks, self._events = [], []
            status = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8,
                                           None, None)
            self.lib.espeak_Synchronize()
            if status != 0:
                raise RuntimeError(f"espeak_Synth failed with status {status}")
            samples = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return samples, self.rate, list(self._events)


# One libespeak-ng per process: two builds loaded side by side (the system's and the wheel's)
# trample each other's global state, so the first one loaded is the only one used.
_loaded: _Library | None = None
_loaded_lock = threading.Lock()


def _library(source: str, path: str, data: str | None) -> _Library | None:
    global _loaded
    with _loaded_lock:
        if _loaded is None:
            try:
                _loaded = _Library(path, data)
            except OSError:
                return None
            _loaded.source = source
        return _loaded if _loaded.source == source else None


def _system_library() -> _Library | None:
    if not shutil.which("espeak-ng"):
        return None
    name = ctypes.util.find_library("espeak-ng")
    # Data from the path compiled into the system library.
    return _library("system", name, None) if name else None


def _wheel_library() -> _Library | None:
    try:
        import espeakng_loader
    except ImportError:
        return None
    try:
        data = espeakng_loader.get_data_path()
    except RuntimeError:
        return None
    return _library("wheel", espeakng_loader.get_library_path(), data)


def phonemes_from_events(events: list[tuple[str, int]], duration_s: float) -> tuple[Phoneme, ...]:
    """Phoneme start events (symbol, ms) -> Phonemes, each ending where the next starts (the
    last at the end of the audio). Repeated events at one instant keep the last."""
    out: list[Phoneme] = []
    for k, (symbol, ms) in enumerate(events):
        start = ms / 1000
        end = events[k + 1][1] / 1000 if k + 1 < len(events) else duration_s
        if end <= start:
            continue
        out.append(Phoneme(symbol=symbol, start_s=round(start, 4), end_s=round(min(end, duration_s), 4)))
    return tuple(p for p in out if p.end_s > p.start_s)


def write_wav(path: Path, samples: np.ndarray, rate: int, limit: int = WAV_LIMIT) -> int:
    """16-bit mono WAV, resampled down when needed to stay within ``limit`` bytes (never
    below 8 kHz). Returns the rate written."""
    target = rate
    if samples.size * 2 > limit:
        target = max(MIN_RATE, int(limit / 2 / (samples.size / rate)))
        samples = _resample(samples, rate, target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(target)
        w.writeframes(samples.astype("<i2").tobytes())
    return target


def _resample(samples: np.ndarray, rate: int, target: int) -> np.ndarray:
    import av

    frame = av.AudioFrame.from_ndarray(samples.astype(np.int16).reshape(1, -1), format="s16",
                                       layout="mono")
    frame.sample_rate = rate
    resampler = av.AudioResampler(format="s16", layout="mono", rate=target)
    out = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(out) if out else np.zeros(0, np.int16)


class EspeakEngine(TTSEngine):
    """espeak-ng: robotic but clear, 100+ languages, and always available offline.

    Config: ``voice`` (default "en-us"; any espeak-ng voice name, with "+variant" such as
    "en-us+f3" for another timbre), ``rate`` (words per minute, 80-450, default 165) and
    ``source`` ("auto", "system", "binary" or "wheel", see the module docs).
    """

    name = "espeak"
    #: tried after any other installed engine: it is the fallback that always works offline
    priority = 200

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__(config)
        self.source = str(self.config.get("source", "auto"))
        if self.source not in ("auto", *SOURCES):
            raise ConfigError(f"espeak source {self.source!r} is not one of auto, {', '.join(SOURCES)}")
        self.voice = str(self.config.get("voice") or DEFAULT_VOICE)
        self.rate = int(self.config.get("rate") or DEFAULT_RATE)

    def backend(self) -> tuple[str, _Library | str] | None:
        """(source, library or command) that will speak, or None when nothing can."""
        if self.source == "auto" and _loaded is not None:
            return _loaded.source, _loaded
        wanted = SOURCES if self.source == "auto" else (self.source,)
        for source in wanted:
            if source == "system" and (lib := _system_library()) is not None:
                return source, lib
            if source == "binary" and (exe := shutil.which("espeak-ng")):
                return source, exe
            if source == "wheel" and (lib := _wheel_library()) is not None:
                return source, lib
        return None

    def available(self) -> bool:
        return self.backend() is not None

    def voices(self) -> list[str]:
        found = self.backend()
        if found is None or isinstance(found[1], str):
            return []
        return found[1].voices()

    def synthesize(self, text: str, out: Path, *, voice: str | None = None,
                   rate: int | None = None) -> Speech:
        """Speak ``text`` to ``out`` (WAV). Raises ``InputError`` for an unknown voice or a
        rate out of range, ``ConfigError`` when no espeak-ng can be found."""
        voice = voice or self.voice
        rate = int(rate or self.rate)
        if not RATE_RANGE[0] <= rate <= RATE_RANGE[1]:
            raise InputError("rate", f"{rate} words per minute is outside espeak-ng's "
                             f"{RATE_RANGE[0]}-{RATE_RANGE[1]}", value=rate, limit=RATE_RANGE)
        if not text.strip():
            raise InputError("text", "text is empty")
        found = self.backend()
        if found is None:
            other = f"; this process already uses the {_loaded.source} libespeak-ng, and " \
                "only one can be loaded" if _loaded is not None else ""
            raise ConfigError(f"espeak source {self.source!r} is not available{other}: pip install "
                              "espeakng-loader, or install the espeak-ng command")
        speaker = found[1]
        out = Path(out)
        if isinstance(speaker, str):
            samples, sample_rate = self._run_binary(speaker, text, voice, rate, out)
            events: list[tuple[str, int]] = []
        else:
            samples, sample_rate, events = speaker.synthesize(text, voice, rate)
        duration = samples.size / sample_rate
        write_wav(out, samples, sample_rate)
        return Speech(path=out, duration_s=round(duration, 4), engine=self.name, voice=voice,
                      phonemes=phonemes_from_events(events, duration))

    @staticmethod
    def _run_binary(exe: str, text: str, voice: str, rate: int, out: Path) -> tuple[np.ndarray, int]:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.espeak.wav")
        try:
            # Text on stdin, never as an argument: it may start with "-".
            done = subprocess.run([exe, "-v", voice, "-s", str(rate), "-w", str(tmp), "--stdin"],
                                  input=text.encode("utf-8"), capture_output=True, timeout=600,
                                  check=False)
            if done.returncode != 0:
                message = done.stderr.decode("utf-8", "replace").strip()
                if "voice" in message.lower():
                    raise InputError("voice", f"{voice!r} is not an espeak-ng voice ({message})",
                                     value=voice)
                raise RuntimeError(f"espeak-ng exited with {done.returncode}: {message}")
            with wave.open(str(tmp), "rb") as w:
                rate_hz = w.getframerate()
                samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
            return samples, rate_hz
        finally:
            tmp.unlink(missing_ok=True)


__all__ = ["DEFAULT_RATE", "DEFAULT_VOICE", "EspeakEngine", "phonemes_from_events", "write_wav"]
