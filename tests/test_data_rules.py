"""Options chosen from the training data (``unnparse.parser.data_rules``) and ``unnparse train`` applying them only
where the command line leaves them open."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.parser_fixtures import write_treebank
from unnparse.cli.parser_app import app
from unnparse.parser.data_rules import (
    EPOCHS_WITHOUT_DEV,
    LARGE_OPTIONS,
    SMALL_OPTIONS,
    SMALL_TRAINING_WORDS,
    options_from_data,
)

runner = CliRunner()


def test_the_rule_switches_at_the_threshold_and_only_for_the_scratch_encoder():
    assert options_from_data(SMALL_TRAINING_WORDS - 1, "scratch").values == SMALL_OPTIONS
    assert options_from_data(SMALL_TRAINING_WORDS, "scratch").values == LARGE_OPTIONS
    assert options_from_data(0, "scratch").values == SMALL_OPTIONS
    assert options_from_data(5_000, "transformer").values == LARGE_OPTIONS
    assert SMALL_OPTIONS["lstm_layers"] < LARGE_OPTIONS["lstm_layers"]
    assert "99,999 training words" in options_from_data(99_999, "scratch").reason
    with pytest.raises(ValueError, match="negative"):
        options_from_data(-1, "scratch")


def _train(tmp_path, *options: str):
    tb = write_treebank(tmp_path, n_train=30, n_dev=6)
    out = tmp_path / "model"
    args = ["train", "--train", str(next(tb.glob("*train*"))), "--dev", str(next(tb.glob("*dev*")))]
    args += ["--epochs", "1", "--tokenizer-steps", "0", "--no-progress", "--threads", "1", "--device", "cpu"]
    args += ["--hidden", "16", "--rel-hidden", "8", "--lstm-hidden", "16", "--output", str(out), *options]
    result = runner.invoke(app, args)
    return result, out


def test_train_takes_the_small_treebank_options_when_none_are_given(tmp_path):
    result, out = _train(tmp_path)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["encoder"]["layers"] == SMALL_OPTIONS["lstm_layers"]
    assert config["training"]["batch_tokens"] == SMALL_OPTIONS["batch_tokens"]
    line = next(line for line in result.output.splitlines() if line.startswith("from the data"))
    assert "a small treebank" in line and "--lstm-layers 2 --batch-tokens 500" in line
    # the words counted are the training file's
    assert f"{sum(len(s) for s in _train_sentences(tmp_path)):,} training words" in line


def _train_sentences(tmp_path):
    from unnparse.conllu import read_conllu

    return read_conllu(next((tmp_path / "UD_Toy-Test").glob("*train*")))


def test_options_given_on_the_command_line_win(tmp_path):
    result, out = _train(tmp_path, "--lstm-layers", "1", "--batch-tokens", "700")
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["encoder"]["layers"], config["training"]["batch_tokens"]) == (1, 700)
    assert "from the data" not in result.output
    result, out = _train(tmp_path / "half", "--lstm-layers", "1", "--overwrite")  # one given, one chosen
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert (config["encoder"]["layers"], config["training"]["batch_tokens"]) == (1, SMALL_OPTIONS["batch_tokens"])
    assert "--batch-tokens 500" in result.output and "--lstm-layers 2" not in result.output


def test_a_tag_layer_above_the_layers_chosen_is_one_clear_error(tmp_path):
    result, _ = _train(tmp_path, "--tag-layer", "3")
    assert result.exit_code != 0
    assert "--tag-layer 3 needs at least 3 --lstm-layers" in result.output


def test_without_a_dev_set_training_runs_the_epochs_that_need_none(tmp_path):
    tb = write_treebank(tmp_path, n_train=8, n_dev=2)
    out = tmp_path / "model"
    args = ["train", "--train", str(next(tb.glob("*train*"))), "--tokenizer-steps", "0", "--no-progress"]
    args += ["--threads", "1", "--device", "cpu", "--hidden", "8", "--rel-hidden", "4", "--lstm-hidden", "8"]
    result = runner.invoke(app, [*args, "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"no dev set: the last epoch is kept, after {EPOCHS_WITHOUT_DEV} epochs" in result.output
    assert json.loads((out / "config.json").read_text())["training"]["epochs"] == EPOCHS_WITHOUT_DEV
    result = runner.invoke(app, [*args, "--output", str(tmp_path / "two"), "--epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "after 2 epochs" in result.output
