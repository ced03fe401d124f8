"""``unnparse``: train, evaluate and run UNN dependency parsers."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from unnparse.cli.budget import parser_minutes, seconds_left
from unnparse.cli.common import (
    ThreadsOption,
    VersionOption,
    check_output_dir,
    check_output_file,
    err_console,
    fail,
    held_for_command,
    interrupted,
    option_range,
    relaunch_if_asked,
    user_errors,
    warn,
)
from unnparse.cli.help_format import Command, Group, in_panel
from unnparse.cli.parse_options import (
    MaxWordsOption,
    ParsePrecision,
    ParsePrecisionOption,
    Precision,
    PrecisionOption,
    resolve_model,
    warn_precision,
)
from unnparse.cli.serve_cli import serve
from unnparse.parser.config import (
    DEFAULT_ENCODER,
    ParserModelConfig,
    ScratchEncoderConfig,
    TrainOptions,
    TransformerEncoderConfig,
    recipe_values,
)
from unnparse.parser.data_rules import EPOCHS_WITHOUT_DEV, LARGE_OPTIONS, options_from_data
from unnparse.parser.formats import InputFormat, OutputFormat, TokenizerChoice
from unnparse.parser.long_sentences import DEFAULT_MAX_WORDS

if TYPE_CHECKING:
    import torch

    from unnparse.conllu.sentence import Sentence
    from unnparse.parser.predictor import Predictor
    from unnparse.parser.treebank import FileSummary

app = typer.Typer(
    cls=Group,
    name="unnparse",
    help="Dependency parsing with undirected neural networks (UNNs): [bold]train[/], [bold]evaluate[/], "
    "[bold]parse[/].",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(version: VersionOption = False) -> None:
    """Dependency parsing with undirected neural networks (UNNs)."""


out_console = Console(highlight=False, markup=False)


class Split(str, Enum):
    dev = "dev"
    test = "test"


class Alignment(str, Enum):
    auto = "auto"
    words = "words"
    characters = "characters"


TokenizerOption = Annotated[
    TokenizerChoice,
    typer.Option(
        "--tokenizer",
        help="How raw text is split into sentences and tokens: model (the tokenizer learnt with the parser), rules, "
        "or auto (the model's when it has one).",
    ),
]


class Pooling(str, Enum):
    first = "first"
    mean = "mean"


class CharEncoder(str, Enum):
    cnn = "cnn"
    lstm = "lstm"


class Recipe(str, Enum):
    default = "default"
    paper = "paper"


class UpdateOrder(str, Enum):
    sequential = "sequential"
    jacobi = "jacobi"


class ArcInit(str, Enum):
    zero = "zero"
    normal = "normal"


class SelectBy(str, Enum):
    las = "las"
    uas = "uas"


class TagFeatures(str, Enum):
    none = "none"
    soft = "soft"
    hard = "hard"


class ScheduleName(str, Enum):
    decay = "decay"
    plateau = "plateau"


DataDir = Annotated[
    Optional[Path],  # noqa: UP045
    typer.Option("--data-dir", help="Folder holding UD treebank folders (default: $UNNPARSE_DATA, else ./data)."),
]


def _read_gold(path: Path):
    from unnparse.conllu.reader import read_conllu

    return read_conllu(path, allow_empty=False)


def _summary_table(title: str, rows: list[FileSummary]) -> Table:
    """The files a command reads: each by its name (never cut: the names tell the files of a split apart), the
    folder they share in the title."""
    folders = {str(Path(row.file).parent) for row in rows}
    shared = folders.pop() if len(folders) == 1 else None
    table = Table(title=f"{title} ({shared})" if shared else title)
    table.add_column("split")
    table.add_column("file", overflow="fold")
    table.add_column("sentences", justify="right", no_wrap=True)
    table.add_column("words", justify="right", no_wrap=True)
    for row in rows:
        name = Path(row.file).name if shared else row.file
        table.add_row(row.split, name, f"{row.sentences:,}", f"{row.words:,}")
    return table


@app.command(cls=Command)
@user_errors
def train(
    ctx: typer.Context,
    treebank: Annotated[
        str | None, typer.Option(help="UD treebank name, e.g. UD_Czech-PDT.", rich_help_panel="Data")
    ] = None,  # noqa: UP045
    data_dir: in_panel(DataDir, "Data") = None,
    train_files: Annotated[
        list[Path] | None, typer.Option("--train", help="Training CoNLL-U file(s).", rich_help_panel="Data")
    ] = None,  # noqa: UP045
    dev_file: Annotated[
        Path | None, typer.Option("--dev", help="Development CoNLL-U file.", rich_help_panel="Data")
    ] = None,  # noqa: UP045
    output: Annotated[
        Path | None, typer.Option(help="Model directory (default: models/TREEBANK).", rich_help_panel="Data")
    ] = None,  # noqa: UP045
    encoder: Annotated[
        str,
        typer.Option(
            help="'scratch' (BiLSTM, no download), a HuggingFace name or a local path.", rich_help_panel="Model"
        ),
    ] = DEFAULT_ENCODER,
    pooling: Annotated[
        Pooling, typer.Option(help="How subword vectors become word vectors.", rich_help_panel="Model")
    ] = Pooling(TransformerEncoderConfig.pooling),
    freeze_encoder: Annotated[
        bool, typer.Option(help="Do not fine-tune the pretrained encoder.", rich_help_panel="Model")
    ] = (TransformerEncoderConfig.freeze),
    trust_remote_code: Annotated[
        bool,
        typer.Option(
            help="Let a pretrained encoder that comes with its own Python code (auto_map) run that code while it is "
            "fetched: it runs with your rights, so only for repositories you trust. The architecture must still be "
            "one transformers implements, since a saved model never runs code.",
            rich_help_panel="Model",
        ),
    ] = False,
    unn_iter: Annotated[
        int,
        typer.Option(
            help="UNN sweeps K (1 = the biaffine parser).",
            **option_range(ParserModelConfig, "unn_iter"),
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.unn_iter,
    hidden: Annotated[
        int, typer.Option(help="Size of H and M.", **option_range(ParserModelConfig, "hidden"), rich_help_panel="Model")
    ] = (ParserModelConfig.hidden),
    rel_hidden: Annotated[
        int,
        typer.Option(
            help="Size of the relation classifier's projections.",
            **option_range(ParserModelConfig, "rel_hidden"),
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.rel_hidden,
    dropout: Annotated[
        float,
        typer.Option(
            help="Dropout rate, in [0, 1).", **option_range(ParserModelConfig, "dropout"), rich_help_panel="Model"
        ),
    ] = ParserModelConfig.dropout,
    lstm_hidden: Annotated[
        int,
        typer.Option(
            help="Scratch encoder: BiLSTM size per direction.",
            **option_range(ScratchEncoderConfig, "hidden"),
            rich_help_panel="Model",
        ),
    ] = ScratchEncoderConfig.hidden,
    lstm_layers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Scratch encoder: BiLSTM layers (default: from the training data, 2 under 100,000 words, else 3).",
            **option_range(ScratchEncoderConfig, "layers"),
            rich_help_panel="Model",
            show_default=False,
        ),
    ] = None,
    char_encoder: Annotated[
        CharEncoder,
        typer.Option(
            help="Scratch encoder: word vectors from characters by a CNN or a BiLSTM.", rich_help_panel="Model"
        ),
    ] = CharEncoder(ScratchEncoderConfig.char_encoder),
    upos_loss: Annotated[
        float,
        typer.Option(
            help="Weight of the auxiliary UPOS tagging loss (0: no tagger; tags are never an input).",
            min=0,
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.upos_loss,
    xpos_loss: Annotated[
        float,
        typer.Option(
            help="Weight of the auxiliary XPOS tagging loss (0: no XPOS tagger).", min=0, rich_help_panel="Model"
        ),
    ] = ParserModelConfig.xpos_loss,
    feats_loss: Annotated[
        float,
        typer.Option(
            help="Weight of the auxiliary FEATS tagging loss (0: no FEATS tagger).", min=0, rich_help_panel="Model"
        ),
    ] = ParserModelConfig.feats_loss,
    lemma_loss: Annotated[
        float,
        typer.Option(
            help="Weight of the lemmatizer's loss: it learns the edit script from each form to its lemma (0: no "
            "lemmatizer; on only when the training data has lemmas).",
            **option_range(ParserModelConfig, "lemma_loss"),
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.lemma_loss,
    tag_layer: Annotated[
        int,
        typer.Option(
            help="Scratch encoder: the BiLSTM layer whose output the taggers read (0: the last, the parser's X).",
            min=0,
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.tag_layer,
    tag_features: Annotated[
        TagFeatures,
        typer.Option(
            help="The parser and the relation classifier also read the tags the model predicts (UPOS, and XPOS and "
            "FEATS when learnt): 'soft' an embedding averaged under the tagger's probabilities, 'hard' the best "
            "tag's embedding. Tags in the input are never read.",
            rich_help_panel="Model",
        ),
    ] = TagFeatures(ParserModelConfig.tag_features),
    tag_feature_dim: Annotated[
        int,
        typer.Option(
            help="Size of each tag column's embedding (--tag-features).",
            **option_range(ParserModelConfig, "tag_feature_dim"),
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.tag_feature_dim,
    rel_from_x: Annotated[
        bool,
        typer.Option(
            help="The relation classifier also reads the encoder's word vectors, not only H and M.",
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.rel_from_x,
    rel_distance: Annotated[
        int,
        typer.Option(
            help="Size of an embedding of each arc's direction and distance that the relation classifier reads "
            "(0: none).",
            min=0,
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.rel_distance,
    arc_position: Annotated[
        bool,
        typer.Option(
            help="Arc scores include a learned score of each arc's direction and length (a factor on Y).",
            rich_help_panel="Model",
        ),
    ] = ParserModelConfig.arc_position,
    recipe: Annotated[
        Recipe,
        typer.Option(
            help="'paper': the setup of the paper's reference code (README, parser section): sets the "
            "options below and --hidden 400 --dropout 0.3 --upos-loss 0 --clip 1 and no early stopping, except "
            "those given on the command line.",
            rich_help_panel="Recipe",
        ),
    ] = Recipe.default,
    update_order: Annotated[
        UpdateOrder,
        typer.Option(
            help="A sweep updates H, M, then Y (sequential: block coordinate descent) or H and M both from the "
            "previous state, then Y (jacobi).",
            rich_help_panel="Recipe",
        ),
    ] = UpdateOrder(ParserModelConfig.update_order),
    head_bias: Annotated[
        bool, typer.Option(help="A head-bias factor on Y (how likely a word is to head).", rich_help_panel="Recipe")
    ] = ParserModelConfig.head_bias,
    x_dropout: Annotated[
        bool, typer.Option(help="Dropout on the encoder's output X.", rich_help_panel="Recipe")
    ] = ParserModelConfig.x_dropout,
    arc_init: Annotated[
        ArcInit,
        typer.Option(help="The arc factor's V starts at zero or drawn from N(0, 0.01²).", rich_help_panel="Recipe"),
    ] = ArcInit(ParserModelConfig.arc_init),
    rel_detach: Annotated[
        bool,
        typer.Option(
            help="The relation classifier's loss does not train the UNN and the encoder (they learn the trees alone).",
            rich_help_panel="Recipe",
        ),
    ] = ParserModelConfig.rel_detach,
    damping: Annotated[
        float,
        typer.Option(
            help="From the second sweep on, H and M move only 1 - D of the way to their update (damping the "
            "messages from Y; 0: full updates). A departure from the paper.",
            **option_range(ParserModelConfig, "damping"),
            rich_help_panel="Recipe",
        ),
    ] = ParserModelConfig.damping,
    beta2: Annotated[
        float,
        typer.Option(
            help="AdamW's beta2 (beta1 is 0.9).", **option_range(TrainOptions, "beta2"), rich_help_panel="Recipe"
        ),
    ] = TrainOptions.beta2,
    select_by: Annotated[
        SelectBy,
        typer.Option(
            help="The dev score that picks the epoch kept (ties broken by the other).", rich_help_panel="Recipe"
        ),
    ] = SelectBy(TrainOptions.select_by),
    epochs: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Passes over the training data at most; --patience and --max-minutes may stop it sooner "
            "(default: 1000 with a dev set; 30 without one, nothing then telling when learning stops).",
            **option_range(TrainOptions, "epochs"),
            rich_help_panel="Training",
            show_default=False,
        ),
    ] = None,
    lr: Annotated[
        float,
        typer.Option(
            help="Learning rate (UNN and scratch encoder).",
            **option_range(TrainOptions, "lr"),
            rich_help_panel="Training",
        ),
    ] = TrainOptions.lr,
    encoder_lr: Annotated[
        float,
        typer.Option(
            help="Learning rate of a pretrained encoder.",
            **option_range(TrainOptions, "encoder_lr"),
            rich_help_panel="Training",
        ),
    ] = TrainOptions.encoder_lr,
    batch_tokens: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Padded tokens per batch (default: from the training data, 500 with the scratch encoder under "
            "100,000 words, else 1000).",
            **option_range(TrainOptions, "batch_tokens"),
            rich_help_panel="Training",
            show_default=False,
        ),
    ] = None,
    accumulate: Annotated[
        int,
        typer.Option(
            help="Batches per optimizer step.", **option_range(TrainOptions, "accumulate"), rich_help_panel="Training"
        ),
    ] = TrainOptions.accumulate,
    patience: Annotated[
        int,
        typer.Option(
            help="Stop after this many epochs without dev improvement (--schedule plateau: start the decay then).",
            **option_range(TrainOptions, "patience"),
            rich_help_panel="Training",
        ),
    ] = TrainOptions.patience,
    schedule: Annotated[
        ScheduleName,
        typer.Option(
            help="How training ends: 'plateau' keeps the learning rate until --patience epochs bring no better "
            "dev score (or only the decay still fits in --epochs or --max-minutes), then decays it to zero over a "
            "fifth of the epochs trained and stops; 'decay' lowers it linearly to zero at --epochs (or the end of "
            "--max-minutes), --patience stopping it sooner.",
            rich_help_panel="Training",
        ),
    ] = ScheduleName(TrainOptions.schedule),
    max_minutes: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            help="Time budget of the whole training, evaluations included: the parser trains for at most 85% of it "
            "and the tokenizer for what is left (skipped when under 5 seconds are left).",
            min=0.0,
            rich_help_panel="Training",
        ),
    ] = None,
    clip: Annotated[
        float,
        typer.Option(
            help="Gradient norm clipping (0: none).", **option_range(TrainOptions, "clip"), rich_help_panel="Training"
        ),
    ] = TrainOptions.clip,
    ema: Annotated[
        float,
        typer.Option(
            help="Decay of a moving average of the weights that is evaluated and saved, in [0, 1) (e.g. 0.999; 0: "
            "off).",
            **option_range(TrainOptions, "ema"),
            rich_help_panel="Training",
        ),
    ] = TrainOptions.ema,
    seed: Annotated[
        int,
        typer.Option(
            help="Seeds initialisation, batches and dropout.",
            **option_range(TrainOptions, "seed"),
            rich_help_panel="Training",
        ),
    ] = TrainOptions.seed,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].", rich_help_panel="Run")] = "auto",
    precision: in_panel(PrecisionOption, "Run") = Precision.auto,
    threads: in_panel(ThreadsOption, "Run") = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the interrupted or finished run in OUTPUT from its checkpoint.pt.", rich_help_panel="Run"
        ),
    ] = False,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace the model or checkpoint that OUTPUT holds (without it such an OUTPUT is refused).",
            rich_help_panel="Run",
        ),
    ] = False,
    nproc: Annotated[
        int,
        typer.Option(
            help="Processes for distributed data-parallel training (launches torchrun).", min=1, rich_help_panel="Run"
        ),
    ] = 1,
    tokenizer_steps: Annotated[
        int,
        typer.Option(
            help="Updates of the tokenizer and sentence splitter trained after the parser, for raw text "
            "(at most 20 passes over the training text; 0: none, raw text is then split by rules).",
            min=0,
            rich_help_panel="Training",
        ),
    ] = 1000,
    progress: Annotated[bool, typer.Option(help="Show progress bars.", rich_help_panel="Run")] = True,
    teacher: Annotated[
        Path | None,
        typer.Option(
            help="Distil a trained parser or ensemble (a model directory) into this one: the student also learns "
            "the teacher's arc marginals and label probabilities. It must share the treebank's relation labels.",
            rich_help_panel="Distillation",
        ),
    ] = None,  # noqa: UP045
    teacher_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the teacher's targets in the arc and relation losses (the gold tree's: 1 minus it).",
            **option_range(TrainOptions, "teacher_weight"),
            rich_help_panel="Distillation",
        ),
    ] = TrainOptions.teacher_weight,
    teacher_temperature: Annotated[
        float,
        typer.Option(
            help="The teacher's arc scores and label scores are divided by this before its distributions are "
            "taken (above 1: softer targets, more than the gold tree where the teacher is sure).",
            **option_range(TrainOptions, "teacher_temperature"),
            rich_help_panel="Distillation",
        ),
    ] = TrainOptions.teacher_temperature,
    unlabeled: Annotated[
        list[Path] | None,
        typer.Option(
            help="Text without trees to train on as the teacher parses it (repeatable; read as --unlabeled-format).",
            rich_help_panel="Distillation",
        ),
    ] = None,  # noqa: UP045
    unlabeled_format: Annotated[
        InputFormat,
        typer.Option(
            help="What the --unlabeled files hold: raw text (split by the teacher's tokenizer), one tokenized "
            "sentence per line, or CoNLL-U (its words only).",
            rich_help_panel="Distillation",
        ),
    ] = InputFormat.text,
) -> None:
    """Train a parser on a UD treebank; the best epoch on dev is kept in the model directory, with a tokenizer
    learnt from the same treebank. With --teacher, the parser is a student distilled from a trained parser or
    ensemble (--unlabeled adds text that the teacher parses)."""
    import torch

    from unnparse.output_dir import claim_output_dir, lock_environment
    from unnparse.parser.loading import MODELS_DIR
    from unnparse.parser.parser import Parser, default_config, resolve_device
    from unnparse.parser.training import epoch_table, train_parser
    from unnparse.parser.treebank import read_treebank, treebank_files
    from unnparse.runtime import precision_name, resolve_precision, set_threads
    from unnparse.training.checkpoints import CHECKPOINT
    from unnparse.training.distributed import exit_process, init_from_env, shutdown

    chosen = _with_recipe(
        ctx,
        recipe,
        encoder,
        {
            "update_order": update_order.value,
            "head_bias": head_bias,
            "arc_init": arc_init.value,
            "x_dropout": x_dropout,
            "rel_detach": rel_detach,
            "upos_loss": upos_loss,
            "hidden": hidden,
            "dropout": dropout,
            "beta2": beta2,
            "clip": clip,
            "select_by": select_by.value,
            "patience": patience,
            "lr": lr,
            "encoder_lr": encoder_lr,
            "schedule": schedule.value,
        },
    )
    given = {"lstm_layers": lstm_layers, "batch_tokens": batch_tokens}  # None: chosen from the training data
    provisional = {**LARGE_OPTIONS, **{k: v for k, v in given.items() if v is not None}}  # for the checks
    if tag_layer and (encoder != "scratch" or (lstm_layers is not None and tag_layer > lstm_layers)):
        fail(f"--tag-layer {tag_layer} needs --encoder scratch with at least {tag_layer} --lstm-layers")
    if treebank is None and not train_files:
        fail("give --treebank NAME or --train FILE (and --dev FILE)")
    if unlabeled and teacher is None:
        fail("--unlabeled text is parsed by a teacher: give --teacher MODEL_DIR too")
    for path in unlabeled or ():
        if not path.is_file():
            fail(f"{path}: no such file (--unlabeled)")
    # every setting is checked before any data is read or folder claimed
    model_options = dict(
        encoder=encoder,
        unn_iter=unn_iter,
        hidden=chosen["hidden"],
        rel_hidden=rel_hidden,
        dropout=chosen["dropout"],
        pooling=pooling.value,
        freeze_encoder=freeze_encoder,
        lstm_hidden=lstm_hidden,
        lstm_layers=provisional["lstm_layers"],
        char_encoder=char_encoder.value,
        upos_loss=chosen["upos_loss"],
        xpos_loss=xpos_loss,
        feats_loss=feats_loss,
        lemma_loss=lemma_loss,
        rel_from_x=rel_from_x,
        rel_distance=rel_distance,
        arc_position=arc_position,
        tag_layer=tag_layer,
        update_order=chosen["update_order"],
        head_bias=chosen["head_bias"],
        x_dropout=chosen["x_dropout"],
        arc_init=chosen["arc_init"],
        rel_detach=chosen["rel_detach"],
        damping=damping,
        tag_features=tag_features.value,
        tag_feature_dim=tag_feature_dim,
    )
    config = default_config(**model_options)
    opts = TrainOptions(
        epochs=epochs or TrainOptions.epochs,
        lr=chosen["lr"],
        encoder_lr=chosen["encoder_lr"],
        batch_tokens=provisional["batch_tokens"],
        patience=chosen["patience"],
        seed=seed,
        max_minutes=parser_minutes(max_minutes, tokenizer_steps),
        clip=chosen["clip"],
        accumulate=accumulate,
        ema=ema,
        precision=precision.value,
        teacher_weight=teacher_weight,
        teacher_temperature=teacher_temperature,
        beta2=chosen["beta2"],
        select_by=chosen["select_by"],
        schedule=chosen["schedule"],
    )
    out_dir = output or MODELS_DIR / (treebank or Path(train_files[0]).stem.replace("-ud-train", ""))
    check_output_dir(out_dir)
    lock = held_for_command(claim_output_dir(out_dir, resume=resume, overwrite=overwrite))
    relaunch_if_asked(nproc, env=lock_environment(lock))
    set_threads(threads)
    files = treebank_files(treebank, data_dir, train=train_files or (), dev=dev_file, progress=progress)
    data = read_treebank(files)
    train_sents, dev_sents = data.train, data.dev
    if os.environ.get("RANK", "0") == "0":
        err_console.print(_summary_table("data", data.summary))
    if not dev_sents:
        if epochs is None:
            opts = dataclasses.replace(opts, epochs=EPOCHS_WITHOUT_DEV)
        warn(f"no dev set: the last epoch is kept, after {opts.epochs:,} epochs")
    if None in given.values():
        train_words = sum(f.words for f in data.summary if f.split == "train")  # counted as the files were read
        from_data = options_from_data(train_words, encoder)
        picked = {k: v for k, v in from_data.values.items() if given[k] is None}
        if encoder != "scratch":
            picked.pop("lstm_layers", None)  # a pretrained encoder has no BiLSTM
        if tag_layer > picked.get("lstm_layers", tag_layer):
            fail(f"--tag-layer {tag_layer} needs at least {tag_layer} --lstm-layers: give --lstm-layers")
        if "lstm_layers" in picked:
            config = default_config(**{**model_options, "lstm_layers": picked["lstm_layers"]})
        if "batch_tokens" in picked:
            opts = dataclasses.replace(opts, batch_tokens=picked["batch_tokens"])
        if picked and os.environ.get("RANK", "0") == "0":
            shown = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in picked.items())
            err_console.print(f"from the data ({from_data.reason}): {shown}", soft_wrap=True)
    dist = init_from_env(resolve_device(device))
    dev_device = dist.device
    warn_precision(precision, dev_device)
    teacher_model, unlabeled_sents = _load_teacher(teacher, unlabeled or [], unlabeled_format, dev_device)
    if not dist.is_main:
        progress = False
    config["treebank"] = treebank
    torch.manual_seed(seed)
    parser = Parser.build(config, train_sents, trust_remote_code=trust_remote_code)
    parser.model.to(dev_device)
    n_params = sum(p.numel() for p in parser.model.parameters())
    if dist.is_main:
        err_console.print(
            f"model: encoder={encoder} K={unn_iter} hidden={chosen['hidden']} parameters={n_params:,} "
            f"device={dev_device} recipe={recipe.value} "
            f"precision={precision_name(resolve_precision(precision.value, dev_device))} "
            f"relations={len(parser.featurizer.rels) - 1} → {out_dir}"
        )
    started = time.monotonic()  # the --max-minutes budget, parser and tokenizer together
    try:
        result = train_parser(
            parser,
            train_sents,
            dev_sents,
            opts,
            out_dir,
            resume=resume,
            console=err_console,
            progress=progress,
            dist=dist,
            teacher=teacher_model,
            unlabeled=unlabeled_sents,
        )
    except KeyboardInterrupt:
        interrupted(out_dir / CHECKPOINT)
    finally:
        shutdown()
    if dist.is_main:
        err_console.print(epoch_table(result.history, best_epoch=result.best_epoch))
        err_console.print(f"best epoch {result.best_epoch} saved to {out_dir}")
        if tokenizer_steps:
            budget = seconds_left(max_minutes, started)
            _train_tokenizer_into(out_dir, train_sents, dev_sents, tokenizer_steps, dev_device, seed, budget)
    if dist.distributed:
        exit_process(0)


def _with_recipe(ctx: typer.Context, recipe: Recipe, encoder: str, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` (option name -> value) with those of ``recipe`` in place of the ones not given on the command
    line (:func:`unnparse.parser.config.recipe_values`)."""
    chosen = dict(values)
    for name, value in recipe_values(recipe.value, encoder).items():
        source = ctx.get_parameter_source(name)  # typer's own click or the click package: compared by name
        if source is None or source.name == "DEFAULT":
            chosen[name] = value
    return chosen


