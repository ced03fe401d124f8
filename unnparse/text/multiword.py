"""Multiword tokens learnt from a treebank (``cannot`` = ``can not``, ``du`` = ``de le``): a dictionary of the forms
that are multiword tokens in most of their occurrences, and raw-text sentences whose tokens it expands. The rule-based
tokenizer knows no treebank's multiword tokens; with the dictionary of the treebank a parser was trained on, the
words it parses are those it learnt."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping

from unnparse.conllu.sentence import Sentence
from unnparse.text.raw_text import normalize_text

__all__ = ["MAX_ENTRIES", "expand", "expand_multiword", "multiword_dictionary", "surface_tokens"]

#: At most this many forms are kept (the most frequent): a dictionary stays small in config.json.
MAX_ENTRIES = 20_000


def surface_tokens(sentence: Sentence) -> list[tuple[str, list[str], bool]]:
    """(form, words, space after) of each surface token, forms normalized as raw text is (empty ones left out)."""
    out = []
    for token in sentence.surface_tokens():
        if form := "".join(normalize_text(token.form).split()):
            out.append((form, ["".join(normalize_text(w).split()) for w in token.words], token.space_after))
    return out


def multiword_dictionary(sentences: Iterable[Sentence], *, spelt_out: bool = True) -> dict[str, list[str]]:
    """Lowercased form → lowercased words, for the forms that are multiword tokens in most of their occurrences
    (the most frequent analysis; at most :data:`MAX_ENTRIES`, the most frequent). ``spelt_out=False`` leaves out
    those whose words spell the form (``cannot`` = ``can`` + ``not``), which a trained segmenter splits itself."""
    analyses: dict[str, Counter[tuple[str, ...]]] = {}
    plain: Counter[str] = Counter()
    for sentence in sentences:
        for form, words, _space in surface_tokens(sentence):
            key = form.lower()
            if len(words) > 1 and (spelt_out or "".join(words).lower() != key):
                analyses.setdefault(key, Counter())[tuple(w.lower() for w in words)] += 1
            else:
                plain[key] += 1
    kept = []
    for key, counts in analyses.items():
        words, n = counts.most_common(1)[0]
        if n > plain[key]:
            kept.append((n, key, list(words)))
    kept.sort(key=lambda item: (-item[0], item[1]))
    return {key: words for _n, key, words in kept[:MAX_ENTRIES]}


def expand(form: str, dictionary: Mapping[str, list[str]]) -> list[str] | None:
    """The words of ``form`` by ``dictionary`` (its first letter's capital kept), or None when it is not in it."""
    words = dictionary.get(form.lower())
    if not words or len(words) < 2:
        return None
    if form[:1].isupper():
        return [words[0][:1].upper() + words[0][1:], *words[1:]]
    return list(words)


def expand_multiword(sentences: Iterable[Sentence], dictionary: Mapping[str, list[str]]) -> Iterator[Sentence]:
    """``sentences`` (of the rule-based tokenizer) with each token that ``dictionary`` knows as a multiword token
    made one, its words after it; other sentences are passed on as they are."""
    for sentence in sentences:
        tokens = [(t.form, list(t.words) if t.multiword else None, t.space_after) for t in sentence.surface_tokens()]
        expanded = [(form, words if words else expand(form, dictionary), space) for form, words, space in tokens]
        if expanded == tokens:
            yield sentence
            continue
        yield Sentence.from_tokens(
            expanded, sent_id=sentence.sent_id, text=sentence.text, source=sentence.source, line=sentence.line
        )
