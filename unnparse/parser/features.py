"""From sentences to tensors: the batch a parser model consumes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch import Tensor

from unnparse.conllu.sentence import TAG_COLUMNS, Sentence
from unnparse.devices import host_to_device
from unnparse.parser.lemma_scripts import apply_script, edit_script
from unnparse.parser.vocab import ROOT, UNK, Vocab

__all__ = ["MAX_ENCODER_WORD_CHARS", "Batch", "Featurizer", "clip_word"]

ROOT_CHAR = "\u2402"  # a visible symbol standing for the ROOT token's characters

#: Longest word a transformer encoder reads whole: a longer one is read as its first and last
#: ``MAX_ENCODER_WORD_CHARS // 2`` characters, so one absurd token (a 100,000-digit number) cannot blow up the
#: encoder's windows. Above any real word (BERT's WordPiece already reads a word over 100 characters as [UNK]).
MAX_ENCODER_WORD_CHARS = 100


@dataclass
class Batch:
    """A padded batch. Position 0 of every row is ROOT; words are 1..lengths[b]."""

    indices: list[int]
    forms: list[list[str]]  # the words as an encoder reads them (over-long ones clipped: clip_word)
    lengths: Tensor  # [B]
    words: Tensor | None = None  # [B, N+1] word ids (scratch encoder)
    chars: Tensor | None = None  # [U, C] char ids of the batch's distinct forms (scratch encoder)
    char_index: Tensor | None = None  # [B, N+1] row of ``chars`` for each position (0 = padding)
    heads: Tensor | None = None  # [B, N+1] gold heads (0 at ROOT and padding)
    rels: Tensor | None = None  # [B, N+1] gold relation ids
    tags: dict[str, Tensor] | None = None  # column -> [B, N+1] gold tag ids (0 = unannotated or unseen)

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
        return self._map(lambda v: v.to(device, non_blocking=non_blocking))

    def to_device(self, device: torch.device) -> Batch:
        """This batch on ``device``: a pinned, asynchronous copy to CUDA (:func:`~unnparse.devices.host_to_device`)."""
        return self._map(lambda v: host_to_device(v, device))

    def pin_memory(self) -> Batch:
        """A copy with every tensor in pinned host memory (faster, asynchronous copies to a GPU)."""
        return self._map(lambda v: v.pin_memory())

    def _map(self, fn: Callable[[Tensor], Tensor]) -> Batch:
        values: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Tensor):
                v = fn(v)
            elif isinstance(v, dict):
                v = {key: fn(t) for key, t in v.items()}
            values[f.name] = v
        return Batch(**values)


_Features = tuple[list[str], list[int], list[int], list[int], dict[str, list[int]]]


class Featurizer:
    """Turns sentences into :class:`Batch` es using the model's vocabularies."""

    def __init__(
        self,
        rels: Vocab,
        words: Vocab | None = None,
        chars: Vocab | None = None,
        *,
        tags: Mapping[str, Vocab] | None = None,
        max_word_chars: int = 20,
    ) -> None:
        self.rels, self.words, self.chars = rels, words, chars
        self.tags: dict[str, Vocab] = dict(tags or {})  # tag column (upos, xpos, feats) -> its vocabulary
        unknown = set(self.tags) - set(TAG_COLUMNS)
        if unknown:
            raise ValueError(f"not tag columns: {sorted(unknown)}")
        self.max_word_chars = max_word_chars
        self._cache: dict[int, tuple[Sentence, _Features]] = {}
        self._char_cache: dict[str, list[int]] = {}

    @staticmethod
    def normalize_word(form: str) -> str:
        """The key of a word in the word vocabulary (lower-cased; digits collapsed)."""
        return "".join("0" if ch.isdigit() else ch for ch in form.lower())

    def _sentence_features(self, s: Sentence, gold: bool) -> _Features:
        """(forms, word ids, heads, relation ids, tag ids by column) of one sentence; cached for gold sentences."""
        hit = self._cache.get(id(s))
        if hit is not None and hit[0] is s and (not gold or hit[1][2]):
            return hit[1]
        forms = s.words
        word_ids = [self.words.index(self.normalize_word(w)) for w in forms] if self.words is not None else []
        heads: list[int] = []
        rel_ids: list[int] = []
        tag_ids: dict[str, list[int]] = {}
        if gold:
            if s.heads is None or s.deprels is None:
                raise ValueError(f"{s.source}:{s.line}: sentence has no gold HEAD/DEPREL")
            heads = list(s.heads)
            rel_ids = [self.rels.index(r) for r in s.deprels]
            for name, vocab in self.tags.items():  # "_" and tags unseen in training map to 0: no tagging loss
                tag_ids[name] = [vocab.stoi.get(t, 0) for t in column_labels(s, name)]
        feats = (forms, word_ids, heads, rel_ids, tag_ids)
        if gold:  # training data comes back every epoch; text being parsed streams past once (keep memory flat)
            if len(self._cache) > 500_000:
                self._cache.clear()
            self._cache[id(s)] = (s, feats)
        return feats

    def decode_tags(self, name: str, ids: Sequence[int], forms: Sequence[str]) -> list[str]:
        """The predicted values of column ``name`` from the tagger's label ids for words ``forms``: the tags, or for
        ``lemma`` each word's edit script applied to its form (the form itself where the script does not apply)."""
        labels = [self.tags[name].itos[i] for i in ids]
        if name != "lemma":
            return labels
        return [apply_script(label, form) or form for label, form in zip(labels, forms, strict=True)]

    def _char_ids(self, form: str) -> list[int]:
        key = form[: self.max_word_chars]  # all the encoder reads: the cache stays small whatever the words
        ids = self._char_cache.get(key)
        if ids is None:
            assert self.chars is not None
            ids = [self.chars.index(ch) for ch in key] or [self.chars.index(UNK)]
            if len(self._char_cache) < 1_000_000:
                self._char_cache[key] = ids
        return ids

    def batch(self, sentences: Sequence[Sentence], indices: Sequence[int], *, gold: bool) -> Batch:
        """Build the batch of ``sentences`` (with gold heads/relations when ``gold``)."""
        feats = [self._sentence_features(s, gold) for s in sentences]
        forms = [f[0] for f in feats]
        lengths = torch.tensor([len(f) for f in forms], dtype=torch.long)
        N = int(lengths.max()) if forms else 0
        batch = Batch(indices=list(indices), forms=[[clip_word(w) for w in f] for f in forms], lengths=lengths)
        if self.words is not None and self.chars is not None:
            root = self.words.index(ROOT)
            # characters once per distinct form of the batch: row 0 padding, row 1 the ROOT pseudo-word
            unique: dict[str, int] = {}
            char_rows = [[1, *(unique.setdefault(w, len(unique) + 2) for w in f[0])] for f in feats]
            batch.words = _padded([[root, *f[1]] for f in feats], N + 1)
            batch.char_index = _padded(char_rows, N + 1)
            rows = [[0], [self.chars.index(ROOT_CHAR)], *(self._char_ids(w) for w in unique)]
            batch.chars = _padded(rows, max(len(r) for r in rows))
        if gold:
            batch.heads = _padded([[0, *f[2]] for f in feats], N + 1)
            batch.rels = _padded([[0, *f[3]] for f in feats], N + 1)
            if self.tags:
                batch.tags = {name: _padded([[0, *f[4][name]] for f in feats], N + 1) for name in self.tags}
        return batch


def column_labels(sentence: Sentence, name: str) -> list[str]:
    """What the tagger of column ``name`` learns for each word of ``sentence`` (``"_"`` where unannotated): the tag
    itself, or for ``lemma`` the edit script that turns the word's form into its lemma
    (:func:`~unnparse.parser.lemma_scripts.edit_script`)."""
    values = sentence.column(name)
    if name != "lemma":
        return values
    forms = sentence.words
    return [edit_script(form, lemma) if lemma != "_" else "_" for form, lemma in zip(forms, values, strict=True)]


def clip_word(form: str, limit: int = MAX_ENCODER_WORD_CHARS) -> str:
    """``form``, or when it is longer than ``limit`` characters its first and last ``limit // 2`` characters."""
    if len(form) <= limit:
        return form
    half = limit // 2
    return form[:half] + form[-half:]


def _padded(rows: Sequence[Sequence[int]], width: int) -> Tensor:
    """[len(rows), width] long tensor of the rows, right-padded with 0 (one tensor built, not one per row)."""
    padded = [[*r, *([0] * (width - len(r)))] for r in rows]
    return torch.tensor(padded, dtype=torch.long).view(len(rows), width)