def _load_teacher(
    path: Path | None, unlabeled: list[Path], unlabeled_format: InputFormat, device: torch.device
) -> tuple[Predictor | None, list[Sentence]]:
    """The teacher model of ``--teacher`` (None without one) and the sentences of the ``--unlabeled`` files (read
    whole: the teacher's targets for them are kept in memory anyway)."""
    if path is None:
        return None, []
    from unnparse.parser.loading import load

    model = load(path, device)
    sentences: list[Sentence] = []
    for file in unlabeled:
        with open(file, "rb") as raw:
            sentences.extend(model.input_sentences(raw, unlabeled_format.value, name=str(file)))
    if unlabeled:
        words = sum(len(s) for s in sentences)
        err_console.print(f"unlabelled text: {len(sentences):,} sentences, {words:,} words ({len(unlabeled)} file(s))")
    return model, sentences


def _train_tokenizer_into(
    model_dir: Path,
    train_sents: list[Sentence],
    dev_sents: list[Sentence],
    steps: int,
    device: torch.device,
    seed: int,
    max_seconds: float | None = None,
) -> None:
    """Train a tokenizer for the model in ``model_dir`` and keep it or not
    (:func:`~unnparse.text.tokenizer_choice.train_and_choose_tokenizer`), saying which and why."""
    from unnparse.text.tokenizer_choice import train_and_choose_tokenizer

    decision = train_and_choose_tokenizer(
        model_dir,
        train_sents,
        dev_sents,
        steps=steps,
        seed=seed,
        device=device,
        max_seconds=max_seconds,
        log=err_console.print,
    )
    if decision.outcome == "skipped":
        warn(decision.message, label="tokenizer not trained:")
    elif decision.outcome == "dropped":
        warn(decision.message, label="tokenizer not kept:")
    else:
        err_console.print(decision.message)


