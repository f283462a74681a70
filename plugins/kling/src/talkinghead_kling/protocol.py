"""Kling's wire protocol for Avatar as pure functions: envelopes, errors, statuses, bodies.

Nothing here does I/O, so every rule can be unit tested on plain dicts. Section numbers
refer to the protocol notes (``docs/protocols/kling-official.md``), which tag each fact
with where it was verified ([V-doc], [V-real], [3P], [INF]).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from talkinghead.errors import (
    AuthenticationError,
    BillingError,
    ContentPolicyError,
    InputError,
    ProviderError,
    RateLimitError,
    RequestRefused,
    ServerError,
)
from talkinghead.models import JobStatus, JobUpdate
from talkinghead.payload import parse_json as parse_json  # re-exported: the provider reads answers with it
from talkinghead.payload import seconds as seconds  # re-exported: Kling sends durations as strings
from talkinghead.payload import text as _text
from talkinghead.payload import whole_answer

if TYPE_CHECKING:
    from talkinghead.media import MediaFile

PROVIDER = "kling"
ENV_API_KEY = "KLING_API_KEY"  # the single key Kling issues now (preferred when set)
ENV_ACCESS_KEY = "KLING_ACCESS_KEY"
ENV_SECRET_KEY = "KLING_SECRET_KEY"
ENV_VARS = (ENV_API_KEY, ENV_ACCESS_KEY, ENV_SECRET_KEY)
CREDENTIALS = f"{ENV_API_KEY}, or {ENV_ACCESS_KEY} and {ENV_SECRET_KEY}"

# §1: hosts. CN and global keys are issued separately and do not work on each other's host.
REGIONS: dict[str, str] = {
    "singapore": "https://api-singapore.klingai.com",  # the current global endpoint [V-doc]
    "beijing": "https://api-beijing.klingai.com",      # mainland China [V-real]
    "global": "https://api.klingai.com",               # the former global host [V-doc]
}
DEFAULT_REGION = "singapore"

# §4-§7: paths.
AVATAR_PATH = "/v1/videos/avatar/image2video"
TTS_PATH = "/v1/audio/tts"

# §5: task statuses. Note the spelling: ``succeed``, not ``succeeded``.
_STATUS: dict[str, tuple[JobStatus, float | None]] = {
    "submitted": (JobStatus.QUEUED, 5.0),
    "processing": (JobStatus.RUNNING, 50.0),
    "succeed": (JobStatus.COMPLETED, 100.0),
    "failed": (JobStatus.FAILED, None),
}

# §7: the TTS voice of the doc's own sample, and its language.
DEFAULT_VOICE = "oversea_male1"
DEFAULT_VOICE_LANGUAGE = "en"
VOICE_LANGUAGES = ("zh", "en")
TEXT_MAX_CHARS = 1000
AUDIO_MIN_SECONDS = 2.0  # §4: the avatar takes 2-300 s of audio, TTS output included

# §14: Kling's TTS takes only its official voices, each for its language(s); a voice_id that
# does not exist for voice_language answers 1201 "Voice id not found" (a paid call wasted
# when it comes after other work). The preset lists of Kling's API documentation (voice
# guide), as copied by golemcloud/golem-ai (video-kling voices) and orime-org/breatic_ai.
_BOTH = ("genshin_vindi2", "zhinen_xuesheng", "ai_shatang", "genshin_klee2", "genshin_kirara", "ai_kaiya",
         "ai_chenjiahao_712", "chat1_female_new-3", "cartoon-boy-07", "cartoon-girl-01", "ai_huangyaoshi_712",
         "you_pingjing", "ai_laoguowang_712", "chengshu_jiejie", "laopopo_speech02", "heainainai_speech02")
VOICES: dict[str, frozenset[str]] = {
    "zh": frozenset(_BOTH + (
        "tiyuxi_xuedi", "tiexin_nanyou", "girlfriend_1_speech02", "girlfriend_2_speech02", "zhuxi_speech02",
        "uk_oldman3", "dongbeilaotie_speech02", "chongqingxiaohuo_speech02", "chuanmeizi_speech02",
        "chaoshandashu_speech02", "ai_taiwan_man2_speech02", "xianzhanggui_speech02", "tianjinjiejie_speech02",
        "diyinnansang_DB_CN_M_04-v2", "yizhipiannan-v1", "guanxiaofang-v2", "tianmeixuemei-v1",
        "daopianyansang-v1", "mengwa-v1")),
    "en": frozenset(_BOTH + (
        "AOT", "oversea_male1", "girlfriend_4_speech02", "chat_0407_5-1", "uk_boy1", "PeppaPig_platform",
        "ai_huangzhong_712", "calm_story1", "uk_man2", "reader_en_m-v1", "commercial_lady_en_f-v1")),
}

# §9: codes that mean "refused, nothing was created": a retry is safe even for a create.
RATE_LIMIT_CODES = frozenset({1302, 1303})
TOKEN_RETRY_CODES = frozenset({1003, 1004})  # regenerate the JWT once and resend
_CONTENT_TEXT = re.compile(r"risk control|content (security|safety|polic)|sensitive|"
                           r"inappropriate|moderation|violat", re.IGNORECASE)
_BILLING_TEXT = re.compile(r"balance|arrears|resource pack|insufficient|quota", re.IGNORECASE)
# §14: 1201 for an input URL Kling could not download ("Something went wrong when we tried to
# get the contents of the file.").
_FETCH_TEXT = re.compile(r"contents of the file|fetch|download|cannot (get|access|read)|unreachable",
                         re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")


# -- envelopes (§3, §9) ----------------------------------------------------------------------


def code_of(payload: Any) -> int | None:
    """The envelope's ``code`` as an int (0 is success); None when there is no envelope."""
    if not isinstance(payload, dict) or "code" not in payload:
        return None
    code = payload["code"]
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return None


