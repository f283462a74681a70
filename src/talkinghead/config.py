"""Where talkinghead keeps its files, and the user's config file.

``TALKINGHEAD_HOME`` (default: the platform's user data dir) holds ``config.toml``, the job
journal and downloaded results. The config file is optional::

    [providers.inferencesh]
    app = "klingai/avatar@abc123"

    [providers.mock]
    latency = 2.0

    [prices.inferencesh]          # override a route's bundled price table (USD/s)
    std = 0.05

    [budget]                      # spending limits, USD (env TALKINGHEAD_BUDGET_USD: total)
    total_usd = 50
    daily_usd = 10
    providers = { inferencesh = 20 }

    [routing]
    policy = "cheapest"           # cheapest | fastest | priority
    priority = ["inferencesh", "fal", "kling", "local"]
    failure_threshold = 3         # provider-side failures within failure_window_s ...
    failure_window_s = 300
    cooldown_s = 120              # ... cool a route down for this long

    [tts]                         # text-to-speech for text requests on audio-only routes
    engine = "espeak"
    [tts.espeak]
    voice = "en-us"
    rate = 160
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError


def home() -> Path:
    env = os.environ.get("TALKINGHEAD_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("talkinghead", appauthor=False)


@dataclass
class Settings:
    home: Path
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    budget: dict[str, Any] = field(default_factory=dict)
    routing: dict[str, Any] = field(default_factory=dict)
    tts: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> Settings:
        root = home()
        path = path or Path(os.environ.get("TALKINGHEAD_CONFIG", root / "config.toml"))
        data: dict[str, Any] = {}
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text())
            except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
                raise ConfigError(f"config file {path}: {exc}") from None
        budget = dict(data.get("budget", {}))
        env_total = os.environ.get("TALKINGHEAD_BUDGET_USD")
        if env_total:
            try:
                budget["total_usd"] = float(env_total)
            except ValueError:
                raise ConfigError(f"TALKINGHEAD_BUDGET_USD={env_total!r} is not a number of USD") from None
        return cls(home=root, providers=dict(data.get("providers", {})), prices=dict(data.get("prices", {})),
                   budget=budget, routing=dict(data.get("routing", {})), tts=dict(data.get("tts", {})))

    def provider_config(self, name: str) -> dict[str, Any]:
        return dict(self.providers.get(name, {}))

    @property
    def output_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def database(self) -> Path:
        return Path(os.environ.get("TALKINGHEAD_DB", self.home / "talkinghead.db"))
