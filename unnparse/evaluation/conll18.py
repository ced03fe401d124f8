"""The scores of the CoNLL 2018 shared task, as its evaluation script (``conll18_ud_eval.py``) computes them.

Every score is an F1 between the gold and the predicted words (or tokens, or sentences): ``correct`` items of
``gold`` gold and ``predicted`` predicted ones. The scores of aligned words also give their accuracy over the
``aligned`` (gold, predicted) word pairs. A predicted word is compared with the gold word it is aligned with:

* Tokens, Sentences: tokens (sentences) that cover the same text in both files; Words: aligned word pairs.
* UPOS, XPOS: the column is the same; UFeats: the universal features (:data:`UNIVERSAL_FEATURES`, sorted; others are
  dropped) are the same; AllTags: UPOS, XPOS and UFeats all the same.
* Lemmas: the lemma is the same, or the gold lemma is ``_`` (any predicted lemma counts as correct then).
* UAS: the predicted head is aligned with the gold head (or both are the root); LAS: ... and the universal part of
  DEPREL (before ``:``) is the same.
* CLAS, MLAS, BLEX count only the words whose relation is a content relation
  (:data:`~unnparse.evaluation.attachment.CONTENT_DEPRELS`; gold words for ``gold`` and ``aligned``, predicted
  words for ``predicted``). CLAS: as LAS. MLAS: as LAS, and UPOS and UFeats are the same, and so are the functional
  children (the words attached with a relation of :data:`FUNCTIONAL_DEPRELS`, in order): as many, each aligned with
  the gold one, with its relation, UPOS and UFeats. BLEX: as LAS, and the lemma is correct as for Lemmas.

Empty nodes (``8.1``) are not words; the words of a multiword token are. A column that neither file annotates
(``_`` everywhere) is scored all the same, as the official script does: ``_`` equals ``_``. Percentages follow the
script too: 0 where there is nothing to count over.

With the gold words (:func:`score_gold_words`) word ``i`` of the prediction is aligned with gold word ``i``; through
the text, :mod:`unnparse.evaluation.text_alignment` aligns them; both call :func:`score_alignment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from unnparse.conllu.sentence import Sentence
from unnparse.evaluation.attachment import CONTENT_DEPRELS, AlignmentError, universal_deprel

__all__ = [
    "CONLL18_METRICS",
    "FUNCTIONAL_DEPRELS",
    "METRIC_LABELS",
    "UNIVERSAL_FEATURES",
    "Conll18Scores",
    "F1Score",
    "ScoredWord",
    "score_alignment",
    "score_gold_words",
    "scored_words",
    "span_matches",
    "universal_features",
]

#: Relations of function words, whose dependents MLAS compares along with their head (the official list).
FUNCTIONAL_DEPRELS = frozenset("aux cop mark det clf case cc".split())

#: The universal features: UFeats, AllTags and MLAS compare only these (the official list).
UNIVERSAL_FEATURES = frozenset(
    "PronType NumType Poss Reflex Foreign Abbr Gender Animacy Number Case Definite Degree VerbForm Mood Tense Aspect "
    "Voice Evident Polarity Person Polite".split()
)

#: The scores, in the official script's order (the attribute names of :class:`Conll18Scores`).
CONLL18_METRICS = (
    "tokens", "sentences", "words", "upos", "xpos", "ufeats", "alltags", "lemmas", "uas", "las", "clas", "mlas", "blex"
)  # fmt: skip

#: The official name of each score.
METRIC_LABELS = {
    "tokens": "Tokens",
    "sentences": "Sentences",
    "words": "Words",
    "upos": "UPOS",
    "xpos": "XPOS",
    "ufeats": "UFeats",
    "alltags": "AllTags",
    "lemmas": "Lemmas",
    "uas": "UAS",
    "las": "LAS",
    "clas": "CLAS",
    "mlas": "MLAS",
    "blex": "BLEX",
}


@dataclass(frozen=True)
class F1Score:
    """``correct`` of ``gold`` gold items and ``predicted`` predicted items, among ``aligned`` aligned word pairs
    (None for tokens, sentences and words); percentages, 0 where there is nothing to count over (as the official
    script)."""

    gold: int
    predicted: int
    correct: int
    aligned: int | None = None

    @property
    def precision(self) -> float:
        """Percent of the predicted items that are correct."""
        return 100.0 * self.correct / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        """Percent of the gold items that are correct."""
        return 100.0 * self.correct / self.gold if self.gold else 0.0

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall: 2 * correct / (gold + predicted)."""
        total = self.gold + self.predicted
        return 200.0 * self.correct / total if total else 0.0

    @property
    def aligned_accuracy(self) -> float | None:
        """Percent of the aligned word pairs that are correct (None for tokens, sentences and words)."""
        if self.aligned is None:
            return None
        return 100.0 * self.correct / self.aligned if self.aligned else 0.0

    def as_dict(self) -> dict[str, float | int | None]:
        """Counts and percentages as a plain dictionary."""
        return {
            "gold": self.gold,
            "predicted": self.predicted,
            "correct": self.correct,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "aligned": self.aligned,
            "aligned_accuracy": self.aligned_accuracy,
        }


