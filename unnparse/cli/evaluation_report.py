"""What ``unnparse evaluate`` prints: rich tables or one JSON object, for words that line up or aligned through
the text.

``--json`` prints one object. Percentages are in [0, 100]. Its keys:

* ``alignment``: ``"words"`` (the prediction has the gold words) or ``"characters"`` (words aligned through the
  text, as in the CoNLL 2018 shared task).
* ``scores``, in both modes: every score of the CoNLL 2018 shared task, as its script ``conll18_ud_eval.py``
  computes it, by name: ``tokens``, ``sentences``, ``words``, ``upos``, ``xpos``, ``ufeats`` (universal features
  only), ``alltags`` (UPOS, XPOS and UFeats), ``lemmas`` (a gold ``_`` lemma counts as correct), ``uas``, ``las``,
  ``clas``, ``mlas``, ``blex`` (see :mod:`unnparse.evaluation.conll18`). Each is an object with ``gold``,
  ``predicted`` and ``correct`` (counts), ``precision``, ``recall`` and ``f1`` (0 where there is nothing to count
  over, as the official script), ``aligned`` (aligned gold words counted over; ``null`` for tokens, sentences and
  words) and ``aligned_accuracy`` (``correct`` / ``aligned``; ``null`` with ``aligned``).
* With ``"words"``, the accuracies of :class:`~unnparse.evaluation.attachment.AttachmentScores`: ``uas``, ``las``,
  ``clas``, ``modifier_list_accuracy``, ``exact_match``, ``labeled_exact_match``, and the counts ``sentences`` and
  ``words``; the accuracy of each tag column that the prediction annotates, over the words that the gold file
  annotates: ``upos``, ``xpos``, ``feats`` (all features), ``lemma``; and the F1 of ``ufeats``, ``alltags``,
  ``lemmas``, ``mlas``, ``blex`` (as under ``scores``; with the gold words an F1 is an accuracy).
* With ``"characters"``, the F1 of ``upos``, ``xpos``, ``ufeats``, ``alltags``, ``lemmas``, ``uas``, ``las``,
  ``clas``, ``mlas`` and ``blex`` (as under ``scores``).
* ``relations``, with ``--per-relation``: for each universal relation, ``gold``, ``predicted``, ``correct``,
  ``precision`` and ``recall`` (``null``: nothing to count over) and ``f1`` of labeled attachment.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from unnparse.evaluation.attachment import AttachmentScores, RelationScore
from unnparse.evaluation.conll18 import CONLL18_METRICS, METRIC_LABELS, Conll18Scores
from unnparse.evaluation.scoring import Evaluation

__all__ = [
    "aligned_json",
    "aligned_table",
    "evaluation_json",
    "evaluation_tables",
    "relation_table",
    "words_json",
    "words_table",
]

_TAG_LABELS = {"upos": "UPOS", "xpos": "XPOS", "feats": "FEATS", "lemma": "LEMMA"}

#: The CoNLL 2018 scores given as F1 at the top of the JSON object with the gold words (the others have keys there).
_WORDS_TOP = ("ufeats", "alltags", "lemmas", "mlas", "blex")
#: ... and through the text: every score of aligned words.
_ALIGNED_TOP = ("upos", "xpos", "ufeats", "alltags", "lemmas", "uas", "las", "clas", "mlas", "blex")


def _relations_json(relations: Mapping[str, RelationScore] | None) -> dict[str, object]:
    if relations is None:
        return {}
    return {"relations": {rel: score.as_dict() for rel, score in relations.items()}}


def _conll18_json(conll18: Conll18Scores | None, top: tuple[str, ...]) -> dict[str, object]:
    if conll18 is None:
        return {}
    return {**{name: getattr(conll18, name).f1 for name in top}, "scores": conll18.as_dict()}


def words_json(
    scores: AttachmentScores,
    tags: Mapping[str, float],
    relations: Mapping[str, RelationScore] | None,
    conll18: Conll18Scores | None = None,
) -> dict[str, object]:
    """The scores of a prediction with the gold words: accuracies in percent, tag accuracies by column, and with
    ``conll18`` the CoNLL 2018 scores (see the module docstring)."""
    return {
        "alignment": "words",
        **scores.as_dict(),
        **tags,
        **_conll18_json(conll18, _WORDS_TOP),
        **_relations_json(relations),
    }


def words_table(
    title: str, scores: AttachmentScores, tags: Mapping[str, float], conll18: Conll18Scores | None = None
) -> Table:
    """Accuracies, one row each (with ``conll18``, MLAS and BLEX after CLAS), then the tag accuracies (and the
    CoNLL 2018 UFeats, AllTags and Lemmas) and the counts."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    d = scores.as_dict()
    rows = [("uas", "UAS"), ("las", "LAS"), ("clas", "CLAS (content words)")]
    values = dict(d)
    if conll18 is not None:
        rows += [("mlas", "MLAS (CLAS + tags, features, function words)"), ("blex", "BLEX (CLAS + lemmas)")]
        values |= {name: getattr(conll18, name).f1 for name in _WORDS_TOP}
    rows += [
        ("modifier_list_accuracy", "modifier-list accuracy"),
        ("exact_match", "exact match"),
        ("labeled_exact_match", "labeled exact match"),
    ]
    for key, label in rows:
        table.add_row(label, f"{values[key]:.2f}")
    for column, value in tags.items():
        table.add_row(_TAG_LABELS[column], f"{value:.2f}")
    if conll18 is not None:
        for key, label in (
            ("ufeats", "UFeats (universal features)"),
            ("alltags", "AllTags (UPOS, XPOS, UFeats)"),
            ("lemmas", "Lemmas (gold '_' counts as correct)"),
        ):
            table.add_row(label, f"{values[key]:.2f}")
    table.add_row("sentences", f"{d['sentences']:,}")
    table.add_row("words", f"{d['words']:,}")
    return table


