"""Every score of the CoNLL 2018 shared task (unnparse.evaluation.conll18), computed by hand on small cases, with the
gold words and through the text; and the two modes agree when the words are the gold ones."""

from __future__ import annotations

import io
import json
import random

import pytest

from tests.parser_fixtures import conllu_text
from unnparse.cli.evaluation_report import evaluation_json, evaluation_tables
from unnparse.conllu import read_conllu
from unnparse.evaluation.conll18 import CONLL18_METRICS, F1Score, score_gold_words, universal_features
from unnparse.evaluation.scoring import evaluate_parses
from unnparse.evaluation.text_alignment import score_aligned


def _read(text: str, name: str = "pred.conllu"):
    return read_conllu(io.StringIO(text), name=name)


def _row(i, form, lemma, upos, feats, head, rel, xpos="_"):
    return f"{i}\t{form}\t{lemma}\t{upos}\t{xpos}\t{feats}\t{head}\t{rel}\t_\t_"


def _conllu(*rows: str) -> str:
    return "\n".join(rows) + "\n\n"


def _counts(score: F1Score) -> tuple[int, int, int, int | None]:
    return score.gold, score.predicted, score.correct, score.aligned


# "The dog was bitten ." -------------------------------------------------------------------------------------------
GOLD_A = _conllu(
    _row(1, "The", "the", "DET", "Definite=Def|PronType=Art", 2, "det", "DT"),
    _row(2, "dog", "dog", "NOUN", "Number=Sing", 4, "nsubj:pass", "NN"),
    _row(3, "was", "be", "AUX", "Mood=Ind|Tense=Past|VerbType=Aux", 4, "aux:pass", "VBD"),
    _row(4, "bitten", "bite", "VERB", "Tense=Past|VerbForm=Part|Voice=Pass", 0, "root", "VBN"),
    _row(5, ".", "_", "PUNCT", "_", 4, "punct", "."),
)
PRED_A = _conllu(
    _row(1, "The", "the", "PRON", "Definite=Def|PronType=Art", 2, "det", "DT"),  # UPOS wrong
    _row(2, "dog", "dog", "NOUN", "Number=Sing", 4, "nsubj", "NN"),  # subtype dropped: the same relation
    _row(3, "was", "be", "AUX", "Tense=Past|Mood=Ind|VerbType=Other", 4, "aux", "VBD"),  # VerbType is not universal
    _row(4, "bitten", "bitten", "VERB", "Tense=Past|VerbForm=Part|Voice=Pass", 0, "root", "VBN"),  # lemma wrong
    _row(5, ".", ".", "PUNCT", "_", 4, "punct", "."),  # the gold lemma is "_": any lemma is right
)


def _check_case_a(scores) -> None:
    # 5 words in each file, all aligned; tokens and sentences the same
    assert _counts(scores.tokens) == (5, 5, 5, None) and _counts(scores.sentences) == (1, 1, 1, None)
    assert _counts(scores.words) == (5, 5, 5, None) and scores.words.aligned_accuracy is None
    # UPOS: "The" is PRON, not DET -> 4 of 5
    assert _counts(scores.upos) == (5, 5, 4, 5) and scores.upos.f1 == pytest.approx(80.0)
    assert scores.upos.aligned_accuracy == pytest.approx(80.0)
    # XPOS: all right -> 5/5
    assert _counts(scores.xpos) == (5, 5, 5, 5) and scores.xpos.f1 == 100.0
    # UFeats: "was" differs in VerbType only (not universal) and in the order of the features -> 5/5
    assert _counts(scores.ufeats) == (5, 5, 5, 5)
    # AllTags: UPOS + XPOS + UFeats; only "The" is wrong -> 4/5
    assert _counts(scores.alltags) == (5, 5, 4, 5)
    # Lemmas: "bitten" (gold "bite") is wrong; "." has the gold lemma "_" -> right -> 4/5
    assert _counts(scores.lemmas) == (5, 5, 4, 5)
    # UAS 5/5; LAS 5/5: nsubj:pass = nsubj, aux:pass = aux
    assert _counts(scores.uas) == (5, 5, 5, 5) and _counts(scores.las) == (5, 5, 5, 5)
    # content words: dog (nsubj), bitten (root) in each file; det, aux, punct are not content relations
    assert _counts(scores.clas) == (2, 2, 2, 2) and scores.clas.f1 == 100.0
    # MLAS: dog's functional child "The" (det) has the wrong UPOS -> dog wrong; bitten (its functional child "was"
    # has the same relation, UPOS and universal features) right -> 1 of 2
    assert _counts(scores.mlas) == (2, 2, 1, 2) and scores.mlas.f1 == pytest.approx(50.0)
    assert scores.mlas.aligned_accuracy == pytest.approx(50.0)
    # BLEX: bitten's lemma is wrong (its head and relation are right) -> dog only -> 1 of 2
    assert _counts(scores.blex) == (2, 2, 1, 2) and scores.blex.precision == pytest.approx(50.0)


