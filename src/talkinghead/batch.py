"""Batches: many requests from a JSONL file, run concurrently, safe to run again.

Each input line is a JSON object with the request's fields (``image``, ``audio`` or ``text``,
``prompt``, ``mode``, ``aspect_ratio``, ``voice``) and optionally ``provider`` and
``output``. Running the same file again skips lines already done (matched by request digest
in the journal), finishes the ones not done without creating them again (follows one in
flight, downloads one completed but not on disk: ``lifecycle.next_step``), and never
resubmits one whose outcome is unknown or whose task the backend lost.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import checks
from .client import AsyncClient, Step, next_step, over_quote
from .errors import InputError, TalkingHeadError
from .models import AvatarRequest, Job, JobStatus

REQUEST_FIELDS = set(AvatarRequest.model_fields)
LINE_FIELDS = REQUEST_FIELDS | {"provider", "output"}


@dataclass
class LineResult:
    line: int
    status: str  # completed | skipped | failed | invalid | budget | unknown | lost
    job_id: str | None = None
    provider: str | None = None
    output: str | None = None
    cost_usd: float | None = None
    error: str | None = None
    over_quote_usd: float | None = None  # settled above its quote by this much

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if v is not None})


def read_lines(path: Path) -> list[tuple[int, str]]:
    """The file's non-blank lines, numbered from 1. It must be UTF-8 (JSON is)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise InputError("batch file", f"cannot read {path}: {exc.strerror or exc}", value=str(path)) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise InputError("batch file", f"{Path(path).name} is not UTF-8 text (byte 0x{data[exc.start]:02x} on "
                         f"line {line}); save it as UTF-8", value=f"0x{data[exc.start]:02x}", limit="UTF-8") from None
    return [(i, t) for i, t in enumerate(text.splitlines(), start=1) if t.strip()]


def parse_line(number: int, text: str, base: Path) -> tuple[AvatarRequest, dict[str, Any]]:
    """One JSONL line to a request; relative paths are taken from the batch file's folder."""
    where = f"line {number}"
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(where, f"not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise InputError(where, "must be a JSON object")
    unknown = set(data) - LINE_FIELDS
    if unknown:
        raise InputError(where, f"unknown field(s) {', '.join(sorted(unknown))}; expected some of "
                                f"{', '.join(sorted(LINE_FIELDS))}")
    for key in ("image", "audio"):
        value = data.get(key)
        if isinstance(value, str) and "://" not in value and not value.startswith("data:") \
                and _exists(base / value):
            data[key] = str((base / value).resolve())
    extra = {k: data.pop(k) for k in ("provider", "output") if k in data}
    for key, value in extra.items():
        if not isinstance(value, str):
            raise InputError(f"{where}: {key}", f"must be a JSON string, not {type(value).__name__}",
                             value=value)
    try:
        return AvatarRequest(**data), extra
    except InputError as exc:
        raise InputError(f"{where}: {exc.field}", exc.detail, value=exc.value, limit=exc.limit) from None


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a NUL in the name, a name too long
        return False


async def run_batch(client: AsyncClient, path: Path, *, results: Path, output_dir: Path,
                    concurrency: int = 4, provider: str | None = None,
                    on_line: Callable[[LineResult], Any] | None = None) -> list[LineResult]:
    lines = read_lines(path)
    # Where results go is checked before any line is paid for.
    results = checks.output_path("results", results)
    output_dir = checks.output_path("output_dir", Path(output_dir) / "line-00001.mp4").parent
    gate = asyncio.Semaphore(max(1, concurrency))
    results.parent.mkdir(parents=True, exist_ok=True)
    out = results.open("w")  # one line per input line, written as each finishes

    async def one(number: int, text: str) -> LineResult:
        async with gate:
            result = await _run_line(client, number, text, Path(path).parent, output_dir, provider)
        out.write(result.to_json() + "\n")
        out.flush()
        if on_line is not None:
            on_line(result)
        return result

    try:
        done = await asyncio.gather(*(one(n, t) for n, t in lines))
    finally:
        out.close()
    return sorted(done, key=lambda r: r.line)


async def _run_line(client: AsyncClient, number: int, text: str, base: Path, output_dir: Path,
                    provider: str | None) -> LineResult:
    try:
        request, extra = parse_line(number, text, base)
        given = extra.get("output")
        output = checks.user_path(f"line {number}: output", given) if given else output_dir / f"line-{number:05d}.mp4"
        if not output.is_absolute() and given:
            output = base / output
        output = checks.output_path(f"line {number}: output", output)  # before it is paid for
    except InputError as exc:
        return LineResult(number, "invalid", error=str(exc))
    previous = client.ledger.by_digest(request.digest())
    done = next((j for j in previous if next_step(j) is Step.NONE and j.status is JobStatus.COMPLETED
                 and Path(j.output_path or "") == output.resolve()), None)
    if done is not None:
        return _result(number, "skipped", done)
    person = next((j for j in previous if j.status in (JobStatus.UNKNOWN, JobStatus.LOST)), None)
    if person is not None:  # it may have been charged: a person decides (jobs resolve)
        return _result(number, person.status.value, person, error=person.error)
    # Paid for already (completed, wherever its video is) or still in flight: finish that one.
    job: Job | None = next((j for j in previous if j.status is JobStatus.COMPLETED and j.output_url), None) \
        or next((j for j in previous if not j.status.terminal), None)
    try:
        if job is not None:
            await client.resume(job, output=output)
        else:
            job = await client.submit(request, provider=extra.get("provider") or provider, output=output)
            await client.finish(job, output=output)
        return _result(number, "completed", job)
    except TalkingHeadError as exc:
        status = {2: "invalid", 3: "budget"}.get(exc.exit_code, "failed")
        if job is not None and job.status in (JobStatus.UNKNOWN, JobStatus.LOST):
            status = job.status.value
        return _result(number, status, job, error=str(exc))


def _result(number: int, status: str, job: Job | None, error: str | None = None) -> LineResult:
    if job is None:
        return LineResult(number, status, error=error)
    return LineResult(number, status, job_id=job.id, provider=job.provider, output=job.output_path,
                      cost_usd=job.settled_usd, error=error, over_quote_usd=over_quote(job) or None)


def summarize(results: list[LineResult]) -> dict[str, int]:
    return dict(Counter(r.status for r in results))
