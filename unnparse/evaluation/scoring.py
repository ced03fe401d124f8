"""What ``unnparse evaluate`` scores: a prediction against the gold sentences, with the gold words (accuracies of
:mod:`unnparse.evaluation.attachment`) or, when the words differ, through the text (the CoNLL 2018 F1 scores of
:mod:`unnparse.evaluation.text_alignment`), in one :class:`Evaluation`. Either way, every score of the CoNLL 2018
shared task (:mod:`unnparse.evaluation.conll18`: tokens ... UAS, LAS, CLAS, MLAS, BLEX) comes with it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from unnparse.conllu.sentence import Sentence
from unnparse.evaluation.attachment import AttachmentScores, RelationScore
from unnparse.evaluation.conll18 import Conll18Scores

__all__ = [
    "ALIGNMENTS",
    "REALIGNED",
    "Evaluation",
    "annotated_columns",
    "choose_alignment",
    "copied_columns",
    "evaluate_parses",
]

#: ``words``: the prediction has the gold words; ``characters``: words aligned through the text; ``auto``: words when
#: they line up, else characters.
ALIGNMENTS = ("auto", "words", "characters")
#: What :func:`evaluate_parses` says when ``auto`` scores through the text.
REALIGNED = "the words differ from the gold ones: scoring words aligned through the text"


@dataclass(frozen=True)
class Evaluation:
    """The scores of a prediction: with the gold words (``alignment == "words"``: ``attachment`` and the accuracy of
    each tag column, ``tags``) or through the text (``"characters"``: ``aligned``); in both, every CoNLL 2018 score
    (``conll18``; through the text the same object as ``aligned``); the LAS of each relation when asked for."""

    alignment: Literal["words", "characters"]
    attachment: AttachmentScores | None = None
    tags: dict[str, float] = field(default_factory=dict)
    aligned: Conll18Scores | None = None
    relations: dict[str, RelationScore] | None = None
    conll18: Conll18Scores | None = None


def annotated_columns(sentences: Sequence[Sentence], columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` that some word of ``sentences`` annotates (a value other than ``_``)."""
    return [c for c in columns if any(tag != "_" for sentence in sentences for tag in sentence.column(c))]


def copied_columns(gold: Sequence[Sentence], pred: Sequence[Sentence], columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` that ``pred`` holds exactly as ``gold`` does, word for word, where ``gold``
    annotates them: values kept from the input rather than predicted (their scores would be 100 and mean nothing).
    Empty when the words do not line up."""
    if choose_alignment(gold, pred) != "words":
        return []
    copied = []
    for column in annotated_columns(gold, columns):
        pairs = [
            (g, p)
            for gs, ps in zip(gold, pred, strict=True)
            for g, p in zip(gs.column(column), ps.column(column), strict=True)
        ]
        if all(g == p for g, p in pairs if g != "_"):
            copied.append(column)
    return copied


def choose_alignment(gold: Sequence[Sentence], pred: Sequence[Sentence], alignment: str = "auto") -> str:
    """``alignment``, or for ``auto``: ``words`` when ``pred`` has the sentences and words of ``gold``, else
    ``characters``."""
    if alignment != "auto":
        return alignment
    same = len(gold) == len(pred) and all(g.words == p.words for g, p in zip(gold, pred, strict=True))
    return "words" if same else "characters"


def evaluate_parses(
    gold: Sequence[Sentence],
    pred: Sequence[Sentence],
    *,
    alignment: str = "auto",
    tag_columns: Sequence[str] = (),
    per_relation: bool = False,
    log: Callable[[str], None] | None = None,
) -> Evaluation:
    """Score ``pred`` against ``gold`` (see :func:`choose_alignment`; ``log`` is told :data:`REALIGNED` when ``auto``
    scores through the text). With the gold words, the columns of ``tag_columns`` that ``pred`` annotates are scored
    too. Every CoNLL 2018 score is computed in both cases (``Evaluation.conll18``).

    Raises:
        AlignmentError: ``words`` for files whose words do not line up, ``characters`` for files whose text differs
            (one line naming the file and sentence).
        ValueError: no sentences to score.
    """
    if alignment not in ALIGNMENTS:
        raise ValueError(f"unknown alignment {alignment!r}: expected one of {', '.join(ALIGNMENTS)}")
    chosen = choose_alignment(gold, pred, alignment)
    if alignment == "auto" and chosen == "characters" and log is not None:
        log(REALIGNED)
    if chosen == "characters":
        from unnparse.evaluation.text_alignment import TextAlignment

        text_alignment = TextAlignment(gold, pred)
        aligned = text_alignment.scores()
        relations = text_alignment.relation_scores() if per_relation else None
        return Evaluation("characters", aligned=aligned, relations=relations, conll18=aligned)
    from unnparse.evaluation.attachment import relation_scores, score_sentences, tag_accuracies
    from unnparse.evaluation.conll18 import score_gold_words

    scores = score_sentences(gold, pred)
    tags = tag_accuracies(gold, pred, annotated_columns(pred, tag_columns))
    relations = relation_scores(gold, pred) if per_relation else None
    conll18 = score_gold_words(gold, pred)
    return Evaluation("words", attachment=scores, tags=tags, relations=relations, conll18=conll18)