def aligned_json(scores: Conll18Scores, relations: Mapping[str, RelationScore] | None) -> dict[str, object]:
    """F1 scores over the text: the scores of aligned words (``uas``, ``las``, ``clas``, ``mlas``, ``blex``,
    ``upos`` ...) as F1 at the top, every score's counts, precision, recall, F1 and aligned accuracy under
    ``scores``."""
    return {"alignment": "characters", **_conll18_json(scores, _ALIGNED_TOP), **_relations_json(relations)}


def aligned_table(title: str, scores: Conll18Scores) -> Table:
    """Every CoNLL 2018 score, as the official script prints them: precision, recall, F1 and the accuracy over the
    aligned words (AligndAcc; blank for tokens, sentences and words)."""
    table = Table(
        title=title,
        caption="CoNLL 2018 shared task: tokens, sentences and words aligned through the text; percent; "
        "AligndAcc = correct / aligned words",
    )
    for column in ("metric", "precision", "recall", "F1", "AligndAcc"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for name in CONLL18_METRICS:
        score = getattr(scores, name)
        accuracy = score.aligned_accuracy
        table.add_row(
            METRIC_LABELS[name],
            f"{score.precision:.2f}",
            f"{score.recall:.2f}",
            f"{score.f1:.2f}",
            "" if accuracy is None else f"{accuracy:.2f}",
        )
    return table


def relation_table(relations: Mapping[str, RelationScore]) -> Table:
    """Precision, recall and F1 of labeled attachment for each universal relation ("–": nothing to count over)."""
    table = Table(title="labeled attachment per relation (universal part)")
    for column in ("relation", "gold", "predicted", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "relation" else "right")
    for rel, score in relations.items():
        table.add_row(
            rel,
            f"{score.gold:,}",
            f"{score.predicted:,}",
            "–" if score.precision is None else f"{score.precision:.2f}",
            "–" if score.recall is None else f"{score.recall:.2f}",
            f"{score.f1:.2f}",
        )
    return table


def evaluation_json(result: Evaluation) -> dict[str, object]:
    """``unnparse evaluate --json``: :func:`words_json` or :func:`aligned_json` of ``result`` (keys: see the module
    docstring)."""
    if result.aligned is not None:
        return aligned_json(result.aligned, result.relations)
    assert result.attachment is not None
    return words_json(result.attachment, result.tags, result.relations, result.conll18)


def evaluation_tables(title: str, result: Evaluation) -> list[Table]:
    """``unnparse evaluate``: the scores' table, then the relations' when scored."""
    if result.aligned is not None:
        tables = [aligned_table(title, result.aligned)]
    else:
        assert result.attachment is not None
        tables = [words_table(title, result.attachment, result.tags, result.conll18)]
    if result.relations is not None:
        tables.append(relation_table(result.relations))
    return tables
