"""Concurrent parse requests gathered into shared batches.

A :class:`ParseBatcher` owns the parsers and one worker thread. Requests (:meth:`ParseBatcher.submit`: a model's
name, the sentences, the options that change the parse) wait in a queue; the worker waits a short window after the
oldest arrival (or until enough words are waiting), takes the waiting sentences of that model and those options up
to a word budget, parses them as one input with :meth:`~unnparse.parser.predictor.Predictor.predict` and hands each
request its own parses, in its own order. A large request is taken a slice at a time, and a request taken in part goes
behind the others, so that small requests are not held up by it. The queue is bounded in words
(:class:`QueueFullError` beyond it); :meth:`ParseBatcher.close` finishes what was submitted and stops.

Parses do not depend on which sentences share a batch (padding is masked everywhere), so a request's answer is the
one ``unnparse parse`` gives for the same input.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from unnparse.conllu.sentence import Sentence
from unnparse.parser.predictor import ParsedSentence, Predictor

__all__ = ["BatchKey", "BatcherStats", "ParseBatcher", "QueueFullError", "ShuttingDownError"]


class QueueFullError(RuntimeError):
    """The queue holds as many words as it may: the request should be sent again later."""


class ShuttingDownError(RuntimeError):
    """The batcher is closing and takes no more requests."""


@dataclass(frozen=True)
class BatchKey:
    """What sentences must share to be parsed together: the model, whether marginals are wanted, the longest
    sentence parsed whole."""

    model: str
    marginals: bool
    max_words: int


@dataclass
class BatcherStats:
    """What the batcher has done: requests finished, batches run, sentences and words parsed, and what waits now."""

    requests: int = 0
    batches: int = 0
    sentences: int = 0
    words: int = 0
    queued_requests: int = 0
    queued_words: int = 0


@dataclass
class _Job:
    key: BatchKey
    sentences: list[Sentence]
    future: Future[list[ParsedSentence]]
    arrived: float
    words: int
    taken: int = 0  # sentences handed to the worker so far
    done: int = 0  # of those, parsed
    results: list[ParsedSentence | None] = field(default_factory=list)


def _words(sentence: Sentence) -> int:
    return max(1, len(sentence))


class ParseBatcher:
    """Parses the requests of many threads in shared batches on one worker thread (see the module's description).

    Args:
        parsers: the parsers by name.
        window: seconds the worker waits after the oldest waiting request for others to join it (0: none).
        gather_words: the most words parsed as one input (a request larger than this is taken in slices).
        max_requests: the most requests that share one input (1: one request at a time).
        batch_tokens: words per batch inside that input (as ``unnparse parse --batch-tokens``).
        queue_words: the most words waiting or being parsed; :meth:`submit` refuses more (a single request is
            accepted into an empty queue whatever its size).
    """

    def __init__(
        self,
        parsers: Mapping[str, Predictor],
        *,
        window: float = 0.01,
        gather_words: int = 8000,
        max_requests: int = 256,
        batch_tokens: int = 4000,
        queue_words: int = 200_000,
    ) -> None:
        if window < 0 or gather_words < 1 or max_requests < 1 or batch_tokens < 1 or queue_words < 1:
            raise ValueError("window must be >= 0 and the word and request bounds >= 1")
        self.parsers = dict(parsers)
        self.window = window
        self.gather_words = gather_words
        self.max_requests = max_requests
        self.batch_tokens = batch_tokens
        self.queue_words = queue_words
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._pending_words = 0  # submitted and not yet finished
        self._pending_requests = 0
        self._stats = BatcherStats()
        self._thread = threading.Thread(target=self._run, name="unnparse-batcher", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> BatcherStats:
        """A copy of the counts so far."""
        with self._cond:
            s = self._stats
            return BatcherStats(
                s.requests, s.batches, s.sentences, s.words, self._pending_requests, self._pending_words
            )

    @property
    def closing(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closing

    def submit(self, key: BatchKey, sentences: Sequence[Sentence]) -> Future[list[ParsedSentence]]:
        """Queue ``sentences`` to be parsed by the model ``key.model``; the future gives their parses in order (or
        the error that parsing them raised).

        Raises:
            KeyError: no parser of that name.
            QueueFullError: the queue is full (try again later).
            ShuttingDownError: :meth:`close` was called.
        """
        if key.model not in self.parsers:
            raise KeyError(key.model)
        future: Future[list[ParsedSentence]] = Future()
        words = sum(_words(s) for s in sentences)
        with self._cond:
            if self._closing:
                raise ShuttingDownError("the service is shutting down")
            if not sentences:
                future.set_result([])
                return future
            if self._pending_words and self._pending_words + words > self.queue_words:
                raise QueueFullError(
                    f"the service is busy: {self._pending_words:,} words are waiting to be parsed (at most "
                    f"{self.queue_words:,})"
                )
            job = _Job(key, list(sentences), future, time.monotonic(), words, results=[None] * len(sentences))
            self._jobs.append(job)
            self._pending_words += words
            self._pending_requests += 1
            self._cond.notify_all()
        return future

    def close(self, timeout: float | None = None) -> bool:
        """Take no more requests, finish those submitted, stop the worker; whether it stopped within ``timeout``
        seconds."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # the worker ------------------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._closing:
                    self._cond.wait()
                if not self._jobs:
                    return
                deadline = self._jobs[0].arrived + self.window
                while not self._closing and not self._enough_waiting():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                key, taken = self._take()
            self._parse(key, taken)

    def _enough_waiting(self) -> bool:
        if len(self._jobs) >= self.max_requests:
            return True
        return sum(job.words for job in self._jobs) >= self.gather_words

    def _take(self) -> tuple[BatchKey, list[tuple[_Job, int, int]]]:
        """The slices (job, first, end) parsed next: of the oldest job's key, jobs in queue order, up to the word
        budget (at least one sentence); a job taken in part goes to the back of the queue."""
        key = self._jobs[0].key
        taken: list[tuple[_Job, int, int]] = []
        words = 0
        for job in list(self._jobs):
            if job.key != key:
                continue
            if len(taken) >= self.max_requests or words >= self.gather_words:
                break
            start = end = job.taken
            while end < len(job.sentences):
                size = _words(job.sentences[end])
                if words + size > self.gather_words and (taken or end > start):  # the first sentence goes anyway
                    break
                words += size
                end += 1
            if end == start:
                break
            taken.append((job, start, end))
            job.taken = end
            self._jobs.remove(job)
            if end < len(job.sentences):
                self._jobs.append(job)
        return key, taken

    def _parse(self, key: BatchKey, taken: list[tuple[_Job, int, int]]) -> None:
        parser = self.parsers[key.model]
        sentences = [s for job, start, end in taken for s in job.sentences[start:end]]
        try:
            results = list(self._predict(parser, key, sentences))
        except Exception as err:  # noqa: BLE001 - handed to the requests
            if len(taken) > 1:  # parse each request's part alone: only the one at fault fails
                for part in taken:
                    self._parse(key, [part])
                return
            self._fail(taken[0][0], err)
            return
        at = 0
        for job, start, end in taken:
            job.results[start:end] = results[at : at + end - start]
            at += end - start
            self._finished_part(job, end - start)
        with self._cond:
            self._stats.batches += 1
            self._stats.sentences += len(sentences)
            self._stats.words += sum(len(s) for s in sentences)

    def _predict(self, parser: Predictor, key: BatchKey, sentences: list[Sentence]) -> Iterator[ParsedSentence]:
        return parser.predict(
            sentences,
            batch_tokens=self.batch_tokens,
            marginals=key.marginals,
            max_words=key.max_words,
            chunk_sentences=max(1, len(sentences)),
            on_split=lambda _notice: None,  # each request hears of its own long sentences when it is read
        )

    def _finished_part(self, job: _Job, count: int) -> None:
        job.done += count
        if job.done < len(job.sentences) or job.future.done():
            return
        self._release(job)
        job.future.set_result([r for r in job.results if r is not None])

    def _fail(self, job: _Job, err: Exception) -> None:
        if job.future.done():
            return
        with self._cond:  # what is left of it is not parsed
            if job in self._jobs:
                self._jobs.remove(job)
        self._release(job)
        job.future.set_exception(err)

    def _release(self, job: _Job) -> None:
        with self._cond:
            self._pending_words -= job.words
            self._pending_requests -= 1
            self._stats.requests += 1
            self._cond.notify_all()