@app.command("train-tokenizer", cls=Command)
@user_errors
def train_tokenizer_command(
    model: Annotated[Path, typer.Option(help="Model directory to add the tokenizer to (replacing its own).")],
    treebank: Annotated[Optional[str], typer.Option(help="UD treebank name, e.g. UD_Czech-PDT.")] = None,  # noqa: UP045
    data_dir: DataDir = None,
    train_files: Annotated[Optional[list[Path]], typer.Option("--train", help="Training CoNLL-U file(s).")] = None,  # noqa: UP045
    dev_file: Annotated[Optional[Path], typer.Option("--dev", help="Development CoNLL-U file.")] = None,  # noqa: UP045
    steps: Annotated[int, typer.Option(help="Updates (at most 20 passes over the training text).", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="Seeds the tokenizer's initialisation and batches.")] = 1,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    threads: ThreadsOption = None,
    max_minutes: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(help="Time budget, reading the treebank and evaluations included.", min=0.0),
    ] = None,
) -> None:
    """Train the tokenizer and sentence splitter of a parser (for raw text) on a treebank's text."""
    started = time.monotonic()
    from unnparse.model_files import load_config
    from unnparse.output_dir import OutputLock
    from unnparse.parser.parser import resolve_device
    from unnparse.parser.treebank import read_treebank, treebank_files
    from unnparse.runtime import set_threads

    set_threads(threads)
    load_config(model)  # a model directory, before any work
    held_for_command(OutputLock(model).acquire())  # one writer at a time
    data = read_treebank(treebank_files(treebank, data_dir, train=train_files or (), dev=dev_file), require_heads=False)
    budget = seconds_left(max_minutes, started)
    _train_tokenizer_into(model, data.train, data.dev, steps, resolve_device(device), seed, budget)


