"""An example provider: the photo, framed to the aspect ratio, as a still video over the audio.

It runs on this machine and costs nothing, so it needs no HTTP; docs/writing-a-plugin.md walks
through it line by line. A real backend's ``submit`` would upload and create a task instead.
"""

import shutil
import tempfile
from pathlib import Path

from talkinghead import InputError, JobStatus, JobUpdate, PreparedRequest, Provider, Route, video
from talkinghead.hookspecs import hookimpl


class StillProvider(Provider):
    name = "still"
    env_vars = ()  # no credentials: always configured

    def routes(self):
        # kind="local": it runs here. Left out, kind is "cloud", which the router prefers.
        # aspect="controls": it frames the photo to the ratio asked (the default, "follows_photo",
        # refuses a ratio the photo does not already have).
        return [Route(provider="still", model="still-photo", kind="local", aspect="controls",
                      aspect_ratios=("16:9", "9:16", "1:1"),
                      price_per_second={"std": 0.0, "pro": 0.0}, price_source="free: runs locally")]

    def validate(self, prepared, route):
        super().validate(prepared, route)  # the route's Limits: formats, sizes, durations
        for media in (prepared.image, prepared.audio):
            if media is not None and media.kind == "url":  # kind is "path", "bytes" or "url"
                raise InputError(media.field, "the still provider needs the file itself, not a URL",
                                 value=media.url)

    async def submit(self, job, prepared):
        import asyncio  # here, not at the top: `talkinghead providers` then never loads it

        out = self._workdir() / f"{job.id}.mp4"
        await asyncio.to_thread(self._render, prepared, out)  # encoding blocks: off the event loop
        # A file:// URL is a fine result: the core copies it to the user's output path.
        return JobUpdate(status=JobStatus.COMPLETED, task_id=job.id, progress=100.0,
                         output_url=out.as_uri(), duration_s=prepared.seconds)

    def _render(self, prepared: PreparedRequest, out: Path) -> None:
        image, audio, seconds = prepared.image, prepared.audio, prepared.seconds
        if audio is None or seconds is None:  # a text request reaches us as speech, so never
            raise InputError("audio", "the still provider needs audio")
        frame = video.frame_image(image.path or image.data, prepared.request.aspect_ratio, 360)
        video.encode_mp4(out, frame, audio=audio.path or audio.data, duration_s=seconds)

    async def poll(self, job):  # asked only when resuming a journaled job
        done = job.output_url and Path(job.output_url.removeprefix("file://")).exists()  # noqa: ASYNC240 - one stat
        return JobUpdate(status=JobStatus.COMPLETED if done else JobStatus.FAILED, task_id=job.task_id,
                         output_url=job.output_url, error=None if done else "the rendered file is gone")

    async def cancel(self, job):
        pass  # nothing runs after submit returns

    def _workdir(self) -> Path:
        if not hasattr(self, "_tmp"):
            self._tmp = Path(tempfile.mkdtemp(prefix="talkinghead-still-"))
        return self._tmp

    async def aclose(self):
        # Our temporary files are ours to remove; the core has copied the result by now.
        if hasattr(self, "_tmp"):
            shutil.rmtree(self._tmp, ignore_errors=True)


@hookimpl
def register_providers(register):
    register(StillProvider)
