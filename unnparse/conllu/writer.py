"""Writing CoNLL-U: to a path atomically (the file appears complete or not at all), or to an open stream."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable

from unnparse.conllu.sentence import PathOrStream, Sentence
from unnparse.io_utils import atomic_output

__all__ = ["write_conllu"]


def write_conllu(sentences: Iterable[Sentence], dest: PathOrStream) -> int:
    """Write sentences in CoNLL-U (each followed by a blank line); return how many.

    Writing to a path is atomic: the file appears complete or not at all.  ``dest`` may
    also be an open text or binary stream.
    """
    count = 0
    if isinstance(dest, (str, os.PathLike)):
        with atomic_output(dest, "w") as fh:
            for sentence in sentences:
                fh.write(sentence.to_conllu())
                count += 1
        return count
    binary = isinstance(dest, (io.RawIOBase, io.BufferedIOBase)) or "b" in getattr(dest, "mode", "")
    for sentence in sentences:
        text = sentence.to_conllu()
        dest.write(text.encode("utf-8") if binary else text)  # type: ignore[arg-type]
        count += 1
    return count
