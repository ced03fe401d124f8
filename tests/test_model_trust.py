"""Untrusted model directories: loading never runs code, and a model directory is one checked thing.

* a saved transformer encoder that refers to code (``auto_map``, a ``model_type`` transformers does not implement,
  ``.py`` files) is refused with one line before transformers reads it; stdin is never read;
* ensemble members stay inside the ensemble directory, are single parsers, each named once;
* ``config.json`` records every data file's size and sha256; corrupted, truncated and mismatched files, reordered
  vocabularies and out-of-range config values are one-line errors naming the file;
* saving is atomic as a whole: a kill at any file-system step leaves the old model or the new one;
* directories written before manifests existed still load.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as save_safetensors
from typer.testing import CliRunner

from tests.parser_fixtures import conllu_text
from unnparse.cli.parser_app import app
from unnparse.conllu import read_conllu
from unnparse.model_files import (
    ModelFileError,
    is_model_dir,
    load_config,
    model_kind,
    save_model,
    weights_path,
)
from unnparse.parser import load
from unnparse.parser.encoders import EncoderLoadError, TransformerEncoder
from unnparse.parser.ensemble import ParserEnsemble, combine_parsers
from unnparse.parser.parser import Parser, default_config
from unnparse.text.trained_tokenizer import SegmenterNet, TrainedTokenizer

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()
SMALL = dict(unn_iter=2, hidden=8, rel_hidden=4, lstm_hidden=8, lstm_layers=1)
TEXT = ["the dog saw a cat .", "a man reads the old book ."]
BERT_WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"the a cat dog man saw reads old book . ,".split()]


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _scratch_parser(seed: int, *, data_seed: int = 1, tokenizer: bool = False) -> Parser:
    torch.manual_seed(seed)
    parser = Parser.build(default_config(**SMALL), _sentences(12, data_seed))
    for p in parser.model.parameters():  # the UNN's biaffine weights start at 0: make every parser distinct
        torch.nn.init.normal_(p, std=0.3)
    if tokenizer:
        chars = sorted(set("".join(TEXT)))
        parser.tokenizer = TrainedTokenizer(SegmenterNet(len(chars) + 2, char_dim=4, hidden=6), chars, {})
    return parser


def _tiny_bert(directory: Path, hidden: int = 16) -> Path:
    """A tiny BERT encoder directory (random weights, a fast WordPiece tokenizer), written offline."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.txt").write_text("\n".join(BERT_WORDS) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(directory / "vocab.txt"))
    config = BertConfig(
        vocab_size=len(BERT_WORDS),
        hidden_size=hidden,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=2 * hidden,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    BertModel(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _bert_parser(source: Path) -> Parser:
    torch.manual_seed(0)
    return Parser.build(default_config(encoder=str(source), unn_iter=1, hidden=8, rel_hidden=4), _sentences(8, 1))


def _parses(parser: Parser) -> list[str]:
    return [s.to_conllu() for s in parser.parse([words.split() for words in TEXT])]


def _fingerprint(parser: Parser) -> str:
    """The sha256 of everything a parser is: its config's vocabularies, its weights, its tokenizer's weights."""
    digest = hashlib.sha256(json.dumps(parser.config["vocab"], sort_keys=True).encode())
    digest.update(save_safetensors(dict(parser.model.state_dict())))
    if parser.tokenizer is not None:
        digest.update(save_safetensors(dict(parser.tokenizer.net.state_dict())))
    return digest.hexdigest()


def _config(directory: Path) -> dict:
    return json.loads((directory / "config.json").read_text(encoding="utf-8"))


def _write_config(directory: Path, config: dict) -> None:
    (directory / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _rerecord_encoder(model: Path) -> Path:
    """Record the encoder directory's current files in config.json, as an attacker who edits both would."""
    config = _config(model)
    entry = config["files"]["encoder"]
    encoder = model / entry["path"]
    entry["files"] = {
        p.name: {"size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(encoder.iterdir())
    }
    _write_config(model, config)
    return encoder


def _one_line(message: str, *needles: str) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, message


@pytest.fixture(scope="module")
def bert_model(tmp_path_factory) -> Path:
    """A saved parser with a (tiny) transformer encoder."""
    root = tmp_path_factory.mktemp("bert")
    parser = _bert_parser(_tiny_bert(root / "source"))
    parser.save(root / "model")
    return root / "model"


def _plant(model: Path, target: Path, *, auto_map: bool = True, model_type: str = "evil_net", code: bool = True):
    """A copy of ``model`` whose encoder names custom code that would create ``marker`` when run."""
    shutil.copytree(model, target)
    marker = target.parent / "MARKER"
    encoder = target / _config(target)["files"]["encoder"]["path"]
    config = json.loads((encoder / "config.json").read_text())
    config["model_type"] = model_type
    if auto_map:
        config["auto_map"] = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel"}
    (encoder / "config.json").write_text(json.dumps(config))
    if code:
        (encoder / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    _rerecord_encoder(target)
    return marker


# ------------------------------------------------------------------------------------------- 1. no code ever runs
@pytest.mark.parametrize("stdin", ["y\ny\ny\nThe cat sat.\n", "1\n2\n3 The cat sat.\n"])
def test_planted_remote_code_never_runs_and_stdin_is_not_read(bert_model, tmp_path, stdin):
    evil = tmp_path / "EVIL"
    marker = _plant(bert_model, evil)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("UNNPARSE_DEBUG", None)
    done = subprocess.run(
        [sys.executable, "-m", "unnparse", "parse", "--model", str(evil)],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode != 0
    assert done.stdout == ""  # no prompt, and none of the input echoed or parsed
    _one_line(done.stderr, str(evil), "code", "never runs")
    assert not marker.exists()


@pytest.mark.parametrize(
    ("plant", "needle"),
    [
        (dict(auto_map=True, model_type="bert", code=False), "config.json: the encoder needs custom code (auto_map)"),
        (dict(auto_map=False, model_type="evil_net", code=False), 'model_type "evil_net"'),
        (dict(auto_map=False, model_type="bert", code=True), "evil.py: the encoder comes with code"),
    ],
)
def test_each_reference_to_code_is_refused_before_transformers_reads_it(bert_model, tmp_path, plant, needle):
    marker = _plant(bert_model, tmp_path / "evil", **plant)
    with pytest.raises(ModelFileError) as err:
        Parser.load(tmp_path / "evil")
    _one_line(str(err.value), needle, "never runs")
    assert not marker.exists()


def test_tokenizer_auto_map_symlinks_and_unlisted_files_are_refused(bert_model, tmp_path):
    model = tmp_path / "m"
    shutil.copytree(bert_model, model)
    encoder = model / _config(model)["files"]["encoder"]["path"]
    (encoder / "extra.txt").write_text("x")
    with pytest.raises(ModelFileError, match="extra.txt: not part of the model"):
        Parser.load(model)
    (encoder / "extra.txt").unlink()
    (encoder / "link.json").symlink_to(encoder / "config.json")
    _rerecord_encoder(model)
    with pytest.raises(ModelFileError, match="link.json"):
        Parser.load(model)
    (encoder / "link.json").unlink()
    tok = json.loads((encoder / "tokenizer_config.json").read_text())
    tok["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (encoder / "tokenizer_config.json").write_text(json.dumps(tok))
    _rerecord_encoder(model)
    with pytest.raises(ModelFileError, match=r"tokenizer_config.json: the encoder needs custom code \(auto_map\)"):
        Parser.load(model)


def test_a_legacy_layout_with_planted_code_is_refused_too(bert_model, tmp_path):
    model = tmp_path / "old"
    shutil.copytree(bert_model, model)
    config = _config(model)
    os.rename(model / config["files"]["encoder"]["path"], model / "encoder")
    os.rename(weights_path(model), model / "model.safetensors")
    del config["files"]
    _write_config(model, config)
    assert _parses(Parser.load(model)) == _parses(Parser.load(bert_model))  # the old layout loads
    (model / "encoder" / "evil.py").write_text("raise SystemExit('ran')\n")
    with pytest.raises(ModelFileError, match="evil.py: the encoder comes with code"):
        Parser.load(model)


def test_training_refuses_an_encoder_that_needs_code_unless_trusted(tmp_path):
    source = _tiny_bert(tmp_path / "src")
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "evil.EvilModel"}}))
    with pytest.raises(EncoderLoadError, match="--trust-remote-code"):
        TransformerEncoder.load(str(source))
    with pytest.raises(EncoderLoadError, match="--trust-remote-code"):
        Parser.build(default_config(encoder=str(source)), _sentences(4, 1))


def test_a_saved_encoder_never_refers_to_code(tmp_path):
    source = _tiny_bert(tmp_path / "src")
    parser = _bert_parser(source)
    parser.model.encoder.model.config.auto_map = {"AutoModel": "evil.EvilModel"}
    parser.save(tmp_path / "m")
    encoder = tmp_path / "m" / _config(tmp_path / "m")["files"]["encoder"]["path"]
    assert not any(p.suffix == ".py" for p in encoder.iterdir())
    assert all("auto_map" not in json.loads(p.read_text()) for p in encoder.glob("*.json"))
    assert _parses(Parser.load(tmp_path / "m")) == _parses(parser)


def test_train_offers_trust_remote_code():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0 and "--trust-remote-code" in result.output


# ------------------------------------------------------------------------------------------- ensembles
@pytest.fixture(scope="module")
def two_parsers(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    _scratch_parser(1).save(root / "a")
    _scratch_parser(2).save(root / "b")
    return root


def _ensemble(two_parsers: Path, target: Path) -> tuple[Path, dict]:
    out = combine_parsers([two_parsers / "a", two_parsers / "b"], target)
    return out, _config(out)


def test_ensemble_members_are_content_named_and_checked(two_parsers, tmp_path):
    out, config = _ensemble(two_parsers, tmp_path / "e")
    assert [m.startswith(f"member-{i}-") for i, m in enumerate(config["members"], 1)] == [True, True]
    loaded = load(out)
    assert isinstance(loaded, ParserEnsemble)
    # saving it again into its own directory keeps it whole and leaves no stale member behind
    loaded.save(out)
    assert sorted(p.name for p in out.iterdir()) == sorted(["config.json", *config["members"]])
    # a member whose config is not the one recorded
    member = out / config["members"][1]
    member_config = _config(member)
    member_config["treebank"] = "other"
    _write_config(member, member_config)
    with pytest.raises(ModelFileError, match="not the member the ensemble was made of"):
        load(out)


@pytest.mark.parametrize(
    ("members", "needle"),
    [
        (["."], "inside the ensemble"),
        ([""], "inside the ensemble"),
        (["../a"], "inside the ensemble"),
        (["/etc"], "inside the ensemble"),
        (["FIRST", "FIRST"], "named twice"),
    ],
)
def test_ensemble_members_that_leave_or_repeat_are_refused(two_parsers, tmp_path, members, needle):
    out, config = _ensemble(two_parsers, tmp_path / "e")
    first = config["members"][0]
    config["members"] = [first if m == "FIRST" else m for m in members]
    config.pop("files")
    _write_config(out, config)
    with pytest.raises(ModelFileError, match=needle) as err:
        load(out)
    _one_line(str(err.value), "config.json")


def test_ensemble_member_symlinks_may_not_lead_outside(two_parsers, tmp_path):
    out, config = _ensemble(two_parsers, tmp_path / "e")
    (out / "escape").symlink_to(two_parsers / "a")
    (out / "twin").symlink_to(out / config["members"][0])
    config.pop("files")
    for members, needle in ((["escape"], "escape: leads outside"), (["twin", config["members"][0]], "named twice")):
        _write_config(out, {**config, "members": members})
        with pytest.raises(ModelFileError, match=needle):
            load(out)
    _write_config(out, {**config, "members": ["twin", config["members"][1]]})  # a link inside is a member
    assert isinstance(load(out), ParserEnsemble)


def test_an_ensemble_member_may_not_be_an_ensemble(two_parsers, tmp_path):
    out, config = _ensemble(two_parsers, tmp_path / "e")
    shutil.copytree(out, out / "nested", ignore=shutil.ignore_patterns("nested"))
    _write_config(out / "nested", {**_config(out / "nested"), "members": ["."]})
    config.pop("files")
    _write_config(out, {**config, "members": ["nested"]})
    with pytest.raises(ModelFileError, match="parser-ensemble model cannot be an ensemble member"):
        load(out)


# ------------------------------------------------------------------------------------------- 2. one checked thing
@pytest.fixture()
def saved(tmp_path) -> tuple[Path, Parser]:
    parser = _scratch_parser(1, tokenizer=True)
    parser.save(tmp_path / "m")
    return tmp_path / "m", parser


def test_config_records_every_file_and_the_vocabularies(saved):
    model, parser = saved
    files = _config(model)["files"]
    assert set(files) == {"weights", "tokenizer"}
    for entry in files.values():
        data = (model / entry["path"]).read_bytes()
        assert entry["size"] == len(data) and entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["path"].split("-")[1].startswith(entry["sha256"][:16])
    assert files["weights"]["metadata"]["vocab_sha256"]
    assert model_kind(model) == "parser" and is_model_dir(model) and not is_model_dir(model.parent)
    assert _parses(Parser.load(model)) == _parses(parser)


def test_corrupted_truncated_and_swapped_files_are_one_line_errors(saved):
    model, _ = saved
    weights = weights_path(model)
    original = weights.read_bytes()
    flipped = bytearray(original)
    flipped[len(original) // 2] ^= 0x40
    weights.write_bytes(bytes(flipped))
    with pytest.raises(ModelFileError, match=f"{weights.name}: corrupted") as err:
        Parser.load(model)
    _one_line(str(err.value), str(weights))
    weights.write_bytes(original[:-100])
    with pytest.raises(ModelFileError, match=f"{weights.name}: truncated"):
        Parser.load(model)
    weights.write_bytes(original)
    tokenizer = weights_path(model, "tokenizer")
    tokenizer.write_bytes(tokenizer.read_bytes()[:-1] + b"!")
    with pytest.raises(ModelFileError, match=f"{tokenizer.name}: corrupted"):
        Parser.load(model)
    tokenizer.unlink()
    with pytest.raises(ModelFileError, match=f"{tokenizer.name}: missing"):
        Parser.load(model)
    config = _config(model)
    config["files"]["weights"]["path"] = "../../etc/passwd"
    _write_config(model, config)
    with pytest.raises(ModelFileError, match="not a name unnparse writes"):
        Parser.load(model)


def test_a_reordered_vocabulary_is_an_error(saved):
    model, _ = saved
    config = _config(model)
    items = config["vocab"]["rels"]["items"]
    items[0], items[1] = items[1], items[0]
    _write_config(model, config)
    with pytest.raises(ModelFileError, match="config.json: its vocab entry does not match the weights of model-"):
        Parser.load(model)
    config = _config(model)
    items[0], items[1] = items[1], items[0]
    config["vocab"]["rels"]["items"] = items
    config["tokenizer"]["chars"].reverse()
    _write_config(model, config)
    with pytest.raises(
        ModelFileError, match="config.json: its tokenizer entry does not match the weights of tokenizer-"
    ):
        Parser.load(model)


def test_a_tensor_shape_mismatch_is_found_before_the_data_is_read(saved, monkeypatch):
    model, _ = saved

    def never(*_args, **_kwargs):
        raise AssertionError("the tensors were read")

    monkeypatch.setattr("unnparse.model_files.load_safetensors", never)
    config = _config(model)
    config["model"]["hidden"] = 9
    _write_config(model, config)
    with pytest.raises(ModelFileError, match=r"model-[0-9a-f]{16}\.safetensors: tensor \S+ has shape"):
        Parser.load(model)
    config["model"]["hidden"] = 8
    config["model"]["arc_position"] = True  # one more tensor in the model than in the file
    _write_config(model, config)
    with pytest.raises(ModelFileError, match=r"model-[0-9a-f]{16}\.safetensors: has no tensor unn\.factors\.\S+"):
        Parser.load(model)


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("model.unn_iter", 1_000_000_000, "model.unn_iter must be an integer in [1, 100], not 1000000000"),
        ("model.hidden", -5, "model.hidden must be an integer in [1, 65536], not -5"),
        ("model.hidden", "8", 'model.hidden must be an integer in [1, 65536], not "8"'),
        ("model.unn_iter", True, "model.unn_iter must be an integer"),
        ("model.dropout", 1.0, "model.dropout must be a number in [0, 1), not 1.0"),
        ("encoder.layers", 1000, "encoder.layers must be an integer in [1, 64]"),
        ("encoder.char_filters", 0, "encoder.char_filters must be an integer in [1, 65536]"),
        ("encoder.type", "python", "encoder.type must be one of scratch, transformer"),
        ("vocab.rels.items", {"a": 1}, "vocab.rels.items must be a list of at most 100,000 strings"),
        ("vocab.words", [1, 2], "vocab.words must be an object"),
        ("tokenizer.hidden", 10**9, "tokenizer.hidden must be an integer in [2, 65536]"),
        ("tokenizer.char_dim", None, "tokenizer.char_dim is missing"),
    ],
)
def test_out_of_range_config_values_are_one_line_errors(saved, key, value, needle):
    model, _ = saved
    config = _config(model)
    node = config
    *path, last = key.split(".")
    for part in path:
        node = node[part]
    node[last] = value
    _write_config(model, config)
    with pytest.raises(ModelFileError) as err:
        Parser.load(model)
    _one_line(str(err.value), f"{model / 'config.json'}: {needle}")


def test_the_cli_names_a_broken_model_in_one_line(saved):
    model, _ = saved
    config = _config(model)
    config["model"]["unn_iter"] = 10**9
    _write_config(model, config)
    result = runner.invoke(app, ["parse", "--model", str(model)], input="The dog saw a cat.\n")
    assert result.exit_code != 0 and result.stdout == ""
    _one_line(result.stderr, "config.json", "model.unn_iter")
    weights = weights_path(model)
    config["model"]["unn_iter"] = 2
    _write_config(model, config)
    weights.write_bytes(weights.read_bytes()[:-8])
    result = runner.invoke(app, ["parse", "--model", str(model)], input="The dog saw a cat.\n")
    assert result.exit_code != 0
    _one_line(result.stderr, weights.name, "truncated")


def test_saving_removes_only_the_old_data_files(saved):
    model, _ = saved
    old = {p.name for p in model.iterdir()}
    keep = ["checkpoint.pt", "metrics.json", ".unnparse.lock", "notes.txt", "model-notes.safetensors"]
    for name in keep:
        (model / name).write_text("x")
    (model / "encoder").mkdir()  # a legacy data directory that the new model does not use
    (model / ".model-0123456789abcdef.safetensors.abc.tmp").write_bytes(b"half")  # an interrupted write
    new = _scratch_parser(5, data_seed=2)
    new.save(model)
    names = {p.name for p in model.iterdir()}
    assert set(keep) <= names and not (old - {"config.json"}) & names
    assert names == {*keep, "config.json", weights_path(model).name}
    assert _parses(Parser.load(model)) == _parses(new)


def test_a_model_in_the_layout_before_manifests_still_loads(tmp_path):
    parser = _scratch_parser(3, tokenizer=True)
    model = tmp_path / "old"
    model.mkdir()
    # what Parser.save wrote before manifests: fixed names, no hashes, tokenizer entry added after the weights
    config = {**parser.config, "unnparse_version": "0.old"}
    (model / "model.safetensors").write_bytes(save_safetensors(dict(parser.model.state_dict())))
    (model / "tokenizer.safetensors").write_bytes(save_safetensors(dict(parser.tokenizer.net.state_dict())))
    config["tokenizer"] = parser.tokenizer.to_config()
    (model / "config.json").write_text(json.dumps(config, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
    assert model_kind(model) == "parser" and weights_path(model) == model / "model.safetensors"
    loaded = Parser.load(model)
    assert _parses(loaded) == _parses(parser)
    assert loaded.tokenizer is not None and loaded.tokenizer.segment("the dog saw") == parser.tokenizer.segment(
        "the dog saw"
    )
    # adding a tokenizer to it records the old weights and keeps them
    loaded.tokenizer.save(model)
    files = _config(model)["files"]
    assert files["weights"]["path"] == "model.safetensors" and files["tokenizer"]["path"].startswith("tokenizer-")
    assert not (model / "tokenizer.safetensors").exists()
    assert _parses(Parser.load(model)) == _parses(parser)


def test_mnist_and_seqcomplete_models_are_checked_too(tmp_path):
    from unnparse.mnist.model import MODEL_KIND as MNIST_KIND
    from unnparse.mnist.model import MnistConfig, MnistUNN
    from unnparse.mnist.train import load_model as load_mnist_model
    from unnparse.seqcomplete.model import MODEL_KIND as SEQ_KIND
    from unnparse.seqcomplete.model import SeqCompletionUNN, SeqConfig
    from unnparse.seqcomplete.train import load_model as load_seq_model

    cases = [
        (MnistUNN(MnistConfig(unn_iter=1, channels1=4, channels2=4)), MNIST_KIND, load_mnist_model, "channels1"),
        (SeqCompletionUNN(SeqConfig(vocab=5, dim=8)), SEQ_KIND, load_seq_model, "dim"),
    ]
    for i, (module, kind, load_kind, key) in enumerate(cases):
        directory = tmp_path / str(i)
        config = {"kind": kind, **module.config.to_dict()}
        save_model(directory, config, module.state_dict())
        assert model_kind(directory) == kind
        torch.testing.assert_close(dict(load_kind(directory).state_dict()), dict(module.state_dict()))
        for bad, needle in ((10**9, "unn_iter must be an integer in [1, 100]"), (-5, "unn_iter must be")):
            _write_config(directory, {**config, "unn_iter": bad, "files": _config(directory)["files"]})
            with pytest.raises(ModelFileError) as err:
                load_kind(directory)
            _one_line(str(err.value), "config.json", needle)
        _write_config(directory, {**config, key: config[key] * 2, "files": _config(directory)["files"]})
        with pytest.raises(ModelFileError, match="has shape"):
            load_kind(directory)


# ------------------------------------------------------------------------------------------- kill between writes
KILL_SCRIPT = textwrap.dedent(
    """
    import json, os, shutil, sys
    import torch

    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[2])
    from tests.test_model_trust import _fingerprint, _scratch_parser, _bert_parser, _tiny_bert
    from unnparse.parser.parser import Parser
    from unnparse.text.trained_tokenizer import SegmenterNet, TrainedTokenizer

    root, kind = __import__("pathlib").Path(sys.argv[1]), sys.argv[3]
    if kind == "scratch":
        a, b = _scratch_parser(1, tokenizer=True), _scratch_parser(2, data_seed=2, tokenizer=True)
    elif kind == "tokenizer":  # `unnparse train-tokenizer` replacing the tokenizer of a saved parser
        a, b = _scratch_parser(1, tokenizer=True), _scratch_parser(1, tokenizer=True)
        torch.manual_seed(7)
        chars = b.tokenizer.chars
        b.tokenizer = TrainedTokenizer(SegmenterNet(len(chars) + 2, char_dim=4, hidden=8), chars, {"x": ["a", "b"]})
    else:
        a, b = _bert_parser(_tiny_bert(root / "src-a", 16)), _bert_parser(_tiny_bert(root / "src-b", 8))
    save_b = (lambda: b.tokenizer.save(work)) if kind == "tokenizer" else (lambda: b.save(work))
    pristine, work = root / "pristine", root / "work"
    a.save(pristine)
    for name in ("checkpoint.pt", "metrics.json"):
        (pristine / name).write_text("training state")
    want = {"A": _fingerprint(a), "B": _fingerprint(b)}
    assert want["A"] != want["B"]
    NAMES = ["open", "replace", "rename", "unlink", "rmdir", "mkdir", "fsync", "chmod", "remove"]
    originals = {name: getattr(os, name) for name in NAMES}

    def hook(kill_at, counter):
        def wrap(name):
            def call(*args, **kwargs):
                counter[0] += 1
                if counter[0] == kill_at:
                    os._exit(9)
                return originals[name](*args, **kwargs)
            return call
        for name in NAMES:
            setattr(os, name, wrap(name))

    def unhook():
        for name in NAMES:
            setattr(os, name, originals[name])

    shutil.copytree(pristine, work)
    counter = [0]
    hook(None, counter)
    save_b()
    unhook()
    steps = counter[0]
    outcomes = []
    for n in range(1, steps + 1):
        shutil.rmtree(work)
        shutil.copytree(pristine, work)
        pid = os.fork()
        if pid == 0:
            hook(n, [0])
            save_b()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        killed = os.WEXITSTATUS(status) == 9
        try:
            got = _fingerprint(Parser.load(work))
            outcome = next((k for k, v in want.items() if v == got), "MIX")
        except Exception as err:  # noqa: BLE001
            outcome = "FAIL " + str(err)
        save_b()  # a later save of the same model recovers and leaves nothing stale behind
        names = sorted(p.name for p in work.iterdir())
        outcomes.append({"n": n, "killed": killed, "outcome": outcome, "names": names,
                         "after": _fingerprint(Parser.load(work)) == want["B"]})
    print(json.dumps({"steps": steps, "outcomes": outcomes}))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("kind", ["scratch", "tokenizer", "transformer"])
def test_a_kill_at_any_step_of_a_save_leaves_the_old_or_the_new_model(tmp_path, kind):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", KILL_SCRIPT, str(tmp_path), str(ROOT), kind],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    outcomes = report["outcomes"]
    assert report["steps"] >= 5 and len(outcomes) == report["steps"]
    assert all(o["killed"] for o in outcomes), outcomes
    assert {o["outcome"] for o in outcomes} == {"A", "B"}, [o for o in outcomes if o["outcome"] not in "AB"]
    first_b = min(o["n"] for o in outcomes if o["outcome"] == "B")
    assert all(o["outcome"] == "B" for o in outcomes if o["n"] >= first_b)  # the switch happens once
    final = outcomes[-1]["names"]
    assert all(o["after"] and o["names"] == final for o in outcomes)
    assert "checkpoint.pt" in final and "metrics.json" in final and len(final) == 5
    assert load_config(tmp_path / "work")["kind"] == "parser"
