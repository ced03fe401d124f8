"""The MNIST UNN: IDX files, feed-forward equivalence, generation order, untied baseline, save/load, CLI."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from unnparse.cli.mnist_cli import app
from unnparse.mnist.data import FILES, MnistDataError, download_mnist, load_mnist, read_idx, split_dev
from unnparse.mnist.model import MnistConfig, MnistUNN, count_parameters
from unnparse.mnist.prototypes import MAX_PIXELS, SCALE, TITLE, check_drawable, figure_size, prototype_figure
from unnparse.mnist.train import TrainOptions, load_model, save_trained, train
from unnparse.model_files import ConfigValueError, ModelFileError, weights_path
from unnparse.training.checkpoints import CHECKPOINT, CheckpointError

DT = torch.float64


def _write_idx(path: Path, array: torch.Tensor) -> None:
    header = bytes([0, 0, 8, array.dim()]) + struct.pack(f">{array.dim()}I", *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.to(torch.uint8).numpy().tobytes())


def _tiny_mnist(root: Path, n_train: int = 60, n_test: int = 20) -> Path:
    """Digits as bars at a class-dependent position, with noise: learnable in an epoch or two."""
    g = torch.Generator().manual_seed(0)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        labels = torch.arange(n) % 10
        images = torch.randint(0, 60, (n, 28, 28), generator=g)
        for i, c in enumerate(labels.tolist()):
            images[i, 4 + 2 * c : 6 + 2 * c, 4:24] = 255
        _write_idx(root / FILES[f"{split}_images"], images)
        _write_idx(root / FILES[f"{split}_labels"], labels)
    return root


def _randomize(model: torch.nn.Module, seed: int, scale: float = 0.1) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)


def _png_size(path: Path) -> tuple[int, int]:
    """Decode the PNG file ``path`` whole and return its (width, height)."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG"
        image.load()
        return image.size


# ----------------------------------------------------------------------------- data
def test_idx_round_trip_and_errors(tmp_path):
    root = _tiny_mnist(tmp_path / "mnist")
    data = load_mnist(root, download=False)
    assert data.train_images.shape == (60, 28, 28) and data.train_images.dtype == torch.uint8
    assert data.test_labels.tolist() == [i % 10 for i in range(20)]
    (root / FILES["test_images"]).write_bytes(b"not gzip at all")
    with pytest.raises(MnistDataError, match="t10k-images-idx3-ubyte.gz: not a readable gzip file"):
        load_mnist(root, download=False)
    _write_idx(root / FILES["test_images"], torch.zeros(19, 28, 28))
    with pytest.raises(MnistDataError, match="do not match"):
        load_mnist(root, download=False)
    with gzip.open(root / "short.gz", "wb") as fh:
        fh.write(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"abc")
    with pytest.raises(MnistDataError, match="announces 10 bytes"):
        read_idx(root / "short.gz")
    with pytest.raises(MnistDataError, match="downloading is off"):
        load_mnist(tmp_path / "empty", download=False)


def test_download_offline_is_one_clear_line(tmp_path):
    with pytest.raises(MnistDataError) as info:
        download_mnist(tmp_path, mirrors=["http://127.0.0.1:9/"])
    message = str(info.value)
    assert "\n" not in message and "could not be downloaded" in message and "offline" in message


def test_dev_split_is_seeded_and_disjoint():
    train_a, dev_a = split_dev(100, 10, seed=3)
    train_b, dev_b = split_dev(100, 10, seed=3)
    assert torch.equal(dev_a, dev_b) and len(dev_a) == 10 and len(train_a) == 90
    assert not set(dev_a.tolist()) & set(train_a.tolist())
    assert not torch.equal(split_dev(100, 10, seed=4)[1], dev_a)


# ----------------------------------------------------------------------------- model
def test_k1_fw_zero_init_is_a_plain_cnn():
    model = MnistUNN(MnistConfig(unn_iter=1, order="fw")).to(DT)
    _randomize(model, 0)
    x = torch.rand(3, 1, 28, 28, dtype=DT) * 2 - 1
    conv1, conv2, dense = model.unn.factors
    b = model.unn.biases
    h1 = torch.tanh(F.conv2d(x, conv1.weight, stride=2) + b["H1"])
    h2 = torch.tanh(F.conv2d(h1, conv2.weight, stride=2) + b["H2"])
    logits = h2.flatten(1) @ dense.weight.flatten(1).T + b["Y"]
    torch.testing.assert_close(model(x), logits, atol=1e-10, rtol=0)
    assert model.num_parameters() == count_parameters(model.config) == 50026  # Table 3, k = 1