def test_every_score_with_the_gold_words_by_hand():
    _check_case_a(score_gold_words(_read(GOLD_A, "gold.conllu"), _read(PRED_A)))


def test_every_score_through_the_text_of_the_same_words_by_hand():
    _check_case_a(score_aligned(_read(GOLD_A, "gold.conllu"), _read(PRED_A)))


def test_universal_features_sorted_and_filtered():
    assert universal_features("Tense=Past|Mood=Ind|VerbType=Aux") == "Mood=Ind|Tense=Past"
    assert universal_features("Number[psor]=Sing|Case=Acc,Nom") == "Case=Acc,Nom"  # layered features are not universal
    assert universal_features("_") == ""


# an empty node in the gold file: "I like tea and Mary coffee" with the elided "like" as 5.1 -------------------------
GOLD_B = _conllu(
    _row(1, "I", "I", "PRON", "_", 2, "nsubj"),
    _row(2, "like", "like", "VERB", "_", 0, "root"),
    _row(3, "tea", "tea", "NOUN", "_", 2, "obj"),
    _row(4, "and", "and", "CCONJ", "_", 5, "cc"),
    _row(5, "Mary", "Mary", "PROPN", "_", 2, "conj"),
    "5.1\tlike\tlike\tVERB\t_\t_\t_\t_\t2:conj\t_",
    _row(6, "coffee", "coffee", "NOUN", "_", 5, "orphan"),
)
PRED_B = _conllu(
    _row(1, "I", "I", "PRON", "_", 2, "nsubj"),
    _row(2, "like", "like", "VERB", "_", 0, "root"),
    _row(3, "tea", "tea", "NOUN", "_", 2, "obj"),
    _row(4, "and", "and", "CCONJ", "_", 5, "cc"),
    _row(5, "Mary", "Mary", "PROPN", "_", 2, "conj"),
    _row(6, "coffee", "coffee", "NOUN", "_", 2, "obj"),  # wrong head and relation
)


@pytest.mark.parametrize("alignment", ["words", "characters"])
def test_an_empty_node_is_not_a_word(alignment):
    gold, pred = _read(GOLD_B, "gold.conllu"), _read(PRED_B)
    scores = evaluate_parses(gold, pred, alignment=alignment).conll18
    assert scores is not None
    # 6 words (and tokens) in each file: the empty node 5.1 has no surface form and is not scored
    assert _counts(scores.tokens) == (6, 6, 6, None) and _counts(scores.words) == (6, 6, 6, None)
    # coffee has the wrong head: UAS = LAS = 5/6
    assert _counts(scores.uas) == (6, 6, 5, 6) and _counts(scores.las) == (6, 6, 5, 6)
    # content words: I, like, tea, Mary, coffee (orphan / obj) -> 5 each, 4 right
    assert _counts(scores.clas) == (5, 5, 4, 5) and scores.clas.f1 == pytest.approx(80.0)
    # MLAS: the tags are right, Mary's functional child "and" too -> as CLAS; BLEX: the lemmas are right -> as CLAS
    assert _counts(scores.mlas) == _counts(scores.blex) == (5, 5, 4, 5)
    # no XPOS and no FEATS in either file: "_" equals "_" (the official script scores them so)
    assert scores.xpos.f1 == scores.ufeats.f1 == scores.alltags.f1 == scores.lemmas.f1 == 100.0


