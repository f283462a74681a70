"""Modules loaded on first use, for plugins that must register cheaply.

``httpx = lazy.module("httpx")`` binds a module object at once and executes the module the
first time one of its attributes is read (``importlib.util.LazyLoader``, the standard
library's recipe). From then on it is the real module, the same object as in
``sys.modules``, so there is no cost per access and patching it patches the real one. A
plugin's class registers without loading its HTTP stack: ``talkinghead providers`` and
``estimate`` never make a request.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from types import ModuleType

_lock = threading.Lock()


def module(name: str) -> ModuleType:
    """``name`` from ``sys.modules`` if it is there, else a module that loads on first use."""
    with _lock:
        found = sys.modules.get(name)
        if found is not None:
            return found
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        loader = importlib.util.LazyLoader(spec.loader)
        spec.loader = loader
        lazy = importlib.util.module_from_spec(spec)
        sys.modules[name] = lazy
        loader.exec_module(lazy)
        parent, _, child = name.rpartition(".")
        if parent:  # as an import would: ``talkinghead.http`` is then an attribute of ``talkinghead``
            setattr(sys.modules[parent], child, lazy)
        return lazy
