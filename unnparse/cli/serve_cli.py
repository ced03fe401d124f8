"""``unnparse serve``: parsers behind an HTTP API and a page to look at their trees (:mod:`unnparse.service`)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from unnparse.cli.common import ThreadsOption, err_console, fail
from unnparse.cli.help_format import in_panel
from unnparse.cli.parse_options import (
    MaxWordsOption,
    ParsePrecision,
    ParsePrecisionOption,
    resolve_model,
    warn_precision,
)
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS

__all__ = ["serve"]

_LIMITS = "Limits and batching"


def serve(
    model: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--model",
            help="A model to serve, as NAME=DIR or DIR (named after the folder); repeat it for several (the first is "
            "the default). Default: $UNNPARSE_MODEL, else the newest under ./models.",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: a free one, printed).", min=0, max=65535)] = 8000,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    precision: ParsePrecisionOption = ParsePrecision.auto,
    threads: ThreadsOption = None,
    max_request_kb: in_panel(
        Annotated[int, typer.Option(help="Largest request body, in KiB (413 beyond it).", min=1, max=1 << 20)],
        _LIMITS,
    ) = 1024,
    queue_mb: in_panel(
        Annotated[
            float,
            typer.Option(help="Most input waiting or being parsed, in MiB (503 and Retry-After beyond it).", min=0.001),
        ],
        _LIMITS,
    ) = 16.0,
    max_words: in_panel(MaxWordsOption, _LIMITS) = DEFAULT_MAX_WORDS,
    batch_window_ms: in_panel(
        Annotated[
            float,
            typer.Option(help="How long a request waits for others to share its batch, in ms.", min=0, max=10_000),
        ],
        _LIMITS,
    ) = 10.0,
    batch_words: in_panel(
        Annotated[int, typer.Option(help="Most words of the requests parsed together as one input.", min=1)],
        _LIMITS,
    ) = 8000,
    batch_requests: in_panel(
        Annotated[int, typer.Option(help="Most requests parsed together (1: one at a time).", min=1)], _LIMITS
    ) = 256,
    batch_tokens: in_panel(
        Annotated[int, typer.Option(help="Words per batch inside that input (as parse --batch-tokens).", min=1)],
        _LIMITS,
    ) = 4000,
    shutdown_seconds: in_panel(
        Annotated[
            float,
            typer.Option(help="On SIGTERM or Ctrl+C, how long the requests in flight may take to finish.", min=0),
        ],
        _LIMITS,
    ) = 30.0,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level (info: one line per request).")] = "warning",
) -> None:
    """Serve parsers over HTTP: POST /parse, GET /models, GET /health, and a page at / to see the trees.

    Requests that arrive together are parsed in shared batches; each answer is what `unnparse parse` writes for the
    same input. See the README's "Parsing service" for the API and curl examples, or /docs once it runs.
    """
    from unnparse.runtime import set_threads
    from unnparse.service.app import ServiceSettings
    from unnparse.service.server import load_models, model_specs, print_ready
    from unnparse.service.server import serve as run_service

    if log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
        fail(f"--log-level {log_level!r}: expected critical, error, warning, info, debug or trace")
    if model:
        try:
            specs = model_specs(model)
        except ValueError as err:
            fail(str(err))
    else:  # the default model, named after its folder
        path = resolve_model(None)
        specs = [(path.resolve().name or "default", path)]
    set_threads(threads)
    parsers = load_models(specs, device=device, precision=precision.value)
    warn_precision(precision, next(iter(parsers.values())).device)
    settings = ServiceSettings(
        max_request_bytes=max_request_kb * 1024,
        max_words=max_words,
        batch_window=batch_window_ms / 1000,
        gather_words=batch_words,
        max_requests=batch_requests,
        batch_tokens=batch_tokens,
        queue_bytes=max(1, int(queue_mb * (1 << 20))),
    )
    err_console.print(
        f"serving {', '.join(f'{name} ({path})' for name, path in specs)}", soft_wrap=True, highlight=False
    )
    run_service(
        parsers,
        host=host,
        port=port,
        settings=settings,
        shutdown_seconds=shutdown_seconds,
        on_ready=print_ready,
        log_level=log_level,
    )
    err_console.print("unnparse serve: stopped", highlight=False)
