"""Splitting a large input across processes (``unnparse parse --shard I/N``) and merging the outputs back.

Sentences are dealt out in blocks: block b (sentences b·S … b·S+S−1, S = block size) goes to shard b mod N. Every
block but the very last one of the input is full, so :func:`merge_shards` restores the input order exactly by
taking S records from each shard's output in turn.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO, TypeVar

__all__ = ["DEFAULT_BLOCK", "iter_records", "merge_shards", "parse_shard_spec", "take_shard"]

T = TypeVar("T")
DEFAULT_BLOCK = 1000


def parse_shard_spec(spec: str) -> tuple[int, int]:
    """``"I/N"`` → (I, N) with 0 <= I < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not match:
        raise ValueError(f"--shard must look like I/N (e.g. 0/4), not {spec!r}")
    i, n = int(match.group(1)), int(match.group(2))
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec}: need 0 <= I < N")
    return i, n


def take_shard(items: Iterable[T], index: int, count: int, block: int = DEFAULT_BLOCK) -> Iterator[T]:
    """The items of shard ``index`` out of ``count`` (blocks of ``block`` items, dealt round-robin)."""
    for position, item in enumerate(items):
        if (position // block) % count == index:
            yield item


def iter_records(stream: TextIO, fmt: str) -> Iterator[str]:
    """Records of an output file: one line per sentence for ``json``, blank-line separated blocks otherwise."""
    if fmt == "json":
        for line in stream:
            if line.strip():
                yield line if line.endswith("\n") else line + "\n"
        return
    lines: list[str] = []
    for line in stream:
        if line.strip():
            lines.append(line)
        elif lines:
            yield "".join(lines) + "\n"
            lines = []
    if lines:
        yield "".join(lines) + "\n"


def merge_shards(paths: Sequence[str | Path], fmt: str, block: int = DEFAULT_BLOCK) -> Iterator[str]:
    """Interleave the outputs of shards 0..N-1 (in that order) back into input order."""
    streams = [open(p, encoding="utf-8") for p in paths]  # noqa: SIM115 - closed below
    try:
        readers = [iter_records(s, fmt) for s in streams]
        active = list(range(len(readers)))
        while active:
            for shard in list(active):
                taken = 0
                for record in readers[shard]:
                    yield record
                    taken += 1
                    if taken == block:
                        break
                if taken < block:
                    active.remove(shard)
                    # a short block is the end of the input: no later shard may hold more
                    rest = [r for s in active for r in readers[s]]
                    if rest:
                        raise ValueError(
                            f"shard outputs do not fit together: {paths[shard]} ended early but other shards "
                            "have more sentences (were they made with the same --shard-block and input?)"
                        )
                    return
    finally:
        for s in streams:
            s.close()
