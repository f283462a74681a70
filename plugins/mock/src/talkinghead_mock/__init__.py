"""talkinghead-mock: an offline backend for tests, demos and CI.

This module is the whole of the plugin's registration. The distribution's pyproject.toml
names it in the ``talkinghead`` entry-point group::

    [project.entry-points.talkinghead]
    mock = "talkinghead_mock"

and talkinghead calls the ``@hookimpl`` functions it finds here. A third-party plugin looks
exactly the same.

The rest of the package, one concern a module:

* ``provider.py``: ``MockProvider``, the interface a plugin implements (routes, estimate,
  submit, poll, cancel, find_task, parse_webhook) and the rendering of results;
* ``state.py``: the backend's task state, in memory or on disk under ``state_dir``, and
  ``read_calls`` for the log of calls kept there;
* ``failures.py``: ``FailSpec``, the failures to inject, and the errors they raise.
"""

from talkinghead.hookspecs import hookimpl

from .failures import FailSpec
from .provider import MockCall, MockProvider
from .state import MockTask, read_calls

__all__ = ["FailSpec", "MockCall", "MockProvider", "MockTask", "read_calls", "register_providers"]


@hookimpl
def register_providers(register):
    register(MockProvider)
