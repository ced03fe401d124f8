"""Scores through the text (CoNLL 2018 style): hand-computed cases, and equality with the accuracies when the
tokenization is the gold one."""

from __future__ import annotations

import io
import random

import pytest

from tests.parser_fixtures import conllu_text
from unnparse.conllu import read_conllu
from unnparse.evaluation.attachment import AlignmentError, relation_scores, score_sentences
from unnparse.evaluation.text_alignment import align_words, aligned_relation_scores, corpus_text, score_aligned
from unnparse.text.raw_text import sentences_from_text


def _read(text: str, name: str = "pred.conllu"):
    return read_conllu(io.StringIO(text), name=name)


def _row(i, form, head, rel, upos="_", misc="_"):
    return f"{i}\t{form}\t_\t{upos}\t_\t_\t{head}\t{rel}\t_\t{misc}"


# "I don't know." with the multiword token don't = do + n't
GOLD_MWT = "\n".join(
    [
        "# text = I don't know.",
        _row(1, "I", 4, "nsubj", "PRON"),
        "2-3\tdon't\t_\t_\t_\t_\t_\t_\t_\t_",
        _row(2, "do", 4, "aux", "AUX"),
        _row(3, "n't", 4, "advmod", "PART"),
        _row(4, "know", 0, "root", "VERB", "SpaceAfter=No"),
        _row(5, ".", 4, "punct", "PUNCT"),
        "",
        "",
    ]
)


def test_same_tokenization_f1_equals_accuracy_with_multiword_tokens():
    gold = _read(GOLD_MWT + conllu_text(20, seed=3), "gold.conllu")
    rng = random.Random(0)
    pred = []
    for sentence in gold:
        n = len(sentence)
        heads = [h if rng.random() < 0.7 else rng.randint(0, n) for h in sentence.heads]
        rels = [r if rng.random() < 0.8 else "obl" for r in sentence.deprels]
        pred.append(sentence.with_predictions(heads, rels))
    words, aligned = score_sentences(gold, pred), score_aligned(gold, pred)
    assert aligned.uas.f1 == pytest.approx(words.uas) and aligned.las.f1 == pytest.approx(words.las)
    assert aligned.clas.f1 == pytest.approx(words.clas)
    assert aligned.tokens.f1 == aligned.sentences.f1 == aligned.words.f1 == 100.0
    assert aligned.upos is not None and aligned.upos.f1 == 100.0
    assert {k: v.as_dict() for k, v in aligned_relation_scores(gold, pred).items()} == {
        k: v.as_dict() for k, v in relation_scores(gold, pred).items()
    }


def test_multiword_token_predicted_as_two_tokens():
    gold = _read(GOLD_MWT, "gold.conllu")
    # the same words as five plain tokens; "n't" attached to "do" instead of "know"
    pred = _read(
        "\n".join(
            [
                _row(1, "I", 4, "nsubj"),
                _row(2, "do", 4, "aux"),
                _row(3, "n't", 2, "advmod"),
                _row(4, "know", 0, "root"),
                _row(5, ".", 4, "punct"),
                "",
                "",
            ]
        )
    )
    scores = score_aligned(gold, pred)
    # gold tokens I | don't | know | . ; predicted I | do | n't | know | .
    assert (scores.tokens.gold, scores.tokens.predicted, scores.tokens.correct) == (4, 5, 3)
    assert scores.tokens.precision == 60.0 and scores.tokens.recall == 75.0
    assert (scores.words.gold, scores.words.predicted, scores.words.correct) == (5, 5, 5)
    assert scores.uas.correct == 4 and scores.las.correct == 4
    assert scores.upos.correct == 0  # the prediction has no UPOS: "_" is wrong, as the official script scores it
    assert align_words(gold, pred).pairs == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]


def test_unsplit_multiword_token_aligns_no_word_inside_it():
    gold = _read(GOLD_MWT, "gold.conllu")
    pred = _read(
        "\n".join(
            [_row(1, "I", 2, "nsubj"), _row(2, "don't", 3, "aux"), _row(3, "know", 0, "root"), _row(4, ".", 3, "punct")]
        )
        + "\n\n"
    )
    scores = score_aligned(gold, pred)
    assert scores.tokens.correct == 4 and scores.tokens.f1 == 100.0
    assert (scores.words.gold, scores.words.predicted, scores.words.correct) == (5, 4, 3)
    # I's predicted head (don't) is aligned with no gold word; know and . are right
    assert scores.uas.correct == 2


