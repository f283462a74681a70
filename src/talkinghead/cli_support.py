"""Helpers shared by the CLI modules: error handling, the client, the progress bar."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # annotations only: the CLI imports the library lazily (start-up time)
    from .client import AsyncClient


def _fail(message: str, code: int, *, as_json: bool = False, kind: str = "Error",
          field: str | None = None) -> None:
    """One ``error: ...`` line on stderr; with ``--json`` also a JSON object on stdout, so a
    script reading stdout learns what went wrong: type, field, message, exit code."""
    from .log import redact

    message = redact(message)
    if as_json:
        import json

        click.echo(json.dumps({"type": kind, "field": field, "message": message, "exit_code": code}))
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def json_or_none_listed(rows: list[dict[str, Any]], as_json: bool, none_note: str) -> bool:
    """A listing's start: with ``--json`` the rows as a JSON array; with no rows ``none_note``
    on stderr. True when that was all: otherwise the caller prints the rows as text."""
    if as_json:
        import json

        click.echo(json.dumps(rows, indent=2))
        return True
    if not rows:
        click.echo(none_note, err=True)
        return True
    return False


def _wants_json(args: Any) -> bool:
    return isinstance(args, (list, tuple)) and "--json" in args


class OneLineGroup(click.Group):
    """A group whose usage errors (a bad option value, a missing option) print one line,
    ``error: ...``, and exit 2, like every other error, instead of click's usage block."""

    def make_context(self, info_name: Any, args: Any, *rest: Any, **kwargs: Any) -> click.Context:
        self._json = _wants_json(args)
        with _one_line_usage_errors(self._json):
            return super().make_context(info_name, args, *rest, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line_usage_errors(getattr(self, "_json", False)):
            return super().invoke(ctx)


class _UsageLine(click.ClickException):
    exit_code = 2

    def __init__(self, message: str, as_json: bool = False) -> None:
        super().__init__(message)
        self.as_json = as_json

    def show(self, file: Any = None) -> None:
        if self.as_json:
            import json

            click.echo(json.dumps({"type": "UsageError", "field": None, "message": self.format_message(),
                                   "exit_code": self.exit_code}))
        click.echo(f"error: {self.format_message()}", err=True)


@contextlib.contextmanager
def _one_line_usage_errors(as_json: bool = False) -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError:
        raise  # the bare command prints its help
    except click.UsageError as exc:
        raise _UsageLine(exc.format_message(), as_json) from None


def handle_errors(fn):
    """One readable line and an exit code for every known failure; never a traceback.

    Anything else is a bug, not a bad input (every input has its own typed error): it exits 4
    with one line, and the traceback goes to stderr only with -v."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from .errors import TalkingHeadError

        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except TalkingHeadError as exc:
            _fail(str(exc), exc.exit_code, as_json=as_json, kind=type(exc).__name__,
                  field=getattr(exc, "field", None))
        except KeyboardInterrupt:
            _fail("interrupted", 130, as_json=as_json, kind="KeyboardInterrupt")
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # the guard at the CLI boundary
            ctx = click.get_current_context(silent=True)
            if ctx is not None and ctx.find_root().params.get("verbose"):
                import traceback

                traceback.print_exc()
            reason = str(exc).splitlines()[0][:200] if str(exc) else ""
            _fail(f"unexpected {type(exc).__name__}{': ' + reason if reason else ''} "
                  "(run with -v for details)", 4, as_json=as_json, kind=type(exc).__name__)
    return wrapper


class FilePath(click.Path):
    """click's Path, refusing a NUL in the name as a usage error: ``os.stat`` raises ValueError
    for it, which click does not catch (argv cannot hold a NUL, but ``main(args)`` can)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if "\0" in str(value):
            self.fail(f"{str(value)!r} contains a NUL character", param, ctx)
        return super().convert(value, param, ctx)


class Number(click.ParamType):
    """A finite number at least ``minimum`` (or above it, when not ``inclusive``): click's
    float takes "nan" and "inf", and a nan limit would pass every check."""

    name = "number"

    def __init__(self, minimum: float = 0.0, inclusive: bool = True) -> None:
        self.minimum, self.inclusive = minimum, inclusive

    def convert(self, value: Any, param: Any, ctx: Any) -> float:
        import math

        try:
            out = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        if out < self.minimum or (not self.inclusive and out <= self.minimum):
            bound = "at least" if self.inclusive else "more than"
            self.fail(f"{out:g} is out of range; it must be {bound} {self.minimum:g}", param, ctx)
        return out + 0.0


def add_verbose_everywhere(group: click.Group) -> None:
    """Accept ``-v``/``--verbose`` after any subcommand too (``generate -v``), adding to the
    count given before it."""
    def bump(ctx: click.Context, param: click.Parameter, value: int) -> None:
        if value:
            from .cli import _setup_logging

            _setup_logging(value + (ctx.find_root().params.get("verbose") or 0))

    for command in group.commands.values():
        if not any(p.name == "verbose" for p in command.params):
            command.params.append(click.Option(["-v", "--verbose"], count=True, expose_value=False,
                                               callback=bump, help="Log job steps to stderr (-vv for debug)."))
        if isinstance(command, click.Group):
            add_verbose_everywhere(command)


def make_client(**kw: Any) -> AsyncClient:
    from .client import AsyncClient

    # A CLI process makes at most a few jobs: what they need loads when they need it.
    return AsyncClient(**{"preload": False, **kw})


def progress_bar():
    """A rich progress bar on stderr; silent when stderr is not a terminal."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                    TimeElapsedColumn(), console=console, transient=True, disable=not console.is_terminal)
