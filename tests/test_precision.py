"""Mixed precision: the ``--precision`` choice, bfloat16 parsing and training on the CPU."""

from __future__ import annotations

import io
import json

import pytest
import torch
from typer.testing import CliRunner

from tests.parser_fixtures import conllu_text, write_treebank
from unnparse import runtime
from unnparse.cli.parser_app import app
from unnparse.conllu import read_conllu
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import TrainOptions, train_parser
from unnparse.runtime import lstm_bfloat16_supported, precision_name, precision_warning, resolve_precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _small_config(k: int = 2) -> dict:
    return default_config(unn_iter=k, hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=2)


def test_resolve_precision():
    assert resolve_precision("float32", CPU) is None
    assert resolve_precision("float32", CUDA) is None
    assert resolve_precision("bfloat16", CPU) is torch.bfloat16
    assert resolve_precision("bfloat16", CUDA) is torch.bfloat16
    assert resolve_precision("auto", CUDA) is torch.bfloat16
    assert resolve_precision("auto", CPU) is None  # batch-independent results on the CPU unless asked
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        resolve_precision("fp8", CPU)
    assert precision_name(None) == "float32"
    assert precision_name(torch.bfloat16) == "bfloat16"


def test_bfloat16_on_a_cpu_without_it_warns(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: False)
    assert "no native bfloat16" in str(precision_warning("bfloat16", CPU))
    assert precision_warning("float32", CPU) is None
    assert precision_warning("bfloat16", CUDA) is None
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert precision_warning("bfloat16", CPU) is None


def test_parser_rejects_an_unknown_precision():
    parser = Parser.build(_small_config(), _sentences(5, 1))
    assert parser.precision == "auto"
    with pytest.raises(ValueError, match="unknown precision"):
        parser.precision = "half"


def _trained(tmp_path):
    torch.manual_seed(0)
    train, dev = _sentences(60, 1), _sentences(12, 2)
    parser = Parser.build(_small_config(), train)
    opts = TrainOptions(epochs=4, lr=1e-2, batch_tokens=300, patience=100, seed=0, precision="float32")
    train_parser(parser, train, dev, opts, tmp_path / "m", progress=False)
    return parser, dev


def test_bfloat16_parsing_runs_the_encoder_in_bfloat16_and_the_trees_in_float32(tmp_path):
    parser, dev = _trained(tmp_path)
    seen: list[torch.dtype] = []
    last_lstm = parser.model.encoder.lstm.forward_layers[-1]
    hook = last_lstm.register_forward_hook(lambda _m, _i, out: seen.append(out[0].dtype))
    exact = list(parser.predict(dev, marginals=True))
    parser.precision = "bfloat16"
    mixed = list(parser.predict(dev, marginals=True))
    hook.remove()
    # bfloat16 where the CPU has a bfloat16 LSTM kernel; elsewhere the LSTM falls back to float32
    expected = torch.bfloat16 if lstm_bfloat16_supported("cpu") else torch.float32
    assert seen[0] == torch.float32 and seen[-1] == expected
    batch = parser.featurizer.batch(dev, list(range(len(dev))), gold=False)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out = parser.model(batch)
    assert out.scores.dtype == torch.float32 and out.marginals.dtype == torch.float32
    for e, m in zip(exact, mixed, strict=True):
        marg = torch.tensor(m.marginals)
        torch.testing.assert_close(marg.sum(1), torch.ones(len(marg)), atol=1e-3, rtol=0)  # rows rounded to 4 places
        torch.testing.assert_close(marg, torch.tensor(e.marginals), atol=0.1, rtol=0)
    heads_e = [h for p in exact for h in p.sentence.heads]
    heads_m = [h for p in mixed for h in p.sentence.heads]
    assert sum(a == b for a, b in zip(heads_e, heads_m, strict=True)) >= 0.95 * len(heads_e)


@pytest.mark.parametrize(("asked", "used"), [("auto", "float32"), ("bfloat16", "bfloat16")])
def test_training_records_the_precision_it_used(tmp_path, asked, used):
    torch.manual_seed(0)
    train, dev = _sentences(30, 1), _sentences(6, 2)
    parser = Parser.build(_small_config(), train)
    opts = TrainOptions(epochs=2, lr=1e-2, batch_tokens=300, patience=100, seed=0, precision=asked)
    result = train_parser(parser, train, dev, opts, tmp_path / "m", progress=False)
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in result.history)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["training"]["precision"] == used
    assert all(p.dtype == torch.float32 for p in parser.model.parameters())  # weights stay float32


