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
    "err_console",
    "fail",
    "interrupted",
    "join_processes",
    "relaunch_if_asked",
    "user_errors",
    "warn_new_run_over",
    "without_option",
]

err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])


def _user_error_types() -> tuple[type[BaseException], ...]:
    from unnparse.model_files import ModelFileError
    from unnparse.parser.conllu_data import CoNLLUError
    from unnparse.parser.encoders import EncoderLoadError
    from unnparse.parser.treebank import TreebankError

    return (
        CoNLLUError,
        ModelFileError,
        EncoderLoadError,
        TreebankError,
        FileNotFoundError,
        FileExistsError,
        UnicodeDecodeError,
    )


USER_ERRORS = _user_error_types


def fail(message: str, code: int = 1) -> None:
    """Print ``error: message`` on stderr (one line) and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True, markup=True)
    raise typer.Exit(code)


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
            fail(str(err).replace("[", "\\["))
        except ValueError as err:
            if os.environ.get("UNNPARSE_DEBUG"):
                raise
            # ValueErrors raised by option checks in our own code are user errors too
            fail(str(err).replace("[", "\\["))
        except KeyboardInterrupt:
            err_console.print("interrupted")
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


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