def test_k2_fb_feeds_information_back():
    cfg = MnistConfig(unn_iter=2, order="fb")
    model = MnistUNN(cfg).to(DT)
    _randomize(model, 1)
    x = torch.rand(2, 1, 28, 28, dtype=DT) * 2 - 1
    one = MnistUNN(MnistConfig(unn_iter=1, order="fb")).to(DT)
    one.load_state_dict(model.state_dict())
    assert (model(x) - one(x)).abs().max() > 1e-4


def test_generation_runs_backward_from_y():
    model = MnistUNN(MnistConfig(unn_iter=1)).to(DT)
    _randomize(model, 2)
    conv1, conv2, dense = model.unn.factors
    b = model.unn.biases
    y = F.one_hot(torch.tensor([3, 7]), 10).to(DT)
    h2 = torch.tanh((y @ dense.weight.flatten(1)).view(2, 64, 5, 5) + b["H2"])
    h1 = torch.tanh(F.conv_transpose2d(h2, conv2.weight, stride=2) + b["H1"])
    z = F.conv_transpose2d(h1, conv1.weight, stride=2)
    out = model.generate(torch.tensor([3, 7]))
    torch.testing.assert_close(out.preactivations["X"], z, atol=1e-10, rtol=0)
    assert out.states["X"].abs().max() <= 1
    protos = model.prototypes(sweeps=3)
    assert protos.shape == (3, 10, 28, 28)
    torch.testing.assert_close(protos[0, 3], torch.tanh(z[0, 0]), atol=1e-10, rtol=0)


@pytest.mark.parametrize(("k", "order"), [(2, "fw"), (3, "fw"), (5, "fw"), (3, "fb")])
def test_untied_parameter_count_is_close_to_tied(k, order):
    cfg = MnistConfig(unn_iter=k, order=order, untied=True)
    model = MnistUNN(cfg)
    assert model.num_parameters() == count_parameters(cfg, model.channels)
    assert abs(model.num_parameters() - 50026) / 50026 < 0.03
    assert model.channels[0] < 32


def test_untied_k1_is_the_tied_model_and_k2_unrolls_with_own_weights():
    assert MnistUNN(MnistConfig(unn_iter=1, order="fw", untied=True)).num_parameters() == 50026
    model = MnistUNN(MnistConfig(unn_iter=2, order="fw", untied=True)).to(DT)
    _randomize(model, 3)
    w = {f.variables: f.weight for f in model.unn.factors}
    b = model.unn.biases
    x = torch.rand(2, 1, 28, 28, dtype=DT) * 2 - 1

    def dense(h2, v):
        return h2.flatten(1) @ v.flatten(1).T

    h1 = torch.tanh(F.conv2d(x, w["X", "H1_1"], stride=2) + b["H1_1"])
    h2 = torch.tanh(F.conv2d(h1, w["H1_1", "H2_1"], stride=2) + b["H2_1"])
    y = torch.softmax(dense(h2, w["H2_1", "Y_1"]) + b["Y_1"], -1)
    back = F.conv_transpose2d(h2, w["H1_2", "H2_1"], stride=2)
    h1 = torch.tanh(F.conv2d(x, w["X", "H1_2"], stride=2) + back + b["H1_2"])
    up = (y @ w["H2_2", "Y_1"].flatten(1)).view_as(h2)
    h2 = torch.tanh(F.conv2d(h1, w["H1_2", "H2_2"], stride=2) + up + b["H2_2"])
    logits = dense(h2, w["H2_2", "Y_2"]) + b["Y_2"]
    torch.testing.assert_close(model(x), logits, atol=1e-10, rtol=0)


def test_random_y_init_is_reproducible():
    model = MnistUNN(MnistConfig(unn_iter=2, y_init="random", seed=5)).to(DT)
    _randomize(model, 4)
    x = torch.rand(2, 1, 28, 28, dtype=DT)
    torch.testing.assert_close(model(x), model(x), atol=0, rtol=0)
    uniform = MnistUNN(MnistConfig(unn_iter=2, y_init="uniform")).to(DT)
    uniform.load_state_dict(model.state_dict())
    assert (uniform(x) - model(x)).abs().max() > 0


# ----------------------------------------------------------------------------- training, files, CLI
def test_train_save_load_same_predictions(tmp_path):
    data = load_mnist(_tiny_mnist(tmp_path / "mnist"), download=False)
    options = TrainOptions(epochs=2, batch_size=16, dev_size=10, device="cpu", progress=False, lr=3e-3)
    result = train(MnistConfig(unn_iter=2, y_init="random"), data, options)
    assert len(result.history) == 2 and result.best_epoch in (1, 2)
    save_trained(tmp_path / "model", result, options)
    loaded = load_model(tmp_path / "model")
    x = data.test_images.unsqueeze(1).float() / 127.5 - 1
    torch.testing.assert_close(loaded(x), result.model(x), atol=0, rtol=0)
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["kind"] == "mnist" and saved["training"]["best_epoch"] == result.best_epoch


