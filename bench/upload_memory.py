"""Upload memory: does uploading a 10 MB image and a 5 MB audio raise the client's peak RSS?

Two valid files just under the limits are generated: a JPEG (``examples/face.jpg`` with
comment segments added until it is 512 bytes under 10 MiB; it still parses and decodes)
and a 16 kHz mono 16-bit WAV 512 bytes under 5 MiB (about 164 s of tone and noise). The
parent probes both with ``talkinghead.media`` (so they are known to validate); each child
process then only uploads, so no decoding happens in the measured process.

In the child: everything is imported and one small job is submitted first (HTTP stack,
connections and lazy imports warmed up), then the garbage is collected, the baseline RSS is
read and the peak is reset (``/proc/self/clear_refs``), the provider's ``submit`` runs
(``POST /files`` + ``PUT`` for each file, then ``POST /apps/run``) and the peak is read
(``VmHWM``; a thread sampling ``VmRSS`` every millisecond backs it up). The official SDK,
which reads each file whole, is measured the same way as a control: it shows that the
method sees a whole-file read.

    python bench/upload_memory.py
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as c  # noqa: E402

MB = 1024 * 1024
IMAGE_BYTES = 10 * MB - 512
AUDIO_BYTES = 5 * MB - 512
TARGET_MB = 5.0
APP = "klingai/avatar"


# -- the inputs ----------------------------------------------------------------------------

def make_jpeg(path: Path, size: int) -> None:
    """``face.jpg`` with COM segments inserted after SOI until the file is ``size`` bytes."""
    src = c.FACE.read_bytes()
    assert src[:2] == b"\xff\xd8"
    need = size - len(src)
    segments = []
    while need > 0:
        body = min(need - 4, 65533) if need > 4 else 0
        if need - (body + 4) in (1, 2, 3):  # never leave a gap too small for a segment
            body -= 4
        segments.append(b"\xff\xfe" + struct.pack(">H", body + 2) + b"\0" * body)
        need -= body + 4
    path.write_bytes(src[:2] + b"".join(segments) + src[2:])
    assert path.stat().st_size == size, (path.stat().st_size, size)


def make_wav(path: Path, size: int, rate: int = 16000) -> None:
    import numpy as np

    samples = (size - 44) // 2
    t = np.arange(samples, dtype=np.float64) / rate
    rng = np.random.default_rng(7)
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    pcm = np.clip((wave + 0.02 * rng.standard_normal(samples)) * 32767, -32768, 32767).astype("<i2")
    data = pcm.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE" + b"fmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16) + b"data" + struct.pack("<I", len(data))
    path.write_bytes(header + data)
    if path.stat().st_size != size:  # an odd byte count: pad the RIFF with a trailing byte
        with open(path, "ab") as f:
            f.write(b"\0" * (size - path.stat().st_size))


def make_inputs(folder: Path) -> dict:
    from talkinghead import media

    image, audio = folder / "big-face.jpg", folder / "long-speech.wav"
    make_jpeg(image, IMAGE_BYTES)
    make_wav(audio, AUDIO_BYTES)
    img = media.inspect_image(str(image))
    aud = media.inspect_audio(str(audio))
    return {"image": {"path": str(image), "format": img.format, "content_type": img.content_type,
                      "size": img.size, "width": img.width, "height": img.height},
            "audio": {"path": str(audio), "format": aud.format, "content_type": aud.content_type,
                      "size": aud.size, "duration_s": aud.duration_s}}


# -- the child: upload and watch the peak ------------------------------------------------------

class PeakSampler:
    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, c.vm_kb("VmRSS"))
            time.sleep(0.001)

    def __enter__(self) -> PeakSampler:
        self.peak_kb = c.vm_kb("VmRSS")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, c.vm_kb("VmRSS"))


def _measured(run) -> dict:
    gc.collect()
    baseline = c.vm_kb("VmRSS")
    reset = c.reset_peak()
    with PeakSampler() as sampler:
        t0 = time.perf_counter()
        run()
        wall = time.perf_counter() - t0
    hwm = c.vm_kb("VmHWM")
    peak = max(hwm, sampler.peak_kb) if reset else sampler.peak_kb
    return {"baseline_mb": baseline / 1024, "peak_mb": peak / 1024, "growth_mb": (peak - baseline) / 1024,
            "sampled_growth_mb": (sampler.peak_kb - baseline) / 1024, "hwm_reset": reset, "wall_s": wall}


def child_talkinghead(url: str, inputs: dict) -> dict:
    from talkinghead import media
    from talkinghead.models import AvatarRequest, Job
    from talkinghead_inferencesh import InferenceShProvider

    def media_file(field: str, d: dict) -> media.MediaFile:
        path = Path(d["path"])
        return media.MediaFile(field, "path", filename=path.name, path=path, format=d["format"],
                               content_type=d["content_type"], size=d["size"], width=d.get("width"),
                               height=d.get("height"), duration_s=d.get("duration_s"),
                               origin=f"file {path.name}")

    big = media.PreparedRequest(
        request=AvatarRequest(image=inputs["image"]["path"], audio=inputs["audio"]["path"]),
        image=media_file("image", inputs["image"]), audio=media_file("audio", inputs["audio"]))
    small = media.prepare(AvatarRequest(image=str(c.FACE), audio=str(c.MP3)))
    provider = InferenceShProvider({"api_key": c.API_KEY, "base_url": url})
    loop = asyncio.new_event_loop()

    def submit(prepared: media.PreparedRequest) -> None:
        update = loop.run_until_complete(provider.submit(Job(provider="inferencesh", model="kling-avatar"), prepared))
        assert update.task_id

    try:
        submit(small)  # warm-up
        result = _measured(lambda: submit(big))
    finally:
        loop.run_until_complete(provider.aclose())
        loop.close()
    return result


def child_sdk(url: str, inputs: dict) -> dict:
    import inferencesh

    client = inferencesh.Inference(api_key=c.API_KEY, base_url=url)

    def run(image: str, audio: str) -> None:
        task = client.run({"app": APP, "input": {"image": image, "audio": audio, "mode": "std",
                                                 "aspect_ratio": "16:9"}}, wait=False)
        assert task["id"]

    run(str(c.FACE), str(c.MP3))  # warm-up
    return _measured(lambda: run(inputs["image"]["path"], inputs["audio"]["path"]))


# -- the parent --------------------------------------------------------------------------------

def measure() -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        inputs = make_inputs(Path(tmp))
        spec = Path(tmp) / "inputs.json"
        spec.write_text(json.dumps(inputs))
        results = {}
        with c.FakeServer() as fake:
            for name in ("talkinghead", "sdk"):
                fake.reset()
                res = c.run_child(Path(__file__), "--child", name, "--url", fake.url, "--inputs", str(spec))
                counts = fake.stats()
                res["requests"] = counts
                results[name] = res
    return {"inputs": inputs, "results": results, "target_mb": TARGET_MB,
            "growth_mb": results["talkinghead"]["growth_mb"]}


def report(d: dict) -> str:
    img, aud = d["inputs"]["image"], d["inputs"]["audio"]
    rows = []
    labels = {"talkinghead": "talkinghead (InferenceShProvider.submit, streamed)",
              "sdk": "inferencesh SDK 0.36.0 (reads each file whole)"}
    for name, r in d["results"].items():
        target = f"<= {TARGET_MB:g} MB" if name == "talkinghead" else "(control)"
        verdict = c.verdict(r["growth_mb"], TARGET_MB, " MB") if name == "talkinghead" else ""
        rows.append([labels[name], f"{r['baseline_mb']:.1f}", f"{r['peak_mb']:.1f}", f"{r['growth_mb']:.2f}",
                     f"{r['sampled_growth_mb']:.2f}", target, verdict])
    how = "VmHWM reset via clear_refs" if d["results"]["talkinghead"]["hwm_reset"] else "VmRSS sampled every 1 ms"
    return "\n".join([
        f"upload memory: {img['size']:,} B JPEG ({img['width']}x{img['height']}) + {aud['size']:,} B WAV "
        f"({aud['duration_s']:.1f} s), both valid; peak from {how}",
        c.table(["client", "baseline MB", "peak MB", "growth MB", "sampled growth MB", "target", "verdict"], rows)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--child", choices=("talkinghead", "sdk"), help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--inputs", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        inputs = json.loads(Path(args.inputs).read_text())
        fn = child_talkinghead if args.child == "talkinghead" else child_sdk
        print(json.dumps(fn(args.url, inputs)))
        return
    print(f"machine: {c.machine()}")
    data = measure()
    print(report(data))
    if args.json:
        print(json.dumps(data))


if __name__ == "__main__":
    main()
