"""``unn mnist``: train, evaluate and draw the prototypes of the convolutional UNN (paper §3)."""

from __future__ import annotations

import json
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from unnparse.cli.common import (
    Nproc,
    ThreadsOption,
    check_output_dir,
    check_output_file,
    fail,
    held_for_command,
    interrupted,
    join_processes,
    option_range,
    user_errors,
)
from unnparse.cli.help_format import Command, Group
from unnparse.mnist.config import MnistConfig, TrainOptions
from unnparse.output_dir import CHECKPOINT

__all__ = ["app"]

app = typer.Typer(
    cls=Group, help="Convolutional UNN on MNIST: classifier and prototype generator (paper §3).", no_args_is_help=True
)


class Order(str, Enum):
    """Classification sweep: H1, H2, Y (fw) or H1, H2, Y, H2 (fb)."""

    fw = "fw"
    fb = "fb"


class YInit(str, Enum):
    """Initial value of Y (App. C)."""

    zero = "zero"
    uniform = "uniform"
    random = "random"


DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="folder of the four MNIST IDX .gz files (default: $UNNPARSE_DATA/mnist, else ./data/mnist)"
    ),
]
Download = Annotated[
    bool, typer.Option("--download/--no-download", help="download missing MNIST files from the public mirrors")
]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda")]


@app.command("train", cls=Command)
@user_errors
def train_command(
    output: Annotated[Path, typer.Option("--output", help="model directory to write")],
    data_dir: DataDir = None,
    download: Download = True,
    unn_iter: Annotated[
        int, typer.Option("--unn-iter", **option_range(MnistConfig, "unn_iter"), help="k, the number of sweeps")
    ] = MnistConfig.unn_iter,
    gamma: Annotated[
        float, typer.Option("--gamma", **option_range(TrainOptions, "gamma"), help="weight of the prototype BCE loss")
    ] = TrainOptions.gamma,
    order: Annotated[Order, typer.Option("--order", help="classification order")] = Order(MnistConfig.order),
    y_init: Annotated[YInit, typer.Option("--y-init", help="initialisation of Y")] = YInit(MnistConfig.y_init),
    epochs: Annotated[
        int, typer.Option("--epochs", **option_range(TrainOptions, "epochs"), help="passes over the training images")
    ] = TrainOptions.epochs,
    lr: Annotated[
        float, typer.Option("--lr", **option_range(TrainOptions, "lr"), help="Adam learning rate")
    ] = TrainOptions.lr,
    batch_size: Annotated[
        int, typer.Option("--batch-size", **option_range(TrainOptions, "batch_size"), help="images per update")
    ] = TrainOptions.batch_size,
    dropout: Annotated[
        float, typer.Option("--dropout", **option_range(MnistConfig, "dropout"), help="dropout on H1 and H2")
    ] = MnistConfig.dropout,
    seed: Annotated[
        int,
        typer.Option("--seed", **option_range(TrainOptions, "seed"), help="seeds initialisation, dev split, batches"),
    ] = TrainOptions.seed,
    untied: Annotated[
        bool, typer.Option("--untied", help="unconstrained baseline: k unrolled layers (Table 3)")
    ] = MnistConfig.untied,
    dev_size: Annotated[
        int,
        typer.Option("--dev-size", **option_range(TrainOptions, "dev_size"), help="training images held out as dev"),
    ] = TrainOptions.dev_size,
    train_limit: Annotated[
        int | None,
        typer.Option(
            "--train-limit", **option_range(TrainOptions, "train_limit"), help="train on this many training images only"
        ),
    ] = TrainOptions.train_limit,
    device: Device = TrainOptions.device,
    threads: ThreadsOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help=f"continue the interrupted or finished run in OUTPUT from its {CHECKPOINT}, written after every "
            "epoch (same options and data; more --epochs extend it, --lr may change)",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="replace the model or checkpoint that OUTPUT holds (else such an OUTPUT is refused)"
        ),
    ] = False,
    nproc: Nproc = 1,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="show progress bars")
    ] = TrainOptions.progress,
) -> None:
    """Train on MNIST (10,000 training images held out as dev; the best dev epoch is saved).

    With --nproc N (or under torchrun) each of N processes takes its share of every batch of --batch-size images.
    """
    # the settings are checked before the output folder is claimed or any data read: a bad value is one line
    config = MnistConfig(
        unn_iter=unn_iter, order=order.value, y_init=y_init.value, dropout=dropout, untied=untied, seed=seed
    )
    options = TrainOptions(
        epochs=epochs,
        lr=lr,
        batch_size=batch_size,
        gamma=0.0 if untied else gamma,
        seed=seed,
        dev_size=dev_size,
        train_limit=train_limit,
        device=device,
        progress=progress,
    )
    from unnparse.mnist.data import load_mnist
    from unnparse.mnist.model import untied_channels
    from unnparse.mnist.train import save_trained, train
    from unnparse.output_dir import claim_output_dir, lock_environment
    from unnparse.runtime import set_threads
    from unnparse.training.distributed import exit_process, shutdown

    check_output_dir(output)
    lock = held_for_command(claim_output_dir(output, resume=resume, overwrite=overwrite))
    set_threads(threads)
    dist = join_processes(nproc, device, env=lock_environment(lock))
    try:
        data = load_mnist(data_dir, download=download)
        if untied and dist.is_main:
            c1, c2 = untied_channels(config)
            typer.echo(
                f"untied baseline: {unn_iter} unrolled sweeps, channels H1={c1}, H2={c2}, "
                "forward-only (no prototype loss)"
            )
        result = train(config, data, options, dist=dist, checkpoint=output / CHECKPOINT, resume=resume)
    except KeyboardInterrupt:
        interrupted(output / CHECKPOINT)
    finally:
        shutdown()
    if dist.is_main:
        save_trained(output, result, options)
        typer.echo(
            f"{result.model.num_parameters()} parameters; best dev accuracy {result.best_dev_accuracy:.2f}% "
            f"(epoch {result.best_epoch}); saved to {output}"
        )
    if dist.distributed:
        exit_process(0)


