"""What the make_*.py scripts share: answers written as VCR stores them, and the writing of
each cassette (the script's header, then vcrpy's own serializer, so the files are exactly
what vcrpy / pytest-recording read back)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from vcr.request import Request
from vcr.serialize import serialize
from vcr.serializers import yamlserializer

Interaction = tuple[Request, dict[str, Any]]


def answer(body: Any, *, status: int = 200, message: str = "OK", headers: Mapping[str, str] | None = None,
           content_type: str | None = "application/json") -> dict[str, Any]:
    """A response: ``body`` as is (text or bytes) or as JSON, with its content type (none when
    None) and ``headers``."""
    text = body if isinstance(body, (str, bytes)) else json.dumps(body)
    h = {"Content-Type": [content_type]} if content_type else {}
    for k, v in (headers or {}).items():
        h[k] = [v]
    return {"status": {"code": status, "message": message}, "headers": h, "body": {"string": text}}


def write(out: Path, header: str, cassettes: Mapping[str, Callable[[], list[Interaction]]]) -> None:
    """``out/<name>.yaml`` for each cassette: the header, then its interactions."""
    out.mkdir(parents=True, exist_ok=True)
    for name, make in cassettes.items():
        pairs = make()
        text = serialize({"requests": [p[0] for p in pairs], "responses": [p[1] for p in pairs]}, yamlserializer)
        (out / f"{name}.yaml").write_text(header + text, encoding="utf-8")
        print(f"wrote {out.name}/{name}.yaml ({len(pairs)} interactions)")


def write_per_model(out: Path, header: str, models: Mapping[str, tuple[Any, ...]],
                    kinds: Mapping[str, Callable[..., list[Interaction]]]) -> None:
    """``out/<model>_<kind>.yaml`` for every model and kind of exchange: the interactions
    ``kinds[kind](model, *models[model])``."""
    write(out, header, {f"{name}_{kind}": partial(make, name, *spec)
                        for name, spec in models.items() for kind, make in kinds.items()})
