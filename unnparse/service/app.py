"""The HTTP API of ``unnparse serve`` (an ASGI application on FastAPI): ``POST /parse``, ``GET /models``,
``GET /health`` and the page at ``/`` (:mod:`unnparse.service.page`); ``/docs`` and ``/openapi.json`` describe it.

``POST /parse`` takes the input as the body (text, tokenized text or CoNLL-U; options in the query string) and
answers with exactly what ``unnparse parse`` writes for it; or takes a JSON object (``Content-Type:
application/json``, the input in ``"input"``, the options beside it) and answers with a JSON object holding that
output, the counts and any warnings. Sentences of concurrent requests are parsed in shared batches
(:class:`~unnparse.service.batcher.ParseBatcher`). Errors are a JSON ``{"detail": "<one line>"}`` with the message
``unnparse parse`` gives: 400 for unreadable input, 404 for an unknown model, 413 for a body over the limit, 422 for
a bad option, 503 (with ``Retry-After``) when the queue is full or the service is stopping.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from unnparse.conllu.errors import CoNLLUError
from unnparse.conllu.sentence import Sentence
from unnparse.parser.formats import InputFormat, OutputFormat, TokenizerChoice
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS, ParseMemoryError, piece_spans, split_message
from unnparse.parser.parse_jobs import ParseOptions, read_sentences, write_parses
from unnparse.parser.predictor import ParsedSentence, Predictor
from unnparse.service.batcher import BatchKey, ParseBatcher, QueueFullError, ShuttingDownError
from unnparse.service.model_info import model_summary
from unnparse.service.page import page_html
from unnparse.text.raw_text import read_text

__all__ = ["ParseRequest", "ServiceSettings", "create_app", "new_batcher"]

#: How the input of a request is named in its error messages and warnings (``<request>:3: ...``).
REQUEST_NAME = "<request>"

_MEDIA_TYPES = {
    "conllu": "text/plain; charset=utf-8",
    "json": "application/x-ndjson; charset=utf-8",
    "tree": "text/plain; charset=utf-8",
    "svg": "text/plain; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@dataclass(frozen=True)
class ServiceSettings:
    """The limits and batching of a service.

    Attributes:
        max_request_bytes: the largest body accepted (413 beyond it).
        max_words: the longest sentence parsed whole (longer ones are parsed in pieces; a request may ask for less).
        batch_window: seconds a request waits for others to share its batch.
        gather_words: the most words parsed as one input.
        max_requests: the most requests in one input (1: one request at a time).
        batch_tokens: words per batch inside that input.
        queue_bytes: the most bytes of input waiting or being parsed (503 beyond it).
        retry_after: seconds a client is told to wait after a 503.
    """

    max_request_bytes: int = 1_000_000
    max_words: int = DEFAULT_MAX_WORDS
    batch_window: float = 0.01
    gather_words: int = 8000
    max_requests: int = 256
    batch_tokens: int = 4000
    queue_bytes: int = 16 << 20
    retry_after: int = 1


class ParseRequest(BaseModel):
    """A JSON parse request: the input and the options of ``unnparse parse``."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(description="The text, tokenized text (one sentence per line) or CoNLL-U to parse.")
    model: str | None = Field(None, description="A model's name (GET /models); default: the first one served.")
    input_format: InputFormat = InputFormat.text
    output_format: OutputFormat = OutputFormat.conllu
    also: list[OutputFormat] = Field(
        default_factory=list, description="Further formats of the same parses, in the answer's `outputs`."
    )
    marginals: bool = Field(False, description="Add the arc probabilities.")
    tokenizer: TokenizerChoice = TokenizerChoice.auto
    clear_tags: bool = Field(False, description="Empty the tags and lemmas of CoNLL-U input first.")
    max_words: int | None = Field(None, ge=2, description="Parse longer sentences in pieces (at most the server's).")


class ParseAnswer(BaseModel):
    """The answer to a JSON parse request."""

    model: str
    output_format: OutputFormat
    output: str = Field(description="What `unnparse parse` writes for this input, byte for byte.")
    outputs: dict[str, str] = Field(default_factory=dict, description="The formats asked for in `also`.")
    sentences: int
    words: int
    warnings: list[str] = Field(default_factory=list)