@app.command("evaluate", cls=Command)
@user_errors
def evaluate_command(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    data_dir: DataDir = None,
    download: Download = True,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    device: Device = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Test accuracy, and whether the model recognises its own prototypes (needs only the two test files)."""
    from unnparse.mnist.data import load_mnist
    from unnparse.mnist.train import accuracy, load_model, prototype_predictions
    from unnparse.runtime import set_threads

    set_threads(threads)
    unn = load_model(model, device)
    data = load_mnist(data_dir, download=download, splits=("test",))
    start = time.perf_counter()
    acc = accuracy(unn, data.test_images, data.test_labels)
    seconds = time.perf_counter() - start
    predicted = None if unn.config.untied else prototype_predictions(unn)
    recognised = None if predicted is None else sum(p == c for c, p in enumerate(predicted))
    report = {
        "accuracy": acc,
        "test_images": len(data.test_labels),
        "prototypes_recognised": recognised,
        "prototype_predictions": predicted,
        "parameters": unn.num_parameters(),
        "unn_iter": unn.config.unn_iter,
        "order": unn.config.order,
        "untied": unn.config.untied,
        "seconds": round(seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"test accuracy: {acc:.2f}% on {len(data.test_labels)} images ({seconds:.1f} s)")
    if recognised is not None:
        typer.echo(f"prototypes classified as their own digit: {recognised}/10 (predicted: {predicted})")


@app.command("prototypes", cls=Command)
@user_errors
def prototypes_command(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    output: Annotated[Path, typer.Option("--output", help="PNG file to write")],
    threads: ThreadsOption = None,
) -> None:
    """Draw the prototypes of the 10 digits after each sweep t = 1..k (one row per digit, Figure 3)."""
    from unnparse.mnist.prototypes import write_prototypes
    from unnparse.mnist.train import load_model, prototype_predictions
    from unnparse.runtime import set_threads

    check_output_file(output)
    set_threads(threads)
    unn = load_model(model)
    if unn.config.untied:
        fail("the untied baseline is a forward-only classifier; it generates no prototypes")
    write_prototypes(unn, output)
    predicted = prototype_predictions(unn)
    recognised = sum(p == c for c, p in enumerate(predicted))
    typer.echo(f"wrote {output}; prototypes classified as their own digit: {recognised}/10 (predicted: {predicted})")