def is_success(status_code: int, payload: Any) -> bool:
    """HTTP 2xx *and* ``code == 0``: some adapters have seen ``200`` with ``code != 0`` (§9)."""
    return 200 <= status_code < 300 and code_of(payload) == 0


def message_of(payload: Any, text: str = "") -> str:
    if isinstance(payload, dict):
        return _text(payload.get("message")) or whole_answer(payload, limit=300)
    return whole_answer(None, text, limit=300)


def request_id_of(payload: Any) -> str | None:
    rid = payload.get("request_id") if isinstance(payload, dict) else None
    return str(rid) if rid not in (None, "") else None


# -- errors (§9) -----------------------------------------------------------------------------

def error_for(status_code: int, payload: Any, *, text: str = "", secrets: Iterable[str | None] = (),
              retry_after: float | None = None) -> ProviderError:
    """The typed error for a Kling error answer, by ``code`` first and HTTP status second.

    1000s: authentication (names the env vars); 1100s: the account (balance, arrears,
    permission): ``BillingError``, so the router may try another backend; 1200s: parameters:
    ``RequestRefused`` (exit 4: it was sent) with Kling's message; 1300/1301: content policy; 1302/1303: rate or
    concurrency limit (retry later); 1304: IP whitelist; 5000s: server (retryable)."""
    code = code_of(payload)
    message = redact(message_of(payload, text), secrets)
    rid = request_id_of(payload)
    where = f"{code}" if code is not None else f"HTTP {status_code}"
    detail = f"{message} ({where}{', request ' + rid if rid else ''})"
    if code is not None and 1000 <= code < 1100:
        why = {1001: "no Authorization header", 1003: "token not yet valid (check the clock)",
               1004: "token expired"}.get(code, "the access key or secret key was not accepted")
        return AuthenticationError(f"authentication failed, {why}: {detail}; check {CREDENTIALS} "
                                   "(and the region: CN and global keys differ)", provider=PROVIDER,
                                   env_vars=ENV_VARS, needs=CREDENTIALS, status_code=status_code)
    if code == 1103:
        return BillingError(f"this account may not use the Avatar API: {detail}", provider=PROVIDER,
                            status_code=status_code)
    if code is not None and 1100 <= code < 1200:
        return BillingError(f"account or balance problem: {detail}", provider=PROVIDER, status_code=status_code)
    if code is not None and 1200 <= code < 1300:
        return RequestRefused(f"Kling refused the request: {detail}", provider=PROVIDER,
                              status_code=status_code, field=_field_in(message))
    if code in RATE_LIMIT_CODES:
        what = "concurrency limit of the resource pack reached" if code == 1303 else "requests too fast"
        return RateLimitError(f"rate limited, {what}: {detail}", provider=PROVIDER, status_code=status_code,
                              retry_after=retry_after)
    if code == 1304:
        return AuthenticationError(f"this machine's IP address is not on the account's whitelist: {detail}",
                                   provider=PROVIDER, env_vars=ENV_VARS, needs=CREDENTIALS,
                                   status_code=status_code)
    if code is not None and 1300 <= code < 1400:
        return ContentPolicyError(f"refused by Kling's content policy: {detail}", provider=PROVIDER,
                                  status_code=status_code)
    if (code is not None and 5000 <= code < 6000) or status_code >= 500:
        return ServerError(f"server error: {detail}", provider=PROVIDER, status_code=status_code)
    # No Kling code: go by the HTTP status alone.
    if status_code in (401, 403):
        return AuthenticationError(f"authentication failed: {detail}; check {CREDENTIALS}", provider=PROVIDER,
                                   env_vars=ENV_VARS, needs=CREDENTIALS, status_code=status_code)
    if status_code == 429:
        return RateLimitError(f"rate limited: {detail}", provider=PROVIDER, status_code=status_code,
                              retry_after=retry_after)
    if status_code in (400, 422):
        return RequestRefused(f"Kling refused the request: {detail}", provider=PROVIDER,
                              status_code=status_code, field=_field_in(message))
    if 200 <= status_code < 300:
        return ServerError(f"unexpected answer: {detail}", provider=PROVIDER, status_code=status_code)
    return ProviderError(f"HTTP {status_code}: {detail}", provider=PROVIDER, status_code=status_code)


