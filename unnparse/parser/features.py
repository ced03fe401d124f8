"""From sentences to tensors: the batch a parser model consumes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from unnparse.parser.conllu_data import Sentence
from unnparse.parser.vocab import ROOT, Vocab

__all__ = ["Batch", "Featurizer"]

ROOT_CHAR = "\u2402"  # a visible symbol standing for the ROOT token's characters


@dataclass
class Batch:
    """A padded batch. Position 0 of every row is ROOT; words are 1..lengths[b]."""

    indices: list[int]
    forms: list[list[str]]
    lengths: Tensor  # [B]
    words: Tensor | None = None  # [B, N+1] word ids (scratch encoder)
    chars: Tensor | None = None  # [B, N+1, C] char ids (scratch encoder)
    heads: Tensor | None = None  # [B, N+1] gold heads (0 at ROOT and padding)
    rels: Tensor | None = None  # [B, N+1] gold relation ids

    @property
    def max_words(self) -> int:
        return int(self.lengths.max()) if len(self.indices) else 0

    @property
    def token_mask(self) -> Tensor:
        """[B, N+1] True for ROOT and the words, False for padding."""
        n = self.max_words
        return torch.arange(n + 1, device=self.lengths.device)[None, :] <= self.lengths[:, None]

    @property
    def word_mask(self) -> Tensor:
        """[B, N+1] True for the words only."""
        mask = self.token_mask.clone()
        mask[:, 0] = False
        return mask

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = v.to(device, non_blocking=non_blocking) if isinstance(v, Tensor) else v
        return Batch(**values)

    def pin_memory(self) -> Batch:
        """A copy with every tensor in pinned host memory (faster, asynchronous copies to a GPU)."""
        values = {}
        for f in fields(self):
            v = getattr(self, f.name)
            values[f.name] = v.pin_memory() if isinstance(v, Tensor) else v
        return Batch(**values)


class Featurizer:
    """Turns sentences into :class:`Batch` es using the model's vocabularies."""

    def __init__(
        self, rels: Vocab, words: Vocab | None = None, chars: Vocab | None = None, *, max_word_chars: int = 20
    ) -> None:
        self.rels, self.words, self.chars = rels, words, chars
        self.max_word_chars = max_word_chars

    @staticmethod
    def normalize_word(form: str) -> str:
        """The key of a word in the word vocabulary (lower-cased; digits collapsed)."""
        return "".join("0" if ch.isdigit() else ch for ch in form.lower())

    def batch(self, sentences: Sequence[Sentence], indices: Sequence[int], *, gold: bool) -> Batch:
        """Build the batch of ``sentences`` (with gold heads/relations when ``gold``)."""
        forms = [s.words for s in sentences]
        lengths = torch.tensor([len(f) for f in forms], dtype=torch.long)
        B, N = len(forms), int(lengths.max()) if forms else 0
        batch = Batch(indices=list(indices), forms=forms, lengths=lengths)
        if self.words is not None and self.chars is not None:
            words = torch.zeros(B, N + 1, dtype=torch.long)
            C = min(self.max_word_chars, max((len(w) for f in forms for w in f), default=1))
            chars = torch.zeros(B, N + 1, max(C, 1), dtype=torch.long)
            root_w, root_c = self.words.index(ROOT), self.chars.index(ROOT_CHAR)
            for b, f in enumerate(forms):
                words[b, 0] = root_w
                chars[b, 0, 0] = root_c
                words[b, 1 : len(f) + 1] = torch.tensor([self.words.index(self.normalize_word(w)) for w in f])
                for i, w in enumerate(f, start=1):
                    ids = [self.chars.index(ch) for ch in w[:C]] or [self.chars.index(ROOT_CHAR)]
                    chars[b, i, : len(ids)] = torch.tensor(ids)
            batch.words, batch.chars = words, chars
        if gold:
            heads = torch.zeros(B, N + 1, dtype=torch.long)
            rels = torch.zeros(B, N + 1, dtype=torch.long)
            for b, s in enumerate(sentences):
                if s.heads is None or s.deprels is None:
                    raise ValueError(f"{s.source}:{s.line}: sentence has no gold HEAD/DEPREL")
                heads[b, 1 : len(s.heads) + 1] = torch.tensor(s.heads)
                rels[b, 1 : len(s.deprels) + 1] = torch.tensor([self.rels.index(r) for r in s.deprels])
            batch.heads, batch.rels = heads, rels
        return batch
