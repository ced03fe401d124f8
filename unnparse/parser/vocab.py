"""Vocabularies: string <-> index maps for words, characters and dependency relations, stored in config.json."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["PAD", "ROOT", "UNK", "Vocab"]

PAD = "<pad>"
UNK = "<unk>"
ROOT = "<root>"


class Vocab:
    """An ordered set of strings with fixed special entries first (index 0 is padding when present)."""

    def __init__(self, items: Sequence[str], *, specials: Sequence[str] = (PAD, UNK, ROOT)) -> None:
        self.specials = list(specials)
        self.itos: list[str] = list(self.specials) + [s for s in items if s not in set(self.specials)]
        self.stoi: dict[str, int] = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("vocabulary items must be unique")

    @classmethod
    def build(cls, tokens: Iterable[str], *, min_freq: int = 1, specials: Sequence[str] = (PAD, UNK, ROOT)) -> Vocab:
        """Items seen at least ``min_freq`` times, most frequent first (ties in first-seen order)."""
        counts = Counter(tokens)
        items = [s for s, c in sorted(counts.items(), key=lambda kv: -kv[1]) if c >= min_freq]
        return cls(items, specials=specials)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, item: str) -> bool:
        return item in self.stoi

    def index(self, item: str) -> int:
        """Index of ``item``; unknown items map to UNK (KeyError if this vocabulary has none)."""
        i = self.stoi.get(item)
        if i is None:
            if UNK not in self.stoi:
                raise KeyError(f"{item!r} not in vocabulary")
            return self.stoi[UNK]
        return i

    def to_json(self) -> dict[str, Any]:
        """JSON-serializable form for config.json."""
        return {"specials": self.specials, "items": self.itos[len(self.specials) :]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Vocab:
        """Inverse of :meth:`to_json`."""
        return cls(data["items"], specials=data["specials"])
