"""Parser ensembles: combining, the decoding rule against brute force, save/load, the command line."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.parser_fixtures import conllu_text
from unnparse.cli.parser_app import app
from unnparse.conllu import Sentence, read_conllu
from unnparse.model_files import ModelFileError
from unnparse.parser import load
from unnparse.parser.ensemble import ParserEnsemble, combine_parsers
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser
from unnparse.structures.brute_force import enumerate_trees

SHORT = ["the dog saw a cat .", "a man reads .", "every child likes the old tree .", "this cat found a book ."]


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _train(path, seed: int, char_encoder: str = "cnn") -> Parser:
    torch.manual_seed(seed)
    train, dev = _sentences(60, 1), _sentences(10, 2)
    config = default_config(hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=1, char_encoder=char_encoder)
    parser = Parser.build(config, train)
    opts = TrainOptions(epochs=3, lr=1e-2, batch_tokens=300, patience=100, seed=seed)
    train_parser(parser, train, dev, opts, path, progress=False)
    return Parser.load(path)


@pytest.fixture(scope="module")
def members(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    return root, _train(root / "a", 1), _train(root / "b", 2, "lstm")


def _conllu(parser: Parser, sentences) -> list[str]:
    return [p.sentence.to_conllu() for p in parser.predict(sentences)]


def test_an_ensemble_of_copies_parses_as_its_member(members):
    _, a, _ = members
    dev = _sentences(10, 3)
    twice = ParserEnsemble([a, a], {})
    assert _conllu(twice, dev) == _conllu(a, dev)  # heads, labels and UPOS
    single = [p.marginals for p in a.predict(dev, marginals=True)]
    for x, y in zip(single, [p.marginals for p in twice.predict(dev, marginals=True)], strict=True):
        torch.testing.assert_close(torch.tensor(x), torch.tensor(y), atol=2e-4, rtol=0)


def test_ensemble_trees_maximize_the_mean_score_by_brute_force(members):
    _, a, b = members
    both = ParserEnsemble([a, b], {})
    sentences = [Sentence.from_words(s.split()) for s in SHORT]
    parsed = list(both.predict(sentences))
    with torch.no_grad():
        scores = [
            m.model(m.featurizer.batch(sentences, list(range(len(sentences))), gold=False)).scores for m in (a, b)
        ]
    mean = ((scores[0] + scores[1]) / 2).double().numpy()
    for i, (s, p) in enumerate(zip(sentences, parsed, strict=True)):
        n = len(s)
        trees = enumerate_trees(n, True)
        totals = mean[i][trees[:, 1:], np.arange(1, n + 1)].sum(1)
        assert p.sentence.heads == trees[int(totals.argmax()), 1:].tolist()
    # and the labels: the highest mean probability over the members, given the chosen heads
    batch = a.featurizer.batch(sentences, list(range(len(sentences))), gold=False)
    heads = torch.zeros_like(batch.word_mask, dtype=torch.long)
    for i, p in enumerate(parsed):
        heads[i, 1 : len(p.sentence) + 1] = torch.tensor(p.sentence.heads)
    with torch.no_grad():
        probs = sum(
            torch.softmax(
                m.model.relation_logits(m.model(m.featurizer.batch(sentences, [0, 1, 2, 3], gold=False)), heads), -1
            )
            for m in (a, b)
        )
    probs[..., 0] = -1.0
    labels = probs.argmax(-1)
    for i, p in enumerate(parsed):
        expected = [a.featurizer.rels.itos[r] for r in labels[i, 1 : len(p.sentence) + 1].tolist()]
        assert p.sentence.deprels == expected


def test_combine_save_load_same_output_and_batch_equals_one_by_one(members, tmp_path):
    root, a, b = members
    out = combine_parsers([root / "a", root / "b"], tmp_path / "ens")
    loaded = load(out)
    assert isinstance(loaded, ParserEnsemble) and len(loaded.members) == 2
    dev = _sentences(12, 4)
    in_memory = ParserEnsemble([a, b], {})
    assert _conllu(loaded, dev) == _conllu(in_memory, dev)
    one_by_one = [next(iter(loaded.predict([s]))).sentence.to_conllu() for s in dev]
    assert one_by_one == _conllu(loaded, dev)
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "parser-ensemble" and [m[:9] for m in config["members"]] == ["member-1-", "member-2-"]
    assert not any(p.name.startswith(".ens.") for p in tmp_path.iterdir())  # no temporary directory left


def test_combine_refuses_bad_members(members, tmp_path):
    root, _, _ = members
    with pytest.raises(FileExistsError):
        combine_parsers([root / "a", root / "b"], root / "a")
    with pytest.raises(ValueError, match="at least two"):
        combine_parsers([root / "a"], tmp_path / "one")
    with pytest.raises(ModelFileError, match="no such model directory"):
        combine_parsers([root / "a", tmp_path / "missing"], tmp_path / "e1")
    # a parser with other relation labels
    other_text = conllu_text(20, 5).replace("\tnsubj\t", "\tagent\t")
    other = Parser.build(default_config(hidden=8, rel_hidden=4, lstm_hidden=8, lstm_layers=1),
                         read_conllu(io.StringIO(other_text), name="other"))  # fmt: skip
    other.save(tmp_path / "other")
    with pytest.raises(ModelFileError, match="other relation labels"):
        combine_parsers([root / "a", tmp_path / "other"], tmp_path / "e2")
    assert not (tmp_path / "e2").exists()
    ens = combine_parsers([root / "a", root / "b"], tmp_path / "e3")
    with pytest.raises(ModelFileError, match="an ensemble already"):
        combine_parsers([ens, root / "a"], tmp_path / "e4")


def test_corrupt_ensemble_directory_is_one_clear_error(members, tmp_path):
    root, _, _ = members
    out = combine_parsers([root / "a", root / "b"], tmp_path / "ens")
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "members": ["../a"]}))
    with pytest.raises(ModelFileError, match="inside the ensemble"):
        load(out)
    (out / "config.json").write_text(json.dumps({**config, "members": [config["members"][0], "member-9"]}))
    with pytest.raises(ModelFileError, match="member-9"):
        load(out)


def test_cli_ensemble_then_evaluate_and_parse(members, tmp_path, monkeypatch):
    root, _, _ = members
    runner = CliRunner()
    out = tmp_path / "models" / "ens"
    result = runner.invoke(app, ["ensemble", str(root / "a"), str(root / "b"), "--output", str(out)])
    assert result.exit_code == 0, result.output
    again = runner.invoke(app, ["ensemble", str(root / "a"), str(root / "b"), "--output", str(out)])
    assert again.exit_code == 1 and "already exists" in again.output
    gold = tmp_path / "gold.conllu"
    gold.write_text(conllu_text(8, 6), encoding="utf-8")
    result = runner.invoke(app, ["evaluate", "--model", str(out), "--input", str(gold), "--json", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["words"] > 0
    monkeypatch.chdir(tmp_path)  # without --model: the newest model under ./models, here the ensemble
    result = runner.invoke(
        app, ["parse", "--input-format", "tokenized", "--device", "cpu"], input="the dog saw a cat .\n"
    )
    assert result.exit_code == 0, result.output
    assert "using model models/ens" in result.output
    assert "\tdog\t" in result.stdout
