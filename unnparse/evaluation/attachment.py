"""Attachment scores for dependency parses.

All scores are percentages over the syntactic words of the gold tokenization,
punctuation included (but for CLAS, which counts content words only, as the CoNLL 2018
shared task did).  Labeled scores compare the universal part of DEPREL (before ``:``),
so ``nmod:poss`` and ``nmod`` count as the same label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from unnparse.conllu.errors import CoNLLUError
from unnparse.conllu.sentence import Sentence

__all__ = [
    "CONTENT_DEPRELS",
    "AlignmentError",
    "AttachmentScores",
    "RelationScore",
    "relation_scores",
    "score_sentences",
    "tag_accuracies",
    "universal_deprel",
]

#: Universal relations of content words (CLAS): all but the function-word relations
#: aux, case, cc, clf, cop, det, mark, and punct.
CONTENT_DEPRELS = frozenset(
    "nsubj obj iobj csubj ccomp xcomp obl vocative expl dislocated advcl advmod discourse nmod appos nummod acl amod "
    "conj fixed flat compound list parataxis orphan goeswith reparandum root dep".split()
)


class AlignmentError(CoNLLUError):
    """Gold and predicted sentences do not line up (count, words or forms differ)."""


@dataclass
class AttachmentScores:
    """Corpus-level scores, in percent (``sentences`` and ``words`` are counts).

    Attributes:
        uas: words with the correct head.
        las: words with the correct head and universal deprel.
        clas: LAS over content words (:data:`CONTENT_DEPRELS`), as the F1 of the gold and the
            predicted content words: 2 * correct / (gold content words + predicted content words).
        modifier_list_accuracy: among words (not ROOT) that head at least one gold
            modifier, those whose predicted set of modifiers equals the gold set
            (100 when no word has a modifier).
        exact_match: sentences with every head correct.
        labeled_exact_match: sentences with every head and universal deprel correct.
        sentences: number of sentences scored.
        words: number of words scored.
    """

    uas: float
    las: float
    clas: float
    modifier_list_accuracy: float
    exact_match: float
    labeled_exact_match: float
    sentences: int
    words: int

    def as_dict(self) -> dict[str, float | int]:
        """The scores as a plain dictionary (field name -> value)."""
        return asdict(self)


def universal_deprel(deprel: str) -> str:
    """The universal part of a dependency relation: ``"nmod:poss"`` -> ``"nmod"``."""
    return deprel.split(":", 1)[0]


@dataclass
class RelationScore:
    """Labeled attachment of one universal relation: ``correct`` words have the gold head and this relation in
    both files; precision over the ``predicted`` words with the relation, recall over the ``gold`` ones (percent;
    None where there is no such word to count over).
    """

    gold: int
    predicted: int
    correct: int

    @property
    def precision(self) -> float | None:
        """Percent of the predicted words with this relation that are correct (None: none predicted)."""
        return _pct(self.correct, self.predicted) if self.predicted else None

    @property
    def recall(self) -> float | None:
        """Percent of the gold words with this relation that are correct (None: none in the gold file)."""
        return _pct(self.correct, self.gold) if self.gold else None

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall, in percent."""
        return _pct(2 * self.correct, self.gold + self.predicted)

    def as_dict(self) -> dict[str, float | int | None]:
        """Counts and percentages as a plain dictionary."""
        return {**asdict(self), "precision": self.precision, "recall": self.recall, "f1": self.f1}


def _pct(num: int, den: int) -> float:
    return 100.0 * num / den if den else 100.0


def _describe(sentence: Sentence, index: int) -> str:
    sid = sentence.sent_id
    return f"sentence {index + 1}" + (f" (sent_id {sid})" if sid else "")


