"""talkinghead-mock: an offline backend for tests, demos and CI.

This module is the whole of the plugin's registration. The distribution's pyproject.toml
names it in the ``talkinghead`` entry-point group::

    [project.entry-points.talkinghead]
    mock = "talkinghead_mock"

and talkinghead calls the ``@hookimpl`` functions it finds here. A third-party plugin looks
exactly the same.
"""

from talkinghead.hookspecs import hookimpl

from .provider import FailSpec, MockCall, MockProvider, MockTask, read_calls

__all__ = ["FailSpec", "MockCall", "MockProvider", "MockTask", "read_calls", "register_providers"]


@hookimpl
def register_providers(register):
    register(MockProvider)