@app.command(cls=Command)
@user_errors
def evaluate(
    model: Annotated[Optional[Path], typer.Option(help="Model directory.")] = None,  # noqa: UP045
    treebank: Annotated[Optional[str], typer.Option(help="Evaluate on this treebank's split.")] = None,  # noqa: UP045
    data_dir: DataDir = None,
    split: Annotated[Split, typer.Option(help="Which split of --treebank.")] = Split.test,
    input_file: Annotated[Optional[Path], typer.Option("--input", help="Gold CoNLL-U file to parse and score.")] = None,  # noqa: UP045
    gold: Annotated[Optional[Path], typer.Option(help="Gold CoNLL-U (with --pred: score two files).")] = None,  # noqa: UP045
    pred: Annotated[Optional[Path], typer.Option(help="Predicted CoNLL-U (with --gold).")] = None,  # noqa: UP045
    raw_text: Annotated[
        bool,
        typer.Option(
            "--raw-text",
            help="Parse the gold file's text from scratch (sentence splitting and tokenization included) "
            "instead of its words, and score through the text.",
        ),
    ] = False,
    alignment: Annotated[
        Alignment,
        typer.Option(
            help="words: the files have the same words (accuracies); characters: words aligned through the text, "
            "as in the CoNLL 2018 shared task (F1, also of tokens and sentences); auto: words when they line up.",
        ),
    ] = Alignment.auto,
    tokenizer: TokenizerOption = TokenizerChoice.auto,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    per_relation: Annotated[
        bool, typer.Option("--per-relation", help="Also score each relation (precision, recall, F1 of LAS).")
    ] = False,
    batch_tokens: Annotated[int, typer.Option(help="Words per batch while parsing.", min=1)] = 6000,
    max_words: MaxWordsOption = DEFAULT_MAX_WORDS,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    precision: ParsePrecisionOption = ParsePrecision.auto,
    threads: ThreadsOption = None,
) -> None:
    """Score a parser: UAS, LAS, CLAS, MLAS, BLEX, modifier-list accuracy, exact match (all words, punctuation
    included), tags and lemmas, and every other score of the CoNLL 2018 shared task (--json: all under "scores").

    With a model, the columns it tags (UPOS, XPOS, FEATS, LEMMA) are cleared before parsing and scored too.
    """
    from unnparse.cli import evaluation_report
    from unnparse.conllu.reader import read_conllu
    from unnparse.conllu.sentence import TAG_COLUMNS
    from unnparse.evaluation.scoring import copied_columns, evaluate_parses

    tag_columns: tuple[str, ...] = ()
    if gold is not None or pred is not None:
        if gold is None or pred is None:
            fail("--gold and --pred go together")
        if raw_text:
            fail("--raw-text parses the gold text with a model: give --model with --treebank or --input, not --pred")
        gold_sents, predicted = _read_gold(gold), read_conllu(pred, allow_empty=False)
        source = f"{pred} against {gold}"
        tag_columns = TAG_COLUMNS
        copied = copied_columns(gold_sents, predicted, TAG_COLUMNS)
        if copied:
            names = ", ".join(name.upper() for name in copied)
            warn(
                f"{pred} has the {names} of {gold} word for word: kept from the input, not predicted (their scores "
                "mean nothing); parse with --clear-tags, or score a model with --model, which clears them"
            )
    else:
        from unnparse.parser.loading import load
        from unnparse.parser.treebank import split_file, treebank_files
        from unnparse.runtime import set_threads

        if (treebank is None) == (input_file is None):
            fail("give exactly one of --treebank NAME or --input GOLD.conllu (or --gold G --pred P)")
        if raw_text and alignment is Alignment.words:
            fail("--raw-text scores through the text: use --alignment characters (or auto)")
        if input_file is None:
            input_file = split_file(treebank_files(treebank, data_dir, need_train=False), split.value)
        model_dir = resolve_model(model)
        set_threads(threads)
        parser = load(model_dir, device=device, precision=precision.value)
        gold_sents = _read_gold(input_file)
        predicted, tag_columns = parser.reparse(
            gold_sents,
            raw_text=raw_text,
            tokenizer=tokenizer.value,
            source=str(input_file),
            batch_tokens=batch_tokens,
            max_words=max_words,
            on_split=warn,
        )
        source = f"{model_dir} on the text of {input_file}" if raw_text else f"{model_dir} on {input_file}"
    result = evaluate_parses(
        gold_sents,
        predicted,
        alignment=alignment.value,
        tag_columns=tag_columns,
        per_relation=per_relation,
        log=None if raw_text else err_console.print,
    )
    if as_json:
        out_console.print_json(json.dumps(evaluation_report.evaluation_json(result)))
    else:
        for table in evaluation_report.evaluation_tables(f"evaluation: {source}", result):
            out_console.print(table)


