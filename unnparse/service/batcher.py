"""Concurrent parse requests gathered into shared batches.

A :class:`ParseBatcher` owns the parsers and one worker, which does all of a request's work: reading its input into
sentences, parsing, writing the output. Requests (:meth:`ParseBatcher.submit`: a :class:`BatchKey` naming the model
and the options that change the parse, a function that reads the input, one that makes the answer from the parses,
and the input's size) wait in a queue. The worker waits a short window after the oldest arrival (or until as many
requests wait as the largest recent round took), reads the waiting requests of one key, parses their sentences as
one input with :meth:`~unnparse.parser.predictor.Predictor.predict` up to a word budget and hands each request its
own parses, in its own order. A large request is parsed a slice at a time and goes behind the others after each, so
that small requests are not held up by it. The queue is bounded in bytes of input (:class:`QueueFullError` beyond it);
:meth:`ParseBatcher.close` finishes what was submitted and stops.

One thread does the work because the work is CPU-bound: threads that read and write beside the one that parses
would only contend for the interpreter lock, and the model's many small operations would wait for it each time.

A parse does not depend on which sentences share its batch (padding is masked everywhere): a request's answer is
the one ``unnparse parse`` gives for the same input, up to float32 rounding, which can change the last digit of a
rounded probability.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from unnparse.conllu.sentence import Sentence
from unnparse.parser.predictor import ParsedSentence, Predictor

__all__ = ["BatchKey", "BatcherStats", "ParseBatcher", "QueueFullError", "ShuttingDownError"]


class QueueFullError(RuntimeError):
    """The queue holds as much input as it may: the request should be sent again later."""


class ShuttingDownError(RuntimeError):
    """The batcher is closing and takes no more requests."""


@dataclass(frozen=True)
class BatchKey:
    """What requests must share for their sentences to be parsed together: the model, whether marginals are
    wanted, the longest sentence parsed whole."""

    model: str
    marginals: bool
    max_words: int


@dataclass
class BatcherStats:
    """What the batcher has done: requests answered (or failed), parses run, sentences and words parsed, and what
    waits now (requests, bytes of input)."""

    requests: int = 0
    batches: int = 0
    sentences: int = 0
    words: int = 0
    queued_requests: int = 0
    queued_bytes: int = 0


@dataclass
class _Job:
    key: BatchKey
    read: Callable[[], list[Sentence]]
    finish: Callable[[list[ParsedSentence]], Any]
    size: int
    arrived: float
    prefetch: tuple[Callable[[list[Any]], None], Any] | None = None
    future: Future[Any] = field(default_factory=Future)
    sentences: list[Sentence] | None = None  # once read
    taken: int = 0  # sentences parsed or being parsed
    results: list[ParsedSentence] = field(default_factory=list)


def _words(sentence: Sentence) -> int:
    return max(1, len(sentence))


class ParseBatcher:
    """Reads, parses and answers the requests of many threads in shared batches on one worker thread (see the
    module's description).

    Args:
        parsers: the parsers by name.
        window: seconds the worker waits after the oldest waiting request for others to join it (0: none).
        gather_words: the most words parsed as one input (a request larger than this is parsed in slices).
        max_requests: the most requests that share one input (1: one request at a time).
        batch_tokens: words per batch inside that input (as ``unnparse parse --batch-tokens``).
        queue_bytes: the most bytes of input waiting or being worked on; :meth:`submit` refuses more (a single
            request is accepted into an empty queue whatever its size).
        thread: start a worker thread; with False the caller runs the worker with :meth:`run` (in the main thread,
            where torch's OpenMP threads work best: a parse started from another thread with 2 OpenMP threads took
            2.5 times as long on the benchmark machine).
    """

    def __init__(
        self,
        parsers: Mapping[str, Predictor],
        *,
        window: float = 0.01,
        gather_words: int = 8000,
        max_requests: int = 256,
        batch_tokens: int = 4000,
        queue_bytes: int = 16 << 20,
        thread: bool = True,
    ) -> None:
        if window < 0 or gather_words < 1 or max_requests < 1 or batch_tokens < 1 or queue_bytes < 1:
            raise ValueError("window must be >= 0 and the word, request and byte bounds >= 1")
        self.parsers = dict(parsers)
        self.window = window
        self.gather_words = gather_words
        self.max_requests = max_requests
        self.batch_tokens = batch_tokens
        self.queue_bytes = queue_bytes
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._pending_bytes = 0  # submitted and not yet answered
        self._pending_requests = 0
        self._stats = BatcherStats()
        self._enough = max_requests  # waiting requests that end a window early
        self._recent: deque[int] = deque(maxlen=8)  # requests of the last rounds
        self._thread: threading.Thread | None = None
        if thread:
            self._thread = threading.Thread(target=self._run, name="unnparse-batcher", daemon=True)
            self._thread.start()

    @property
    def stats(self) -> BatcherStats:
        """A copy of the counts so far."""
        with self._cond:
            s = self._stats
            return BatcherStats(
                s.requests, s.batches, s.sentences, s.words, self._pending_requests, self._pending_bytes
            )

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def submit(
        self,
        key: BatchKey,
        read: Callable[[], list[Sentence]],
        finish: Callable[[list[ParsedSentence]], Any],
        size: int,
        *,
        prefetch: tuple[Callable[[list[Any]], None], Any] | None = None,
    ) -> Future[Any]:
        """Queue a request: the worker calls ``read`` for its sentences, parses them with the model ``key.model``
        and calls ``finish`` with their parses (in order); the future gives what ``finish`` returns, or the error
        that ``read``, the parse or ``finish`` raised. ``size`` (bytes of input) counts against the queue's bound.
        ``prefetch`` = ``(function, item)``: before reading, the worker calls each function once with the items of
        all the requests it is about to read that name it (work their reading can share, such as labelling their
        texts in one batch); its errors are ignored (reading reports its own).

        Raises:
            KeyError: no parser of that name.
            QueueFullError: the queue is full (try again later).
            ShuttingDownError: :meth:`close` was called.
        """
        if key.model not in self.parsers:
            raise KeyError(key.model)
        job = _Job(key, read, finish, max(0, size), time.monotonic(), prefetch)
        with self._cond:
            if self._closing:
                raise ShuttingDownError("the service is shutting down")
            if self._pending_requests and self._pending_bytes + job.size > self.queue_bytes:
                raise QueueFullError(
                    f"the service is busy: {self._pending_bytes:,} bytes of input are waiting to be parsed (at most "
                    f"{self.queue_bytes:,})"
                )
            self._jobs.append(job)
            self._pending_bytes += job.size
            self._pending_requests += 1
            self._cond.notify_all()
        return job.future

    def close(self, timeout: float | None = None) -> bool:
        """Take no more requests, finish those submitted, stop the worker; whether its thread stopped within
        ``timeout`` seconds (without a thread of its own, the worker's :meth:`run` returns once the queue is empty,
        and this returns at once)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> None:
        """Run the worker in this thread until :meth:`close` is called and the queue is empty (for a batcher made
        with ``thread=False``).

        Raises:
            RuntimeError: the batcher has a worker thread already.
        """
        if self._thread is not None:
            raise RuntimeError("this batcher has a worker thread")
        self._run()

    # the worker ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                deadline = self._jobs[0].arrived + self.window
                while not self._closing and len(self._jobs) < self._enough:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                candidates = self._candidates()
                # as many requests as the largest of the last rounds had end the next window early: under a steady
                # load they are all there is to wait for (the largest, so that rounds cannot settle into halves)
                self._recent.append(len(candidates))
                self._enough = max(2, min(self.max_requests, max(self._recent)))
            self._round(candidates)

    def _candidates(self) -> list[_Job]:
        """Up to ``max_requests`` waiting jobs of the oldest job's key, in queue order, taken off the queue."""
        key = self._jobs[0].key
        chosen = [job for job in self._jobs if job.key == key][: self.max_requests]
        for job in chosen:
            self._jobs.remove(job)
        return chosen

    def _round(self, candidates: list[_Job]) -> None:
        """Read the candidates not read yet, parse slices of them up to the word budget, answer the finished ones and
        queue the others again (those not reached in front, a job parsed in part at the back)."""
        shared: dict[Callable[[list[Any]], None], list[Any]] = {}
        for job in candidates:
            if job.sentences is None and job.prefetch is not None:
                shared.setdefault(job.prefetch[0], []).append(job.prefetch[1])
        for prefetch, items in shared.items():
            try:
                prefetch(items)
            except Exception:  # noqa: BLE001, S110 - an optimization: reading reports the errors
                pass
        ready = []
        for job in candidates:
            if job.sentences is None:
                try:
                    job.sentences = list(job.read())
                except Exception as err:  # noqa: BLE001 - the request's own error (unreadable input)
                    self._answer(job, error=err)
                    continue
            ready.append(job)
        taken: list[tuple[_Job, int, int]] = []
        words = 0
        for job in ready:
            assert job.sentences is not None
            start = end = job.taken
            while end < len(job.sentences):
                size = _words(job.sentences[end])
                if taken or end > start:  # the first sentence goes whatever its size
                    if words + size > self.gather_words:
                        break
                words += size
                end += 1
            if end > start or not job.sentences:
                taken.append((job, start, end))
                job.taken = end
            if words >= self.gather_words:
                break
        if taken:
            self._parse(taken[0][0].key, taken)
        in_part = [job for job, _, end in taken if job.sentences is not None and end < len(job.sentences)]
        taken_ids = {id(job) for job, _, _ in taken}
        not_reached = [job for job in ready if id(job) not in taken_ids]
        with self._cond:
            for job in reversed(not_reached):
                if not job.future.done():
                    self._jobs.appendleft(job)
            for job in in_part:
                if not job.future.done():
                    self._jobs.append(job)

    def _parse(self, key: BatchKey, taken: list[tuple[_Job, int, int]]) -> None:
        parser = self.parsers[key.model]
        sentences = [s for job, start, end in taken for s in (job.sentences or [])[start:end]]
        try:
            results = list(self._predict(parser, key, sentences)) if sentences else []
        except Exception as err:  # noqa: BLE001 - handed to the requests
            if len(taken) > 1:  # parse each request's part alone: only the one at fault fails
                for part in taken:
                    self._parse(key, [part])
                return
            self._answer(taken[0][0], error=err)
            return
        with self._cond:
            self._stats.batches += 1 if sentences else 0
            self._stats.sentences += len(sentences)
            self._stats.words += sum(len(s) for s in sentences)
        at = 0
        for job, start, end in taken:
            job.results.extend(results[at : at + end - start])
            at += end - start
            if job.sentences is not None and end == len(job.sentences):
                self._answer(job)

    def _predict(self, parser: Predictor, key: BatchKey, sentences: list[Sentence]) -> Iterator[ParsedSentence]:
        return parser.predict(
            sentences,
            batch_tokens=self.batch_tokens,
            marginals=key.marginals,
            max_words=key.max_words,
            chunk_sentences=max(1, len(sentences)),
            on_split=lambda _notice: None,  # each request hears of its own long sentences from its finish
        )

    def _answer(self, job: _Job, error: Exception | None = None) -> None:
        """Finish ``job`` (its ``finish``, or the error) and release its place in the queue."""
        if error is None:
            try:
                value = job.finish(job.results)
            except Exception as err:  # noqa: BLE001 - handed to the request
                error = err
        with self._cond:
            self._pending_bytes -= job.size
            self._pending_requests -= 1
            self._stats.requests += 1
            self._cond.notify_all()
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(value)
