"""Plugin loading: entry points in the ``talkinghead`` group, each loaded on its own.

Each entry point's outcome is kept (``report()``, shown by ``talkinghead plugins``): its
distribution and version, and why it failed to load, if it did. A module whose ``@hookimpl``
names no talkinghead hook (a misspelling such as ``register_provider``) is refused with that
reason instead of being silently ignored.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs

if TYPE_CHECKING:
    from .provider import Provider
    from .tts import TTSEngine

ENTRY_POINT_GROUP = "talkinghead"

pm = pluggy.PluginManager("talkinghead")
pm.add_hookspecs(hookspecs)
_loaded = False
HOOKS = ("register_providers", "register_tts", "check_face")


@dataclass
class PluginInfo:
    """One entry point in the ``talkinghead`` group and what became of it."""

    name: str
    entry_point: str               # "module" or "module:attr"
    distribution: str | None
    version: str | None
    loaded: bool = False
    error: str | None = None       # why it did not load; None when loaded or not asked for


_report: dict[str, PluginInfo] = {}


def load_plugins() -> None:
    """Load installed plugins once. ``TALKINGHEAD_PLUGINS=mock,local`` restricts which load;
    set but empty loads none. A plugin that fails to import, or whose hooks do not match
    talkinghead's, is reported and skipped."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = os.environ.get("TALKINGHEAD_PLUGINS")
    allow = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        info = _report.setdefault(ep.name, PluginInfo(ep.name, ep.value, dist.name if dist else None,
                                                      dist.version if dist else None))
        if (allow is not None and ep.name not in allow) or pm.has_plugin(ep.name):
            info.loaded = pm.has_plugin(ep.name)
            continue
        try:
            module = ep.load()
            _check_hooks(module)
            pm.register(module, name=ep.name)  # pluggy checks each hook's arguments here
            try:
                pm.check_pending()
            except pluggy.PluginValidationError:
                pm.unregister(module)
                raise
            info.loaded, info.error = True, None
        except Exception as exc:  # one broken plugin must not take the others down
            info.error = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"talkinghead plugin {ep.name!r} ({ep.value}) failed to load: {info.error}",
                          RuntimeWarning, stacklevel=2)


def _check_hooks(module: object) -> None:
    """Refuse a plugin whose ``@hookimpl`` functions name no talkinghead hook: pluggy would
    register them as hooks nobody calls. Checked before registering, with pluggy's own
    ``check_pending`` after, for anything this misses."""
    marker = f"{pm.project_name}_impl"
    for attr in dir(module):
        fn = getattr(module, attr, None)
        if getattr(fn, marker, None) is not None:
            name = (getattr(fn, marker) or {}).get("specname") or attr
            if name not in HOOKS:
                import difflib  # only for this message: start-up stays lighter

                close = difflib.get_close_matches(name, HOOKS, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise pluggy.PluginValidationError(
                    module, f"@hookimpl {name!r} is not a talkinghead hook{hint}; hooks: {', '.join(HOOKS)}")


def report() -> list[PluginInfo]:
    """Every entry point in the group: loaded, skipped by TALKINGHEAD_PLUGINS, or failed and why."""
    load_plugins()
    return list(_report.values())


def plugin_providers() -> dict[str, list[type[Provider]]]:
    """Provider classes by the registered plugin that provides them."""
    load_plugins()
    out: dict[str, list[type[Provider]]] = {}
    for impl in pm.hook.register_providers.get_hookimpls():
        classes: list[type[Provider]] = []
        impl.function(register=classes.append)
        out.setdefault(impl.plugin_name, []).extend(classes)
    return out


def register(plugin: ModuleType | object, name: str | None = None) -> None:
    """Register a plugin object directly (tests, apps with in-house providers)."""
    _check_hooks(plugin)
    pm.register(plugin, name=name)
    pm.check_pending()


def reset() -> None:
    """Forget every plugin, so the next lookup loads entry points afresh (tests)."""
    global _loaded
    for _, plugin in list(pm.list_name_plugin()):
        pm.unregister(plugin)
    _report.clear()
    _loaded = False


def _collect(hook: Any) -> dict[str, type[Any]]:
    found: dict[str, type[Any]] = {}
    hook(register=lambda cls: found.setdefault(cls.name, cls))
    return found


def get_provider_classes() -> dict[str, type[Provider]]:
    load_plugins()
    return _collect(pm.hook.register_providers)


def get_tts_classes() -> dict[str, type[TTSEngine]]:
    load_plugins()
    return _collect(pm.hook.register_tts)
