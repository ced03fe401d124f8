"""What ``unnparse evaluate`` prints: rich tables or one JSON object, for words that line up or aligned through
the text."""

from __future__ import annotations

from collections.abc import Mapping

from rich.table import Table

from unnparse.evaluation.attachment import AttachmentScores, RelationScore
from unnparse.evaluation.scoring import Evaluation
from unnparse.evaluation.text_alignment import AlignedScores

__all__ = [
    "aligned_json",
    "aligned_table",
    "evaluation_json",
    "evaluation_tables",
    "relation_table",
    "words_json",
    "words_table",
]

_TAG_LABELS = {"upos": "UPOS", "xpos": "XPOS", "feats": "FEATS"}


def _relations_json(relations: Mapping[str, RelationScore] | None) -> dict[str, object]:
    if relations is None:
        return {}
    return {"relations": {rel: score.as_dict() for rel, score in relations.items()}}


def words_json(
    scores: AttachmentScores, tags: Mapping[str, float], relations: Mapping[str, RelationScore] | None
) -> dict[str, object]:
    """The scores of a prediction with the gold words: accuracies in percent, tag accuracies by column."""
    return {"alignment": "words", **scores.as_dict(), **tags, **_relations_json(relations)}


def words_table(title: str, scores: AttachmentScores, tags: Mapping[str, float]) -> Table:
    """Accuracies, one row each, then the tag accuracies and the counts."""
    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    d = scores.as_dict()
    for key, label in (
        ("uas", "UAS"),
        ("las", "LAS"),
        ("clas", "CLAS (content words)"),
        ("modifier_list_accuracy", "modifier-list accuracy"),
        ("exact_match", "exact match"),
        ("labeled_exact_match", "labeled exact match"),
    ):
        table.add_row(label, f"{d[key]:.2f}")
    for column, value in tags.items():
        table.add_row(_TAG_LABELS[column], f"{value:.2f}")
    table.add_row("sentences", f"{d['sentences']:,}")
    table.add_row("words", f"{d['words']:,}")
    return table


def aligned_json(scores: AlignedScores, relations: Mapping[str, RelationScore] | None) -> dict[str, object]:
    """F1 scores over the text: ``uas``, ``las``, ``clas`` (and ``upos``) as F1 at the top, every score's counts,
    precision, recall and F1 under ``scores``."""
    top = {name: getattr(scores, name).f1 for name in ("uas", "las", "clas")}
    if scores.upos is not None:
        top["upos"] = scores.upos.f1
    return {"alignment": "characters", **top, "scores": scores.as_dict(), **_relations_json(relations)}


def aligned_table(title: str, scores: AlignedScores) -> Table:
    """Counts, precision, recall and F1 of tokens, sentences, words, UPOS, UAS, LAS and CLAS."""
    table = Table(title=title, caption="words aligned through the text (CoNLL 2018 shared task); F1 in percent")
    for column in ("metric", "gold", "predicted", "correct", "precision", "recall", "F1"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    labels = {
        "tokens": "tokens",
        "sentences": "sentences",
        "words": "words",
        "upos": "UPOS",
        "uas": "UAS",
        "las": "LAS",
        "clas": "CLAS",
    }
    for name, score in scores.as_dict().items():
        table.add_row(
            labels[name],
            f"{score['gold']:,}",
            f"{score['predicted']:,}",
            f"{score['correct']:,}",
            f"{score['precision']:.2f}",
            f"{score['recall']:.2f}",
            f"{score['f1']:.2f}",
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
    """``unnparse evaluate --json``: :func:`words_json` or :func:`aligned_json` of ``result``."""
    if result.aligned is not None:
        return aligned_json(result.aligned, result.relations)
    assert result.attachment is not None
    return words_json(result.attachment, result.tags, result.relations)


def evaluation_tables(title: str, result: Evaluation) -> list[Table]:
    """``unnparse evaluate``: the scores' table, then the relations' when scored."""
    if result.aligned is not None:
        tables = [aligned_table(title, result.aligned)]
    else:
        assert result.attachment is not None
        tables = [words_table(title, result.attachment, result.tags)]
    if result.relations is not None:
        tables.append(relation_table(result.relations))
    return tables
