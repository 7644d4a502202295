"""What every command shares: the command and group classes that map errors
to exit codes (0 ok, 1 a check the user asked for failed, 2 bad input or a
tool error), and the loading of the network the model options name.

No exception leaves as a traceback. Bad input (MnsizeError, click's usage
errors), an output that cannot be written (stdout on a full disk or closed),
running out of memory or recursion, and a number past Python's 4,300-digit
limit are each one line on stderr and exit status 2. Anything else is a bug in
mnsize: also exit 2, as one line "internal error: <type>: <message>", unless
the environment sets MNSIZE_DEBUG=1, which lets it through with its traceback
(for mnsize's own tests, and for reporting the bug).
"""

from __future__ import annotations

import errno
import os
import re
import sys

import click

from ..errors import MnsizeError
from ..text import ASCII_ERRORS, printable, shows_unicode


class _Failure(click.ClickException):
    """A tool error raised inside a command, tagged with that command's path."""

    def __init__(self, message: str, where: str) -> None:
        super().__init__(message)
        self.where = where


class _PipeClosed(Exception):
    """stdout's reader went away (click would turn the BrokenPipeError into exit 1)."""


class _StdoutFailed(Exception):
    """Writing to stdout failed (a full disk, a closed descriptor): the output is lost."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Stream:
    """sys.stdout or sys.stderr while a command runs.

    Characters its encoding cannot show are written as ASCII (mnsize.text's
    "mnsize-ascii" handler) instead of raising UnicodeEncodeError. A failed
    write to stdout becomes _StdoutFailed, which no handler of file errors
    mistakes for its own; one to stderr is dropped, as there is nowhere left to
    say so. It has no ``buffer``, so click writes through it, not around it.
    """

    def __init__(self, stream, name: str) -> None:
        self._stream = stream  # None: the descriptor was closed when Python started
        self._name = name
        self.encoding = getattr(stream, "encoding", None) or "utf-8"
        self.errors = ASCII_ERRORS
        self._ascii = not shows_unicode(self.encoding)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._stream is None:
            if text:
                self._lost(OSError(errno.EBADF, f"{self._name} is closed"))
            return 0
        if self._ascii:
            text = text.encode(self.encoding, ASCII_ERRORS).decode(self.encoding)
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            if self._name == "stdout":
                raise
        except OSError as exc:
            self._lost(exc)
        return len(text)

    def flush(self) -> None:
        if self._stream is None:
            return
        try:
            self._stream.flush()
        except BrokenPipeError:
            if self._name == "stdout":
                raise
        except OSError as exc:
            self._lost(exc)

    def _lost(self, exc: OSError) -> None:
        if self._name == "stdout":
            raise _StdoutFailed(exc.strerror or str(exc)) from None

    def isatty(self) -> bool:
        try:
            return self._stream is not None and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        if self._stream is None:
            raise OSError(errno.EBADF, f"{self._name} is closed")
        return self._stream.fileno()

    def __getattr__(self, name: str):
        if name == "buffer" or self._stream is None:
            raise AttributeError(name)
        return getattr(self._stream, name)


def _silence(stream) -> None:
    """Point ``stream``'s descriptor at the null device, so that Python's flush
    at exit has nothing left to fail on (and prints no "Exception ignored")."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
    except (AttributeError, OSError, ValueError):  # no descriptor: an in-memory stream
        return
    os.dup2(null, fd)
    os.close(null)


_INT_LIMIT = "integer string conversion"


def _debug() -> bool:
    return os.environ.get("MNSIZE_DEBUG") == "1"