def score_sentences(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> AttachmentScores:
    """Score predicted parses against gold parses.

    Raises:
        AlignmentError: different numbers of sentences, or a sentence whose words
            (count or forms) differ, or without heads/deprels; the message names it.
        ValueError: nothing to score (no sentences).
    """
    if len(gold) != len(pred):
        src = pred[0].source if pred else (gold[0].source if gold else "<input>")
        raise AlignmentError(src, None, f"gold has {len(gold)} sentences but the prediction has {len(pred)}")
    if not gold:
        raise ValueError("nothing to score: no sentences")
    words = heads_ok = labels_ok = 0
    content_gold = content_pred = content_ok = 0
    exact = labeled_exact = 0
    mods_total = mods_ok = 0
    for index, (g, p) in enumerate(zip(gold, pred, strict=True)):
        g_words, p_words = g.words, p.words
        if len(g_words) != len(p_words):
            raise AlignmentError(
                p.source,
                p.line,
                f"{_describe(g, index)}: gold has {len(g_words)} words, prediction has {len(p_words)}",
            )
        for k, (gw, pw) in enumerate(zip(g_words, p_words, strict=True)):
            if gw != pw:
                raise AlignmentError(
                    p.source, p.line, f"{_describe(g, index)}: word {k + 1} is {gw!r} in gold but {pw!r} in prediction"
                )
        g_heads, p_heads = g.heads, p.heads
        g_rels, p_rels = g.deprels, p.deprels
        for label, value, sent in (
            ("gold", g_heads, g),
            ("gold", g_rels, g),
            ("predicted", p_heads, p),
            ("predicted", p_rels, p),
        ):
            if value is None:
                raise AlignmentError(
                    sent.source, sent.line, f"{_describe(g, index)}: {label} HEAD/DEPREL missing ('_')"
                )
        assert g_heads is not None and p_heads is not None and g_rels is not None and p_rels is not None
        sent_heads = sent_labels = 0
        for gh, ph, gr, pr in zip(g_heads, p_heads, g_rels, p_rels, strict=True):
            g_rel, p_rel = universal_deprel(gr), universal_deprel(pr)
            content_gold += g_rel in CONTENT_DEPRELS
            content_pred += p_rel in CONTENT_DEPRELS
            if gh == ph:
                sent_heads += 1
                if g_rel == p_rel:
                    sent_labels += 1
                    content_ok += g_rel in CONTENT_DEPRELS
        n = len(g_words)
        words += n
        heads_ok += sent_heads
        labels_ok += sent_labels
        exact += sent_heads == n
        labeled_exact += sent_labels == n
        gold_mods: dict[int, set[int]] = {}
        pred_mods: dict[int, set[int]] = {}
        for dep, (gh, ph) in enumerate(zip(g_heads, p_heads, strict=True), start=1):
            gold_mods.setdefault(gh, set()).add(dep)
            pred_mods.setdefault(ph, set()).add(dep)
        for head, mods in gold_mods.items():
            if head == 0:
                continue
            mods_total += 1
            mods_ok += pred_mods.get(head, set()) == mods
    return AttachmentScores(
        uas=_pct(heads_ok, words),
        las=_pct(labels_ok, words),
        clas=_pct(2 * content_ok, content_gold + content_pred),
        modifier_list_accuracy=_pct(mods_ok, mods_total),
        exact_match=_pct(exact, len(gold)),
        labeled_exact_match=_pct(labeled_exact, len(gold)),
        sentences=len(gold),
        words=words,
    )


def relation_scores(gold: Sequence[Sentence], pred: Sequence[Sentence]) -> dict[str, RelationScore]:
    """Labeled attachment per universal relation, most frequent gold relation first.

    The files must line up as for :func:`score_sentences` (call it first: it raises the errors).
    """
    scores: dict[str, RelationScore] = {}
    for g, p in zip(gold, pred, strict=True):
        assert g.heads is not None and p.heads is not None and g.deprels is not None and p.deprels is not None
        for gh, ph, gr, pr in zip(g.heads, p.heads, g.deprels, p.deprels, strict=True):
            g_rel, p_rel = universal_deprel(gr), universal_deprel(pr)
            scores.setdefault(g_rel, RelationScore(0, 0, 0)).gold += 1
            scores.setdefault(p_rel, RelationScore(0, 0, 0)).predicted += 1
            if gh == ph and g_rel == p_rel:
                scores[g_rel].correct += 1
    return dict(sorted(scores.items(), key=lambda item: (-item[1].gold, item[0])))


def _canonical_tag(column: str, value: str) -> str:
    return "|".join(sorted(value.split("|"))) if column == "feats" else value


def tag_accuracies(gold: Sequence[Sentence], pred: Sequence[Sentence], columns: Sequence[str]) -> dict[str, float]:
    """Percent of words whose ``upos``, ``xpos``, ``feats`` (all features, in any order) or ``lemma`` is the gold
    one, by column.

    The files must line up as for :func:`score_sentences`. A column is scored only where the gold file annotates it
    (a word with ``_`` in gold is left out); a column that the gold file never annotates is left out of the result.
    (The CoNLL 2018 scores of :mod:`unnparse.evaluation.conll18` differ: UFeats compares the universal features only,
    and Lemmas counts a word whose gold lemma is ``_`` as correct.)
    """
    result: dict[str, float] = {}
    for column in columns:
        total = correct = 0
        for g, p in zip(gold, pred, strict=True):
            for g_tag, p_tag in zip(g.column(column), p.column(column), strict=True):
                if g_tag == "_":
                    continue
                total += 1
                correct += _canonical_tag(column, g_tag) == _canonical_tag(column, p_tag)
        if total:
            result[column] = _pct(correct, total)
    return result