@app.command(cls=Command)
@user_errors
def parse(
    model: Annotated[
        Path | None, typer.Option(help="Model directory (default: $UNNPARSE_MODEL, else the newest under ./models).")
    ] = None,  # noqa: UP045
    input_format: Annotated[
        InputFormat, typer.Option(help="text: raw text; tokenized: one sentence per line; conllu.")
    ] = InputFormat.text,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            help="conllu, json (one object per line), tree (drawn as text), svg (one drawing per sentence, one per "
            "line) or html (a page of drawings to open in a browser; with --marginals arcs show their probability)."
        ),
    ] = OutputFormat.conllu,
    clear_tags: Annotated[
        bool,
        typer.Option(
            help="Empty the UPOS, XPOS, FEATS and LEMMA of CoNLL-U input so that the model predicts them (by default "
            "a value the input has is kept)."
        ),
    ] = False,
    marginals: Annotated[bool, typer.Option(help="Add the arc probabilities Y.")] = False,
    input_file: Annotated[Optional[Path], typer.Option("--input", "-i", help="Input file (default: stdin).")] = None,  # noqa: UP045
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output file, written atomically (default: stdout).")
    ] = None,  # noqa: UP045
    batch_tokens: Annotated[int, typer.Option(help="Words per batch while parsing.", min=1)] = 4000,
    max_words: MaxWordsOption = DEFAULT_MAX_WORDS,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda[:N].")] = "auto",
    precision: ParsePrecisionOption = ParsePrecision.auto,
    shard: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Parse only shard I of N (e.g. 0/4), for several processes; see merge-shards."),
    ] = None,
    shard_block: Annotated[int, typer.Option(help="Sentences per block dealt to the shards.", min=1)] = 1000,
    progress: Annotated[
        Optional[bool],  # noqa: UP045
        typer.Option(
            "--progress/--no-progress",
            help="Show sentences parsed and their rate on stderr [default: when writing --output and stderr is a "
            "terminal].",
            show_default=False,
        ),
    ] = None,
    devices: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Parse on several devices at once, e.g. cuda:0,cuda:1: one process per device, each on a shard of "
            "--input FILE, merged in input order when all are done."
        ),
    ] = None,
    tokenizer: TokenizerOption = TokenizerChoice.auto,
    threads: ThreadsOption = None,
) -> None:
    """Parse text, tokenized sentences or CoNLL-U from stdin (or --input), streaming the output."""
    from unnparse.parser.parse_jobs import ParseOptions, parse_file, parse_on_devices

    if output_file is not None:
        check_output_file(output_file)
    options = ParseOptions(
        input_format=input_format.value,
        output_format=output_format.value,
        marginals=marginals,
        batch_tokens=batch_tokens,
        max_words=max_words,
        tokenizer=tokenizer.value,
        shard=shard,
        shard_block=shard_block,
        clear_tags=clear_tags,
    )
    if devices is not None:
        if input_file is None:
            fail("--devices needs --input FILE: every device's process reads the file (stdin can be read only once)")
        model_dir = resolve_model(model)
        try:
            names = [name.strip() for name in devices.split(",")]
            count = parse_on_devices(
                model_dir,
                input_file,
                names,
                options,
                output_file=output_file,
                precision=precision.value,
                threads=threads,
            )
        except (FileNotFoundError, RuntimeError, ValueError) as err:
            fail(str(err))
        if count == 0:
            err_console.print(f"note: {input_file} holds no sentences: nothing to parse", soft_wrap=True)
        else:
            err_console.print(f"{count:,} sentences parsed on {len(names)} devices ({', '.join(names)})")
        return
    from unnparse.parser.loading import load
    from unnparse.runtime import set_threads

    if shard is not None:
        from unnparse.parser.sharding import parse_shard_spec

        parse_shard_spec(shard)  # a malformed spec fails before the model loads
    model_dir = resolve_model(model)
    set_threads(threads)
    parser = load(model_dir, device=device, precision=precision.value)
    warn_precision(precision, parser.device)
    name = str(input_file) if input_file else "<stdin>"
    if progress is None:  # on a terminal the bar would mix with parses written to stdout
        progress = output_file is not None and err_console.is_terminal
    with _parse_progress(progress) as bar:
        task = bar.add_task("parsing", total=None, words=0)
        done = parse_file(
            parser,
            input_file if input_file is not None else sys.stdin.buffer,
            output_file if output_file is not None else sys.stdout,
            options,
            name=name,
            on_parsed=lambda count: bar.update(task, completed=count.sentences, words=count.words),
            on_split=warn,
            on_warning=warn,
        )
    if done.sentences == 0 and shard is None:  # as `cat` or UDPipe: empty in, empty out
        err_console.print(f"note: {name} holds no sentences: nothing to parse", soft_wrap=True)