def _tool_error(exc: Exception) -> str | None:
    """The message for an error that is the input's or the machine's, not
    mnsize's; None for a bug."""
    if isinstance(exc, _StdoutFailed):
        return f"cannot write to stdout: {exc.reason}"
    if isinstance(exc, MnsizeError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory" + (f": {exc}" if str(exc) else ": the input asks for more than this machine has")
    if isinstance(exc, RecursionError):
        return "the input is nested too deeply to read (Python's recursion limit)"
    if isinstance(exc, ValueError) and _INT_LIMIT in str(exc):
        return "a number has more digits than Python converts (4,300)"
    return None


def error_message(exc: Exception) -> str:
    """What the one line on stderr says about ``exc``, an exception that is not
    click's (a command that reports errors elsewhere too says the same)."""
    message = _tool_error(exc)
    return message if message is not None else \
        f"internal error: {type(exc).__name__}: {exc} (MNSIZE_DEBUG=1 shows where)"


def _failure(exc: Exception, where: str) -> click.ClickException:
    """``exc`` as a one-line failure of the command at ``where``; a bug is
    re-raised under MNSIZE_DEBUG=1."""
    if _tool_error(exc) is None and _debug():
        raise exc
    return _Failure(error_message(exc), where)


_PASS_THROUGH = (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, _PipeClosed)


class MnsizeCommand(click.Command):
    def make_context(self, info_name, args, parent=None, **extra):
        # options are converted here, before invoke: a parameter type that
        # raises rather than fails is caught as well
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            where = f"{parent.command_path} {info_name}" if parent is not None else str(info_name)
            raise _failure(exc, where) from None

    def invoke(self, ctx):
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()
            return result
        except BrokenPipeError:
            raise _PipeClosed from None
        except _PASS_THROUGH:
            raise
        except Exception as exc:
            raise _failure(exc, ctx.command_path) from None


class MnsizeGroup(click.Group):
    """Reports every usage error and tool error as one line on stderr with exit
    status 2, instead of click's multi-line usage block or a traceback (see the
    module's docstring)."""

    command_class = MnsizeCommand

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        saved = sys.stdout, sys.stderr
        if not isinstance(sys.stdout, _Stream):
            sys.stdout, sys.stderr = _Stream(sys.stdout, "stdout"), _Stream(sys.stderr, "stderr")
        try:
            code = self._run(args, prog_name or "mnsize", complete_var, **extra)
        finally:
            sys.stdout, sys.stderr = saved
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(self, args, prog_name, complete_var, **extra) -> int:
        try:
            try:
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            except click.exceptions.NoArgsIsHelpError as exc:
                click.echo(exc.ctx.get_help())
                code = 0
        except _PipeClosed:
            code = 141
        except BrokenPipeError:
            code = 141
        except click.ClickException as exc:
            where = getattr(exc, "where", None)
            if where is None:
                ctx = getattr(exc, "ctx", None)
                where = ctx.command_path if ctx is not None else prog_name
            code = _fail(exc.format_message(), where)
        except click.exceptions.Abort:
            code = _fail("aborted", prog_name, status=130)
        except Exception as exc:
            code = _fail(_failure(exc, prog_name).format_message(), prog_name)
        code = code if isinstance(code, int) else 0
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            code = 141
        except _StdoutFailed as exc:
            if code != 2:  # else reported already, or lost behind another error
                code = _fail(f"cannot write to stdout: {exc.reason}", prog_name)
        if code == 141 or _stdout_lost(sys.stdout):
            # `mnsize table | head`: the reader left (exit as a process killed by
            # SIGPIPE would, 128 + 13); or stdout failed and was reported. Either
            # way, keep Python quiet at its final flush.
            _silence(sys.stdout._stream)
        return code


def _stdout_lost(stream: _Stream) -> bool:
    """Whether stdout still holds output it cannot write."""
    try:
        stream.flush()
    except (_StdoutFailed, BrokenPipeError):
        return True
    return False


_LONG_NUMBER = re.compile(r"\d{41,}")


def _fail(message: str, where: str, status: int = 2) -> int:
    one_line = printable(" ".join(message.split()))
    # a value of thousands of digits, quoted back, would bury the message
    one_line = _LONG_NUMBER.sub(lambda m: f"{m[0][:12]}...({len(m[0]):,} digits)", one_line)
    click.echo(f"{printable(where)}: error: {one_line}", err=True)
    return status


def _one_of(resolution, rho) -> None:
    if resolution is not None and rho is not None:
        raise click.UsageError("give either --res or --rho, not both")


def load_network(model, alpha, resolution, rho, classes):
    """The network the shared model options name (mnsize.models.load_network);
    --res and --rho together are refused before any file is read."""
    from .. import models

    _one_of(resolution, rho)
    return models.load_network(model, alpha, resolution, classes, rho=rho)


def resolve_resolution(model, resolution, rho) -> tuple[int, int]:
    """The input size --res or --rho gives for ``model`` (--rho reads its spec)."""
    from .. import models

    _one_of(resolution, rho)
    return models.resolve_resolution(models.load_spec(model), resolution, rho)


def progress(label: str):
    """A rich progress bar on a terminal's stderr, else nothing: (tick, close)."""
    if not sys.stderr.isatty():
        return None, lambda: None
    from rich.console import Console
    from rich.progress import Progress

    bar = Progress(transient=True, console=Console(stderr=True))
    bar.start()
    task = bar.add_task(label, total=1.0)
    return (lambda share=None: bar.advance(task, share if share is not None else 0)), bar.stop


def note(ctx, text: str) -> None:
    """A remark on stderr: it changes neither stdout nor the exit status."""
    click.echo(f"{ctx.command_path}: note: {printable(text)}", err=True)


def warn(ctx, text: str) -> None:
    """A warning on stderr: it changes neither stdout nor the exit status."""
    click.echo(f"{ctx.command_path}: warning: {printable(text)}", err=True)


def warn_if_poor(ctx, device_profile) -> None:
    """A warning when a latency profile's held-out error marks it poor."""
    text = device_profile.quality_warning()
    if text is not None:
        warn(ctx, text)


#: whose network a spec's framework says it is, as a note puts it
_WHOSE = {"paper": "the paper's", "torchvision": "torchvision's", "tf-slim": "TF-Slim's"}


def keras_note(convention, spec, model: str) -> str | None:
    """Which network --convention keras counts, where it is not Keras's own;
    None where there is nothing to say. The convention changes the parameter
    accounting (4 per BatchNorm channel), never the network: a spec that
    follows another framework is counted as that framework builds it (its
    built-in Keras twin, ``<name>_keras``, is named where one exists), a spec
    that names no framework as its file defines it, and an ONNX file
    (``spec`` None) as the file holds it."""
    from ..models import builtin_names

    if convention.name != "keras" or (spec is not None and spec.framework == "keras"):
        return None
    accounting = "with Keras's parameter accounting (4 per BatchNorm channel)"
    if spec is None:
        return f"--convention keras counts the network in {model} as the file holds it, {accounting}"
    if not spec.framework:
        return f"{spec.name} names no framework: --convention keras counts the network as its spec file " \
               f"defines it, {accounting}"
    whose = _WHOSE.get(spec.framework, f"{spec.framework}'s")
    text = f"{spec.name} is {whose} network; --convention keras counts it {accounting}"
    twin = f"{spec.name}_keras"
    if twin in builtin_names():
        text += f", and Keras's own, which can differ at some widths and resolutions, is --model {twin}"
    return text


def note_keras(ctx, convention, spec, model: str) -> None:
    """keras_note's remark on stderr, if any, after what stdout holds so far."""
    text = keras_note(convention, spec, model)
    if text is not None:
        sys.stdout.flush()
        note(ctx, text)
