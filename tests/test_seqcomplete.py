"""Sequence completion with undirected attention: data, attention equivalence, clamping, save/load, CLI."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from unnparse.cli.seqcomplete_cli import app
from unnparse.engine import FixedOrder
from unnparse.model_files import ConfigValueError
from unnparse.seqcomplete.data import (
    DataSpec,
    SeqDataError,
    generate,
    load_dataset,
    make_batch,
    max_masked,
    parse_sequence,
    save_dataset,
)
from unnparse.seqcomplete.model import SeqCompletionUNN, SeqConfig, sinusoidal_positions
from unnparse.seqcomplete.train import (
    TrainOptions,
    evaluate,
    learning_rate_factor,
    load_model,
    masked_loss,
    save_trained,
    train,
)
from unnparse.training.checkpoints import CHECKPOINT, CheckpointError, read_checkpoint, write_checkpoint

DT = torch.float64
TINY = DataSpec(vocab=12, min_length=4, max_length=6, mask_ratio=0.34)


def _batch(model: SeqCompletionUNN, texts: list[str]):
    """A padded batch from several texts (via :func:`parse_sequence`)."""
    parts = [parse_sequence(t, model.config.vocab) for t in texts]
    n = max(int(p.lengths[0]) for p in parts)
    tokens = torch.zeros(len(parts), n, dtype=torch.long)
    masked = torch.zeros(len(parts), n, dtype=torch.bool)
    for i, p in enumerate(parts):
        tokens[i, : p.tokens.shape[1]], masked[i, : p.tokens.shape[1]] = p.tokens[0], p.masked[0]
    return type(parts[0])(tokens, masked, torch.cat([p.lengths for p in parts]))


# ----------------------------------------------------------------------------- data
def test_paper_sized_data_counts():
    data = generate(DataSpec(vocab=64, min_length=8, max_length=24))
    assert len(data) == 785_142  # the paper's "around 706K train and 78K test"
    assert len(data.split("test")) == 78_514 and len(data.split("train")) == 706_628


def test_instances_are_runs_with_all_mask_combinations(tmp_path):
    data = generate(TINY)
    n_seq = 2 * sum(TINY.vocab - L + 1 for L in range(4, 7))
    assert len(data.lengths) == n_seq
    expected = sum(
        2 * (TINY.vocab - L + 1) * sum(math.comb(L, m) for m in range(1, max_masked(L, 0.34) + 1)) for L in range(4, 7)
    )
    assert len(data) == expected
    batch = make_batch(data, torch.arange(len(data)))
    valid = batch.valid
    steps = (batch.tokens[:, 1:] - batch.tokens[:, :-1])[valid[:, 1:]]
    assert set(steps.abs().tolist()) == {1}
    n_masked = batch.masked.sum(1)
    assert (n_masked >= 1).all() and not (batch.masked & ~valid).any()
    assert len({(int(s), int(m)) for s, m in zip(data.sequence, data.mask, strict=True)}) == len(data)
    save_dataset(tmp_path / "d.npz", data)
    again = load_dataset(tmp_path / "d.npz")
    assert again.spec == TINY and torch.equal(again.mask, data.mask) and torch.equal(again.test, data.test)


def test_data_file_errors(tmp_path):
    with pytest.raises(SeqDataError, match="missing"):
        load_dataset(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(SeqDataError, match="bad.npz: not a sequence-completion data file"):
        load_dataset(tmp_path / "bad.npz")
    with pytest.raises(SeqDataError, match="bad token"):
        parse_sequence("1 2 x", 12)
    with pytest.raises(SeqDataError, match="bad token"):
        parse_sequence("1 2 13", 12)


# ----------------------------------------------------------------------------- model
def test_k1_zero_init_is_scaled_dot_product_attention():
    d = 8
    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=d)).to(DT)
    batch = _batch(model, ["1 2 3 _ 5", "7 _ 9"])
    out = model.infer(batch, sweeps=1, schedule=FixedOrder(["V", "Q", "K", "S", "H"]))
    x = model.initial_states(batch)["X"] + sinusoidal_positions(5, d).to(DT)
    wq, wk, wv = (f.weight for f in model.unn.factors[:3])
    q, k, v = (x @ w.T for w in (wq, wk, wv))
    keys = batch.valid[:, None, :].expand(2, 5, 5)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=keys)
    valid = batch.valid
    torch.testing.assert_close(out.states["H"][valid], ref[valid], atol=1e-10, rtol=0)
    assert (out.states["S"][1, :, 3:] == 0).all() and (out.states["S"][1, 3:] == 0).all()


def test_only_masked_rows_of_x_change_and_padding_is_inert():
    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=8, unn_iter=2)).to(DT)
    batch = _batch(model, ["1 2 _ 4 5 6", "9 _ 7"])
    x0 = model.initial_states(batch)["X"]
    out = model.infer(batch)
    changed = (out.states["X"] - x0).abs().sum(-1) > 0
    assert torch.equal(changed, batch.masked)
    # the prediction for the short sequence does not depend on padding tokens
    alone = model(_batch(model, ["9 _ 7"]))
    torch.testing.assert_close(model(batch)[1, :3], alone[0], atol=1e-10, rtol=0)


def test_random_order_is_reproducible_and_random_iter_evaluates_with_3_sweeps():
    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=8, order="random", random_iter=True, seed=3)).to(DT)
    assert model.config.eval_iter == 3
    batch = _batch(model, ["1 2 _ 4 5 6"])
    torch.testing.assert_close(model(batch), model(batch), atol=0, rtol=0)
    assert len([s for s in model.infer(batch, trace=True).trace if s.variable == "X"]) == 3


# ----------------------------------------------------------------------------- training, files, CLI
def test_masked_loss_counts_the_masked_positions_only():
    data = generate(TINY)
    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=8)).double()
    batch = make_batch(data, data.split("train")[:40])
    logits = model(batch)[batch.masked]
    gold = batch.tokens[batch.masked] - 1
    total, correct, n = masked_loss(model, batch, reduction="sum")
    torch.testing.assert_close(total, F.cross_entropy(logits, gold, reduction="sum"))
    mean = masked_loss(model, batch)[0]
    torch.testing.assert_close(mean, F.cross_entropy(logits, gold))
    assert int(n) == len(gold) and int(correct) == int((logits.argmax(-1) == gold).sum())
    with pytest.raises(ValueError, match="reduction"):
        masked_loss(model, batch, reduction="none")


def test_train_save_load_same_predictions(tmp_path):
    data = generate(TINY)
    options = TrainOptions(epochs=2, lr=3e-3, batch_size=32, device="cpu", progress=False, eval_each_epoch=True)
    result = train(SeqConfig(vocab=12, dim=16, unn_iter=1), data, options)
    assert result.history[-1].test_accuracy is not None
    assert result.history[-1].loss < result.history[0].loss
    save_trained(tmp_path / "model", result, options)
    loaded = load_model(tmp_path / "model")
    batch = make_batch(data, data.split("test"))
    torch.testing.assert_close(loaded(batch), result.model(batch), atol=0, rtol=0)
    score = evaluate(loaded, data, data.split("test"))
    assert score.instances == len(data.split("test")) and 0 <= score.accuracy <= 100


def test_learning_curve_by_updates_and_time_budget():
    data = generate(TINY)
    n_batches = -(-len(data.split("train")) // 32)
    options = TrainOptions(epochs=2, lr=3e-3, batch_size=32, device="cpu", progress=False, eval_every=5)
    result = train(SeqConfig(vocab=12, dim=8, unn_iter=1), data, options)
    assert [c.updates for c in result.curve] == list(range(5, 2 * n_batches + 1, 5))
    seconds = [c.seconds for c in result.curve]
    assert seconds == sorted(seconds) and seconds[-1] <= sum(h.seconds for h in result.history) + 1e-6
    final = evaluate(result.model, data, data.split("test")).accuracy
    if (2 * n_batches) % 5 == 0:
        assert result.curve[-1].test_accuracy == final
    # a budget of zero minutes stops after the first update
    stopped = train(
        SeqConfig(vocab=12, dim=8), data, TrainOptions(epochs=3, device="cpu", progress=False, max_minutes=0)
    )
    assert len(stopped.history) == 1


def _resume_setup(tmp_path, **overrides):
    """Data, a config with random orders and sweep counts (the order generator matters), options of 2 epochs."""
    data = generate(TINY)
    config = SeqConfig(vocab=12, dim=8, order="random", random_iter=True)
    settings = {"epochs": 2, "lr": 3e-3, "batch_size": 32, "device": "cpu", "progress": False, "eval_every": 3}
    return data, config, TrainOptions(**{**settings, **overrides}), tmp_path / CHECKPOINT


@pytest.mark.parametrize(
    ("cut", "schedule"), [("mid-epoch", "constant"), ("epoch-end", "constant"), ("mid-epoch", "linear")]
)
def test_resume_continues_exactly_as_the_uninterrupted_run(tmp_path, cut, schedule):
    data, config, options, ckpt = _resume_setup(tmp_path, checkpoint_every=2, lr_schedule=schedule, warmup=3)
    n_batches = -(-len(data.split("train")) // 32)
    whole = train(config, data, options)
    stop_at = n_batches + 2 if cut == "mid-epoch" else n_batches  # updates before the interruption
    if schedule == "linear":  # a smaller --max-updates would move the end of the decay: interrupt, as Ctrl-C does
        batches = []

        def interrupt(index):
            batches.append(index)
            if len(batches) > stop_at:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train(config, data, options, checkpoint=ckpt, on_batch=interrupt)
        assert read_checkpoint(ckpt)[1]["position"]["updates"] in (stop_at - 1, stop_at)
    else:
        first = train(config, data, TrainOptions(**{**options.__dict__, "max_updates": stop_at}), checkpoint=ckpt)
        assert ckpt.is_file() and sum(h.complete for h in first.history) == stop_at // n_batches
    resumed = train(config, data, options, checkpoint=ckpt, resume=True)
    torch.testing.assert_close(resumed.model.state_dict(), whole.model.state_dict(), atol=0, rtol=0)
    assert [c.updates for c in resumed.curve] == [c.updates for c in whole.curve]
    assert [c.test_accuracy for c in resumed.curve] == [c.test_accuracy for c in whole.curve]
    assert [(h.epoch, h.loss, h.complete) for h in resumed.history] == [(h.epoch, h.loss, True) for h in whole.history]
    if schedule == "linear":
        return  # more epochs move the end of the decay: no longer the run asked for from the start
    # a finished run is extended by more epochs as if they had been asked for from the start
    longer = TrainOptions(**{**options.__dict__, "epochs": 3})
    extended = train(config, data, longer, checkpoint=ckpt, resume=True)
    torch.testing.assert_close(extended.model.state_dict(), train(config, data, longer).model.state_dict())
    assert len(extended.history) == 3


def test_resume_refuses_other_settings_and_damaged_checkpoints(tmp_path):
    data, config, options, ckpt = _resume_setup(tmp_path, epochs=1)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        train(config, data, options, checkpoint=ckpt, resume=True)
    train(config, data, options, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match=r"checkpoint.pt: the interrupted run had dim 8, not 16"):
        train(
            SeqConfig(vocab=12, dim=16, order="random", random_iter=True), data, options, checkpoint=ckpt, resume=True
        )
    other = TrainOptions(**{**options.__dict__, "batch_size": 16})
    with pytest.raises(CheckpointError, match="had batch_size 32, not 16"):
        train(config, data, other, checkpoint=ckpt, resume=True)
    bigger = generate(DataSpec(vocab=12, min_length=4, max_length=7, mask_ratio=0.34))
    with pytest.raises(CheckpointError, match="had data max_length 6, not 7"):
        train(config, bigger, options, checkpoint=ckpt, resume=True)
    write_checkpoint(ckpt, {}, {"signature": {"kind": "mnist"}})
    with pytest.raises(CheckpointError, match="a checkpoint of `unn mnist train`, not `unn seqcomplete train`"):
        train(config, data, options, checkpoint=ckpt, resume=True)
    write_checkpoint(ckpt, {}, {"signature": {"kind": "parser"}})
    with pytest.raises(CheckpointError, match="a checkpoint of `unnparse train`, not `unn seqcomplete train`"):
        train(config, data, options, checkpoint=ckpt, resume=True)
    write_checkpoint(ckpt, {}, {"history": []})  # like the parser's before it recorded its settings
    with pytest.raises(CheckpointError, match="without the settings of its run .* --overwrite"):
        train(config, data, options, checkpoint=ckpt, resume=True)
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="corrupt checkpoint"):
        train(config, data, options, checkpoint=ckpt, resume=True)


def test_resume_takes_the_new_learning_rate_and_init_state_the_given_weights(tmp_path):
    data, config, options, ckpt = _resume_setup(tmp_path, epochs=1)
    trained = train(config, data, options, checkpoint=ckpt)
    frozen = TrainOptions(**{**options.__dict__, "epochs": 2, "lr": 0.0})
    resumed = train(config, data, frozen, checkpoint=ckpt, resume=True)  # a second epoch at learning rate 0
    torch.testing.assert_close(resumed.model.state_dict(), trained.model.state_dict(), atol=0, rtol=0)
    started = train(
        config, data, TrainOptions(**{**options.__dict__, "lr": 0.0}), init_state=trained.model.state_dict()
    )
    torch.testing.assert_close(started.model.state_dict(), trained.model.state_dict(), atol=0, rtol=0)
    fresh = train(config, data, TrainOptions(**{**options.__dict__, "lr": 0.0}))
    assert not torch.equal(fresh.model.embedding.weight, trained.model.embedding.weight)


def test_learning_rate_schedules():
    assert [learning_rate_factor(u, 10) for u in (0, 5, 9, 12)] == [1.0] * 4
    assert [learning_rate_factor(u, 6, warmup=4) for u in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    linear = [learning_rate_factor(u, 6, "linear", warmup=2) for u in range(7)]
    assert linear == [0.5, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0]  # the 6th and last update still learns
    assert [learning_rate_factor(u, 4, "linear") for u in range(4)] == [1.0, 0.75, 0.5, 0.25]
    with pytest.raises(ValueError, match="one of constant, linear"):
        learning_rate_factor(0, 4, "cosine")


def test_linear_schedule_ends_at_the_update_budget_and_the_epochs(tmp_path):
    data, config, options, ckpt = _resume_setup(tmp_path, lr_schedule="linear", epochs=2)
    n_batches = -(-len(data.split("train")) // 32)
    for budget, planned in [(5, 5), (None, 2 * n_batches)]:
        train(config, data, TrainOptions(**{**options.__dict__, "max_updates": budget}), checkpoint=ckpt)
        state, meta = read_checkpoint(ckpt)
        assert meta["position"]["updates"] == planned
        # the rate of the last update: one step of the decay above zero
        assert state["optimizer"]["param_groups"][0]["lr"] == pytest.approx(options.lr / planned)
    constant = train(config, data, TrainOptions(**{**options.__dict__, "lr_schedule": "constant"}))
    decayed = train(config, data, options)
    assert not torch.equal(constant.model.embedding.weight, decayed.model.embedding.weight)


def _png_size(path) -> tuple[int, int]:
    """Decode the PNG file ``path`` whole and return its (width, height)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