def test_resume_continues_exactly_as_the_uninterrupted_run(tmp_path):
    data = load_mnist(_tiny_mnist(tmp_path / "mnist"), download=False)
    config = MnistConfig(unn_iter=2, y_init="random", dropout=0.3)  # random states matter: dropout, Y's init
    options = TrainOptions(epochs=3, batch_size=16, dev_size=10, device="cpu", progress=False, lr=3e-3)
    whole = train(config, data, options)
    ckpt = tmp_path / "run" / CHECKPOINT
    train(config, data, TrainOptions(**{**options.__dict__, "epochs": 1}), checkpoint=ckpt)
    resumed = train(config, data, options, checkpoint=ckpt, resume=True)
    torch.testing.assert_close(resumed.model.state_dict(), whole.model.state_dict(), atol=0, rtol=0)
    assert resumed.best_epoch == whole.best_epoch
    assert [(h.epoch, h.loss, h.dev_accuracy) for h in resumed.history] == [
        (h.epoch, h.loss, h.dev_accuracy) for h in whole.history
    ]
    with pytest.raises(CheckpointError, match="had batch_size 16, not 8"):
        train(config, data, TrainOptions(**{**options.__dict__, "batch_size": 8}), checkpoint=ckpt, resume=True)
    with pytest.raises(CheckpointError, match="had dropout 0.3, not 0.0"):
        train(MnistConfig(unn_iter=2, y_init="random"), data, options, checkpoint=ckpt, resume=True)


