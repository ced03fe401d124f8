"""``unn seqcomplete``: generate the toy data, train, evaluate, complete sequences and draw attention (§4)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

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
from unnparse.output_dir import CHECKPOINT, claim_output_dir, lock_environment
from unnparse.seqcomplete.config import DataSpec, SeqConfig, TrainOptions

SequenceOption = Annotated[
    str, typer.Option("--sequence", help='tokens with _ for blanks, e.g. "3 4 _ _ 7 8"', show_default=False)
]

__all__ = ["app"]

app = typer.Typer(
    cls=Group, help="Sequence completion with undirected self-attention (paper §4).", no_args_is_help=True
)


class Order(str, Enum):
    """Update order of a sweep (App. B)."""

    fb = "fb"
    random = "random"


class LRSchedule(str, Enum):
    """Learning rate over the run, after any warmup."""

    constant = "constant"
    linear = "linear"


ModelDir = Annotated[Path, typer.Option("--model", help="model directory")]
Device = Annotated[str, typer.Option("--device", help="auto, cpu or cuda")]


@app.command("generate", cls=Command)
@user_errors
def generate_command(
    output: Annotated[Path, typer.Option("--output", help="data file to write (.npz)")],
    vocab: Annotated[
        int, typer.Option("--vocab", **option_range(DataSpec, "vocab"), help="tokens are the integers 1..vocab")
    ] = DataSpec.vocab,
    min_length: Annotated[
        int, typer.Option("--min-length", **option_range(DataSpec, "min_length"), help="shortest sequence")
    ] = DataSpec.min_length,
    max_length: Annotated[
        int,
        typer.Option(
            "--max-length",
            **option_range(DataSpec, "max_length"),
            help="longest sequence, inclusive (--max-length 24 reproduces the paper's instance counts)",
        ),
    ] = DataSpec.max_length,
    mask_ratio: Annotated[
        float,
        typer.Option(
            "--mask-ratio", **option_range(DataSpec, "mask_ratio"), help="at most ceil(ratio * length) blanks"
        ),
    ] = DataSpec.mask_ratio,
    test_fraction: Annotated[
        float,
        typer.Option(
            "--test-fraction", **option_range(DataSpec, "test_fraction"), help="share held out as test, in (0, 1)"
        ),
    ] = DataSpec.test_fraction,
    seed: Annotated[
        int, typer.Option("--seed", **option_range(DataSpec, "seed"), help="seed of the train/test split")
    ] = DataSpec.seed,
    threads: ThreadsOption = None,
) -> None:
    """Write every ascending/descending run with every combination of masked positions, split train/test."""
    check_output_file(output)
    from unnparse.runtime import set_threads
    from unnparse.seqcomplete.data import generate, save_dataset

    set_threads(threads)
    try:
        spec = DataSpec(vocab, min_length, max_length, mask_ratio, test_fraction, seed)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    data = generate(spec)
    save_dataset(output, data)
    n_test = int(data.test.sum())
    typer.echo(f"wrote {output}: {len(data)} instances ({len(data) - n_test} train, {n_test} test)")


@app.command("train", cls=Command)
@user_errors
def train_command(
    data: Annotated[Path, typer.Option("--data", help="data file from `generate`")],
    output: Annotated[Path, typer.Option("--output", help="model directory to write")],
    unn_iter: Annotated[
        int, typer.Option("--unn-iter", **option_range(SeqConfig, "unn_iter"), help="k, sweeps per training batch")
    ] = SeqConfig.unn_iter,
    order: Annotated[Order, typer.Option("--order", help="forward-backward or random permutation")] = Order(
        SeqConfig.order
    ),
    random_iter: Annotated[
        bool, typer.Option("--random-iter", help="random k in 1..5 per batch, k=3 at evaluation (App. B)")
    ] = SeqConfig.random_iter,
    epochs: Annotated[
        int, typer.Option("--epochs", **option_range(TrainOptions, "epochs"), help="passes over the train split")
    ] = TrainOptions.epochs,
    lr: Annotated[
        float, typer.Option("--lr", **option_range(TrainOptions, "lr"), help="Adam learning rate")
    ] = TrainOptions.lr,
    lr_schedule: Annotated[
        LRSchedule,
        typer.Option(
            "--lr-schedule",
            help="constant, or linear: decay to zero on the last update (of --max-updates, else of --epochs)",
        ),
    ] = LRSchedule(TrainOptions.lr_schedule),
    warmup: Annotated[
        int, typer.Option("--warmup", **option_range(TrainOptions, "warmup"), help="updates of linear warmup to --lr")
    ] = TrainOptions.warmup,
    batch_size: Annotated[
        int, typer.Option("--batch-size", **option_range(TrainOptions, "batch_size"), help="instances per update")
    ] = TrainOptions.batch_size,
    dim: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--dim",
            **option_range(SeqConfig, "dim"),
            help=f"hidden size d (even) [default: {SeqConfig.dim}, or the --init-from model's]",
        ),
    ] = None,
    clip: Annotated[
        float, typer.Option("--clip", **option_range(TrainOptions, "clip"), help="gradient norm clipping (0: off)")
    ] = TrainOptions.clip,
    seed: Annotated[
        int, typer.Option("--seed", **option_range(TrainOptions, "seed"), help="seeds initialisation, batches, sweeps")
    ] = TrainOptions.seed,
    device: Device = TrainOptions.device,
    threads: ThreadsOption = None,
    report_test: Annotated[
        bool, typer.Option("--report-test", help="print the test accuracy after every epoch (learning curve)")
    ] = TrainOptions.eval_each_epoch,
    eval_every: Annotated[
        int,
        typer.Option(
            "--eval-every",
            **option_range(TrainOptions, "eval_every"),
            help="also print the test accuracy every N updates, with the seconds trained (0: off)",
        ),
    ] = TrainOptions.eval_every,
    max_minutes: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--max-minutes",
            **option_range(TrainOptions, "max_minutes"),
            help="stop after this much training time (evaluations not counted)",
        ),
    ] = TrainOptions.max_minutes,
    max_updates: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-updates", **option_range(TrainOptions, "max_updates"), help="stop after this many updates in all"
        ),
    ] = TrainOptions.max_updates,
    checkpoint_every: Annotated[
        int,
        typer.Option(
            "--checkpoint-every",
            **option_range(TrainOptions, "checkpoint_every"),
            help=f"write OUTPUT/{CHECKPOINT} every N updates (also after every epoch and when stopping; 0: only then)",
        ),
    ] = TrainOptions.checkpoint_every,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help=f"continue the interrupted or finished run in OUTPUT from its {CHECKPOINT} (same options and data; "
            "more --epochs, --max-minutes or --max-updates extend it, --lr may change)",
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite", help="replace the model or checkpoint that OUTPUT holds (else such an OUTPUT is refused)"
        ),
    ] = False,
    init_from: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--init-from", help="start from this model's weights (fresh optimizer), e.g. to fine-tune"),
    ] = None,
    nproc: Nproc = 1,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="show progress bars")
    ] = TrainOptions.progress,
) -> None:
    """Train on the train split (cross-entropy on masked positions; the last epoch is saved).

    With --nproc N (or under torchrun) each of N processes takes its share of every batch of --batch-size instances.
    """
    # the settings are checked before the output folder is claimed or any data read: a bad value is one line
    options = TrainOptions(
        epochs=epochs,
        lr=lr,
        lr_schedule=lr_schedule.value,
        warmup=warmup,
        batch_size=batch_size,
        clip=clip,
        seed=seed,
        device=device,
        eval_each_epoch=report_test,
        eval_every=eval_every,
        max_minutes=max_minutes,
        max_updates=max_updates,
        checkpoint_every=checkpoint_every,
        progress=progress,
    )
    try:  # the vocabulary (and with --init-from the dimension) comes from the data and the model, below
        config = SeqConfig(
            dim=dim or SeqConfig.dim, unn_iter=unn_iter, order=order.value, random_iter=random_iter, seed=seed
        )
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    from unnparse.runtime import set_threads
    from unnparse.seqcomplete.data import SeqDataError, load_dataset
    from unnparse.seqcomplete.train import load_model, save_trained, train
    from unnparse.training.distributed import exit_process, shutdown

    check_output_dir(output)
    set_threads(threads)
    if resume and init_from is not None:
        raise typer.BadParameter("--resume continues a run; --init-from starts a new one: give one of them")
    lock = held_for_command(claim_output_dir(output, resume=resume, overwrite=overwrite))
    init_state = None
    try:
        dataset = load_dataset(data)
        vocab = dataset.spec.vocab
        if init_from is not None:
            start = load_model(init_from)
            if dim is not None and dim != start.config.dim:
                raise SeqDataError(f"{init_from}: the model has dim {start.config.dim}, not {dim}")
            if dataset.spec.vocab > start.config.vocab:
                raise SeqDataError(
                    f"{data}: vocabulary 1..{dataset.spec.vocab} exceeds that of {init_from} (1..{start.config.vocab})"
                )
            vocab, init_state = start.config.vocab, start.state_dict()
            config = replace(config, dim=start.config.dim)
        config = replace(config, vocab=vocab)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None
    try:
        dist = join_processes(nproc, device, env=lock_environment(lock))
        result = train(
            config, dataset, options, dist=dist, checkpoint=output / CHECKPOINT, resume=resume, init_state=init_state
        )
    except KeyboardInterrupt:
        interrupted(output / CHECKPOINT)
    finally:
        shutdown()
    if dist.is_main:
        save_trained(output, result, options)
        n_params = sum(p.numel() for p in result.model.parameters())
        typer.echo(f"{n_params} parameters; saved to {output}")
    if dist.distributed:
        exit_process(0)


@app.command("evaluate", cls=Command)
@user_errors
def evaluate_command(
    model: ModelDir,
    data: Annotated[Path, typer.Option("--data", help="data file from `generate`")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    device: Device = "auto",
    threads: ThreadsOption = None,
) -> None:
    """Accuracy on the masked tokens of the test split."""
    from unnparse.runtime import set_threads
    from unnparse.seqcomplete.data import SeqDataError, load_dataset
    from unnparse.seqcomplete.train import evaluate, load_model

    set_threads(threads)
    unn = load_model(model, device)
    dataset = load_dataset(data)
    if dataset.spec.vocab > unn.config.vocab:
        raise SeqDataError(f"{data}: vocabulary 1..{dataset.spec.vocab} exceeds the model's 1..{unn.config.vocab}")
    start = time.perf_counter()
    score = evaluate(unn, dataset, dataset.split("test"))
    seconds = time.perf_counter() - start
    report = {
        "accuracy": score.accuracy,
        "sequence_accuracy": score.sequence_accuracy,
        "masked_tokens": score.masked_tokens,
        "instances": score.instances,
        "unn_iter": unn.config.eval_iter,
        "order": unn.config.order,
        "seconds": round(seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    typer.echo(
        f"masked-token accuracy {score.accuracy:.2f}% ({score.masked_tokens} tokens), "
        f"sequence accuracy {score.sequence_accuracy:.2f}% ({score.instances} instances), {seconds:.1f} s"
    )


@app.command("complete", cls=Command)
@user_errors
def complete_command(
    model: ModelDir,
    sequence: SequenceOption,
    threads: ThreadsOption = None,
) -> None:
    """Fill in the blanks of a sequence."""
    from unnparse.runtime import set_threads
    from unnparse.seqcomplete.data import parse_sequence
    from unnparse.seqcomplete.train import load_model

    set_threads(threads)
    unn = load_model(model)
    batch = parse_sequence(sequence, unn.config.vocab)
    typer.echo(" ".join(str(t) for t in unn.complete(batch)[0].tolist()))


@app.command("attention", cls=Command)
@user_errors
def attention_command(
    model: ModelDir,
    sequence: SequenceOption,
    output: Annotated[Path, typer.Option("--output", help="PNG file to write")],
    unn_iter: Annotated[
        int | None, typer.Option("--unn-iter", min=1, help="sweeps (default: the model's evaluation k)")
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Draw the attention weights S after each of their updates (Figures 4 and 8)."""
    from unnparse.runtime import set_threads
    from unnparse.seqcomplete.attention_plot import write_attention
    from unnparse.seqcomplete.data import parse_sequence
    from unnparse.seqcomplete.train import load_model

    check_output_file(output)
    set_threads(threads)
    unn = load_model(model)
    batch = parse_sequence(sequence, unn.config.vocab)
    try:  # a picture's size is bounded: a sequence or sweeps too many to draw are refused before any work
        maps = write_attention(unn, batch, output, unn_iter)
    except ValueError as err:
        fail(str(err))
    completed = " ".join(str(t) for t in unn.complete(batch, sweeps=unn_iter)[0].tolist())
    typer.echo(f"wrote {output}: {len(maps)} attention maps; completion: {completed}")