# a multiword token: "vino del mar", del = de + el ----------------------------------------------------------------
GOLD_C = _conllu(
    _row(1, "vino", "vino", "NOUN", "Gender=Masc|Number=Sing", 0, "root"),
    "2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_",
    _row(2, "de", "de", "ADP", "_", 4, "case"),
    _row(3, "el", "el", "DET", "Definite=Def|PronType=Art", 4, "det"),
    _row(4, "mar", "mar", "NOUN", "Gender=Masc|Number=Sing", 1, "nmod"),
)


def test_multiword_token_words_are_scored_as_words():
    gold = _read(GOLD_C, "gold.conllu")
    # the same words without the multiword token line; "el" attached to "vino"
    pred = _read(GOLD_C.replace("2-3\tdel\t_\t_\t_\t_\t_\t_\t_\t_\n", "").replace("\t4\tdet", "\t1\tdet"))
    result = evaluate_parses(gold, pred)
    assert result.alignment == "words" and result.conll18 is not None
    scores = result.conll18
    # tokens: gold vino | del | mar, predicted vino | de | el | mar -> 2 right: P 2/4, R 2/3, F1 4/7
    assert _counts(scores.tokens) == (3, 4, 2, None)
    assert (scores.tokens.precision, scores.tokens.recall) == (50.0, pytest.approx(200 / 3))
    assert scores.tokens.f1 == pytest.approx(400 / 7)
    # the 4 words of each file (de and el among them) are aligned one to one; their tags and lemmas are right
    assert _counts(scores.words) == (4, 4, 4, None)
    assert _counts(scores.alltags) == _counts(scores.lemmas) == (4, 4, 4, 4)
    # el's head is wrong: UAS = LAS = 3/4
    assert _counts(scores.uas) == _counts(scores.las) == (4, 4, 3, 4)
    # content words vino (root) and mar (nmod), both right: CLAS = BLEX = 2/2
    assert _counts(scores.clas) == _counts(scores.blex) == (2, 2, 2, 2)
    # MLAS: mar lost its functional child el (gold [de, el], predicted [de]) and vino gained it (gold [], predicted
    # [el]) -> 0/2
    assert _counts(scores.mlas) == (2, 2, 0, 2) and scores.mlas.f1 == 0.0


def test_multiword_token_through_the_text():
    gold = _read(GOLD_C, "gold.conllu")
    pred = _read(GOLD_C.replace("\tel\tel\tDET", "\tEL\tel\tPRON"))  # the form in another case, the UPOS wrong
    scores = score_aligned(gold, pred)
    # one multiword stretch: its words are aligned by their lowercased forms, so everything is aligned
    assert _counts(scores.tokens) == (3, 3, 3, None) and _counts(scores.words) == (4, 4, 4, None)
    assert _counts(scores.upos) == (4, 4, 3, 4) and _counts(scores.las) == (4, 4, 4, 4)
    # MLAS: mar's functional child el has the wrong UPOS -> mar wrong, vino right -> 1/2
    assert _counts(scores.mlas) == (2, 2, 1, 2) and _counts(scores.blex) == (2, 2, 2, 2)


# through the text, a split and a merged token: gold "Dogs love New York ." ----------------------------------------
GOLD_D = _conllu(
    _row(1, "Dogs", "dog", "NOUN", "Number=Plur", 2, "nsubj"),
    _row(2, "love", "love", "VERB", "_", 0, "root"),
    _row(3, "New", "new", "PROPN", "_", 4, "compound"),
    _row(4, "York", "York", "PROPN", "_", 2, "obj"),
    _row(5, ".", ".", "PUNCT", "_", 2, "punct"),
)
PRED_D = _conllu(
    _row(1, "Do", "do", "AUX", "_", 3, "aux"),  # "Dogs" split in two
    _row(2, "gs", "gs", "NOUN", "_", 3, "nsubj"),
    _row(3, "love", "love", "VERB", "_", 0, "root"),
    _row(4, "NewYork", "NewYork", "PROPN", "_", 3, "obj"),  # "New York" merged
    _row(5, ".", ".", "PUNCT", "_", 3, "punct"),
)