def test_sentences_and_heads_across_a_missed_boundary():
    gold = _read(
        "\n".join([_row(1, "Go", 0, "root"), _row(2, "!", 1, "punct"), "", _row(1, "Now", 0, "root"), "", ""]),
        "gold.conllu",
    )
    pred = _read("\n".join([_row(1, "Go", 0, "root"), _row(2, "!", 1, "punct"), _row(3, "Now", 1, "parataxis")]))
    scores = score_aligned(gold, pred)
    assert (scores.sentences.gold, scores.sentences.predicted, scores.sentences.correct) == (2, 1, 0)
    assert scores.words.f1 == 100.0 and scores.uas.correct == 2  # "Now" is a root in gold, not in the prediction
    assert scores.clas.gold == 2 and scores.clas.predicted == 2 and scores.clas.correct == 1


def test_different_tokens_are_not_aligned():
    gold = _read(_row(1, "e-mail", 0, "root") + "\n\n", "gold.conllu")
    pred = _read("\n".join([_row(1, "e", 0, "root"), _row(2, "-", 1, "punct"), _row(3, "mail", 1, "flat"), "", ""]))
    scores = score_aligned(gold, pred)
    assert (scores.words.gold, scores.words.predicted, scores.words.correct) == (1, 3, 0)
    assert scores.tokens.correct == 0 and scores.sentences.correct == 1 and scores.uas.correct == 0


def test_different_text_names_the_line_of_the_prediction():
    gold = _read(GOLD_MWT, "gold.conllu")
    pred = _read(
        "# a comment\n" + "\n".join([_row(1, "I", 2, "nsubj"), _row(2, "do", 0, "root"), _row(3, "not", 2, "advmod")])
    )
    with pytest.raises(
        AlignmentError,
        match=r"pred\.conllu:4: .*\(gold\.conllu:3\) at non-space character 5: 'ot' against gold \"'tknow\.\"",
    ):
        score_aligned(gold, pred)
    with pytest.raises(AlignmentError, match="text differs"):
        score_aligned(gold, _read(_row(1, "I", 0, "root") + "\n\n"))  # a prefix of the gold text
    with pytest.raises(ValueError, match="no predicted sentences"):
        score_aligned(gold, [])


def test_text_normalization_does_not_break_the_alignment():
    # a decomposed é and a soft hyphen in gold; the tokenizer reads NFC text without format characters
    gold = _read(_row(1, "cafe\u0301", 0, "root") + "\n" + _row(2, "co\u00adop", 1, "nmod") + "\n\n", "gold.conllu")
    pred = sentences_from_text(corpus_text(gold))
    pred = [s.with_predictions([0, 1], ["root", "nmod"]) for s in pred]
    assert score_aligned(gold, pred).las.f1 == 100.0


def test_corpus_text_paragraphs_and_surface_tokens():
    gold = _read(
        "\n".join(
            [
                "# newpar",
                GOLD_MWT.replace("# text = I don't know.\n", "").rstrip("\n"),
                "",
                _row(1, "Yes", 0, "root", misc="SpaceAfter=No"),
                _row(2, "!", 1, "punct"),
                "",
                "# newpar id = p2",
                "# text = Fine.",
                _row(1, "Fine", 0, "root", misc="SpaceAfter=No"),
                _row(2, ".", 1, "punct"),
                "",
                "",
            ]
        ),
        "gold.conllu",
    )
    assert gold[0].surface_text() == "I don't know."
    assert corpus_text(gold) == "I don't know. Yes!\n\nFine.\n"


def test_raw_text_of_the_toy_corpus_tokenizes_back_to_its_words():
    gold = _read(conllu_text(30, seed=5), "gold.conllu")
    pred = sentences_from_text(corpus_text(gold))
    pred = [s.with_predictions([0] + [1] * (len(s) - 1), ["root"] + ["dep"] * (len(s) - 1)) for s in pred]
    scores = score_aligned(gold, pred)
    assert scores.tokens.f1 == scores.words.f1 == 100.0
    # the toy sentences start in lowercase, so the splitter keeps going to the end of the paragraph
    assert scores.sentences.predicted == 1 and scores.sentences.correct == 0


def test_multiword_tokens_split_differently_align_the_common_words():
    gold = _read(
        "\n".join(["1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_", _row(1, "de", 0, "root"), _row(2, "el", 1, "det"), "", ""]),
        "gold.conllu",
    )
    pred = _read(
        "\n".join(["1-2\tdel\t_\t_\t_\t_\t_\t_\t_\t_", _row(1, "d", 0, "root"), _row(2, "EL", 1, "det"), "", ""])
    )
    scores = score_aligned(gold, pred)
    assert scores.tokens.f1 == 100.0 and align_words(gold, pred).pairs == [(1, 1)]  # forms compared in lowercase
    assert scores.words.correct == 1 and scores.uas.correct == 0  # el's head d is not aligned with de
