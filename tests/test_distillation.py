"""Structured distillation: the teacher's targets, the loss against brute force and autograd, training a student
from a parser or an ensemble, unlabelled text, and the errors."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from tests.parser_fixtures import conllu_text, write_treebank
from unnparse.cli.parser_app import app
from unnparse.conllu import Sentence, read_conllu
from unnparse.parser import load
from unnparse.parser.distillation import (
    DistillationError,
    TeacherTargets,
    label_map,
    pad_targets,
    teacher_labelled,
    teacher_targets,
)
from unnparse.parser.ensemble import ParserEnsemble
from unnparse.parser.features import Batch
from unnparse.parser.model import ParserOutput
from unnparse.parser.parser import Parser, default_config
from unnparse.parser.training import ParserTask, TrainOptions, train_parser
from unnparse.parser.vocab import Vocab
from unnparse.structures import arc_marginals
from unnparse.structures.brute_force import enumerate_trees
from unnparse.training.distributed import DistContext

runner = CliRunner()


def _sentences(n: int, seed: int) -> list[Sentence]:
    return read_conllu(io.StringIO(conllu_text(n, seed)), name="toy")


def _train(path, seed: int, char_encoder: str = "cnn", **kwargs) -> Parser:
    torch.manual_seed(seed)
    train, dev = _sentences(60, 1), _sentences(10, 2)
    config = default_config(hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=1, char_encoder=char_encoder)
    parser = Parser.build(config, train)
    opts = TrainOptions(epochs=3, lr=1e-2, batch_tokens=300, patience=100, seed=seed, **kwargs)
    train_parser(parser, train, dev, opts, path, progress=False)
    return Parser.load(path)


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    root = tmp_path_factory.mktemp("teachers")
    return root, _train(root / "a", 1), _train(root / "b", 2, "lstm")


# ---------------------------------------------------------------- the loss


def _toy_output(scores: torch.Tensor, lengths: torch.Tensor) -> tuple[ParserOutput, Batch]:
    log_z, marg = arc_marginals(scores, lengths, True)
    out = ParserOutput(scores=scores, log_partition=log_z, marginals=marg, heads_repr=None, mods_repr=None)  # type: ignore[arg-type]
    batch = Batch(indices=list(range(len(lengths))), forms=[], lengths=lengths)
    return out, batch


def test_the_arc_loss_is_the_expected_tree_log_likelihood_by_brute_force():
    """log Z − Σ μ_T s equals E_{tree ~ teacher}[−log p_student(tree)], enumerating every tree."""
    torch.manual_seed(0)
    n = 4
    lengths = torch.tensor([n])
    student = torch.randn(1, n + 1, n + 1, dtype=torch.float64)
    teacher = torch.randn(1, n + 1, n + 1, dtype=torch.float64) * 2
    _, mu_teacher = arc_marginals(teacher, lengths, True)
    out, batch = _toy_output(student, lengths)
    mask = batch.word_mask.unsqueeze(1).double()
    loss = float(out.log_partition[0] - (mu_teacher * student * mask).sum())  # what ParserModel.loss computes

    trees = enumerate_trees(n, True)
    cols = np.arange(1, n + 1)
    s_scores = student[0].numpy()[trees[:, 1:], cols].sum(1)
    t_scores = teacher[0].numpy()[trees[:, 1:], cols].sum(1)
    log_p_student = s_scores - np.logaddexp.reduce(s_scores)
    p_teacher = np.exp(t_scores - np.logaddexp.reduce(t_scores))
    assert loss == pytest.approx(float(-(p_teacher * log_p_student).sum()), abs=1e-9)


def _model_loss(parser: Parser, sentences, teacher, weight: float):
    batch = parser.featurizer.batch(sentences, list(range(len(sentences))), gold=True)
    parser.model.eval()  # no dropout: the same network for every call
    out = parser.model(batch)
    return out, batch, parser.model.loss(out, batch, teacher=teacher, teacher_weight=weight)


def test_a_one_hot_teacher_of_the_gold_tree_gives_the_gold_loss(teachers):
    _, a, _ = teachers
    sentences = _sentences(5, 7)
    batch = a.featurizer.batch(sentences, list(range(5)), gold=True)
    width = batch.max_words + 1
    arcs = torch.zeros(5, width, width)
    labels = torch.zeros(5, width, len(a.featurizer.rels))
    for b in range(5):
        for d in range(1, int(batch.lengths[b]) + 1):
            arcs[b, batch.heads[b, d], d] = 1.0
            labels[b, d, batch.rels[b, d]] = 1.0
    _, _, (gold_total, gold_arc, gold_rel) = _model_loss(a, sentences, None, 0.5)
    for weight in (0.3, 1.0):
        _, _, (total, arc, rel) = _model_loss(a, sentences, (arcs, labels), weight)
        torch.testing.assert_close(arc, gold_arc)
        torch.testing.assert_close(rel, gold_rel)
        torch.testing.assert_close(total, gold_total)


def test_the_arc_gradient_is_student_minus_teacher_marginals(teachers):
    """d/ds of the arc loss with weight 1 is μ_student − μ_teacher on the words' columns (autograd)."""
    _, a, _ = teachers
    sentences = _sentences(4, 8)
    batch = a.featurizer.batch(sentences, list(range(4)), gold=True)
    width = batch.max_words + 1
    torch.manual_seed(3)
    teacher_scores = torch.randn(4, width, width)
    mu_t = arc_marginals(teacher_scores, batch.lengths, True)[1].float()
    labels = torch.softmax(torch.randn(4, width, len(a.featurizer.rels)), -1)
    a.model.eval()
    out = a.model(batch)
    out.scores.retain_grad()
    total, _, _ = a.model.loss(out, batch, teacher=(mu_t, labels), teacher_weight=1.0)
    (total * batch.word_mask.sum()).backward()  # only the arc loss reads the scores
    mask = batch.word_mask.unsqueeze(1)
    expected = (out.marginals.detach() - mu_t) * mask
    torch.testing.assert_close(out.scores.grad * mask, expected.to(out.scores.grad.dtype), atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------- the targets


def test_a_parsers_targets_are_its_own_marginals_and_label_probabilities(teachers):
    _, a, _ = teachers
    sentences = _sentences(6, 9)
    targets = teacher_targets(a, sentences, a.featurizer.rels)
    batch = a.featurizer.batch(sentences, list(range(6)), gold=True)
    with torch.no_grad():
        out = a.model(batch)
        probs = torch.softmax(a.model.relation_logits(out, batch.heads), -1)
    probs[..., 0] = 0  # the unknown label is never a target
    probs = probs / probs.sum(-1, keepdim=True)
    for b, t in enumerate(targets):
        n1 = len(sentences[b]) + 1
        assert t.arcs.dtype == torch.float16 and t.arcs.shape == (n1, n1)
        torch.testing.assert_close(t.arcs.float(), out.marginals[b, :n1, :n1].float(), atol=1e-3, rtol=0)
        torch.testing.assert_close(t.arcs.float()[:, 1:].sum(0), torch.ones(n1 - 1), atol=3e-3, rtol=0)
        assert float(t.labels[0].abs().sum()) == 0.0  # ROOT has no arc
        torch.testing.assert_close(t.labels.float()[1:], probs[b, 1:n1], atol=1e-3, rtol=0)


def test_an_ensembles_targets_are_the_marginals_of_its_mean_scores(teachers):
    _, a, b = teachers
    sentences = _sentences(5, 10)
    twice = teacher_targets(ParserEnsemble([a, a], {}), sentences, a.featurizer.rels)
    for x, y in zip(twice, teacher_targets(a, sentences, a.featurizer.rels), strict=True):
        torch.testing.assert_close(x.arcs, y.arcs, atol=1e-3, rtol=0)
        torch.testing.assert_close(x.labels, y.labels, atol=1e-3, rtol=0)
    both = teacher_targets(ParserEnsemble([a, b], {}), sentences, a.featurizer.rels)
    batch = a.featurizer.batch(sentences, list(range(5)), gold=True)
    with torch.no_grad():
        outs = [m.model(m.featurizer.batch(sentences, list(range(5)), gold=False)) for m in (a, b)]
        mean = (outs[0].scores + outs[1].scores) / 2
        mu = arc_marginals(mean.float(), batch.lengths, True)[1]
        pairs = zip((a, b), outs, strict=True)
        probs = sum(torch.softmax(m.model.relation_logits(o, batch.heads), -1) for m, o in pairs) / 2
    probs[..., 0] = 0
    probs = probs / probs.sum(-1, keepdim=True)
    for i, t in enumerate(both):
        n1 = len(sentences[i]) + 1
        torch.testing.assert_close(t.arcs.float(), mu[i, :n1, :n1], atol=1e-3, rtol=0)
        torch.testing.assert_close(t.labels.float()[1:], probs[i, 1:n1], atol=1e-3, rtol=0)


def test_labels_are_mapped_by_name_and_a_teacher_without_common_labels_is_refused(teachers):
    _, a, _ = teachers
    itos = a.featurizer.rels.itos
    reordered = Vocab([itos[0], *reversed(itos[1:])])
    mapping = label_map(a, reordered)
    for i, name in enumerate(itos[1:], start=1):
        assert mapping[i, reordered.stoi[name]] == 1.0
    sentences = _sentences(3, 11)
    plain = teacher_targets(a, sentences, a.featurizer.rels)
    mapped = teacher_targets(a, sentences, reordered)
    for x, y in zip(plain, mapped, strict=True):
        for i, name in enumerate(itos[1:], start=1):
            torch.testing.assert_close(x.labels[:, i], y.labels[:, reordered.stoi[name]])
    with pytest.raises(DistillationError, match="share no relation label"):
        label_map(a, Vocab([itos[0], "nothing-alike"]))


def test_pad_targets():
    t1 = TeacherTargets(torch.ones(3, 3).half(), torch.full((3, 4), 0.25).half())
    t2 = TeacherTargets(torch.ones(2, 2).half(), torch.full((2, 4), 0.5).half())
    arcs, labels = pad_targets([t1, t2], 4)
    assert arcs.shape == (2, 4, 4) and labels.shape == (2, 4, 4)
    assert float(arcs[1].sum()) == 4.0 and float(arcs[1, 2:].sum()) == 0.0
    assert float(labels[1, 2:].sum()) == 0.0 and float(labels[0, :3].sum()) == 3.0


def test_teacher_labelled_text_gets_the_teachers_trees(teachers):
    _, a, _ = teachers
    words = [Sentence.from_words(s.split()) for s in ["the dog saw a cat .", "a man reads ."]]
    parsed = teacher_labelled(a, words, max_words=5)
    assert len(parsed) == 1  # the 6-word sentence is over max_words
    assert parsed[0].heads == [p.sentence.heads for p in a.predict(words[1:])][0]
    assert parsed[0].deprels is not None and len(parsed[0].deprels) == 4


# ---------------------------------------------------------------- training a student


def test_a_student_learns_from_an_ensemble_and_unlabelled_text(teachers, tmp_path):
    _, a, b = teachers
    train, dev = _sentences(60, 1), _sentences(10, 2)
    unlabeled = [Sentence.from_words(s.words) for s in _sentences(20, 12)]
    torch.manual_seed(5)
    config = default_config(hidden=32, rel_hidden=16, lstm_hidden=32, lstm_layers=1)
    student = Parser.build(config, train)
    opts = TrainOptions(epochs=3, lr=1e-2, batch_tokens=300, patience=100, seed=5, teacher_weight=0.7)
    seen: list[list[int]] = []
    result = train_parser(
        student,
        train,
        dev,
        opts,
        tmp_path / "student",
        progress=False,
        teacher=ParserEnsemble([a, b], {"kind": "parser-ensemble"}),
        unlabeled=unlabeled,
        on_batch=seen.append,
    )
    assert sorted(i for batch in seen[: len(seen) // 3] for i in batch) == list(range(80))  # 60 + 20 per epoch
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["training"]["teacher"] == {
        "kind": "parser-ensemble",
        "treebank": None,
        "unlabeled_sentences": 20,
    }
    assert config["training"]["teacher_weight"] == 0.7
    assert result.best_dev["uas"] > 40  # it learnt to parse (random trees: under 20)
    reloaded = load(tmp_path / "student")
    assert isinstance(reloaded, Parser)  # an ordinary model directory


def test_unlabelled_text_without_a_teacher_is_refused(tmp_path):
    train = _sentences(10, 1)
    parser = Parser.build(default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), train)
    with pytest.raises(ValueError, match="needs a teacher"):
        train_parser(parser, train, [], TrainOptions(epochs=1), tmp_path / "m", progress=False, unlabeled=train)


def test_the_task_refuses_misaligned_targets(teachers, tmp_path):
    _, a, _ = teachers
    train = _sentences(4, 1)
    targets = teacher_targets(a, train[:3], a.featurizer.rels)
    with pytest.raises(ValueError, match="3 teacher targets for 4"):
        ParserTask(a, train, [], TrainOptions(), tmp_path, dist=DistContext(), saved_options={}, targets=targets)


def test_distil_from_the_command_line(teachers, tmp_path):
    root, _, _ = teachers
    tb = write_treebank(tmp_path, n_train=40, n_dev=8)
    text = tmp_path / "more.txt"
    text.write_text("The dog saw a cat. A man reads the old book.\n", encoding="utf-8")
    out = tmp_path / "student"
    common = ["train", "--train", str(next(tb.glob("*train*"))), "--dev", str(next(tb.glob("*dev*")))]
    small = ["--hidden", "16", "--rel-hidden", "8", "--lstm-hidden", "16", "--lstm-layers", "1", "--epochs", "1"]
    result = runner.invoke(
        app,
        [*common, *small, "--output", str(out), "--teacher", str(root / "a"), "--unlabeled", str(text)]
        + ["--tokenizer-steps", "0", "--no-progress", "--threads", "1", "--device", "cpu"],
    )
    assert result.exit_code == 0, result.output
    assert "teacher: arc marginals and label probabilities of 42 training sentences" in result.output
    assert "(2 of them unlabelled text parsed by the teacher)" in result.output
    assert json.loads((out / "config.json").read_text())["training"]["teacher"]["unlabeled_sentences"] == 2

    result = runner.invoke(app, [*common, *small, "--output", str(tmp_path / "x"), "--unlabeled", str(text)])
    assert result.exit_code != 0
    assert "--unlabeled text is parsed by a teacher: give --teacher MODEL_DIR too" in result.output
    result = runner.invoke(
        app, [*common, *small, "--output", str(tmp_path / "y"), "--teacher", str(tmp_path / "missing")]
    )
    assert result.exit_code != 0 and "missing" in result.output and "Traceback" not in result.output


def test_a_distilled_run_resumes_only_with_the_same_teacher_targets(teachers, tmp_path):
    from unnparse.training.checkpoints import CheckpointError

    _, a, b = teachers
    train, dev = _sentences(30, 1), _sentences(6, 2)

    def run(teacher, epochs: int, resume: bool, weight: float = 0.5):
        torch.manual_seed(5)
        student = Parser.build(default_config(hidden=16, rel_hidden=8, lstm_hidden=16, lstm_layers=1), train)
        opts = TrainOptions(epochs=epochs, batch_tokens=300, patience=100, seed=5, teacher_weight=weight)
        return train_parser(student, train, dev, opts, tmp_path / "s", progress=False, resume=resume, teacher=teacher)

    run(a, 1, False)
    with pytest.raises(CheckpointError, match="teacher"):
        run(b, 2, True)  # another teacher: other targets
    with pytest.raises(CheckpointError, match="teacher"):
        run(a, 2, True, weight=0.9)
    resumed = run(a, 2, True)
    assert [r["epoch"] for r in resumed.history] == [1, 2]


def test_a_temperature_softens_the_targets_exactly(teachers):
    _, a, _ = teachers
    sentences = _sentences(4, 13)
    hot = teacher_targets(a, sentences, a.featurizer.rels, temperature=3.0)
    batch = a.featurizer.batch(sentences, list(range(4)), gold=True)
    with torch.no_grad():
        out = a.model(batch)
        mu = arc_marginals(out.scores.float() / 3.0, batch.lengths, True)[1]
        probs = torch.softmax(a.model.relation_logits(out, batch.heads) / 3.0, -1)
    probs[..., 0] = 0
    probs = probs / probs.sum(-1, keepdim=True)
    cold = teacher_targets(a, sentences, a.featurizer.rels)
    for i, (t, c) in enumerate(zip(hot, cold, strict=True)):
        n1 = len(sentences[i]) + 1
        torch.testing.assert_close(t.arcs.float(), mu[i, :n1, :n1], atol=1e-3, rtol=0)
        torch.testing.assert_close(t.labels.float()[1:], probs[i, 1:n1], atol=1e-3, rtol=0)
        assert float(t.arcs.float().max()) <= float(c.arcs.float().max()) + 1e-3  # softer
    with pytest.raises(DistillationError, match="temperature must be positive"):
        teacher_targets(a, sentences, a.featurizer.rels, temperature=0.0)
