"""Shared CLI plumbing: consoles, one-line user errors, device and thread options."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from unnparse.output_dir import OutputLock
    from unnparse.training.distributed import DistContext

__all__ = [
    "USER_ERRORS",
    "Nproc",
    "ThreadsOption",
    "VersionOption",
    "check_output_dir",
    "check_output_file",
    "err_console",
    "fail",
    "held_for_command",
    "interrupted",
    "join_processes",
    "option_range",
    "os_error_message",
    "relaunch_if_asked",
    "user_errors",
    "version_text",
    "warn",
    "without_option",
]

#: stderr; ``markup=False``: text from users (paths, file contents) is printed as it is, never read as rich markup;
#: ``soft_wrap``: a message is one line however long (the terminal folds it; a log file keeps it whole)
err_console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


def _user_error_types() -> tuple[type[BaseException], ...]:
    from unnparse.conllu.errors import CoNLLUError
    from unnparse.mnist.data import MnistDataError
    from unnparse.model_files import ModelFileError
    from unnparse.output_dir import OutputDirError
    from unnparse.parser.distillation import DistillationError
    from unnparse.parser.encoders import EncoderLoadError
    from unnparse.parser.treebank import TreebankError
    from unnparse.seqcomplete.data import SeqDataError

    return (
        CoNLLUError,
        ModelFileError,
        EncoderLoadError,
        TreebankError,
        MnistDataError,
        SeqDataError,
        OutputDirError,
        DistillationError,
        UnicodeDecodeError,
    )


USER_ERRORS = _user_error_types


def option_range(config: type, name: str) -> dict[str, float]:
    """``min``/``max`` for the typer option of the field ``name`` of the config dataclass ``config``, from the
    range declared beside the field (:func:`~unnparse.model_files.config_field`), so that the command line and the
    library accept the same values. An open upper end (``[0, 1)``) is left to the dataclass's own check, which the
    command reports in one line naming the option."""
    from dataclasses import fields

    limit = next(f.metadata["limit"] for f in fields(config) if f.name == name)
    bounds: dict[str, float] = {}
    if limit.kind in (int, float):
        if limit.low is not None:
            bounds["min"] = limit.kind(limit.low)
        if limit.high is not None and not limit.open_high:
            bounds["max"] = limit.kind(limit.high)
    return bounds


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr (one line, printed as it is) and exit with ``code``."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", message), soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str, label: str = "warning:") -> None:
    """Print ``warning: message`` on stderr (the label in yellow, the message as it is)."""
    err_console.print(Text.assemble((label, "yellow"), " ", message), soft_wrap=True)


def version_text() -> str:
    """``unnparse X (torch Y, transformers Z, Python W)``: what a bug report needs."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    import unnparse

    parts = []
    for package in ("torch", "transformers"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    parts.append(f"Python {platform.python_version()}")
    return f"unnparse {unnparse.__version__} ({', '.join(parts)})"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


VersionOption = Annotated[
    bool,
    typer.Option("--version", callback=_print_version, is_eager=True, help="Show the versions and exit."),
]


def _threads_help() -> str:
    from unnparse.cpu_threads import THREADS_CAP

    return (
        f"CPU threads for torch. Default (also 0): the CPUs this process may use, at most {THREADS_CAP}, fewer "
        "when the machine is already busy (load average); $OMP_NUM_THREADS when set."
    )


#: Every command's ``--threads`` (see :func:`unnparse.runtime.set_threads`, which applies it).
ThreadsOption = Annotated[
    int | None,
    typer.Option("--threads", min=0, help=_threads_help(), show_default=False),
]


def os_error_message(err: OSError) -> str:
    """One line for a file-system error: ``PATH: reason`` (the destination of a failed rename)."""
    reason = err.strerror or str(err)
    path = err.filename2 if err.filename2 is not None else err.filename
    if path is None:
        return str(err) if err.errno is None else reason
    return f"{os.fsdecode(path) if isinstance(path, bytes) else path}: {reason}"


def _unwritable_ancestor(path: Path) -> str | None:
    """Why a file or directory cannot be created at ``path`` (None when it can): the nearest existing ancestor is
    tried for real (a temporary file or folder made and removed there), since permission bits do not tell whether a
    file system takes new files (``/proc``, read-only mounts, root's rights)."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    return _write_probe(parent)


def _write_probe(directory: Path) -> str | None:
    """None when a file can be created in ``directory``, else why not."""
    try:
        fd, name = tempfile.mkstemp(prefix=".unnparse-probe-", dir=directory)
    except OSError as err:
        return f"{directory}: {err.strerror or err}"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


def check_output_dir(path: Path, option: str = "--output") -> None:
    """Fail at once (one line) when ``path`` cannot become an output directory, before any work is done."""
    if path.exists():
        if not path.is_dir():
            fail(f"{option} {path}: exists and is not a directory")
        problem = _write_probe(path)
    else:
        problem = _unwritable_ancestor(path)
    if problem:
        fail(f"{option} {path}: {problem}")


def check_output_file(path: Path, option: str = "--output") -> None:
    """Fail at once (one line) when ``path`` cannot be written as a file, before any work is done."""
    if path.is_dir():
        fail(f"{option} {path}: is a directory")
    problem = _unwritable_ancestor(path)
    if problem:
        fail(f"{option} {path}: {problem}")


def _warning_to_stderr(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    warn(" ".join(str(message).split()))


def user_errors(func: F) -> F:
    """Turn the project's input/model errors into one-line messages with exit status 1 (no traceback).

    Set ``UNNPARSE_DEBUG=1`` to see the traceback instead.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.showwarning = _warning_to_stderr
        with contextlib.ExitStack() as held:  # what the command holds (output locks) is released when it ends
            token = _held_by_command.set(held)
            try:
                return _run_reporting_errors(func, args, kwargs)
            finally:
                _held_by_command.reset(token)

    return wrapper  # type: ignore[return-value]


#: the resources held by the running command (see :func:`held_for_command`); set by :func:`user_errors`
_held_by_command: contextvars.ContextVar[contextlib.ExitStack | None] = contextvars.ContextVar(
    "unnparse_held_by_command", default=None
)


def _run_reporting_errors(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``func(*args, **kwargs)`` with the project's errors reported as one line (see :func:`user_errors`)."""
    try:
        return func(*args, **kwargs)
    except _user_error_types() as err:
        if os.environ.get("UNNPARSE_DEBUG"):
            raise
        fail(_one_line(str(err)))
    except BrokenPipeError:
        # the reader of our output went away (e.g. `| head`): stop quietly, as other Unix tools do
        _silence_stdout()
        sys.exit(1)
    except OSError as err:
        if os.environ.get("UNNPARSE_DEBUG"):
            raise
        fail(_one_line(os_error_message(err)))
    except ValueError as err:
        if os.environ.get("UNNPARSE_DEBUG"):
            raise
        from unnparse.model_files import ConfigValueError

        if isinstance(err, ConfigValueError):  # a setting built from the option of the same name
            option = "--" + err.key.rsplit(".", 1)[-1].replace("_", "-")
            fail(_one_line(f"{option} {str(err).removeprefix(err.key).strip()}"))
        # ValueErrors raised by option checks in our own code are user errors too
        fail(_one_line(str(err)))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


def _one_line(message: str) -> str:
    """``message`` on one line (runs of whitespace, newlines included, become one space)."""
    return " ".join(message.split())


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def held_for_command(lock: OutputLock | None) -> OutputLock | None:
    """Release ``lock`` (see :func:`unnparse.output_dir.claim_output_dir`) when the running command (a function
    wrapped by :func:`user_errors`) ends, however it ends; a process that dies releases it anyway.

    Raises:
        RuntimeError: not called inside a command wrapped by :func:`user_errors`.
    """
    if lock is not None:
        held = _held_by_command.get()
        if held is None:
            lock.release()
            raise RuntimeError("held_for_command() needs a command wrapped by user_errors")
        held.callback(lock.release)
    return lock


def interrupted(checkpoint: Path) -> NoReturn:
    """Leave a training command stopped by Ctrl-C (exit status 130), saying how to continue."""
    if checkpoint.is_file():
        err_console.print(
            f"interrupted; to continue from {checkpoint}, run the same command with --resume (and without --overwrite)",
            soft_wrap=True,
        )
    else:
        err_console.print("interrupted before the first checkpoint", soft_wrap=True)
    raise typer.Exit(130)


def without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` / ``name=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out


Nproc = Annotated[
    int,
    typer.Option(
        "--nproc", min=1, help="processes for distributed data-parallel training (launches torchrun; gloo on CPU)"
    ),
]


def join_processes(nproc: int, device: str, env: dict[str, str] | None = None) -> DistContext:
    """Where a training command of ``unn`` runs. With ``--nproc N`` (N > 1) outside torchrun, the command is run
    again under torchrun in N processes and this one exits with their status; under torchrun (``WORLD_SIZE`` set)
    this process joins the group (NCCL on CUDA, gloo on CPU; leave it with
    :func:`unnparse.training.distributed.shutdown`); otherwise one process on ``device``.

    Raises:
        ValueError: an unknown device, or CUDA asked for but not available.
    """
    from unnparse.runtime import resolve_device
    from unnparse.training.distributed import init_from_env

    resolved = resolve_device(device)
    relaunch_if_asked(nproc, module="unnparse.cli.unn_app", env=env)
    return init_from_env(resolved)


def relaunch_if_asked(nproc: int, module: str = "unnparse", env: dict[str, str] | None = None) -> None:
    """With ``--nproc N`` (N > 1) outside torchrun: run this command (``python -m module`` and this process's
    arguments but ``--nproc``) again under torchrun in N processes, with ``env`` added to their environment, and
    exit with their status."""
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from unnparse.training.distributed import relaunch_with_torchrun

        os.environ.update(env or {})
        raise typer.Exit(relaunch_with_torchrun(nproc, without_option(sys.argv[1:], "--nproc"), module=module))
