"""``--recipe paper`` and its parts: Jacobi sweeps, no head bias, V ~ N(0, 0.01²), no dropout on X, the tree loss
alone training the UNN and encoder, selection by UAS; and that each part does what it says."""

from __future__ import annotations

import io
import json

import torch
from typer.testing import CliRunner

from tests.parser_fixtures import conllu_text, write_treebank
from unnparse.cli.parser_app import app
from unnparse.conllu import read_conllu
from unnparse.engine import FixedOrder, GroupedOrder
from unnparse.parser.parser import Parser, default_config

runner = CliRunner()
SMALL = dict(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1)
PAPER = dict(update_order="jacobi", head_bias=False, arc_init="normal", x_dropout=False, rel_detach=True)


def _sentences(n: int, seed: int):
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _build(**options) -> Parser:
    torch.manual_seed(0)
    return Parser.build(default_config(**SMALL, **options), _sentences(20, 1))


def test_the_papers_network_has_its_parts():
    paper, ours = _build(**PAPER).model, _build().model
    assert "head_bias" not in paper.unn.factor_names and "head_bias" in ours.unn.factor_names
    assert isinstance(paper.schedule, GroupedOrder) and isinstance(ours.schedule, FixedOrder)
    assert paper.x_dropout.p == 0.0 and ours.x_dropout.p > 0
    v = paper.unn.factor("arc").weight
    assert 0.005 < float(v.detach().std()) < 0.015 and float(ours.unn.factor("arc").weight.detach().abs().sum()) == 0.0


def test_jacobi_sweeps_equal_sequential_ones_for_k1_and_differ_after():
    """With Y starting at 0, the first sweep's H and M read X alone: one sweep is the same either way."""
    jacobi = _build(update_order="jacobi", unn_iter=2)
    sequential = _build(unn_iter=2)
    sequential.model.load_state_dict(jacobi.model.state_dict())
    sentences = _sentences(4, 3)
    batch = jacobi.featurizer.batch(sentences, list(range(4)), gold=False)
    jacobi.model.eval(), sequential.model.eval()
    with torch.no_grad():
        torch.nn.init.normal_(jacobi.model.unn.factor("arc").weight, std=0.5)  # Y messages that matter
        sequential.model.load_state_dict(jacobi.model.state_dict())
        one = [m(batch, iterations=1).scores for m in (jacobi.model, sequential.model)]
        two = [m(batch, iterations=2).scores for m in (jacobi.model, sequential.model)]
    torch.testing.assert_close(one[0], one[1])
    assert not torch.allclose(two[0], two[1])


def _encoder_grad(parser: Parser, which: str) -> float:
    """The size of the gradient that the relation loss alone gives the parameters of module ``which``."""
    with torch.no_grad():
        torch.nn.init.normal_(parser.model.rel_weight)  # at 0 (its start) it would pass no gradient back anyway
    sentences = _sentences(4, 4)
    batch = parser.featurizer.batch(sentences, list(range(4)), gold=True)
    parser.model.train()
    parser.model.zero_grad()
    out = parser.model(batch)
    logits = parser.model.relation_logits(out, batch.heads)
    loss = torch.nn.functional.cross_entropy(logits[batch.word_mask], batch.rels[batch.word_mask])
    loss.backward()
    grads = [p.grad for p in getattr(parser.model, which).parameters() if p.grad is not None]
    return float(sum(g.abs().sum() for g in grads))


def test_rel_detach_keeps_the_label_loss_out_of_the_unn_and_the_encoder():
    detached = _build(rel_detach=True, upos_loss=0.0, lemma_loss=0.0)
    assert _encoder_grad(detached, "encoder") == 0.0 and _encoder_grad(detached, "unn") == 0.0
    assert _encoder_grad(detached, "rel_head") > 0  # the classifier itself learns
    plain = _build(upos_loss=0.0, lemma_loss=0.0)
    assert _encoder_grad(plain, "encoder") > 0 and _encoder_grad(plain, "unn") > 0


def test_recipe_paper_on_the_command_line(tmp_path):
    tb = write_treebank(tmp_path, n_train=30, n_dev=6)
    common = ["train", "--train", str(next(tb.glob("*train*"))), "--dev", str(next(tb.glob("*dev*")))]
    run = ["--epochs", "1", "--tokenizer-steps", "0", "--no-progress", "--threads", "1", "--device", "cpu"]
    small = ["--rel-hidden", "8", "--lstm-hidden", "16", "--lstm-layers", "1"]
    out = tmp_path / "paper"
    result = runner.invoke(app, [*common, *run, *small, "--recipe", "paper", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "recipe=paper" in result.output
    config = json.loads((out / "config.json").read_text())
    model, training = config["model"], config["training"]
    assert {k: model[k] for k in PAPER} == PAPER
    assert (model["hidden"], model["dropout"], model["upos_loss"]) == (400, 0.3, 0.0)
    assert (training["beta2"], training["clip"], training["select_by"]) == (0.999, 1.0, "uas")
    assert training["patience"] == 1_000_000_000 and training["lr"] == 3e-3
    assert training["schedule"] == "decay"  # every epoch, the rate decaying to zero at the last (the default: plateau)
    # options given on the command line win over the recipe's
    out2 = tmp_path / "paper-small"
    given = ["--recipe", "paper", "--hidden", "32", "--head-bias", "--select-by", "las", "--output", str(out2)]
    result = runner.invoke(app, [*common, *run, *small, *given])
    assert result.exit_code == 0, result.output
    config = json.loads((out2 / "config.json").read_text())
    assert (config["model"]["hidden"], config["model"]["head_bias"]) == (32, True)
    assert config["model"]["update_order"] == "jacobi" and config["training"]["select_by"] == "las"
    # the default recipe changes nothing
    out3 = tmp_path / "default"
    result = runner.invoke(app, [*common, *run, *small, "--output", str(out3)])
    config = json.loads((out3 / "config.json").read_text())
    assert config["model"]["update_order"] == "sequential" and config["training"]["beta2"] == 0.9
    assert Parser.load(out).model.schedule.steps(0) == [("H", "M"), ("Y",)]  # loaded as trained


def test_damping_leaves_one_sweep_alone_and_changes_the_second():
    plain, damped = _build(unn_iter=2), _build(unn_iter=2, damping=0.5)
    damped.model.load_state_dict(plain.model.state_dict())
    batch = plain.featurizer.batch(_sentences(4, 5), list(range(4)), gold=False)
    plain.model.eval(), damped.model.eval()
    with torch.no_grad():
        torch.nn.init.normal_(plain.model.unn.factor("arc").weight, std=0.5)
        damped.model.load_state_dict(plain.model.state_dict())
        one = [m(batch, iterations=1).scores for m in (plain.model, damped.model)]
        two = [m(batch, iterations=2).heads_repr for m in (plain.model, damped.model)]
        first_h = plain.model(batch, iterations=1).heads_repr
    torch.testing.assert_close(one[0], one[1])
    # H after sweep 2 is halfway between sweep 1's H and the full update of sweep 2
    torch.testing.assert_close(two[1], 0.5 * two[0] + 0.5 * first_h)