def test_attention_figure_labels_queries_and_keys_with_the_tokens(tmp_path):
    from matplotlib.text import Text

    from unnparse.seqcomplete.attention_plot import (
        TITLE,
        attention_figure,
        attention_maps,
        figure_size,
        write_attention,
    )

    torch.manual_seed(0)
    model = SeqCompletionUNN(SeqConfig(vocab=12, dim=8, unn_iter=2, order="fb"))
    batch = parse_sequence("3 4 _ 6", 12)
    maps = attention_maps(model, batch)
    assert [title for title, _ in maps] == ["t=1 f", "t=1 b", "t=2 f", "t=2 b"]
    figure = attention_figure(maps, ["3", "4", "_", "6"])
    *panels, bar = figure.axes
    assert [axes.get_title() for axes in panels] == ["t=1 f", "t=1 b", "t=2 f", "t=2 b"]
    for p, axes in enumerate(panels):  # S[i, j]: row i the query, column j the key
        assert [label.get_text() for label in axes.get_xticklabels()] == ["3", "4", "_", "6"]
        if p == 0:  # the query labels on the first map of a row; the others share its rows
            assert [label.get_text() for label in axes.get_yticklabels()] == ["3", "4", "_", "6"]
        assert list(axes.get_yticks()) == [0, 1, 2, 3]
        assert axes.get_xlabel() == "key" and axes.get_ylabel() == ("query" if p == 0 else "")
        assert torch.equal(torch.from_numpy(axes.images[0].get_array().data), maps[p][1])
    assert bar.get_ylabel() == "weight" and TITLE in [text.get_text() for text in figure.findobj(Text)]
    assert (figure.bbox.width, figure.bbox.height) == figure_size(4, 4, 1)
    # written through the command's function: the same picture, one PNG of that size, nothing left behind
    png = tmp_path / "att.png"
    write_attention(model, batch, png)
    assert _png_size(png) == figure_size(4, 4, 1) and not list(tmp_path.glob(".*.tmp"))