def test_prototype_figure_has_a_row_per_digit_and_a_column_per_sweep(tmp_path):
    import matplotlib
    from matplotlib.text import Text

    from unnparse.figures import write_png

    prototypes = torch.rand(3, 10, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    figure = prototype_figure(prototypes)
    (axes,) = figure.axes
    assert [label.get_text() for label in axes.get_yticklabels()] == [str(d) for d in range(10)]
    assert [label.get_text() for label in axes.get_xticklabels()] == ["1", "2", "3"]
    assert (axes.get_ylabel(), axes.get_xlabel()) == ("digit", "sweep t")
    assert TITLE in [text.get_text() for text in figure.findobj(Text)]
    # the cell of digit 7 (row) after sweep 2 (column) is that prototype; the ticks sit at the cells' centres
    grid = axes.images[0].get_array()
    step = 28 + 2
    assert torch.equal(
        torch.from_numpy(grid[7 * step : 7 * step + 28, 1 * step : 1 * step + 28].data), prototypes[1, 7]
    )
    assert list(axes.get_yticks()) == [c * step + 13.5 for c in range(10)]
    width, height = figure_size(3)
    assert figure.bbox.width == width and figure.bbox.height == height
    png = tmp_path / "p.png"
    with matplotlib.rc_context({"savefig.bbox": "tight", "savefig.dpi": 300}):  # a user's settings change nothing
        write_png(figure, png)
    assert _png_size(png) == (width, height) and not list(tmp_path.glob(".*.tmp"))


def test_prototype_figures_are_bounded():
    width, height = figure_size(1)
    assert 300 <= width <= 400 and 600 <= height <= 700
    width, height = figure_size(100)  # the most sweeps a model file may have: cells of SCALE pixels still
    assert width >= 100 * 28 * SCALE and width * height <= MAX_PIXELS
    many = 1000  # sweep labels thinned, cells shrunk to one screen pixel per image pixel
    width, height = figure_size(many)
    assert width * height <= MAX_PIXELS and width >= many * 28
    figure = prototype_figure(torch.zeros(many, 10, 28, 28))
    labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
    assert labels[0] == "1" and 10 < len(labels) < many
    with pytest.raises(ValueError, match=r"^100,000 sweeps are too many to draw: at most \d"):
        check_drawable(100_000)


def test_cli_train_evaluate_prototypes(tmp_path):
    root = _tiny_mnist(tmp_path / "mnist")
    runner = CliRunner()
    model = tmp_path / "model"
    common = ["--data-dir", str(root), "--no-download"]
    result = runner.invoke(
        app,
        ["train", *common, "--output", str(model), "--unn-iter", "2", "--epochs", "1", "--batch-size", "16",
         "--dev-size", "10", "--device", "cpu", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "50026 parameters" in result.stdout
    resume = ["train", *common, "--output", str(model), "--unn-iter", "2", "--epochs", "2", "--batch-size", "16"]
    result = runner.invoke(app, [*resume, "--dev-size", "10", "--device", "cpu", "--no-progress", "--resume"])
    assert result.exit_code == 0, result.output
    assert "resuming from" in result.stderr and "epoch 2:" in result.stderr and "epoch 1:" not in result.stderr
    assert len(json.loads((model / "config.json").read_text())["training"]["history"]) == 2
    result = runner.invoke(app, [*resume, "--dev-size", "12", "--device", "cpu", "--no-progress", "--resume"])
    assert result.exit_code == 1 and "had dev_size 10, not 12" in result.stderr
    result = runner.invoke(app, ["evaluate", "--model", str(model), *common, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert 0 <= report["accuracy"] <= 100 and report["test_images"] == 20
    assert 0 <= report["prototypes_recognised"] <= 10
    png = tmp_path / "protos.png"
    result = runner.invoke(app, ["prototypes", "--model", str(model), "--output", str(png)])
    assert result.exit_code == 0, result.output
    assert _png_size(png) == figure_size(2)


def test_cli_untied_baseline(tmp_path):
    root = _tiny_mnist(tmp_path / "mnist")
    model = tmp_path / "untied"
    result = CliRunner().invoke(
        app,
        ["train", "--data-dir", str(root), "--no-download", "--output", str(model), "--untied", "--unn-iter", "2",
         "--order", "fw", "--epochs", "1", "--dev-size", "10", "--device", "cpu", "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "channels H1=16, H2=32" in result.stdout
    assert load_model(model).config.untied
    result = CliRunner().invoke(app, ["prototypes", "--model", str(model), "--output", str(tmp_path / "p.png")])
    assert result.exit_code == 1 and "no prototypes" in result.stderr


def test_cli_errors_are_one_line(tmp_path):
    root = _tiny_mnist(tmp_path / "mnist")
    runner = CliRunner()
    model = tmp_path / "model"
    result = train(
        MnistConfig(unn_iter=1),
        load_mnist(root, download=False),
        TrainOptions(epochs=1, dev_size=10, device="cpu", progress=False),
    )
    save_trained(model, result, TrainOptions())
    weights = weights_path(model)
    weights.write_bytes(b"\x00garbage")
    out = runner.invoke(app, ["evaluate", "--model", str(model), "--data-dir", str(root), "--no-download"])
    assert out.exit_code == 1
    assert out.stderr.count("\n") == 1 and weights.name in out.stderr and "Traceback" not in out.output
    with pytest.raises(ModelFileError, match="config.json"):
        load_model(tmp_path / "mnist")
    out = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "nope"), "--data-dir", str(root)])
    assert out.exit_code == 1 and "no such model directory" in out.stderr
    out = runner.invoke(
        app, ["train", "--data-dir", str(tmp_path / "void"), "--no-download", "--output", str(tmp_path / "m")]
    )
    assert out.exit_code == 1 and out.stderr.startswith("error: ") and "missing MNIST file" in out.stderr
    out = runner.invoke(app, ["train", "--order", "sideways", "--output", str(tmp_path / "m")])
    assert out.exit_code == 2
    out = runner.invoke(
        app, ["train", "--data-dir", str(root), "--no-download", "--output", str(model / "config.json")]
    )
    assert out.exit_code == 1 and "exists and is not a directory" in out.stderr
    out = runner.invoke(app, ["prototypes", "--model", str(model), "--output", str(tmp_path)])
    assert out.exit_code == 1 and "is a directory" in out.stderr


def test_settings_out_of_range_are_one_line_naming_the_option(tmp_path):
    with pytest.raises(ConfigValueError, match=r"^epochs must be an integer in \[1, 1000000\], not 0$"):
        TrainOptions(epochs=0)
    with pytest.raises(ConfigValueError, match="train_limit"):
        TrainOptions(train_limit=0)
    assert TrainOptions(train_limit=None).train_limit is None
    with pytest.raises(ConfigValueError, match=r"^dropout must be a number in \[0, 1\), not 1.0$"):
        MnistConfig(dropout=1.0)
    runner = CliRunner()
    output = tmp_path / "m"
    # only the dataclass catches the open upper end; checked before any data is read or OUTPUT claimed
    result = runner.invoke(
        app, ["train", "--data-dir", str(tmp_path / "void"), "--output", str(output), "--dropout", "1.0"]
    )
    assert result.exit_code == 1
    assert result.stderr == "error: --dropout must be a number in [0, 1), not 1.0\n"
    assert not output.exists()
    result = runner.invoke(app, ["train", "--output", str(output), "--epochs", "0"])  # the option's range: typer's
    assert result.exit_code == 2 and "--epochs" in result.stderr and not output.exists()


def test_the_test_split_alone_loads_without_the_training_files(tmp_path):
    root = _tiny_mnist(tmp_path / "mnist")
    for key in ("train_images", "train_labels"):
        (root / FILES[key]).unlink()
    data = load_mnist(root, download=False, splits=("test",))
    assert len(data.test_labels) > 0 and len(data.train_labels) == 0
    with pytest.raises(MnistDataError, match="missing MNIST file"):
        load_mnist(root, download=False)
