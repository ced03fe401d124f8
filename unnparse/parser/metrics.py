"""Attachment scores for dependency parses.

All scores are percentages over the syntactic words of the gold tokenization,
punctuation included.  Labeled scores compare the universal part of DEPREL (before
``:``), so ``nmod:poss`` and ``nmod`` count as the same label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from unnparse.parser.conllu_data import CoNLLUError, Sentence

__all__ = ["AlignmentError", "AttachmentScores", "score_sentences", "universal_deprel"]


class AlignmentError(CoNLLUError):
    """Gold and predicted sentences do not line up (count, words or forms differ)."""


@dataclass
class AttachmentScores:
    """Corpus-level scores, in percent (``sentences`` and ``words`` are counts).

    Attributes:
        uas: words with the correct head.
        las: words with the correct head and universal deprel.
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
            if gh == ph:
                sent_heads += 1
                if universal_deprel(gr) == universal_deprel(pr):
                    sent_labels += 1
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
        modifier_list_accuracy=_pct(mods_ok, mods_total),
        exact_match=_pct(exact, len(gold)),
        labeled_exact_match=_pct(labeled_exact, len(gold)),
        sentences=len(gold),
        words=words,
    )