def is_retryable(status_code: int, payload: Any, *, create: bool) -> bool:
    """Whether to send the same request again. Reads: rate limits and any 5xx. A create only
    when Kling refused it before creating anything: 1302/1303 (§9, §10: over the limit, no
    task is made) and 503/5001 (maintenance)."""
    code = code_of(payload)
    if code in RATE_LIMIT_CODES or (code is None and status_code == 429):
        return True
    if create:
        return status_code == 503 or code == 5001
    return status_code >= 500 or (code is not None and 5000 <= code < 6000)


def create_outcome_unknown(status_code: int, payload: Any) -> bool:
    """A create answered by an error that does not prove nothing was created: a gateway
    error (502/504 or any 5xx without Kling's envelope), 5000 (internal error) or 5002
    (internal timeout, "usually due to a backlog")."""
    code = code_of(payload)
    if status_code == 503 or code == 5001:
        return False  # maintenance: refused
    if code is None:
        return status_code >= 500
    return 5000 <= code < 6000 or (status_code >= 500 and code == 0)


def _field_in(message: str) -> str:
    text = message.lower()
    for needle, field in (("sound", "audio"), ("audio", "audio"), ("image", "image"), ("prompt", "prompt"),
                          ("voice", "voice"), ("text", "text"), ("mode", "mode")):
        if needle in text:
            return field
    return "request"


# -- tasks (§5, §8) --------------------------------------------------------------------------

def task_of(payload: Any) -> dict[str, Any] | None:
    """The task object of a create/query answer (``data``), a callback (bare) or a list item."""
    task = payload.get("data") if isinstance(payload, dict) and "data" in payload else payload
    return task if isinstance(task, dict) else None


def task_id_of(task: Any) -> str | None:
    value = task.get("task_id") if isinstance(task, dict) else None
    return str(value) if value not in (None, "") else None


def external_id_of(task: Any) -> str | None:
    info = task.get("task_info") if isinstance(task, dict) else None
    value = info.get("external_task_id") if isinstance(info, dict) else None
    return str(value) if value not in (None, "") else None


def first_video(task: Mapping[str, Any]) -> dict[str, Any] | None:
    result = task.get("task_result")
    videos = result.get("videos") if isinstance(result, dict) else None
    if isinstance(videos, list) and videos and isinstance(videos[0], dict):
        return videos[0]
    return None


def is_fetch_failure(message: str | None) -> bool:
    """Whether a 1201's message says Kling could not download an input URL (§14)."""
    return bool(message and _FETCH_TEXT.search(message))


