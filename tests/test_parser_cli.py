"""The `unnparse` command line: train → evaluate → parse on a toy treebank, and every bad input."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.parser_fixtures import write_treebank
from unnparse.cli.parser_app import app
from unnparse.conllu import read_conllu
from unnparse.model_files import weights_path

runner = CliRunner()
SMALL = [
    "--hidden",
    "32",
    "--rel-hidden",
    "16",
    "--lstm-hidden",
    "32",
    "--lstm-layers",
    "1",
    "--device",
    "cpu",
    "--no-progress",
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    write_treebank(root / "data")
    model = root / "models" / "UD_Toy-Test"
    result = runner.invoke(
        app,
        [
            "train",
            "--treebank",
            "UD_Toy-Test",
            "--data-dir",
            str(root / "data"),
            "--output",
            str(model),
            "--epochs",
            "3",
            "--unn-iter",
            "2",
            "--lr",
            "0.005",
            *SMALL,
        ],
    )
    assert result.exit_code == 0, result.output
    return root, model


def test_train_writes_a_model_directory(trained):
    root, model = trained
    config = json.loads((model / "config.json").read_text())
    assert config["kind"] == "parser" and config["model"]["unn_iter"] == 2
    assert config["training"]["epochs"] == 3 and config["treebank"] == "UD_Toy-Test"
    assert "nsubj" in config["vocab"]["rels"]["items"]
    assert weights_path(model).stat().st_size > 1000
    assert len(json.loads((model / "metrics.json").read_text())) == 3


def test_train_resume_extends_the_run_and_a_new_run_needs_overwrite(trained, tmp_path):
    root, model = trained
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    common = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(root / "data"), "--output", str(copy)]
    common += ["--unn-iter", "2", "--lr", "0.005", *SMALL]
    result = runner.invoke(app, [*common, "--epochs", "4", "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.stderr and "after epoch 3" in result.stderr
    assert len(json.loads((copy / "metrics.json").read_text())) == 4
    result = runner.invoke(app, [*common, "--epochs", "1"])  # a model is not replaced by accident
    assert result.exit_code == 1 and "holds a parser model of UD_Toy-Test" in result.stderr
    result = runner.invoke(app, [*common, "--epochs", "1", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert len(json.loads((copy / "metrics.json").read_text())) == 1


def test_evaluate_json_and_table(trained):
    root, model = trained
    args = [
        "evaluate",
        "--model",
        str(model),
        "--treebank",
        "UD_Toy-Test",
        "--data-dir",
        str(root / "data"),
        "--device",
        "cpu",
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert set(scores) >= {
        "uas",
        "las",
        "modifier_list_accuracy",
        "exact_match",
        "labeled_exact_match",
        "sentences",
        "words",
    }
    assert scores["sentences"] == 15 and "clas" in scores and "relations" not in scores
    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "UAS" in table.stdout and "CLAS" in table.stdout
    detailed = json.loads(runner.invoke(app, [*args, "--json", "--per-relation"]).stdout)
    relations = detailed.pop("relations")
    assert detailed == scores
    assert sum(r["gold"] for r in relations.values()) == scores["words"]
    assert sum(r["predicted"] for r in relations.values()) == scores["words"]
    assert sum(r["correct"] for r in relations.values()) == round(scores["las"] * scores["words"] / 100)
    table = runner.invoke(app, [*args, "--per-relation"])
    assert table.exit_code == 0 and "per relation" in table.stdout and "precision" in table.stdout


def test_evaluate_gold_pred_perfect(tmp_path):
    folder = write_treebank(tmp_path)
    gold = folder / "toy-ud-dev.conllu"
    result = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(gold), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["uas"] == 100.0


def test_evaluate_scores_the_tags_the_model_predicts_and_raw_text(trained):
    root, model = trained
    args = ["evaluate", "--model", str(model), "--treebank", "UD_Toy-Test", "--data-dir", str(root / "data")]
    args += ["--device", "cpu", "--json"]
    scores = json.loads(runner.invoke(app, args).stdout)
    assert scores["alignment"] == "words" and 0.0 <= scores["upos"] <= 100.0  # the gold UPOS were cleared first
    assert "xpos" not in scores  # the model does not tag XPOS
    raw = runner.invoke(app, [*args, "--raw-text"])
    assert raw.exit_code == 0, raw.output
    report = json.loads(raw.stdout)
    assert report["alignment"] == "characters" and report["scores"]["tokens"]["f1"] == 100.0
    assert report["scores"]["words"]["gold"] == scores["words"] and "upos" in report
    # the toy sentences start in lowercase: the splitter sees one sentence
    assert report["scores"]["sentences"]["predicted"] == 1
    table = runner.invoke(app, [*args[:-1], "--raw-text"])
    assert table.exit_code == 0 and "tokens" in table.stdout and "precision" in table.stdout
    bad = runner.invoke(app, [*args, "--raw-text", "--alignment", "words"])
    assert bad.exit_code == 1 and "--raw-text scores through the text" in bad.stderr


def test_evaluate_other_tokenization_and_tags_of_two_files(tmp_path):
    folder = write_treebank(tmp_path)
    gold = folder / "toy-ud-dev.conllu"
    lines = gold.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line and not line.startswith("#"))
    cols = lines[first].split("\t")
    lines[first] = "\t".join([*cols[:3], "X", *cols[4:]])  # one UPOS wrong
    pred = tmp_path / "pred.conllu"
    pred.write_text("\n".join(lines) + "\n")
    scores = json.loads(runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred), "--json"]).stdout)
    assert scores["upos"] == pytest.approx(100.0 * (scores["words"] - 1) / scores["words"])
    # merge the first two words of the first sentence into one token: the words no longer line up
    second = lines[first + 1].split("\t")
    lines[first] = "\t".join(["1", cols[1] + second[1], *cols[2:]])
    del lines[first + 1]
    for i in range(first + 1, len(lines)):
        if not lines[i]:
            break
        row = lines[i].split("\t")
        row[0] = str(int(row[0]) - 1)
        row[6] = "0" if row[6] == "0" else str(max(int(row[6]) - 1, 1))
        lines[i] = "\t".join(row)
    pred.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred), "--json"])
    assert result.exit_code == 0, result.output
    assert "aligned through the text" in result.stderr
    report = json.loads(result.stdout)
    assert (
        report["alignment"] == "characters"
        and report["scores"]["tokens"]["correct"] == report["scores"]["tokens"]["gold"] - 2
    )
    strict = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(pred), "--alignment", "words"])
    assert strict.exit_code == 1 and "pred.conllu:" in strict.stderr and "words" in strict.stderr
    other = tmp_path / "other.conllu"
    other.write_text(pred.read_text().replace(cols[1] + second[1], "Xx", 1))
    result = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(other)])
    assert result.exit_code == 1 and "text differs from the gold text" in result.stderr


def test_train_tokenizer_command_and_parse_with_it(trained, tmp_path):
    root, model = trained
    copy = tmp_path / "copy"
    shutil.copytree(model, copy)
    data = root / "data" / "UD_Toy-Test"
    no = runner.invoke(app, ["parse", "--model", str(copy), "--tokenizer", "model", "--device", "cpu"], input="x\n")
    assert no.exit_code == 1 and "has no trained tokenizer" in no.stderr and "Traceback" not in no.output
    args = ["train-tokenizer", "--model", str(copy), "--train", str(data / "toy-ud-train.conllu"), "--steps", "3"]
    args += ["--device", "cpu"]
    checked = runner.invoke(app, [*args, "--dev", str(data / "toy-ud-dev.conllu")])
    assert checked.exit_code == 0, checked.output
    kept = "tokenizer" in json.loads((copy / "config.json").read_text())
    assert ("tokenizer saved" in checked.stderr) == kept and ("not kept" in checked.stderr) != kept
    result = runner.invoke(app, args)  # no dev set: nothing to compare with, kept
    assert result.exit_code == 0 and "no dev set" in result.stderr
    assert "tokenizer" in json.loads((copy / "config.json").read_text())
    text = "the old dog saw a cat. a man reads the book.\n"
    parsed = runner.invoke(app, ["parse", "--model", str(copy), "--tokenizer", "model", "--device", "cpu"], input=text)
    assert parsed.exit_code == 0, parsed.output
    words = [r.split("\t")[1] for r in parsed.stdout.splitlines() if r and not r.startswith("#") and "-" not in r[:4]]
    assert "".join(words) == "".join(text.split())
    from unnparse.parser.parser import Parser

    resaved = Parser.load(copy).save(tmp_path / "resaved")  # save keeps the tokenizer
    assert Parser.load(resaved).tokenizer is not None
    again = runner.invoke(app, ["parse", "--model", str(resaved), "--tokenizer", "model"], input=text)
    assert again.stdout == parsed.stdout
    rules = runner.invoke(app, ["parse", "--model", str(copy), "--tokenizer", "rules", "--device", "cpu"], input=text)
    assert rules.exit_code == 0 and rules.stdout.count("# text") == 1  # lowercase starts: one sentence by rules
    bad = runner.invoke(app, ["train-tokenizer", "--model", str(tmp_path / "none"), "--train", "x.conllu"])
    assert bad.exit_code == 1 and "no such model directory" in bad.stderr


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("text", "The old dog saw a cat. A man reads the book in the park.\n"),
        ("tokenized", "the old dog saw a cat .\na man reads the book .\n"),
    ],
)
def test_parse_formats(trained, fmt, text):
    _, model = trained
    result = runner.invoke(app, ["parse", "--model", str(model), "--input-format", fmt, "--device", "cpu"], input=text)
    assert result.exit_code == 0, result.output
    blocks = [b for b in result.stdout.strip().split("\n\n") if b]
    assert len(blocks) == 2
    for block in blocks:
        rows = [r.split("\t") for r in block.splitlines() if not r.startswith("#")]
        assert all(len(r) == 10 for r in rows)
        assert sum(r[6] == "0" for r in rows) == 1
        assert all(r[3] != "_" for r in rows)  # untagged input gets the model's UPOS


def test_parse_json_tree_marginals_and_conllu_input(trained, tmp_path):
    root, model = trained
    gold = root / "data" / "UD_Toy-Test" / "toy-ud-test.conllu"
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        [
            "parse",
            "--model",
            str(model),
            "--input-format",
            "conllu",
            "--output-format",
            "json",
            "--marginals",
            "--input",
            str(gold),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    objs = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(objs) == 15
    n = len(objs[0]["words"])
    gold_first = read_conllu(gold)[0]
    assert [w["upos"] for w in objs[0]["words"]] == gold_first.upos  # tags of the input are kept
    assert len(objs[0]["marginals"]) == n and all(abs(sum(row) - 1) < 1e-3 for row in objs[0]["marginals"])
    tree = runner.invoke(
        app, ["parse", "--model", str(model), "--output-format", "tree", "--marginals"], input="The dog saw a cat.\n"
    )
    assert tree.exit_code == 0 and "►" in tree.stdout and "p=" in tree.stdout


def test_parse_progress_on_stderr(trained, tmp_path):
    root, model = trained
    dev = root / "data" / "UD_Toy-Test" / "toy-ud-dev.conllu"
    base = ["parse", "--model", str(model), "--input-format", "conllu", "--input", str(dev)]
    out = tmp_path / "out.conllu"
    shown = runner.invoke(app, [*base, "--output", str(out), "--progress"])
    assert shown.exit_code == 0, shown.output
    assert "15 sentences" in shown.stderr and "words" in shown.stderr
    assert len(read_conllu(out)) == 15
    quiet = runner.invoke(app, [*base, "--output", str(out)])  # not a terminal: no progress by default
    assert quiet.exit_code == 0 and "sentences" not in quiet.stderr
    assert runner.invoke(app, [*base, "--no-progress"]).stdout == out.read_text()


def test_parse_uses_newest_model_under_models(trained, monkeypatch):
    root, model = trained
    monkeypatch.chdir(root)
    monkeypatch.delenv("UNNPARSE_MODEL", raising=False)
    result = runner.invoke(app, ["parse", "--device", "cpu"], input="The dog saw a cat.\n")
    assert result.exit_code == 0, result.output
    assert "UD_Toy-Test" in result.stderr


def test_parse_without_any_model_says_how_to_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("UNNPARSE_MODEL", raising=False)
    result = runner.invoke(app, ["parse"], input="x\n")
    assert result.exit_code == 1
    assert "unnparse train" in result.stderr


# ----------------------------------------------------------------------------- bad input
def _one_line_error(result, *needles: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    msg = result.stderr.strip()
    assert msg.count("\n") == 0, msg
    for needle in needles:
        assert needle in msg, msg


def test_malformed_conllu_names_file_and_line(trained, tmp_path):
    _, model = trained
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tThe\tthe\tDET\t_\t_\t2\tdet\t_\t_\n2\tdog\tdog\tNOUN\t_\t_\tX\troot\t_\t_\n\n")
    result = runner.invoke(app, ["evaluate", "--model", str(model), "--input", str(bad)])
    _one_line_error(result, f"{bad}:2")


def test_cycle_is_an_error(tmp_path):
    bad = tmp_path / "cycle.conllu"
    bad.write_text(
        "1\ta\ta\tX\t_\t_\t2\tdep\t_\t_\n2\tb\tb\tX\t_\t_\t1\tdep\t_\t_\n3\tc\tc\tX\t_\t_\t0\troot\t_\t_\n\n"
    )
    result = runner.invoke(app, ["evaluate", "--gold", str(bad), "--pred", str(bad)])
    _one_line_error(result, str(bad), "cycle")


def test_empty_input_is_empty_output(trained):
    _, model = trained
    result = runner.invoke(app, ["parse", "--model", str(model)], input="")
    assert result.exit_code == 0 and result.stdout == "" and "holds no sentences" in result.stderr


def test_invalid_utf8_names_the_line(trained, tmp_path):
    _, model = trained
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"A fine line.\nA bad \xff line.\n")
    result = runner.invoke(app, ["parse", "--model", str(model), "--input", str(bad)])
    _one_line_error(result, f"{bad}:2")


def test_corrupt_model_file(trained, tmp_path):
    _, model = trained
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((model / "config.json").read_text())
    weights = weights_path(broken)
    weights.write_bytes(b"\x00garbage" * 10)
    result = runner.invoke(app, ["parse", "--model", str(broken)], input="The dog.\n")
    _one_line_error(result, weights.name)
    (broken / "config.json").write_text("{not json")
    result = runner.invoke(app, ["parse", "--model", str(broken)], input="The dog.\n")
    _one_line_error(result, "config.json")


def test_no_partial_output_on_error(trained, tmp_path):
    _, model = trained
    bad = tmp_path / "bad.conllu"
    good = (Path(trained[0]) / "data" / "UD_Toy-Test" / "toy-ud-dev.conllu").read_text()
    bad.write_text(good + "1\tx\tx\tX\t_\t_\t9\tdep\t_\t_\n\n")
    out = tmp_path / "out.conllu"
    result = runner.invoke(
        app, ["parse", "--model", str(model), "--input-format", "conllu", "--input", str(bad), "--output", str(out)]
    )
    assert result.exit_code == 1
    assert not out.exists()


def test_files_that_are_directories_or_missing_are_one_line(trained, tmp_path):
    root, model = trained
    gold = root / "data" / "UD_Toy-Test" / "toy-ud-dev.conllu"
    result = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(tmp_path)])
    _one_line_error(result, str(tmp_path), "directory")
    result = runner.invoke(app, ["evaluate", "--gold", str(tmp_path / "missing.conllu"), "--pred", str(gold)])
    _one_line_error(result, "missing.conllu", "No such file")
    result = runner.invoke(app, ["parse", "--model", str(model), "--input", str(tmp_path)])
    _one_line_error(result, str(tmp_path), "directory")


def test_unusable_output_paths_fail_before_any_work(trained, tmp_path):
    root, model = trained
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    result = runner.invoke(app, ["parse", "--model", str(model), "--output", str(tmp_path)], input="The dog.\n")
    _one_line_error(result, "--output", "is a directory")
    result = runner.invoke(app, ["parse", "--model", str(model), "--output", str(a_file / "x.conllu")], input="x\n")
    _one_line_error(result, "not a directory")
    result = runner.invoke(
        app, ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(root / "data"), "--output", str(a_file), *SMALL]
    )
    _one_line_error(result, str(a_file), "not a directory")
    result = runner.invoke(app, ["ensemble", str(model), str(model), "--output", str(a_file)])
    _one_line_error(result, str(a_file), "not a directory")
    assert a_file.read_text() == "keep me"


def test_unknown_treebank_offline(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("unnparse.downloads.open_url", offline)
    result = runner.invoke(app, ["train", "--treebank", "UD_Nowhere-XYZ", "--data-dir", str(tmp_path), *SMALL])
    _one_line_error(result, "UD_Nowhere-XYZ")


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("train", "evaluate", "parse", "ensemble", "merge-shards"):
        assert cmd in result.stdout


def test_version_names_the_package_torch_and_python():
    import torch

    import unnparse
    from unnparse.cli.unn_app import app as unn_app

    for application in (app, unn_app):
        result = runner.invoke(application, ["--version"])
        assert result.exit_code == 0
        line = result.stdout.strip()
        assert line.startswith(f"unnparse {unnparse.__version__} (") and f"torch {torch.__version__}" in line


SHARED = Path(__file__).resolve().parents[2] / "shared" / "ud"


@pytest.mark.skipif(not (SHARED / "UD_Telugu-MTG").is_dir(), reason="../shared/ud/UD_Telugu-MTG not available")
def test_integration_telugu(tmp_path):
    model = tmp_path / "te"
    result = runner.invoke(
        app,
        [
            "train",
            "--treebank",
            "UD_Telugu-MTG",
            "--data-dir",
            str(SHARED),
            "--output",
            str(model),
            "--epochs",
            "2",
            "--batch-tokens",
            "2000",
            *SMALL,
        ],
        env={**os.environ},
    )
    assert result.exit_code == 0, result.output
    ev = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(model),
            "--treebank",
            "UD_Telugu-MTG",
            "--data-dir",
            str(SHARED),
            "--split",
            "test",
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert ev.exit_code == 0, ev.output
    scores = json.loads(ev.stdout)
    assert scores["sentences"] == 146
    assert scores["uas"] > 60.0  # two short epochs already beat chance (and attaching everything left/right) by far


@pytest.mark.parametrize("fmt", ["conllu", "json", "tree"])
def test_sharded_parsing_merges_back_in_input_order(trained, tmp_path, fmt):
    root, model = trained
    gold = root / "data" / "UD_Toy-Test" / "toy-ud-test.conllu"  # 15 sentences
    base = [
        "parse",
        "--model",
        str(model),
        "--input-format",
        "conllu",
        "--input",
        str(gold),
        "--device",
        "cpu",
        "--output-format",
        fmt,
    ]
    whole = tmp_path / "whole"
    assert runner.invoke(app, [*base, "--output", str(whole)]).exit_code == 0
    parts = []
    for i in range(3):
        part = tmp_path / f"part{i}"
        result = runner.invoke(app, [*base, "--shard", f"{i}/3", "--shard-block", "2", "--output", str(part)])
        assert result.exit_code == 0, result.output
        parts.append(str(part))
    merged = tmp_path / "merged"
    result = runner.invoke(
        app, ["merge-shards", *parts, "--output-format", fmt, "--shard-block", "2", "--output", str(merged)]
    )
    assert result.exit_code == 0, result.output
    assert merged.read_text() == whole.read_text()
    assert Path(parts[0]).read_text() != whole.read_text()


def test_bad_shard_spec_is_one_line(trained):
    _, model = trained
    result = runner.invoke(app, ["parse", "--model", str(model), "--shard", "3/3"], input="A dog.\n")
    _one_line_error(result, "--shard")


@pytest.mark.parametrize("fmt", ["conllu", "json"])
def test_parsing_on_two_devices_equals_one_process(trained, tmp_path, fmt):
    root, model = trained
    gold = root / "data" / "UD_Toy-Test" / "toy-ud-test.conllu"  # 15 sentences
    base = ["parse", "--model", str(model), "--input-format", "conllu", "--input", str(gold), "--output-format", fmt]
    whole = tmp_path / "whole"
    assert runner.invoke(app, [*base, "--device", "cpu", "--output", str(whole)]).exit_code == 0
    both = tmp_path / "both"
    result = runner.invoke(app, [*base, "--devices", "cpu,cpu", "--shard-block", "2", "--output", str(both)])
    assert result.exit_code == 0, result.output
    assert both.read_text() == whole.read_text()
    assert "15 sentences parsed on 2 devices" in result.stderr
    to_stdout = runner.invoke(app, [*base, "--devices", "cpu,cpu", "--shard-block", "4"])
    assert to_stdout.exit_code == 0 and to_stdout.stdout == whole.read_text()


def test_parsing_on_devices_reports_bad_use_and_failing_workers_in_one_line(trained, tmp_path):
    _, model = trained
    base = ["parse", "--model", str(model)]
    _one_line_error(runner.invoke(app, [*base, "--devices", "cpu,cpu"], input="A dog.\n"), "--input FILE")
    text = tmp_path / "in.txt"
    text.write_text("A dog barks.\n")
    with_input = [*base, "--input", str(text)]
    _one_line_error(runner.invoke(app, [*with_input, "--devices", "cpu", "--shard", "0/2"]), "--shard")
    _one_line_error(runner.invoke(app, [*with_input, "--devices", "tpu,cpu"]), "tpu")
    _one_line_error(runner.invoke(app, [*with_input, "--devices", " , "]), "at least one device")
    bad = tmp_path / "bad.conllu"
    bad.write_text("1\tA\t_\t_\t_\t_\t0\troot\t_\t_\n\n1\tdog\t_\n\n")
    out = tmp_path / "out.conllu"
    result = runner.invoke(
        app, [*base, "--input", str(bad), "--input-format", "conllu", "--devices", "cpu,cpu", "-o", str(out)]
    )
    _one_line_error(result, "worker", f"{bad}:3")
    assert not out.exists()
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    result = runner.invoke(app, [*base, "--input", str(empty), "--devices", "cpu,cpu", "-o", str(out)])
    assert result.exit_code == 0 and "holds no sentences" in result.stderr  # empty in, empty out
    assert out.read_text() == ""


def test_unn_umbrella_lists_every_model():
    from unnparse.cli.unn_app import app as unn_app

    result = runner.invoke(unn_app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("train", "evaluate", "parse", "serve", "merge-shards", "ensemble", "mnist", "seqcomplete"):
        assert cmd in result.stdout


def test_tag_layer_beyond_the_bilstm_is_one_line(trained):
    root, _ = trained
    args = ["train", "--treebank", "UD_Toy-Test", "--data-dir", str(root / "data"), "--output", str(root / "x")]
    result = runner.invoke(app, [*args, *SMALL, "--tag-layer", "2"])
    _one_line_error(result, "--tag-layer 2")
    assert not (root / "x").exists()


def test_scoring_a_file_against_itself_warns_that_its_tags_are_copied(tmp_path):
    folder = write_treebank(tmp_path)
    gold = folder / "toy-ud-test.conllu"
    result = runner.invoke(app, ["evaluate", "--gold", str(gold), "--pred", str(gold)])
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "UPOS, LEMMA of" in warning[0] and "--clear-tags" in warning[0]


def test_help_shows_no_type_placeholder_for_flags_and_every_option_has_help():
    import typer.main

    from unnparse.cli.unn_app import app as unn_app

    def commands(cmd, path):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield path, cmd
            return
        for name, sub in subs.items():
            yield from commands(sub, [*path, name])

    root = typer.main.get_command(unn_app)
    for path, _cmd in commands(root, []):
        for option in _cmd.params:
            if option.param_type_name == "option":
                assert (option.help or "").strip(), (path, option.opts)
        shown = CliRunner().invoke(unn_app, [*path, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, (path, shown.output)
        assert "<bool>" not in shown.stdout and "<list[" not in shown.stdout, path


def test_parse_writes_an_html_page_of_trees_and_refuses_to_shard_it(trained, tmp_path):
    _, model = trained
    page = tmp_path / "trees.html"
    text = "The dog saw a cat. A man reads the book."
    result = runner.invoke(
        app, ["parse", "--model", str(model), "--output-format", "html", "-o", str(page)], input=text
    )
    assert result.exit_code == 0, result.output
    html_text = page.read_text(encoding="utf-8")
    assert html_text.startswith("<!DOCTYPE html>") and html_text.count("<svg") == 2
    svg = runner.invoke(app, ["parse", "--model", str(model), "--output-format", "svg", "--marginals"], input=text)
    assert svg.exit_code == 0 and len(svg.stdout.splitlines()) == 2 and "p = " in svg.stdout
    shard = ["parse", "--model", str(model), "--output-format", "html", "--shard", "0/2"]
    _one_line_error(runner.invoke(app, shard, input=text), "--shard needs an output format that can be merged")
    merged = runner.invoke(app, ["merge-shards", str(page), "--output-format", "html"])
    _one_line_error(merged, "merge-shards merges")


def test_text_that_looks_like_conllu_gets_a_warning(trained):
    _, model = trained
    conllu = "# sent_id = 1\n# text = Dogs bark.\n1\tDogs\t_\t_\t_\t_\t2\tnsubj\t_\t_\n"
    result = runner.invoke(app, ["parse", "--model", str(model), "--threads", "1"], input=conllu)
    assert result.exit_code == 0, result.output
    warning = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "looks like CoNLL-U" in warning[0] and "--input-format conllu" in warning[0]