def _parse_progress(enabled: bool):
    """A bar without a total (the input streams): sentences and words parsed so far, sentences per second."""
    from rich.progress import Progress, ProgressColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
    from rich.text import Text

    class SentenceRate(ProgressColumn):
        def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
            return Text(f"{task.speed:,.0f} sentences/s" if task.speed else "")

    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.completed:,.0f} sentences, {task.fields[words]:,} words"),
        SentenceRate(),
        TimeElapsedColumn(),
        console=err_console,
        disable=not enabled,
    )


app.command("serve", cls=Command)(user_errors(serve))


@app.command(cls=Command)
@user_errors
def ensemble(
    models: Annotated[list[Path], typer.Argument(help="Two or more parser model directories (same treebank).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="New directory for the ensemble.")],
    threads: ThreadsOption = None,
) -> None:
    """Combine parsers trained on the same treebank into one model that parses with all of them.

    The ensemble decodes the best tree of the members' mean arc scores and takes the most probable label on
    average; use it like any model (--model DIR). Train the members side by side, e.g. with --threads 1 and
    different --seed or --char-encoder.
    """
    from unnparse.parser.ensemble import combine_parsers
    from unnparse.runtime import set_threads

    check_output_dir(output)
    set_threads(threads)
    out = combine_parsers(models, output)
    err_console.print(f"ensemble of {len(models)} parsers written to {out}")


@app.command("merge-shards", cls=Command)
@user_errors
def merge_shards_command(
    outputs: Annotated[list[Path], typer.Argument(help="Outputs of --shard 0/N … N-1/N, in shard order.")],
    output_format: Annotated[OutputFormat, typer.Option(help="Format the shards were written in.")] = (
        OutputFormat.conllu
    ),
    shard_block: Annotated[int, typer.Option(help="The --shard-block the shards used.", min=1)] = 1000,
    output_file: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Merged file, written atomically (default: stdout)."),
    ] = None,
) -> None:
    """Merge the outputs of `parse --shard I/N` back into the input order."""
    from unnparse.io_utils import atomic_output
    from unnparse.parser.output_formats import STREAMABLE_FORMATS
    from unnparse.parser.sharding import merge_shards

    if output_format.value not in STREAMABLE_FORMATS:
        fail(f"merge-shards merges {', '.join(STREAMABLE_FORMATS)}; parse shards in one of those")
    for path in outputs:
        if not path.is_file():
            fail(f"{path}: no such file")
    if output_file is not None:
        check_output_file(output_file)
    records = merge_shards(outputs, output_format.value, block=shard_block)
    if output_file is not None:
        with atomic_output(output_file, "w") as fh:
            fh.writelines(records)
    else:
        sys.stdout.writelines(records)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