class HTTPProblemError(Exception):
    """An error answered with ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def create_app(
    parsers: Mapping[str, Predictor],
    settings: ServiceSettings | None = None,
    *,
    batcher: ParseBatcher | None = None,
) -> FastAPI:
    """The service's application for ``parsers`` by name (the first is the default model).

    Requests are parsed by ``batcher`` (made from ``parsers`` and ``settings``, whose worker the caller runs and
    closes), or else by a batcher of its own that starts with the application (ASGI lifespan) and, when the
    application shuts down, finishes the requests it holds before stopping.

    Raises:
        ValueError: no parsers.
    """
    if not parsers:
        raise ValueError("a service needs at least one model")
    settings = settings or ServiceSettings()
    names = list(parsers)
    summaries = {name: model_summary(name, parser, default=i == 0) for i, (name, parser) in enumerate(parsers.items())}
    # the texts of the requests read together are labelled by each model's trained tokenizer in one batch
    prefetchers = {name: partial(_prefetch_texts, parser) for name, parser in parsers.items() if parser.tokenizer}
    state: dict[str, ParseBatcher] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # noqa: ANN202 - an async context manager
        if batcher is not None:
            state["batcher"] = batcher
            yield
            return
        state["batcher"] = new_batcher(parsers, settings)
        try:
            yield
        finally:
            await asyncio.to_thread(state["batcher"].close)

    app = FastAPI(
        title="unnparse",
        summary="Dependency parsing with undirected neural networks",
        description=__doc__ or "",
        lifespan=lifespan,
    )

    @app.exception_handler(HTTPProblemError)
    async def problem(_request: Request, err: HTTPProblemError) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, status_code=err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": _validation_line(err.errors())}, status_code=422)

    def current_batcher() -> ParseBatcher:
        if "batcher" not in state:
            raise HTTPProblemError(503, "the service is starting", {"Retry-After": str(settings.retry_after)})
        return state["batcher"]

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(page_html())

    @app.get("/health", summary="Whether the service is up, and what it holds")
    async def health() -> dict[str, Any]:
        b = current_batcher()
        stats = b.stats
        return {
            "status": "stopping" if b.closing else "ok",
            "models": names,
            "queue": {"requests": stats.queued_requests, "bytes": stats.queued_bytes, "max_bytes": b.queue_bytes},
            "parsed": {
                "requests": stats.requests,
                "batches": stats.batches,
                "sentences": stats.sentences,
                "words": stats.words,
            },
        }

    @app.get("/models", summary="The models served: name, treebank, encoder, K, tags, scores from training")
    async def models() -> list[dict[str, Any]]:
        return list(summaries.values())

    @app.post(
        "/parse",
        summary="Parse text, tokenized text or CoNLL-U",
        openapi_extra={
            "requestBody": {
                "content": {
                    "text/plain": {"schema": {"type": "string"}},
                    "application/json": {"schema": ParseRequest.model_json_schema()},
                },
                "required": True,
            }
        },
        responses={
            200: {"description": "The parses: the body as `unnparse parse` writes it, or a JSON answer"},
            400: {"description": "Unreadable input (the line at fault)"},
            404: {"description": "Unknown model"},
            413: {"description": "The body is over the size limit"},
            503: {"description": "The queue is full or the service is stopping (see Retry-After)"},
        },
    )
    async def parse(
        request: Request,
        model: Annotated[str | None, Query(description="A model's name; default: the first one served")] = None,
        input_format: InputFormat = InputFormat.text,
        output_format: OutputFormat = OutputFormat.conllu,
        marginals: bool = False,
        tokenizer: TokenizerChoice = TokenizerChoice.auto,
        clear_tags: bool = False,
        max_words: Annotated[int | None, Query(ge=2)] = None,
    ) -> Response:
        body = await _read_body(request, settings.max_request_bytes)
        as_json = request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"
        if as_json:
            try:
                req = ParseRequest.model_validate_json(body)
            except ValidationError as err:
                raise HTTPProblemError(422, _validation_line(err.errors())) from None
        else:
            req = ParseRequest.model_construct(
                input="",
                model=model,
                input_format=input_format,
                output_format=output_format,
                also=[],
                marginals=marginals,
                tokenizer=tokenizer,
                clear_tags=clear_tags,
                max_words=max_words,
            )
        name = req.model or names[0]
        if name not in parsers:
            raise HTTPProblemError(404, f"unknown model {name!r}: this service has {', '.join(map(repr, names))}")
        parser = parsers[name]
        limit = min(req.max_words or settings.max_words, settings.max_words)
        options = ParseOptions(
            input_format=req.input_format.value,
            output_format=req.output_format.value,
            marginals=req.marginals,
            batch_tokens=settings.batch_tokens,
            max_words=limit,
            tokenizer=req.tokenizer.value,
            clear_tags=req.clear_tags,
        )
        raw = req.input.encode("utf-8") if as_json else body
        formats = [options.output_format, *(f.value for f in req.also if f.value != options.output_format)]
        warnings: list[str] = []
        read_input = partial(_read, parser, raw, options, warnings)
        answer_with = partial(_answer, name, options, formats, warnings)
        try:
            key = BatchKey(name, options.marginals, limit)
            shared = None
            if options.input_format == "text" and options.tokenizer != "rules" and name in prefetchers:
                shared = (prefetchers[name], raw)
            future = current_batcher().submit(key, read_input, answer_with, len(raw), prefetch=shared)
        except (QueueFullError, ShuttingDownError) as err:
            raise HTTPProblemError(503, str(err), {"Retry-After": str(settings.retry_after)}) from None
        try:
            answer: ParseAnswer = await asyncio.wrap_future(future)
        except HTTPProblemError:
            raise
        except ParseMemoryError as err:  # names the sentence: a smaller max_words parses it
            raise HTTPProblemError(413, _one_line(str(err))) from None
        except Exception as err:  # noqa: BLE001 - answered in one line, not as a stack trace
            raise HTTPProblemError(500, _one_line(f"parsing failed: {err}")) from None
        if not as_json:
            return Response(answer.output, media_type=_MEDIA_TYPES[options.output_format])
        return JSONResponse(answer.model_dump(mode="json"))

    return app


def new_batcher(parsers: Mapping[str, Predictor], settings: ServiceSettings, *, thread: bool = True) -> ParseBatcher:
    """A batcher for ``parsers`` with the batching and limits of ``settings`` (see :class:`ParseBatcher`)."""
    return ParseBatcher(
        parsers,
        window=settings.batch_window,
        gather_words=settings.gather_words,
        max_requests=settings.max_requests,
        batch_tokens=settings.batch_tokens,
        queue_bytes=settings.queue_bytes,
        thread=thread,
    )


async def _read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPProblemError(
            413, f"the request body has {int(declared):,} bytes; the most this service takes is {limit:,}"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPProblemError(413, f"the request body is over {limit:,} bytes, the most this service takes")
        chunks.append(chunk)
    return b"".join(chunks)


def _read(parser: Predictor, raw: bytes, options: ParseOptions, warnings: list[str]) -> list[Sentence]:
    """The sentences of a request (as ``unnparse parse`` reads them), or a 400 with the reader's one line."""
    try:
        return list(read_sentences(parser, io.BytesIO(raw), options, name=REQUEST_NAME, on_warning=warnings.append))
    except (CoNLLUError, UnicodeDecodeError, ValueError) as err:
        raise HTTPProblemError(400, _one_line(str(err))) from None


