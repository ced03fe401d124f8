"""Tests for unnparse.evaluation.attachment (expected numbers computed by hand)."""

from __future__ import annotations

import io

import pytest

from unnparse.conllu import CoNLLUError, Sentence, read_conllu
from unnparse.evaluation.attachment import (
    AlignmentError,
    AttachmentScores,
    relation_scores,
    score_sentences,
    universal_deprel,
)


def _sent(sid: str, rows: list[tuple[str, int, str]]) -> str:
    lines = [f"# sent_id = {sid}"]
    lines += [f"{i}\t{form}\t_\t_\t_\t_\t{head}\t{rel}\t_\t_" for i, (form, head, rel) in enumerate(rows, start=1)]
    return "\n".join(lines) + "\n\n"


def _read(text: str) -> list[Sentence]:
    return read_conllu(io.StringIO(text), name="t.conllu")


# Sentence 1: 6 words.
GOLD_1 = [("The", 2, "det"), ("cat", 3, "nsubj"), ("sat", 0, "root"), ("on", 5, "case"), ("mats", 3, "obl"),
          (".", 3, "punct")]  # fmt: skip
PRED_1 = [("The", 2, "det"), ("cat", 3, "nsubj"), ("sat", 0, "root"), ("on", 5, "mark"), ("mats", 2, "obl"),
          (".", 3, "punct")]  # fmt: skip
# heads right: 1 2 3 4 6 (5 wrong) -> 5/6; labels also right: 1 2 3 6 (4 has a wrong label) -> 4/6.
# gold modifier lists (ROOT excluded): 2:{1}  3:{2,5,6}  5:{4}
# pred modifier lists:                2:{1,5} 3:{2,6}    5:{4}   -> only word 5 matches: 1/3.

# Sentence 2: 3 words, all right; "nmod:poss" vs "nmod" counts as the same (universal) label.
GOLD_2 = [("My", 2, "nmod:poss"), ("dog", 0, "root"), ("!", 2, "punct")]
PRED_2 = [("My", 2, "nmod"), ("dog", 0, "root"), ("!", 2, "punct")]
# heads 3/3, labels 3/3; modifier lists: 2:{1,3} == 2:{1,3} -> 1/1.

# Sentence 3: 2 words, heads right but one label wrong.
GOLD_3 = [("Go", 0, "root"), (".", 1, "punct")]
PRED_3 = [("Go", 0, "root"), (".", 1, "dep")]
# heads 2/2, labels 1/2; modifier lists: 1:{2} == 1:{2} -> 1/1.


def test_hand_computed_scores() -> None:
    gold = _read(_sent("s1", GOLD_1) + _sent("s2", GOLD_2) + _sent("s3", GOLD_3))
    pred = _read(_sent("s1", PRED_1) + _sent("s2", PRED_2) + _sent("s3", PRED_3))
    scores = score_sentences(gold, pred)
    # words: 6 + 3 + 2 = 11
    # UAS = (5 + 3 + 2) / 11 = 10/11 = 90.909...
    # LAS = (4 + 3 + 1) / 11 = 8/11 = 72.727...
    # modifier lists = (1 + 1 + 1) / (3 + 1 + 1) = 3/5 = 60
    # exact match: sentences 2 and 3 -> 2/3 = 66.67; labeled exact: sentence 2 only -> 1/3 = 33.33
    assert scores.words == 11
    assert scores.sentences == 3
    assert scores.uas == pytest.approx(100 * 10 / 11)
    assert scores.las == pytest.approx(100 * 8 / 11)
    assert scores.modifier_list_accuracy == pytest.approx(60.0)
    assert scores.exact_match == pytest.approx(100 * 2 / 3)
    assert scores.labeled_exact_match == pytest.approx(100 * 1 / 3)
    # CLAS: content words (punct and the function relations det, case, mark ... excluded)
    #   gold: cat sat mats | My dog | Go              -> 6
    #   pred: cat sat mats | My dog | Go "." (dep)    -> 7
    #   correct (head and relation): cat sat | My dog | Go -> 5 (mats has the wrong head)
    assert scores.clas == pytest.approx(100 * 2 * 5 / (6 + 7))
    assert scores.as_dict() == {
        "uas": scores.uas,
        "las": scores.las,
        "clas": scores.clas,
        "modifier_list_accuracy": 60.0,
        "exact_match": scores.exact_match,
        "labeled_exact_match": scores.labeled_exact_match,
        "sentences": 3,
        "words": 11,
    }


