"""Plugin loading: entry points in the ``talkinghead`` group, each loaded on its own."""

from __future__ import annotations

import os
import warnings
from importlib.metadata import entry_points
from types import ModuleType

import pluggy

from . import hookspecs

ENTRY_POINT_GROUP = "talkinghead"

pm = pluggy.PluginManager("talkinghead")
pm.add_hookspecs(hookspecs)
_loaded = False


def load_plugins() -> None:
    """Load installed plugins once. ``TALKINGHEAD_PLUGINS=mock,local`` restricts which load;
    set but empty loads none. A plugin that fails to import is reported and skipped."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = os.environ.get("TALKINGHEAD_PLUGINS")
    allow = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if (allow is not None and ep.name not in allow) or pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # one broken plugin must not take the others down
            warnings.warn(f"talkinghead plugin {ep.name!r} ({ep.value}) failed to load: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)


def register(plugin: ModuleType | object, name: str | None = None) -> None:
    """Register a plugin object directly (tests, apps with in-house providers)."""
    pm.register(plugin, name=name)


def reset() -> None:
    """Forget every plugin, so the next lookup loads entry points afresh (tests)."""
    global _loaded
    for _, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin)
    _loaded = False


def _collect(hook) -> dict[str, type]:
    found: dict[str, type] = {}
    hook(register=lambda cls: found.setdefault(cls.name, cls))
    return found


def get_provider_classes() -> dict[str, type]:
    load_plugins()
    return _collect(pm.hook.register_providers)


def get_tts_classes() -> dict[str, type]:
    load_plugins()
    return _collect(pm.hook.register_tts)
