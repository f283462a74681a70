"""Testing support for apps and plugins built on talkinghead.

* ``talkinghead.testing.plugin``: the pytest plugin (registered through ``pytest11``): the
  socket-level network guard, a temporary ``TALKINGHEAD_HOME``, mock fixtures.
* ``talkinghead.testing.loopback``: loopback servers and the plumbing the plugins' fake
  backends share (runs without pytest: the fakes serve apps too).
* ``talkinghead.testing.contract``: ``ProviderContract``, the provider contract kit.

Importing this package does not import pytest; the plugin's public names load on first use.
"""

from __future__ import annotations

from typing import Any

_FROM_PLUGIN = frozenset({"SocketBlocked"})


def __getattr__(name: str) -> Any:
    if name in _FROM_PLUGIN:
        from . import plugin

        return getattr(plugin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SocketBlocked"]