def test_split_and_merged_tokens_through_the_text_by_hand():
    gold, pred = _read(GOLD_D, "gold.conllu"), _read(PRED_D)
    result = evaluate_parses(gold, pred)  # the words differ: through the text
    assert result.alignment == "characters" and result.conll18 is result.aligned
    scores = result.aligned
    assert scores is not None
    # gold spans Dogs[0,4) love[4,8) New[8,11) York[11,15) .[15,16); predicted Do[0,2) gs[2,4) love[4,8)
    # NewYork[8,15) .[15,16): tokens love and . match -> 2 of 5 and 5: P = R = F1 = 40
    assert _counts(scores.tokens) == (5, 5, 2, None) and scores.tokens.f1 == pytest.approx(40.0)
    assert _counts(scores.sentences) == (1, 1, 1, None)
    # words: love and . aligned -> 40
    assert _counts(scores.words) == (5, 5, 2, None) and scores.words.f1 == pytest.approx(40.0)
    # the tags, features and lemmas of the two aligned words are right (XPOS and FEATS "_" in both): F1 40,
    # aligned accuracy 100
    for name in ("upos", "xpos", "ufeats", "alltags", "lemmas"):
        score = getattr(scores, name)
        assert _counts(score) == (5, 5, 2, 2) and score.f1 == pytest.approx(40.0), name
        assert score.aligned_accuracy == 100.0
    # love is the root in both; "."'s predicted head (love) is aligned with its gold head -> UAS = LAS = 2
    assert _counts(scores.uas) == _counts(scores.las) == (5, 5, 2, 2)
    # content words: gold Dogs, love, New, York (4), predicted gs, love, NewYork (3; Do is aux); aligned: love
    # CLAS: P 1/3, R 1/4, F1 2/7, aligned accuracy 1/1
    assert _counts(scores.clas) == (4, 3, 1, 1)
    assert (scores.clas.precision, scores.clas.recall) == (pytest.approx(100 / 3), 25.0)
    assert scores.clas.f1 == pytest.approx(200 / 7) and scores.clas.aligned_accuracy == 100.0
    # MLAS: the predicted love has a functional child (Do, aux) that the gold one lacks -> 0 of 1
    assert _counts(scores.mlas) == (4, 3, 0, 1) and scores.mlas.f1 == 0.0 and scores.mlas.aligned_accuracy == 0.0
    # BLEX: love's lemma is right -> as CLAS
    assert _counts(scores.blex) == (4, 3, 1, 1) and scores.blex.f1 == pytest.approx(200 / 7)


def test_nothing_to_count_over_gives_zero_as_the_official_script():
    empty = F1Score(0, 0, 0, 0)
    assert (empty.precision, empty.recall, empty.f1, empty.aligned_accuracy) == (0.0, 0.0, 0.0, 0.0)
    assert F1Score(3, 0, 0).precision == 0.0 and F1Score(3, 0, 0).aligned_accuracy is None