def test_the_commands_load_matplotlib_only_to_draw():
    import subprocess
    import sys

    code = (
        "import sys, unnparse.cli.unn_app, unnparse.mnist.prototypes, unnparse.seqcomplete.attention_plot;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'PIL')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "[]"


def test_attention_tick_labels_are_thinned_where_they_cannot_fit():
    from unnparse.seqcomplete.attention_plot import CELL, attention_figure, cell_size

    n = 200
    labels = [str(1 + i % 12) if i % 3 else "_" for i in range(n)]
    cell = cell_size(n, 1)
    assert cell < CELL
    figure = attention_figure([("t=1", torch.full((n, n), 1 / n))], labels)
    axes = figure.axes[0]
    rows = [label.get_text() for label in axes.get_yticklabels()]
    columns = [label.get_text() for label in axes.get_xticklabels()]
    every = round(axes.get_yticks()[1] - axes.get_yticks()[0])
    assert 1 < every and rows == labels[::every] and 1 < len(columns) < n
    assert columns == [labels[int(j)] for j in axes.get_xticks()]


def test_cli_generate_train_evaluate_complete_attention(tmp_path):
    runner = CliRunner()
    data, model = tmp_path / "seq.npz", tmp_path / "model"
    result = runner.invoke(
        app, ["generate", "--output", str(data), "--vocab", "12", "--min-length", "4", "--max-length", "6"]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["train", "--data", str(data), "--output", str(model), "--dim", "16", "--epochs", "1", "--order", "random",
         "--random-iter", "--lr", "1e-3", "--lr-schedule", "linear", "--warmup", "2", "--device", "cpu",
         "--no-progress", "--report-test"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "test acc" in result.stderr
    training = json.loads((model / "config.json").read_text())["training"]
    assert (training["lr_schedule"], training["warmup"]) == ("linear", 2)
    result = runner.invoke(app, ["evaluate", "--model", str(model), "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0 <= report["accuracy"] <= 100 and report["unn_iter"] == 3
    result = runner.invoke(app, ["complete", "--model", str(model), "--sequence", "3 4 _ 6 7"])
    assert result.exit_code == 0, result.output
    filled = result.stdout.split()
    assert len(filled) == 5 and filled[:2] == ["3", "4"] and filled[3:] == ["6", "7"] and filled[2] != "_"
    png = tmp_path / "att.png"
    result = runner.invoke(
        app, ["attention", "--model", str(model), "--sequence", "3 4 _ 6", "--output", str(png), "--unn-iter", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "2 attention maps" in result.stdout  # random order: one S update per sweep
    width, height = _png_size(png)
    assert width > 2 * 4 * 20 and height > 4 * 20


def test_cli_errors_are_one_line(tmp_path):
    runner = CliRunner()
    data = generate(TINY)
    options = TrainOptions(epochs=1, device="cpu", progress=False)
    save_trained(tmp_path / "model", train(SeqConfig(vocab=12, dim=8), data, options), options)
    (tmp_path / "model" / "config.json").write_text("{not json")
    result = runner.invoke(app, ["complete", "--model", str(tmp_path / "model"), "--sequence", "1 _ 3"])
    assert result.exit_code == 1 and "config.json" in result.stderr and result.stderr.count("\n") == 1
    result = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "x.npz")])
    assert result.exit_code == 1 and result.stderr.startswith("error: ")
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "x.npz"), "--output", str(tmp_path / "m")])
    assert result.exit_code == 1 and "x.npz: missing" in result.stderr
    result = runner.invoke(app, ["generate", "--output", str(tmp_path / "g.npz"), "--min-length", "30"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["train", "--data", str(tmp_path), "--output", str(tmp_path / "m")])
    assert result.exit_code == 1 and "is a directory" in result.stderr
    result = runner.invoke(app, ["generate", "--output", str(tmp_path)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "is a directory" in result.stderr
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    save_dataset(tmp_path / "d.npz", data)
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "d.npz"), "--output", str(a_file)])
    assert result.exit_code == 1 and "exists and is not a directory" in result.stderr
    result = runner.invoke(
        app, ["attention", "--model", str(tmp_path / "model"), "--sequence", "1 _", "--output", str(a_file / "x.png")]
    )
    assert result.exit_code == 1 and "not a directory" in result.stderr and a_file.read_text() == "x"


def test_cli_resume_and_init_from(tmp_path, monkeypatch):
    runner = CliRunner()
    data, model = tmp_path / "seq.npz", tmp_path / "model"
    save_dataset(data, generate(TINY))
    common = ["--data", str(data), "--dim", "8", "--device", "cpu", "--no-progress", "--lr", "3e-3"]
    calls = []

    def interrupt_fourth(*args, **kwargs):  # Ctrl-C while the fourth batch is being made
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return make_batch(*args, **kwargs)

    monkeypatch.setattr("unnparse.seqcomplete.train.make_batch", interrupt_fourth)
    result = runner.invoke(app, ["train", *common, "--output", str(model), "--epochs", "2", "--checkpoint-every", "1"])
    assert result.exit_code == 130 and "run the same command with --resume" in result.stderr
    monkeypatch.undo()
    restart = ["train", *common, "--output", str(model), "--epochs", "2", "--max-updates", "3"]
    result = runner.invoke(app, restart)  # the interrupted run's checkpoint is not replaced by accident
    assert result.exit_code == 1 and "holds a training checkpoint" in result.stderr and "--overwrite" in result.stderr
    result = runner.invoke(app, [*restart, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "stopped after 3 updates" in result.stderr and (model / CHECKPOINT).is_file()
    result = runner.invoke(app, ["train", *common, "--output", str(model), "--epochs", "2", "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.stderr and "3 updates done" in result.stderr
    history = json.loads((model / "config.json").read_text())["training"]["history"]
    assert [h["epoch"] for h in history] == [1, 2] and all(h["complete"] for h in history)
    result = runner.invoke(app, ["train", *common, "--output", str(tmp_path / "new"), "--resume"])
    assert result.exit_code == 1 and "no checkpoint to resume from" in result.stderr
    assert result.stderr.count("\n") == 1
    result = runner.invoke(
        app, ["train", *common[:2], *common[4:], "--output", str(tmp_path / "ft"), "--init-from", str(model)]
    )
    assert result.exit_code == 0, result.output  # the dimension comes from the model
    assert load_model(tmp_path / "ft").config.dim == 8
    result = runner.invoke(
        app, ["train", *common, "--output", str(tmp_path / "ft"), "--init-from", str(model), "--resume"]
    )
    assert result.exit_code == 2
    wrong = ["train", "--data", str(data), "--dim", "16", "--output", str(tmp_path / "x"), "--init-from", str(model)]
    result = runner.invoke(app, wrong)
    assert result.exit_code == 1 and "has dim 8, not 16" in result.stderr


def test_settings_out_of_range_name_the_setting(tmp_path):
    with pytest.raises(ConfigValueError, match=r"^epochs must be an integer in \[1, 1000000\], not 0$"):
        TrainOptions(epochs=0)
    with pytest.raises(ConfigValueError, match="lr_schedule must be one of constant, linear"):
        TrainOptions(lr_schedule="cosine")
    with pytest.raises(ConfigValueError, match="max_minutes"):
        TrainOptions(max_minutes=float("nan"))
    with pytest.raises(ConfigValueError, match=r"^vocab must be an integer"):
        DataSpec(vocab=0)
    with pytest.raises(ConfigValueError, match=r"^test_fraction must be a number in \[0, 1\), not 1.0$"):
        DataSpec(test_fraction=1.0)
    with pytest.raises(ValueError, match=r"mask ratio must be in \(0, 1\]"):  # the open low end: __post_init__'s
        DataSpec(mask_ratio=0.0)
    runner = CliRunner()
    output = tmp_path / "m"
    # checked before the data is read or OUTPUT claimed
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "x.npz"), "--output", str(output), "--warmup", "-1"])
    assert result.exit_code == 2 and "--warmup" in _unboxed(result.stderr) and not output.exists()
    result = runner.invoke(app, ["train", "--data", str(tmp_path / "x.npz"), "--output", str(output), "--dim", "7"])
    assert result.exit_code == 2 and "even dim" in _unboxed(result.stderr) and not output.exists()
    result = runner.invoke(app, ["generate", "--output", str(tmp_path / "g.npz"), "--test-fraction", "1.0"])
    assert result.exit_code == 2 and "test_fraction must be" in _unboxed(result.stderr)


def _unboxed(text: str) -> str:
    """A usage error's text without the box rich draws around it, on one line."""
    return " ".join(text.replace("│", " ").split())
