"""Running the service: models loaded once by name (:func:`load_models`), the application served by uvicorn
(:func:`serve`) until SIGINT or SIGTERM, after which the requests in flight are answered before it exits."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from unnparse.parser.predictor import Predictor
from unnparse.service.app import ServiceSettings, create_app, new_batcher

__all__ = ["load_models", "model_specs", "serve"]

#: A model's name in a request: letters, digits and ``._-``.
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def model_specs(values: Sequence[str]) -> list[tuple[str, Path]]:
    """``NAME=DIR`` or ``DIR`` (named after the directory) for each value, in order.

    Raises:
        ValueError: an empty or malformed name, or a name given twice.
    """
    specs: list[tuple[str, Path]] = []
    for value in values:
        name, sep, path = value.partition("=")
        if not sep:
            name, path = Path(value).resolve().name, value
        if not name or not set(name) <= _NAME_CHARS or not path:
            raise ValueError(f"--model {value!r}: expected NAME=DIR or DIR, the name made of letters, digits, '._-'")
        if any(name == other for other, _ in specs):
            raise ValueError(f"--model {value!r}: the name {name!r} is given twice (name them: NAME=DIR)")
        specs.append((name, Path(path)))
    return specs


def load_models(
    specs: Sequence[tuple[str, Path]], *, device: str = "auto", precision: str = "auto"
) -> dict[str, Predictor]:
    """The parsers of ``specs`` by name, loaded once (see :func:`unnparse.parser.loading.load`)."""
    from unnparse.parser.loading import load

    return {name: load(path, device=device, precision=precision) for name, path in specs}


def serve(
    parsers: dict[str, Predictor],
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: ServiceSettings | None = None,
    shutdown_seconds: float = 30.0,
    on_ready: Callable[[str], None] | None = None,
    log_level: str = "warning",
) -> None:
    """Serve ``parsers`` at ``host:port`` until SIGINT or SIGTERM (port 0: a free port); ``on_ready`` hears the
    address once it listens. On a signal the service stops taking connections, answers the requests it holds
    (for at most ``shutdown_seconds``; a second signal stops at once) and returns.

    Must be called from the main thread: the parsing runs there (torch's OpenMP threads are slower driven from
    another thread), the HTTP server in a thread of its own.

    Raises:
        OSError: the address cannot be listened on (one line).
    """
    import uvicorn

    settings = settings or ServiceSettings()
    batcher = new_batcher(parsers, settings, thread=False)
    app = create_app(parsers, settings, batcher=batcher)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:  # noqa: ANN001 - uvicorn's signature
            await super().startup(sockets)
            if self.started and on_ready is not None:
                bound = [s.getsockname() for server in self.servers for s in server.sockets]
                address = bound[0] if bound else (host, port)
                on_ready(f"http://{_host_text(str(address[0]))}:{address[1]}")

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level in ("info", "debug", "trace"),
        timeout_graceful_shutdown=shutdown_seconds,
        lifespan="on",
    )
    server = Server(config)
    failure: list[BaseException] = []

    def run_http() -> None:
        try:
            server.run()
        except BaseException as err:  # noqa: BLE001 - reported by the main thread (uvicorn exits on a bind error)
            failure.append(err)
        finally:
            batcher.close()  # the worker in the main thread finishes what it holds, then returns

    def on_signal(signum: int, frame: object) -> None:
        server.handle_exit(signum, frame)  # a graceful stop; a second signal stops at once

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, on_signal) for sig in handled}
    http = threading.Thread(target=run_http, name="unnparse-http", daemon=True)
    try:
        http.start()
        batcher.run()
    finally:
        server.should_exit = True
        http.join(shutdown_seconds + 5)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if failure or not server.started:
        raise OSError(f"cannot serve on {host}:{port}: {_bind_error(failure)}")


def _bind_error(failure: list[BaseException]) -> str:
    if failure and not isinstance(failure[0], SystemExit):
        return " ".join(str(failure[0]).split())
    return "the address is in use or not available here (see the message above)"


def _host_text(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def print_ready(address: str) -> None:
    """Say on stderr where the service listens."""
    print(f"unnparse serve: listening on {address} (pid {os.getpid()}; Ctrl+C or SIGTERM stops it)", file=sys.stderr)
    sys.stderr.flush()