# the two modes agree with the gold words ---------------------------------------------------------------------------
def _perturbed(gold, seed: int):
    rng = random.Random(seed)
    pred = []
    for sentence in gold:
        copy = sentence.copy()
        words = copy.word_tokens
        n = len(words)
        for tok in words:
            if rng.random() < 0.3:
                tok["head"] = rng.randint(0, n)
            if rng.random() < 0.3:
                tok["deprel"] = rng.choice(["det", "case", "aux", "cc", "nsubj", "nsubj:pass", "obl", "punct", "nmod"])
            if rng.random() < 0.2:
                tok["upos"] = rng.choice(["NOUN", "DET", "ADP", "VERB"])
            if rng.random() < 0.2:
                tok["xpos"] = rng.choice(["NN", "DT", None])
            if rng.random() < 0.3:
                tok["feats"] = rng.choice([{"Number": "Sing"}, {"Number": "Sing", "Foo": "Bar"}, None])
            if rng.random() < 0.2:
                tok["lemma"] = rng.choice(["x", "_", str(tok["form"]).lower()])
        pred.append(copy)
    return pred


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_words_and_text_alignment_agree_with_the_gold_words(seed):
    gold = _read(GOLD_A + GOLD_B + GOLD_C + conllu_text(25, seed=seed + 7), "gold.conllu")
    pred = _perturbed(gold, seed)
    by_words = evaluate_parses(gold, pred, alignment="words")
    by_text = evaluate_parses(gold, pred, alignment="characters")
    assert by_words.conll18 is not None and by_text.conll18 is not None
    assert by_words.conll18.as_dict() == by_text.conll18.as_dict()
    # and with the accuracies of the word mode (no score has an empty denominator here)
    attachment = by_words.attachment
    assert attachment is not None
    assert by_text.conll18.uas.f1 == pytest.approx(attachment.uas)
    assert by_text.conll18.las.f1 == pytest.approx(attachment.las)
    assert by_text.conll18.clas.f1 == pytest.approx(attachment.clas)
    assert 0 < by_text.conll18.mlas.correct <= by_text.conll18.clas.correct
    assert by_text.conll18.blex.correct <= by_text.conll18.clas.correct


# what `unnparse evaluate` reports ----------------------------------------------------------------------------------
def test_json_keys_of_both_modes():
    gold = _read(GOLD_A, "gold.conllu")
    words = json.loads(json.dumps(evaluation_json(evaluate_parses(gold, _read(PRED_A), tag_columns=("upos", "lemma")))))
    assert words["alignment"] == "words" and list(words["scores"]) == list(CONLL18_METRICS)
    assert words["uas"] == 100.0 and words["upos"] == pytest.approx(80.0)  # the accuracies, as before
    assert words["lemma"] == pytest.approx(75.0)  # accuracy over the words with a gold lemma: "." is left out
    assert words["lemmas"] == pytest.approx(80.0)  # the CoNLL 2018 score counts it as right
    assert words["mlas"] == words["blex"] == pytest.approx(50.0) and words["ufeats"] == words["alltags"] + 20
    assert words["scores"]["mlas"] == {
        "gold": 2, "predicted": 2, "correct": 1, "precision": 50.0, "recall": 50.0, "f1": 50.0, "aligned": 2,
        "aligned_accuracy": 50.0,
    }  # fmt: skip
    assert words["scores"]["words"]["aligned"] is None and "xpos" not in words  # XPOS was not asked for
    text = evaluation_json(evaluate_parses(_read(GOLD_D, "gold.conllu"), _read(PRED_D)))
    assert text["alignment"] == "characters" and list(text["scores"]) == list(CONLL18_METRICS)
    for name in ("upos", "xpos", "ufeats", "alltags", "lemmas", "uas", "las", "clas", "mlas", "blex"):
        assert text[name] == text["scores"][name]["f1"]


def test_text_table_lists_every_score():
    from rich.console import Console

    gold, pred = _read(GOLD_D, "gold.conllu"), _read(PRED_D)
    console = Console(width=120, record=True)
    for table in evaluation_tables("t", evaluate_parses(gold, pred)):
        console.print(table)
    out = console.export_text()
    for label in ("Tokens", "Sentences", "Words", "UPOS", "XPOS", "UFeats", "AllTags", "Lemmas", "UAS", "LAS"):
        assert label in out
    assert "CLAS" in out and "MLAS" in out and "BLEX" in out and "AligndAcc" in out and "28.57" in out
    console = Console(width=120, record=True)
    for table in evaluation_tables("t", evaluate_parses(_read(GOLD_A, "gold.conllu"), _read(PRED_A))):
        console.print(table)
    out = console.export_text()
    assert "MLAS" in out and "BLEX" in out and "AllTags" in out and "UAS" in out
