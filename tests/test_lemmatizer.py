"""The lemmatizer: edit scripts (exact round trips, generalization) and a parser that learns and predicts lemmas."""

from __future__ import annotations

import io
import random

import pytest
import torch

from tests.parser_fixtures import LEMMAS, conllu_text
from unnparse.conllu import read_conllu
from unnparse.parser.config import CONFIG_VERSION, ParserConfig, migrate
from unnparse.parser.features import column_labels
from unnparse.parser.lemma_scripts import apply_script, edit_script
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser


@pytest.mark.parametrize(
    ("form", "lemma"),
    [
        ("walked", "walk"),
        ("Houses", "house"),
        ("gemacht", "machen"),  # a prefix and a suffix rewritten
        ("went", "go"),  # nothing shared: the whole lemma
        ("USA", "USA"),
        ("Straße", "straße"),
        ("a|b", "a|c"),  # the separator inside the strings
        ("x\\y", "x\\z"),
        ("ÉTÉ", "été"),
    ],
)
def test_a_script_turns_its_form_into_its_lemma(form, lemma):
    assert apply_script(edit_script(form, lemma), form) == lemma


def test_scripts_round_trip_on_random_strings():
    rng = random.Random(0)
    alphabet = "abAB|\\xé="
    for _ in range(5000):
        form = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        lemma = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9)))
        assert apply_script(edit_script(form, lemma), form) == lemma, (form, lemma)


def test_scripts_generalize_over_words_and_refuse_what_they_cannot_do():
    assert edit_script("walked", "walk") == edit_script("jumped", "jump")
    assert apply_script(edit_script("Houses", "house"), "Cats") == "cat"
    assert apply_script(edit_script("reading", "read"), "go") is None  # cuts more than the form has
    assert apply_script("nonsense", "word") is None
    assert apply_script("keep|x||0|", "word") is None


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def test_the_lemma_labels_are_scripts_and_unannotated_words_have_none():
    sentence = _sentences(1, 1)[0]
    labels = column_labels(sentence, "lemma")
    assert [apply_script(label, form) for label, form in zip(labels, sentence.words, strict=True)] == sentence.column(
        "lemma"
    )
    cleared = sentence.without_tags(["lemma"])
    assert set(column_labels(cleared, "lemma")) == {"_"}


def test_a_parser_learns_lemmas_irregular_ones_included_and_keeps_given_ones(tmp_path):
    torch.manual_seed(0)
    train, dev = _sentences(80, 1), _sentences(15, 2)
    config = default_config(hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=1)
    parser = Parser.build(config, train)
    assert "lemma" in parser.featurizer.tags and parser.model.lemmatizer is not None
    opts = TrainOptions(epochs=16, lr=1e-2, batch_tokens=300, patience=100, seed=0)
    train_parser(parser, train, dev, opts, tmp_path / "model", progress=False)
    parsed = parser.parse([s.words for s in dev])
    pairs = [(w, lem) for s in parsed for w, lem in zip(s.words, s.column("lemma"), strict=True)]
    right = sum(lem == LEMMAS.get(w, w) for w, lem in pairs)
    assert right / len(pairs) >= 0.95, pairs
    irregular = [(w, lem) for w, lem in pairs if w in ("saw", "found")]
    assert irregular and all(lem == LEMMAS[w] for w, lem in irregular), irregular
    # a lemma the input has is kept; an empty one is predicted
    given = read_conllu(
        io.StringIO("1\tsaw\tSAW\t_\t_\t_\t_\t_\t_\t_\n2\tfound\t_\t_\t_\t_\t_\t_\t_\t_\n\n"),
        name="g",
        require_heads=False,
    )
    out = next(
        iter(
            parser.predict(
                given,
            )
        )
    ).sentence
    assert out.column("lemma") == ["SAW", "find"]
    # the lemmatizer is saved with the model
    parser.save(tmp_path / "live")
    loaded = Parser.load(tmp_path / "live")
    words = [["the", "dog", "likes", "a", "cat"]]
    assert loaded.parse(words)[0].column("lemma") == parser.parse(words)[0].column("lemma")


def test_no_lemmatizer_without_lemmas_or_with_lemma_loss_zero():
    plain = read_conllu(io.StringIO("1\tdog\t_\tNOUN\t_\t_\t0\troot\t_\t_\n\n"), name="u")
    assert "lemma" not in Parser.build(default_config(hidden=16, lstm_hidden=16, lstm_layers=1), plain).featurizer.tags
    off = Parser.build(default_config(hidden=16, lstm_hidden=16, lstm_layers=1, lemma_loss=0.0), _sentences(5, 1))
    assert "lemma" not in off.featurizer.tags and off.parse([["a", "dog"]])[0].column("lemma") == ["_", "_"]


def test_configs_written_before_the_lemmatizer_load_without_one():
    current = ParserConfig().to_dict()
    old = {**current, "config_version": 2, "model": {k: v for k, v in current["model"].items() if k != "lemma_loss"}}
    assert ParserConfig.from_dict(old).model.lemma_loss == 0.0
    assert migrate(old)["config_version"] == CONFIG_VERSION
    assert ParserConfig.from_dict(current).model.lemma_loss == 1.0
