"""Scores for parses whose tokenization differs from the gold one (the CoNLL 2018 shared task's evaluation).

When a parser reads raw text, its tokens, multiword-token splits and sentence boundaries need not be the gold
ones, so words cannot be compared position by position. Both files are instead laid over the same text: the
characters of the token forms, which must be the same in both (compared in NFC, without whitespace and without the
control and invisible format characters that the tokenizer drops). A token or a sentence is correct when the
predicted one covers exactly the characters of a gold one. A word outside multiword tokens is aligned with the gold
word of the same characters; inside a stretch where either file has multiword tokens, the words are aligned by a
longest common subsequence of their lowercased forms. Each score is then an F1 between the gold and the predicted
words: precision over the predicted words, recall over the gold ones. An aligned word has the correct head when
its predicted head is aligned with its gold head (or both are the root). When the tokenizations are the same,
every F1 equals the accuracy of :func:`~unnparse.evaluation.attachment.score_sentences`.

The words aligned, every score of the CoNLL 2018 shared task is computed as its script does
(:mod:`unnparse.evaluation.conll18`: tags, features, lemmas, UAS, LAS, CLAS, MLAS, BLEX).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from unnparse.conllu.sentence import Sentence
from unnparse.evaluation.attachment import AlignmentError, RelationScore
from unnparse.evaluation.conll18 import Conll18Scores, F1Score, ScoredWord, score_alignment, scored_words, span_matches
from unnparse.text.raw_text import normalize_text

__all__ = [
    "AlignedScores",
    "F1Score",
    "TOKEN_KINDS",
    "TextAlignment",
    "WordAlignment",
    "align_words",
    "aligned_relation_scores",
    "corpus_text",
    "score_aligned",
    "segmentation_scores",
    "token_kind",
]


#: The scores through the text: every score of the CoNLL 2018 shared task (kept under this name).
AlignedScores = Conll18Scores


@dataclass(frozen=True)
class _Word(ScoredWord):
    start: int  # character span over the non-whitespace text; a multiword token's words share its span
    end: int
    form: str  # lowercased
    multiword: bool


@dataclass
class _Laid:
    """A file laid over its text: the characters, token and sentence spans, and the words."""

    chars: list[str]
    char_lines: list[int]  # line of the token each character belongs to
    tokens: list[tuple[int, int]]
    sentences: list[tuple[int, int]]
    words: list[_Word]


def _chars(form: str) -> str:
    """The characters a form contributes to the text: NFC, without whitespace and invisible format characters."""
    return "".join(normalize_text(form).split())


def _lay_out(sentences: Sequence[Sentence], label: str, *, parsed: bool = True) -> _Laid:
    laid = _Laid([], [], [], [], [])
    for index, sentence in enumerate(sentences):
        heads, deprels = sentence.heads, sentence.deprels
        if not parsed:
            heads, deprels = [0] * len(sentence), ["_"] * len(sentence)
        elif heads is None or deprels is None:
            raise AlignmentError(sentence.source, sentence.line, f"{label} sentence {index + 1}: HEAD/DEPREL missing")
        scored = scored_words(sentence, len(laid.words), heads, deprels)
        sentence_start = len(laid.chars)
        for token in sentence.surface_tokens():
            start = len(laid.chars)
            text = _chars(token.form)
            laid.chars.extend(text)
            laid.char_lines.extend([token.line] * len(text))
            laid.tokens.append((start, len(laid.chars)))
            for word, form in enumerate(token.words, start=token.first_word):
                laid.words.append(
                    _Word(
                        **vars(scored[word]),
                        start=start,
                        end=len(laid.chars),
                        form=_chars(form).lower(),
                        multiword=token.multiword,
                    )
                )
        laid.sentences.append((sentence_start, len(laid.chars)))
    return laid


def _check_same_text(gold: _Laid, pred: _Laid, gold_source: str, pred_source: str) -> None:
    if gold.chars == pred.chars:
        return
    at = next((i for i, (g, p) in enumerate(zip(gold.chars, pred.chars, strict=False)) if g != p), None)
    if at is None:  # one text is a prefix of the other
        at = min(len(gold.chars), len(pred.chars))
    g_text = "".join(gold.chars[at : at + 20]) or "(end of text)"
    p_text = "".join(pred.chars[at : at + 20]) or "(end of text)"
    line = pred.char_lines[at] if at < len(pred.char_lines) else (pred.char_lines[-1] if pred.char_lines else None)
    g_line = gold.char_lines[at] if at < len(gold.char_lines) else None
    where = f"{gold_source}:{g_line}" if g_line is not None else gold_source
    raise AlignmentError(
        pred_source,
        line,
        f"the text differs from the gold text ({where}) at non-space character {at + 1}: "
        f"{p_text!r} against gold {g_text!r}",
    )


@dataclass(frozen=True)
class WordAlignment:
    """Pairs ``(gold word index, predicted word index)`` of aligned words, in text order."""

    pairs: list[tuple[int, int]]
    gold_words: int
    predicted_words: int


def _beyond(words: Sequence[_Word], i: int, end: int) -> bool:
    """Whether word ``i`` lies past a multiword stretch ending at ``end``: a multiword token's word when it starts at
    ``end`` or later, another word when it ends after ``end`` (the official script's rule)."""
    if i >= len(words):
        return True
    return words[i].start >= end if words[i].multiword else words[i].end > end


def _extend(word: _Word, end: int) -> int:
    return word.end if word.multiword and word.end > end else end


def _multiword_region(gold: Sequence[_Word], pred: Sequence[_Word], gi: int, pi: int) -> tuple[int, int, int, int]:
    """The smallest stretch of words around a multiword token at ``gi`` or ``pi`` that both files cover alike."""
    if gold[gi].multiword:
        end = gold[gi].end
        if not pred[pi].multiword and pred[pi].start < gold[gi].start:
            pi += 1
    else:
        end = pred[pi].end
        if not gold[gi].multiword and gold[gi].start < pred[pi].start:
            gi += 1
    g_start, p_start = gi, pi
    while not _beyond(gold, gi, end) or not _beyond(pred, pi, end):
        if gi < len(gold) and (pi >= len(pred) or gold[gi].start <= pred[pi].start):
            end = _extend(gold[gi], end)
            gi += 1
        else:
            end = _extend(pred[pi], end)
            pi += 1
    return g_start, p_start, gi, pi


def _lcs_pairs(gold: Sequence[_Word], pred: Sequence[_Word]) -> list[tuple[int, int]]:
    """Index pairs of a longest common subsequence of the two lists' forms."""
    n, m = len(gold), len(pred)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if gold[i].form == pred[j].form:
                table[i][j] = 1 + table[i + 1][j + 1]
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs = []
    i = j = 0
    while i < n and j < m:
        if gold[i].form == pred[j].form:
            pairs.append((i, j))
            i += 1
            j += 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def _align(gold: Sequence[_Word], pred: Sequence[_Word]) -> WordAlignment:
    pairs: list[tuple[int, int]] = []
    gi = pi = 0
    while gi < len(gold) and pi < len(pred):
        if gold[gi].multiword or pred[pi].multiword:
            g_start, p_start, gi, pi = _multiword_region(gold, pred, gi, pi)
            pairs.extend((g_start + a, p_start + b) for a, b in _lcs_pairs(gold[g_start:gi], pred[p_start:pi]))
        elif (gold[gi].start, gold[gi].end) == (pred[pi].start, pred[pi].end):
            pairs.append((gi, pi))
            gi += 1
            pi += 1
        elif gold[gi].start <= pred[pi].start:
            gi += 1
        else:
            pi += 1
    return WordAlignment(pairs, len(gold), len(pred))


class TextAlignment:
    """Two files laid over their common text with their words aligned, computed once for all the scores.

    Raises (on construction):
        AlignmentError: the texts differ (the message names the predicted file's line and the gold one's), or, with
            ``parsed``, a sentence lacks HEAD/DEPREL.
        ValueError: either side has no sentences.
    """

    def __init__(self, gold: Sequence[Sentence], pred: Sequence[Sentence], *, parsed: bool = True) -> None:
        if not gold:
            raise ValueError("nothing to score: no gold sentences")
        if not pred:
            raise ValueError("nothing to score: no predicted sentences")
        self.gold = _lay_out(gold, "gold", parsed=parsed)
        self.pred = _lay_out(pred, "predicted", parsed=parsed)
        _check_same_text(self.gold, self.pred, gold[0].source, pred[0].source)
        self.alignment = _align(self.gold.words, self.pred.words)
        self._gold_of = {pi: gi for gi, pi in self.alignment.pairs}

    def same_head(self, gi: int, pi: int) -> bool:
        """Whether predicted word ``pi``'s head is aligned with the head of its aligned gold word ``gi``."""
        p_head = self.pred.words[pi].head
        mapped = -1 if p_head == -1 else self._gold_of.get(p_head, -2)
        return mapped == self.gold.words[gi].head

    def segmentation(self) -> dict[str, F1Score]:
        """F1 of tokens, sentences and aligned words."""
        g, p = self.gold, self.pred
        return {
            "tokens": F1Score(len(g.tokens), len(p.tokens), span_matches(g.tokens, p.tokens)),
            "sentences": F1Score(len(g.sentences), len(p.sentences), span_matches(g.sentences, p.sentences)),
            "words": F1Score(len(g.words), len(p.words), len(self.alignment.pairs)),
        }

    def tokens_by_kind(self) -> dict[str, tuple[int, int]]:
        """For each kind of gold token that rules and models often split wrongly, (how many the prediction has
        exactly, how many there are): ``digits`` (tokens with a digit: ``2019``, ``3,500.75``), ``abbreviations``
        (letters and a final period: ``Mr.``, ``p.m.``) and ``punctuation`` (punctuation only: ``...``, ``?!``)."""
        predicted = set(self.pred.tokens)
        counts = {kind: [0, 0] for kind in TOKEN_KINDS}
        for start, end in self.gold.tokens:
            kind = token_kind("".join(self.gold.chars[start:end]))
            if kind is not None:
                counts[kind][1] += 1
                counts[kind][0] += (start, end) in predicted
        return {kind: (right, total) for kind, (right, total) in counts.items()}

    def scores(self) -> Conll18Scores:
        """Every score of the CoNLL 2018 shared task (see :mod:`unnparse.evaluation.conll18`)."""
        seg = self.segmentation()
        return score_alignment(
            self.gold.words, self.pred.words, self.alignment.pairs, tokens=seg["tokens"], sentences=seg["sentences"]
        )

    def relation_scores(self) -> dict[str, RelationScore]:
        """Labeled attachment per universal relation over aligned words, most frequent gold relation first."""
        g, p = self.gold.words, self.pred.words
        scores: dict[str, RelationScore] = {}
        for word in g:
            scores.setdefault(word.deprel, RelationScore(0, 0, 0)).gold += 1
        for word in p:
            scores.setdefault(word.deprel, RelationScore(0, 0, 0)).predicted += 1
        for gi, pi in self.alignment.pairs:
            if g[gi].deprel == p[pi].deprel and self.same_head(gi, pi):
                scores[g[gi].deprel].correct += 1
        return dict(sorted(scores.items(), key=lambda item: (-item[1].gold, item[0])))


def align_words(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> WordAlignment:
    """Align the syntactic words of two tokenizations of the same text (indices over all words of each file).

    Raises:
        AlignmentError: the texts differ (the message names the predicted file's line and the gold one's), or a
            sentence lacks HEAD/DEPREL.
        ValueError: either side has no sentences.
    """
    return TextAlignment(gold, pred).alignment


def score_aligned(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> Conll18Scores:
    """Score a prediction whose tokens and sentences may differ from the gold ones (see the module docstring).

    Raises:
        AlignmentError: the texts differ, or a sentence lacks HEAD/DEPREL.
        ValueError: either side has no sentences.
    """
    return TextAlignment(gold, pred).scores()


def aligned_relation_scores(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> dict[str, RelationScore]:
    """Labeled attachment per universal relation over aligned words, most frequent gold relation first."""
    return TextAlignment(gold, pred).relation_scores()


#: The kinds of token :meth:`TextAlignment.tokens_by_kind` counts.
TOKEN_KINDS = ("digits", "abbreviations", "punctuation")


def token_kind(token: str) -> str | None:
    """``digits``, ``abbreviations`` or ``punctuation`` for a token of one of those kinds (see
    :meth:`TextAlignment.tokens_by_kind`), else None."""
    if any(ch.isdigit() for ch in token):
        return "digits"
    if len(token) > 1 and token.endswith(".") and any(ch.isalpha() for ch in token):
        return "abbreviations"
    if token and all(unicodedata.category(ch).startswith("P") for ch in token):
        return "punctuation"
    return None


def segmentation_scores(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> dict[str, F1Score]:
    """F1 of tokens, sentences and words of two segmentations of the same text; neither needs HEAD or DEPREL.

    Raises:
        AlignmentError: the texts differ.
        ValueError: either side has no sentences.
    """
    return TextAlignment(gold, pred, parsed=False).segmentation()


def corpus_text(sentences: Sequence[Sentence]) -> str:
    """The raw text of a CoNLL-U corpus, to parse from scratch.

    Each sentence's ``# text`` (or, without it, its surface tokens joined as their ``SpaceAfter=No`` say);
    sentences are separated by a space, paragraphs (``# newpar``, ``# newdoc``) by a blank line.
    """
    parts: list[str] = []
    for sentence in sentences:
        text = sentence.text
        if text is None:
            text = sentence.surface_text()
        if parts:
            parts.append("\n\n" if sentence.starts_paragraph else " ")
        parts.append(text.strip())
    return "".join(parts) + "\n"
