"""Over-long sentences: parsed in pieces, so that memory stays bounded for any input.

A parser's memory and time grow with the square (the arc scores, the marginals) and the cube (the matrix-tree
theorem) of a sentence's length: a 1,000-word sentence costs about 250 MB, a 100,000-word one would need tens of
GB. A sentence longer than ``max_words`` words is therefore cut into the fewest pieces of at most ``max_words``
words, of nearly equal size; each piece is parsed as a sentence of its own, and the root of every piece after the
first is attached to the first piece's root with the relation :data:`JOIN_RELATION`. The result is one valid tree
over every word of the sentence (which evaluation and CoNLL-U need), and no arc crosses from one piece to another
except those joins; such a sentence has no arc marginals (they would take the square of its length). A batch that
still runs out of memory (``max_words`` set too high for the machine) raises :class:`ParseMemoryError`, a one-line
error naming the file and line of its longest sentence. Real sentences are far shorter (the longest in the
benchmark treebanks has 209 words), so the default, :data:`DEFAULT_MAX_WORDS`, changes nothing for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the command line reads DEFAULT_MAX_WORDS without loading the CoNLL-U machinery
    from unnparse.conllu.sentence import Sentence

__all__ = [
    "DEFAULT_MAX_WORDS",
    "JOIN_RELATION",
    "LongSentenceWarning",
    "ParseMemoryError",
    "check_max_words",
    "is_out_of_memory",
    "join_pieces",
    "piece_sentences",
    "piece_spans",
    "split_message",
]

#: Longest sentence parsed whole by default: a batch of three such sentences (the default budget of 4000 tokens)
#: costs about 0.4 GB above the model with the default scratch encoder.
DEFAULT_MAX_WORDS = 1000

#: Relation of the arc from the first piece's root to the root of each later piece.
JOIN_RELATION = "dep"


class LongSentenceWarning(UserWarning):
    """A sentence longer than ``max_words`` words was parsed in pieces."""


class ParseMemoryError(ValueError):
    """Parsing a batch ran out of memory (``max_words`` or the batch budget set too high for the machine); the
    message is one line naming the file and line of the batch's longest sentence."""


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is a failed allocation: a MemoryError, or torch's RuntimeError for one (CPU or CUDA)."""
    if isinstance(err, MemoryError):
        return True
    text = str(err).lower()
    return isinstance(err, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)


def check_max_words(max_words: int) -> int:
    """``max_words`` if it is an integer >= 2, else ValueError."""
    if isinstance(max_words, bool) or not isinstance(max_words, int) or max_words < 2:
        raise ValueError(f"max_words must be an integer >= 2, not {max_words!r}")
    return max_words


def piece_spans(n_words: int, max_words: int) -> list[tuple[int, int]]:
    """``(start, end)`` word offsets of the pieces of an ``n_words``-word sentence: one piece when it fits in
    ``max_words``, else the fewest pieces of at most ``max_words`` words, their sizes differing by at most one."""
    check_max_words(max_words)
    if n_words <= max_words:
        return [(0, n_words)]
    count = -(-n_words // max_words)
    size, extra = divmod(n_words, count)
    spans = []
    start = 0
    for k in range(count):
        end = start + size + (1 if k < extra else 0)
        spans.append((start, end))
        start = end
    return spans


def piece_sentences(sentence: Sentence, spans: Sequence[tuple[int, int]]) -> list[Sentence]:
    """The words of each span of ``sentence`` as an unannotated sentence (same source and line)."""
    from unnparse.conllu.sentence import Sentence

    words = sentence.words
    return [Sentence.from_words(words[a:b], source=sentence.source, line=sentence.line) for a, b in spans]


def join_pieces(
    spans: Sequence[tuple[int, int]],
    heads: Sequence[Sequence[int]],
    rels: Sequence[Sequence[str]],
) -> tuple[list[int], list[str]]:
    """The heads and relations of a whole sentence from those of its pieces (each piece numbered from 1).

    A piece's heads are shifted by the piece's offset; its roots (head 0) are attached to the first root of the
    first piece with :data:`JOIN_RELATION`, so the sentence keeps the first piece's root(s) only.
    """
    if not (len(spans) == len(heads) == len(rels)) or not spans:
        raise ValueError("join_pieces needs one list of heads and of relations per span")
    first_root = None
    out_heads: list[int] = []
    out_rels: list[str] = []
    for k, ((start, end), piece_heads, piece_rels) in enumerate(zip(spans, heads, rels, strict=True)):
        if len(piece_heads) != end - start or len(piece_rels) != end - start:
            raise ValueError(f"piece {k} has {end - start} words, got {len(piece_heads)} heads")
        for d, (h, r) in enumerate(zip(piece_heads, piece_rels, strict=True)):
            if h == 0 and k == 0:
                first_root = first_root or start + d + 1
                out_heads.append(0)
                out_rels.append(r)
            elif h == 0:
                assert first_root is not None, "the first piece has no root"
                out_heads.append(first_root)
                out_rels.append(JOIN_RELATION)
            else:
                out_heads.append(start + h)
                out_rels.append(r)
    return out_heads, out_rels


def split_message(sentence: Sentence, n_pieces: int, max_words: int, *, marginals: bool = False) -> str:
    """The one-line notice that ``sentence`` was parsed in ``n_pieces`` pieces (``marginals``: that it has none)."""
    where = f"{sentence.source}:{sentence.line}"
    name = f"sentence {sentence.sent_id}" if sentence.sent_id else "sentence"
    return (
        f"{where}: {name} has {len(sentence):,} words, more than --max-words {max_words:,}: parsed in {n_pieces} "
        f"pieces joined with '{JOIN_RELATION}' arcs" + (" (no arc marginals for it)" if marginals else "")
    )