def units_of(task: Mapping[str, Any]) -> float | None:
    """``final_unit_deduction``: the resource-pack units Kling charged (a string, §5, §14);
    None when absent (older answers have none)."""
    return seconds(task.get("final_unit_deduction"))


def error_kind_for(message: str | None) -> str | None:
    if not message:
        return None
    if _CONTENT_TEXT.search(message):
        return "content_policy"
    if _BILLING_TEXT.search(message):
        return "billing"
    return None


def task_update(task: Mapping[str, Any], unit_price: float | None = None) -> JobUpdate:
    """A ``JobUpdate`` from a task object: a create or query answer's ``data``, a list item
    or a callback body. Unknown statuses count as running, so the job keeps being watched;
    ``succeed`` without a video URL too (the URL is what makes it done, §5). An ended task's
    ``final_unit_deduction`` is what Kling billed: ``billed_units``, and ``billed_usd`` at
    ``unit_price`` USD per unit when one is given."""
    name = str(task.get("task_status") or "").strip().lower() or "unknown"
    status, progress = _STATUS.get(name, (JobStatus.RUNNING, None))
    video = first_video(task)
    url = video.get("url") if video else None
    url = url.strip() if isinstance(url, str) and url.strip() else None
    message = name
    if status is JobStatus.COMPLETED and not url:
        status, progress, message = JobStatus.RUNNING, 95.0, "succeed (no video URL yet)"
    error = None
    units = units_of(task) if status.terminal else None
    billed_usd = round(units * unit_price, 6) if units is not None and unit_price is not None else None
    if status is JobStatus.FAILED:
        msg = task.get("task_status_msg")
        error = msg.strip() if isinstance(msg, str) and msg.strip() else "task failed (no reason given)"
    return JobUpdate(
        status=status,
        task_id=task_id_of(task),
        progress=progress,
        message=message,
        output_url=url if status is JobStatus.COMPLETED else None,
        duration_s=seconds(video.get("duration")) if video and status is JobStatus.COMPLETED else None,
        error=error,
        error_kind=error_kind_for(error),
        billed_units=units,
        billed_usd=billed_usd,
    )


def parse_callback(body: bytes | str) -> dict[str, Any]:
    """The task object of a callback (§8: the bare task, no envelope; an envelope is
    tolerated). Raises ``InputError`` for anything that is not a Kling task."""
    payload = parse_json(body)
    if isinstance(payload, dict) and "data" in payload and code_of(payload) not in (None, 0):
        raise InputError("webhook", "the body is a Kling error answer, not a task")
    task = task_of(payload)
    if task is None:
        raise InputError("webhook", "the body is not a Kling task payload (not a JSON object)")
    if not task_id_of(task) or not isinstance(task.get("task_status"), str):
        raise InputError("webhook", "the body is not a Kling task payload (no task_id and task_status)")
    return task


# -- requests (§4, §7) -----------------------------------------------------------------------

def media_value(media: MediaFile) -> str:
    """An image or audio input as Kling takes it: the URL as given, or **raw** base64 of the
    content, never a ``data:`` URI (that gets ``1201 File is not in a valid base64 format``)."""
    if media.kind == "url":
        if not media.url:
            raise InputError(media.field, "URL input without a URL")
        return media.url
    if media.kind == "bytes":
        data = media.data or b""
    else:
        with media.open() as f:
            data = f.read()
    return base64.b64encode(data).decode("ascii")


def create_body(*, image: str, external_task_id: str, mode: str, prompt: str | None = None,
                sound_file: str | None = None, audio_id: str | None = None,
                callback_url: str | None = None) -> dict[str, Any]:
    """The ``POST /v1/videos/avatar/image2video`` body (§4). Exactly one of ``sound_file``
    and ``audio_id``. ``prompt`` and ``mode`` are always sent (one mirror calls them required;
    ``""`` worked live); ``callback_url`` only when there is one."""
    if (sound_file is None) == (audio_id is None):
        raise ValueError("give exactly one of sound_file and audio_id")
    body: dict[str, Any] = {"image": image}
    if audio_id is not None:
        body["audio_id"] = audio_id
    else:
        body["sound_file"] = sound_file
    body["prompt"] = prompt or ""
    body["mode"] = mode
    if callback_url:
        body["callback_url"] = callback_url
    body["external_task_id"] = external_task_id
    return body


