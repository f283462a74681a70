"""Where talkinghead keeps its files, and the user's config file.

``TALKINGHEAD_HOME`` (default: the platform's user data dir) holds ``config.toml``, the job
journal and downloaded results. The config file is optional::

    default_model = "kling-avatar"  # the model(s) used without --model: an id, "a,b" or "any"
    # A journal shared by many hosts (docs/fleet.md); env TALKINGHEAD_DATABASE_URL wins.
    # Unset: SQLite in TALKINGHEAD_HOME.
    database_url = "postgresql://th@db.internal/talkinghead"

    [providers.inferencesh]
    app = "klingai/avatar@abc123"

    [providers.mock]
    latency = 2.0

    [prices.inferencesh]          # override a provider's kling-avatar price table (USD/s)
    std = 0.05
    [prices."inferencesh/omnihuman-1.5"]  # or any route's, by route id (keys: tiers or resolutions)
    std = 0.14
    pro = 0.14

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

from . import checks
from .errors import ConfigError, InputError


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
    default_model: str = "kling-avatar"
    database_url: str | None = None

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
        budget = _table(data, "budget", path)
        env_total = os.environ.get("TALKINGHEAD_BUDGET_USD")
        if env_total:
            budget["total_usd"] = _number("TALKINGHEAD_BUDGET_USD", env_total, "the environment")
        settings = cls(home=root, providers=_table(data, "providers", path), prices=_table(data, "prices", path),
                       budget=budget, routing=_table(data, "routing", path), tts=_table(data, "tts", path),
                       default_model=_default_model(data.get("default_model", "kling-avatar")),
                       database_url=_database_url(os.environ.get("TALKINGHEAD_DATABASE_URL"), data.get("database_url")))
        settings._check_numbers(path)
        return settings

    def _check_numbers(self, path: Path) -> None:
        """Every number a limit depends on is finite and in range: a nan budget would make
        every comparison false, and so every limit check pass."""
        where = f"config file {path}"
        for key in ("total_usd", "daily_usd"):
            if key in self.budget and not (key == "total_usd" and os.environ.get("TALKINGHEAD_BUDGET_USD")):
                self.budget[key] = _number(f"budget.{key}", self.budget[key], where)
        per_provider = self.budget.get("providers", {})
        if not isinstance(per_provider, dict):
            raise ConfigError(f"{where}: budget.providers must be a table of USD limits", field="budget.providers")
        for name, value in per_provider.items():
            per_provider[name] = _number(f"budget.providers.{name}", value, where)
        for name, table in self.prices.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{where}: prices.{name} must be a table of USD per second",
                                  field=f"prices.{name}")
            for mode, value in table.items():
                table[mode] = _number(f"prices.{name}.{mode}", value, where)
        for key in ("failure_window_s", "cooldown_s"):
            if key in self.routing:
                self.routing[key] = _number(f"routing.{key}", self.routing[key], where)
        if "failure_threshold" in self.routing:
            count = _number("routing.failure_threshold", self.routing["failure_threshold"], where)
            if count < 1 or count != int(count):
                raise ConfigError(f"routing.failure_threshold in {where}: {count:g} is not a whole number "
                                  "of at least 1", field="routing.failure_threshold")
            self.routing["failure_threshold"] = int(count)

    def provider_config(self, name: str) -> dict[str, Any]:
        return dict(self.providers.get(name, {}))

    @property
    def output_dir(self) -> Path:
        return self.home / "outputs"

    @property
    def database(self) -> Path:
        return Path(os.environ.get("TALKINGHEAD_DB", self.home / "talkinghead.db"))


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"config file {path}: [{key}] must be a table, not {type(value).__name__}", field=key)
    return dict(value)


def _number(field: str, value: Any, where: str) -> float:
    try:
        return checks.number(field, value, none_ok=False)
    except InputError as exc:
        raise ConfigError(f"{field} in {where}: {exc.detail}", field=field) from None


def _default_model(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"default_model in the config file: {value!r} is not a model id, a comma list or 'any'")
    return value.strip()


def _database_url(env: str | None, configured: Any) -> str | None:
    """The shared journal's URL, if one is set; only PostgreSQL is spoken."""
    name, value = ("TALKINGHEAD_DATABASE_URL", env) if env else ("database_url", configured)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not value.startswith(("postgresql://", "postgres://")):
        shown = repr(without_password(value)) if isinstance(value, str) else repr(value)
        raise ConfigError(f"{name}={shown} is not a postgresql:// URL (leave it unset for the SQLite journal)")
    return value


def without_password(url: str) -> str:
    """``url`` fit for messages and reprs: no user:password@ and no query string (libpq takes
    ``?password=`` there too)."""
    return checks.safe_url(url)