def _prefetch_texts(parser: Predictor, raws: list[bytes]) -> None:
    """Label the texts of several requests with ``parser``'s trained tokenizer in one batch, ahead of reading them
    (:meth:`~unnparse.text.trained_tokenizer.TrainedTokenizer.prefetch`; unreadable ones are left to the reading)."""
    texts = []
    for raw in raws:
        try:
            texts.append(list(read_text(io.BytesIO(raw), REQUEST_NAME)))
        except (CoNLLUError, UnicodeDecodeError, ValueError):
            continue
    if parser.tokenizer is not None and texts:
        parser.tokenizer.prefetch(texts)


def _answer(
    model: str, options: ParseOptions, formats: list[str], warnings: list[str], results: list[ParsedSentence]
) -> ParseAnswer:
    """The answer to a request from its parses: the output in each format, the counts, the warnings (with those for
    sentences parsed in pieces, as ``unnparse parse`` prints them)."""
    outputs = {}
    for fmt in formats:
        out = io.StringIO()
        write_parses(results, out, fmt, flush_every=0)
        outputs[fmt] = out.getvalue()
    notices = [
        split_message(
            p.sentence,
            len(piece_spans(len(p.sentence), options.max_words)),
            options.max_words,
            marginals=options.marginals,
        )
        for p in results
        if len(p.sentence) > options.max_words
    ]
    return ParseAnswer(
        model=model,
        output_format=OutputFormat(formats[0]),
        output=outputs[formats[0]],
        outputs={f: outputs[f] for f in formats[1:]},
        sentences=len(results),
        words=sum(len(p.sentence) for p in results),
        warnings=warnings + notices,
    )


def _one_line(message: str) -> str:
    return " ".join(message.split())


def _validation_line(errors: Any) -> str:
    """One line for pydantic's errors: the first one's field and message."""
    first = errors[0] if errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body", "query"))
    message = first.get("msg", "invalid request")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return _one_line(f"{where}: {message}{more}" if where else f"{message}{more}")