def parse_voice(voice: str | None, default_voice: str = DEFAULT_VOICE,
                default_language: str = DEFAULT_VOICE_LANGUAGE) -> tuple[str, str]:
    """``(voice_id, voice_language)`` from a request's ``voice``: ``oversea_male1``,
    ``oversea_male1#en``, or Kling's own trial-file naming ``Name#voice_id#language``."""
    if voice is None or not voice.strip():
        return default_voice, default_language
    parts = [p.strip() for p in voice.strip().split("#")]
    if len(parts) == 1:
        return parts[0], default_language
    voice_id, language = parts[-2], parts[-1].lower()
    if not voice_id or language not in VOICE_LANGUAGES:
        raise InputError("voice", f"{voice!r} is not a Kling voice: give voice_id or voice_id#language "
                         f"with language {' or '.join(VOICE_LANGUAGES)}", value=voice,
                         limit=list(VOICE_LANGUAGES))
    return voice_id, language


def check_voice(voice_id: str, language: str, extra: Iterable[str] = ()) -> None:
    """Refuse, before the paid TTS call, a voice Kling would answer "Voice id not found" for:
    not one of its preset voices for ``language`` (``extra``: custom voice ids to allow)."""
    if language not in VOICES:
        raise InputError("voice", f"{language!r} is not a Kling TTS language", value=language,
                         limit=list(VOICE_LANGUAGES))
    if voice_id in VOICES[language] or voice_id in set(extra):
        return
    other = [lang for lang, ids in VOICES.items() if voice_id in ids]
    why = (f"it is a {'/'.join(other)} voice; use {voice_id}#{other[0]}" if other
           else "it is not one of Kling's preset voices")
    raise InputError("voice", f"Kling has no {language} voice {voice_id!r}: {why}", value=voice_id,
                     limit=sorted(VOICES[language]))


def tts_body(text: str, voice_id: str, language: str, speed: float = 1.0) -> dict[str, Any]:
    """The ``POST /v1/audio/tts`` body (§7). Speed is 0.8 to 2.0 with one decimal."""
    return {"text": text, "voice_id": voice_id, "voice_language": language,
            "voice_speed": round(min(2.0, max(0.8, float(speed))), 1)}


def tts_audio(payload: Any) -> dict[str, Any] | None:
    """``data.task_result.audios[0]`` of a TTS answer (inline, §7), or None."""
    task = task_of(payload)
    result = task.get("task_result") if task else None
    audios = result.get("audios") if isinstance(result, dict) else None
    if isinstance(audios, list) and audios and isinstance(audios[0], dict) and audios[0].get("id"):
        return audios[0]
    return None


_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)


def speech_seconds_estimate(text: str, speed: float = 1.0) -> float:
    """How long Kling's TTS most likely takes to say ``text``: ordinary speech, 2.5 words/s
    for alphabetic text and 4 characters/s for CJK, over the speed. Used to refuse, before
    paying for the speech, a text too short for the avatar's 2 s minimum."""
    cjk = len(_CJK.findall(text))
    words = len(_WORD.findall(_CJK.sub(" ", text)))
    return (words / 2.5 + cjk / 4.0) / max(0.8, min(2.0, speed))


def speech_seconds_bound(text: str, speed: float = 1.0) -> float:
    """A generous upper bound on how long Kling's TTS takes to say ``text`` (for the quote
    of a text request: the reservation should not fall short). Slower than usual speech:
    2 words/s for alphabetic text, 3 characters/s for CJK, plus a second, over the speed."""
    cjk = len(_CJK.findall(text))
    words = len(_WORD.findall(_CJK.sub(" ", text)))
    return (words * 0.5 + cjk / 3.0) / max(0.8, min(2.0, speed)) + 1.0


# -- secrets ---------------------------------------------------------------------------------

def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with every credential and anything JWT-shaped replaced."""
    for secret in sorted((s for s in secrets if s and len(s) >= 4), key=len, reverse=True):
        text = text.replace(secret, "***")
    return _JWT.sub("***", text)