def test_cli_precision_option(tmp_path):
    runner = CliRunner()
    write_treebank(tmp_path / "data", n_train=30, n_dev=6)
    model = tmp_path / "model"
    small = ["--hidden", "32", "--rel-hidden", "16", "--lstm-hidden", "32", "--lstm-layers", "1"]
    result = runner.invoke(
        app,
        [
            "train", "--treebank", "UD_Toy-Test", "--data-dir", str(tmp_path / "data"), "--output", str(model),
            "--epochs", "1", "--device", "cpu", "--no-progress", "--precision", "bfloat16", *small,
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "precision=bfloat16" in result.output
    test_file = tmp_path / "data" / "UD_Toy-Test" / "toy-ud-test.conllu"
    for precision in ("float32", "bfloat16"):
        result = runner.invoke(app, ["evaluate", "--model", str(model), "--input", str(test_file), "--json",
                                     "--device", "cpu", "--precision", precision])  # fmt: skip
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["words"] > 0
    result = runner.invoke(app, ["parse", "--model", str(model), "--precision", "half"], input="A dog.\n")
    assert result.exit_code != 0


def test_bilstm_falls_back_to_float32_without_a_bfloat16_lstm_kernel(monkeypatch):
    from unnparse.parser import encoders

    torch.manual_seed(0)
    lstm = encoders.PaddedBiLSTM(6, 5, layers=2, dropout=0.0).eval()
    x, lengths = torch.randn(3, 7, 6), torch.tensor([7, 4, 1])
    exact = lstm(x, lengths)
    monkeypatch.setattr(encoders, "lstm_bfloat16_supported", lambda _device_type: False)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lstm(x.to(torch.bfloat16), lengths)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, exact, atol=0.02, rtol=0)  # the input was rounded to bfloat16


def test_lstm_bfloat16_probe_matches_what_the_kernel_does():
    assert lstm_bfloat16_supported("cuda") is True
    lstm = torch.nn.LSTM(3, 3, batch_first=True)
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(2, 3, 3))
        works = True
    except RuntimeError:
        works = False
    if not works:  # a forward that fails means the probe must say no (it also tries the backward)
        assert lstm_bfloat16_supported("cpu") is False


def test_int8_parsing_uses_a_quantized_copy_close_to_float32(tmp_path):
    parser, dev = _trained(tmp_path)
    exact = list(parser.predict(dev, marginals=True))
    parser.precision = "int8"
    network = parser.network()
    kinds = {type(m).__module__ + "." + type(m).__name__ for m in network.modules()}
    assert "torch.ao.nn.quantized.dynamic.modules.rnn.LSTM" in kinds
    assert "torch.ao.nn.quantized.dynamic.modules.linear.Linear" in kinds
    assert not any(isinstance(m, (torch.nn.LSTM, torch.nn.Linear)) for m in network.modules())  # all of them
    assert parser.network() is network  # made once
    assert any(isinstance(m, torch.nn.LSTM) for m in parser.model.modules())  # the model itself is untouched
    quantized = list(parser.predict(dev, marginals=True))
    for e, q in zip(exact, quantized, strict=True):
        torch.testing.assert_close(torch.tensor(q.marginals), torch.tensor(e.marginals), atol=0.15, rtol=0)
    heads_e = [h for p in exact for h in p.sentence.heads]
    heads_q = [h for p in quantized for h in p.sentence.heads]
    assert sum(a == b for a, b in zip(heads_e, heads_q, strict=True)) >= 0.9 * len(heads_e)
    parser.precision = "float32"
    assert parser.network() is parser.model
    assert [p.sentence.to_conllu() for p in parser.predict(dev)] == [p.sentence.to_conllu() for p in exact]


def test_int8_is_for_parsing_on_the_cpu_only(tmp_path):
    with pytest.raises(ValueError, match="precision"):
        TrainOptions(precision="int8")
    model = torch.nn.Linear(2, 2, device="meta")
    with pytest.raises(ValueError, match="CPU only"):
        runtime.quantize_int8(model)
    assert resolve_precision("int8", CPU) is None


def test_an_ensemble_parses_in_int8_with_every_member_quantized(tmp_path):
    from unnparse.parser.ensemble import ParserEnsemble

    parser, dev = _trained(tmp_path)
    other = Parser.build(_small_config(), _sentences(60, 1))
    other.featurizer = parser.featurizer
    ensemble = ParserEnsemble([parser, other], {"treebank": None}, precision="int8")
    assert [m.precision for m in ensemble.members] == ["int8", "int8"]
    assert len(list(ensemble.predict(dev))) == len(dev)
    assert all(m._int8 is not None for m in ensemble.members)
    ensemble.precision = "float32"
    assert [m.precision for m in ensemble.members] == ["float32", "float32"]
