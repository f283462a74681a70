"""Helpers shared by the CLI modules: error handling, the client, the progress bar."""

from __future__ import annotations

import functools
import sys
from typing import Any

import click


def _fail(message: str, code: int) -> None:
    from .log import redact

    click.echo(f"error: {redact(message)}", err=True)
    sys.exit(code)


def handle_errors(fn):
    """One readable line and an exit code for every known failure; never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import TalkingHeadError

        try:
            return fn(*args, **kwargs)
        except TalkingHeadError as exc:
            _fail(str(exc), exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
    return wrapper


def make_client(**kw: Any):
    from .client import AsyncClient

    return AsyncClient(**kw)


def progress_bar():
    """A rich progress bar on stderr; silent when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