@dataclass(frozen=True)
class Conll18Scores:
    """Every score of the CoNLL 2018 shared task (see the module docstring), one :class:`F1Score` each."""

    tokens: F1Score
    sentences: F1Score
    words: F1Score
    upos: F1Score
    xpos: F1Score
    ufeats: F1Score
    alltags: F1Score
    lemmas: F1Score
    uas: F1Score
    las: F1Score
    clas: F1Score
    mlas: F1Score
    blex: F1Score

    def as_dict(self) -> dict[str, dict[str, float | int | None]]:
        """Each score's counts and percentages, by name, in the official order."""
        return {name: getattr(self, name).as_dict() for name in CONLL18_METRICS}


@dataclass(frozen=True)
class ScoredWord:
    """A syntactic word as the scores see it: ``head`` is the index of its head among all words of its file (-1 for
    the root), ``deprel`` the universal relation, ``feats`` the universal features (:func:`universal_features`)."""

    head: int
    deprel: str
    upos: str
    xpos: str
    feats: str
    lemma: str


def universal_features(feats: str) -> str:
    """The universal features of a FEATS value, sorted: ``"Number=Sing|Case=Nom|Foo=1"`` -> ``"Case=Nom|Number=Sing"``;
    ``""`` for ``_``."""
    return "|".join(sorted(f for f in feats.split("|") if f.split("=", 1)[0] in UNIVERSAL_FEATURES))


def scored_words(
    sentence: Sentence, offset: int, heads: Sequence[int] | None = None, deprels: Sequence[str] | None = None
) -> list[ScoredWord]:
    """The words of ``sentence``, whose first word has index ``offset`` in its file, with ``heads`` and ``deprels``
    (default: the sentence's own, which must be annotated)."""
    heads = sentence.heads if heads is None else heads
    deprels = sentence.deprels if deprels is None else deprels
    if heads is None or deprels is None:
        raise ValueError("a sentence without HEAD/DEPREL")
    columns = zip(
        heads,
        deprels,
        sentence.column("upos"),
        sentence.column("xpos"),
        sentence.column("feats"),
        sentence.column("lemma"),
        strict=True,
    )
    return [
        ScoredWord(
            -1 if head == 0 else offset + head - 1, universal_deprel(rel), upos, xpos, universal_features(f), lem
        )
        for head, rel, upos, xpos, f, lem in columns
    ]


def span_matches(gold: Sequence[tuple[int, int]], pred: Sequence[tuple[int, int]]) -> int:
    """Number of identical spans in two lists of spans sorted by start."""
    i = j = correct = 0
    while i < len(gold) and j < len(pred):
        if gold[i][0] < pred[j][0]:
            i += 1
        elif pred[j][0] < gold[i][0]:
            j += 1
        else:
            correct += gold[i][1] == pred[j][1]
            i += 1
            j += 1
    return correct


def _functional_children(words: Sequence[ScoredWord]) -> list[list[int]]:
    """For each word, its dependents with a functional relation, in word order."""
    children: list[list[int]] = [[] for _ in words]
    for index, word in enumerate(words):
        if word.head >= 0 and word.deprel in FUNCTIONAL_DEPRELS:
            children[word.head].append(index)
    return children