def test_perfect_and_single_sentence() -> None:
    gold = _read(_sent("s1", GOLD_1))
    assert score_sentences(gold, gold) == AttachmentScores(100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 1, 6)
    pred = _read(_sent("s1", PRED_1))
    scores = score_sentences(gold, pred)
    # 5/6 heads, 4/6 labels, 1/3 modifier lists, no exact match
    assert (scores.uas, scores.las) == (pytest.approx(500 / 6), pytest.approx(400 / 6))
    assert scores.modifier_list_accuracy == pytest.approx(100 / 3)
    assert (scores.exact_match, scores.labeled_exact_match) == (0.0, 0.0)


def test_missing_modifier_in_prediction_counts_as_wrong() -> None:
    # gold: 1 <- 2 -> 3 ; pred attaches 3 to 1 instead: 2 loses a modifier, 1 gains one
    gold = _read(_sent("x", [("a", 2, "dep"), ("b", 0, "root"), ("c", 2, "dep")]))
    pred = _read(_sent("x", [("a", 2, "dep"), ("b", 0, "root"), ("c", 1, "dep")]))
    scores = score_sentences(gold, pred)
    # UAS 2/3; gold modifier lists only for word 2: {1,3} vs predicted {1} -> 0/1
    assert scores.uas == pytest.approx(200 / 3)
    assert scores.modifier_list_accuracy == 0.0


def test_relation_scores_by_hand() -> None:
    gold = _read(_sent("s1", GOLD_1) + _sent("s2", GOLD_2) + _sent("s3", GOLD_3))
    pred = _read(_sent("s1", PRED_1) + _sent("s2", PRED_2) + _sent("s3", PRED_3))
    scores = relation_scores(gold, pred)
    counts = {rel: (s.gold, s.predicted, s.correct) for rel, s in scores.items()}
    assert counts == {
        "punct": (3, 2, 2),  # the "." of sentence 3 is predicted as dep
        "root": (3, 3, 3),
        "case": (1, 0, 0),
        "det": (1, 1, 1),
        "nmod": (1, 1, 1),  # nmod:poss and nmod: the same universal relation
        "nsubj": (1, 1, 1),
        "obl": (1, 1, 0),  # right label, wrong head
        "dep": (0, 1, 0),
        "mark": (0, 1, 0),
    }
    assert list(scores)[:2] == ["punct", "root"]  # most frequent gold relation first, then by name
    punct = scores["punct"]
    assert (punct.precision, punct.recall) == (100.0, pytest.approx(200 / 3))
    assert punct.f1 == pytest.approx(100 * 4 / 5)
    assert scores["case"].as_dict() == {
        "gold": 1, "predicted": 0, "correct": 0, "precision": None, "recall": 0.0, "f1": 0.0
    }  # fmt: skip
    assert (scores["dep"].precision, scores["dep"].recall) == (0.0, None)  # predicted, never gold
    # the per-relation counts add up to the corpus scores
    assert sum(s.correct for s in scores.values()) == round(score_sentences(gold, pred).las * 11 / 100)


def test_universal_deprel() -> None:
    assert universal_deprel("nmod:poss") == "nmod"
    assert universal_deprel("acl:relcl:x") == "acl"
    assert universal_deprel("obj") == "obj"


def test_misaligned_inputs_name_the_sentence() -> None:
    gold = _read(_sent("s1", GOLD_1) + _sent("s2", GOLD_2))
    with pytest.raises(AlignmentError, match="gold has 2 sentences but the prediction has 1"):
        score_sentences(gold, gold[:1])
    other_words = _read(_sent("s1", GOLD_1) + _sent("s2", GOLD_2[:2]))
    with pytest.raises(AlignmentError, match=r"sentence 2 \(sent_id s2\): gold has 3 words, prediction has 2"):
        score_sentences(gold, other_words)
    other_form = _read(_sent("s1", GOLD_1) + _sent("s2", [("Your", 2, "det")] + GOLD_2[1:]))
    with pytest.raises(CoNLLUError, match=r"t\.conllu:9: sentence 2 \(sent_id s2\): word 1 is 'My' in gold"):
        score_sentences(gold, other_form)
    unparsed = read_conllu(io.StringIO("1\tGo\t_\t_\t_\t_\t_\t_\t_\t_\n\n"), require_heads=False)
    with pytest.raises(AlignmentError, match="predicted HEAD/DEPREL missing"):
        score_sentences(_read(_sent("g", [("Go", 0, "root")])), unparsed)
    with pytest.raises(ValueError, match="nothing to score"):
        score_sentences([], [])
