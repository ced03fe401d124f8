"""Shared CLI plumbing: consoles, one-line user errors, device and thread options."""

from __future__ import annotations

import functools
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

if TYPE_CHECKING:
    from unnparse.distributed import DistContext

__all__ = [
    "USER_ERRORS",
    "Nproc",
    "VersionOption",
    "check_output_dir",
    "check_output_file",
    "err_console",
    "fail",
    "interrupted",
    "join_processes",
    "os_error_message",
    "relaunch_if_asked",
    "user_errors",
    "version_text",
    "warn_new_run_over",
    "without_option",
]

err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def _user_error_types() -> tuple[type[BaseException], ...]:
    from unnparse.mnist.data import MnistDataError
    from unnparse.model_files import ModelFileError
    from unnparse.parser.conllu_data import CoNLLUError
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
        UnicodeDecodeError,
    )


USER_ERRORS = _user_error_types


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr (one line) and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)
    raise typer.Exit(code)


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


def os_error_message(err: OSError) -> str:
    """One line for a file-system error: ``PATH: reason`` (the destination of a failed rename)."""
    reason = err.strerror or str(err)
    path = err.filename2 if err.filename2 is not None else err.filename
    if path is None:
        return str(err) if err.errno is None else reason
    return f"{os.fsdecode(path) if isinstance(path, bytes) else path}: {reason}"


def _unwritable_ancestor(path: Path) -> str | None:
    """Why a file or directory cannot be created at ``path`` (None when it probably can)."""
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent}: permission denied"
    return None


def check_output_dir(path: Path, option: str = "--output") -> None:
    """Fail at once (one line) when ``path`` cannot become an output directory, before any work is done."""
    if path.exists():
        if not path.is_dir():
            fail(f"{option} {path}: exists and is not a directory")
        if not os.access(path, os.W_OK | os.X_OK):
            fail(f"{option} {path}: permission denied")
        return
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
    err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def user_errors(func: F) -> F:
    """Turn the project's input/model errors into one-line messages with exit status 1 (no traceback).

    Set ``UNNPARSE_DEBUG=1`` to see the traceback instead.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.showwarning = _warning_to_stderr
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
            # ValueErrors raised by option checks in our own code are user errors too
            fail(_one_line(str(err)))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _one_line(message: str) -> str:
    """``message`` on one line (runs of whitespace, newlines included, become one space), safe from rich markup."""
    return " ".join(message.split()).replace("[", "\\[")


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's final flush raises nothing more."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def warn_new_run_over(checkpoint: Path, resume: bool) -> None:
    """Warn (stderr) when a training run without ``--resume`` is about to replace the checkpoint of another."""
    if not resume and checkpoint.is_file():
        err_console.print(
            f"[yellow]warning:[/] starting a new run: it replaces {checkpoint} (--resume continues that run)",
            soft_wrap=True,
        )


def interrupted(checkpoint: Path) -> NoReturn:
    """Leave a training command stopped by Ctrl-C (exit status 130), saying how to continue."""
    if checkpoint.is_file():
        err_console.print(f"interrupted; the same command with --resume continues from {checkpoint}", soft_wrap=True)
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


def join_processes(nproc: int, device: str) -> DistContext:
    """Where a training command of ``unn`` runs. With ``--nproc N`` (N > 1) outside torchrun, the command is run
    again under torchrun in N processes and this one exits with their status; under torchrun (``WORLD_SIZE`` set)
    this process joins the group (NCCL on CUDA, gloo on CPU; leave it with :func:`unnparse.distributed.shutdown`);
    otherwise one process on ``device``.

    Raises:
        ValueError: an unknown device, or CUDA asked for but not available.
    """
    from unnparse.distributed import init_from_env
    from unnparse.runtime import resolve_device

    resolved = resolve_device(device)
    relaunch_if_asked(nproc, module="unnparse.cli.unn_app")
    return init_from_env(resolved)


def relaunch_if_asked(nproc: int, module: str = "unnparse") -> None:
    """With ``--nproc N`` (N > 1) outside torchrun: run this command (``python -m module`` and this process's
    arguments but ``--nproc``) again under torchrun in N processes and exit with their status."""
    if nproc > 1 and "WORLD_SIZE" not in os.environ:
        from unnparse.distributed import relaunch_with_torchrun

        raise typer.Exit(relaunch_with_torchrun(nproc, without_option(sys.argv[1:], "--nproc"), module=module))