def score_alignment(
    gold: Sequence[ScoredWord],
    pred: Sequence[ScoredWord],
    pairs: Sequence[tuple[int, int]],
    *,
    tokens: F1Score,
    sentences: F1Score,
) -> Conll18Scores:
    """Every score of aligned words: ``pairs`` of (gold index, predicted index), each word in one pair at most;
    ``tokens`` and ``sentences`` are scored by the caller."""
    gold_of = {pi: gi for gi, pi in pairs}
    gold_children, pred_children = _functional_children(gold), _functional_children(pred)

    def head_ok(g: ScoredWord, p: ScoredWord) -> bool:
        return (-1 if p.head == -1 else gold_of.get(p.head, -2)) == g.head

    def lemma_ok(g: ScoredWord, p: ScoredWord) -> bool:
        return g.lemma == "_" or g.lemma == p.lemma

    def children_ok(gi: int, pi: int) -> bool:
        g_kids, p_kids = gold_children[gi], pred_children[pi]
        return len(g_kids) == len(p_kids) and all(
            gold_of.get(pc, -2) == gc
            and (gold[gc].deprel, gold[gc].upos, gold[gc].feats) == (pred[pc].deprel, pred[pc].upos, pred[pc].feats)
            for gc, pc in zip(g_kids, p_kids, strict=True)
        )

    counts = dict.fromkeys(CONLL18_METRICS[3:], 0)
    for gi, pi in pairs:
        g, p = gold[gi], pred[pi]
        counts["upos"] += g.upos == p.upos
        counts["xpos"] += g.xpos == p.xpos
        counts["ufeats"] += g.feats == p.feats
        counts["alltags"] += (g.upos, g.xpos, g.feats) == (p.upos, p.xpos, p.feats)
        counts["lemmas"] += lemma_ok(g, p)
        if not head_ok(g, p):
            continue
        counts["uas"] += 1
        if g.deprel != p.deprel:
            continue
        counts["las"] += 1
        if g.deprel not in CONTENT_DEPRELS:
            continue
        counts["clas"] += 1
        counts["mlas"] += (g.upos, g.feats) == (p.upos, p.feats) and children_ok(gi, pi)
        counts["blex"] += lemma_ok(g, p)
    content_aligned = sum(gold[gi].deprel in CONTENT_DEPRELS for gi, _ in pairs)
    content_gold = sum(w.deprel in CONTENT_DEPRELS for w in gold)
    content_pred = sum(w.deprel in CONTENT_DEPRELS for w in pred)
    n_gold, n_pred, n_pairs = len(gold), len(pred), len(pairs)
    scores = {
        name: F1Score(content_gold, content_pred, count, content_aligned)
        if name in ("clas", "mlas", "blex")
        else F1Score(n_gold, n_pred, count, n_pairs)
        for name, count in counts.items()
    }
    return Conll18Scores(tokens=tokens, sentences=sentences, words=F1Score(n_gold, n_pred, n_pairs), **scores)


def score_gold_words(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> Conll18Scores:
    """Every score of a prediction with the gold words: word ``i`` of each predicted sentence is aligned with word
    ``i`` of the gold one. Sentences are all correct; a token is correct when it covers the same words in both
    files (a multiword token in one file and separate words in the other are not).

    Raises:
        AlignmentError: the files have different sentences or words, or a sentence lacks HEAD/DEPREL (see
            :func:`~unnparse.evaluation.attachment.score_sentences` for messages naming the sentence).
        ValueError: no sentences.
    """
    if not gold:
        raise ValueError("nothing to score: no sentences")
    if len(gold) != len(pred):
        raise AlignmentError(pred[0].source if pred else "<input>", None, "the files have different sentences")
    g_words: list[ScoredWord] = []
    p_words: list[ScoredWord] = []
    g_tokens: list[tuple[int, int]] = []
    p_tokens: list[tuple[int, int]] = []
    for index, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if g.words != p.words:
            raise AlignmentError(p.source, p.line, f"sentence {index + 1}: the words differ from the gold ones")
        offset = len(g_words)
        for sentence, words, tokens in ((g, g_words, g_tokens), (p, p_words, p_tokens)):
            try:
                words.extend(scored_words(sentence, offset))
            except ValueError:
                raise AlignmentError(
                    sentence.source, sentence.line, f"sentence {index + 1}: HEAD/DEPREL missing ('_')"
                ) from None
            tokens.extend(
                (offset + t.first_word, offset + t.first_word + len(t.words)) for t in sentence.surface_tokens()
            )
    n = len(gold)
    return score_alignment(
        g_words,
        p_words,
        [(i, i) for i in range(len(g_words))],
        tokens=F1Score(len(g_tokens), len(p_tokens), span_matches(g_tokens, p_tokens)),
        sentences=F1Score(n, n, n),
    )
