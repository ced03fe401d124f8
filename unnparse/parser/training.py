"""Training a parser: the parser's :class:`~unnparse.training.task.TrainingTask` (token-budget batches, the tree
loss, dev scores, the model directory at every new best) run by the one :class:`~unnparse.training.trainer.Trainer`.

The loop is separate from the network (:mod:`unnparse.parser.model`) and from file formats, as in SuPar's
Model / Parser / Transform split.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from unnparse.conllu.sentence import Sentence
from unnparse.evaluation.attachment import AttachmentScores, score_sentences
from unnparse.parser.batching import inference_batches, shard_batches, shard_pass_weights, token_budget_batches
from unnparse.parser.config import TrainOptions
from unnparse.parser.distillation import (
    TeacherTargets,
    pad_targets,
    targets_fingerprint,
    teacher_labelled,
    teacher_targets,
)
from unnparse.parser.encoders import TransformerEncoder
from unnparse.parser.parser import Parser
from unnparse.parser.predictor import Predictor
from unnparse.runtime import precision_name, resolve_precision
from unnparse.training.checkpoints import CHECKPOINT
from unnparse.training.distributed import DistContext
from unnparse.training.schedules import EpochLinearDecay, PlateauDecay
from unnparse.training.task import Evaluation, Step, TrainingTask
from unnparse.training.trainer import Trainer, TrainerOptions

__all__ = [
    "TrainOptions",
    "what_ends_training",
    "ParserTask",
    "TrainResult",
    "data_fingerprint",
    "evaluate_parser",
    "reparse",
    "run_signature",
    "train_parser",
]

METRICS_LOG = "metrics.json"


@dataclass
class TrainResult:
    """Summary of a finished training run."""

    best_epoch: int
    best_dev: dict[str, float]
    history: list[dict[str, Any]] = field(default_factory=list)


def reparse(parser: Predictor, gold: Sequence[Sentence], *, batch_tokens: int = 6000) -> list[Sentence]:
    """Parse the words of the gold sentences (their annotation is not used): the predictions, in order."""
    return [p.sentence for p in parser.predict(gold, batch_tokens=batch_tokens)]


def evaluate_parser(parser: Predictor, gold: Sequence[Sentence], *, batch_tokens: int = 6000) -> AttachmentScores:
    """Parse the gold sentences' words and score the result against them."""
    return score_sentences(gold, reparse(parser, gold, batch_tokens=batch_tokens))


@torch.no_grad()
def sweep_diagnostics(parser: Parser, gold: Sequence[Sentence], *, batch_tokens: int = 6000) -> dict[str, float]:
    """Whether the sweeps after the first help, on ``gold`` (for K > 1): ``uas_sweep1`` and ``las_sweep1``, the
    scores of the tree decoded after the first sweep (the same weights run for one sweep: sweep 1 of K computes
    exactly that), to compare with ``uas``/``las`` after sweep K; and ``y_to_h`` and ``y_to_m``, the size of the Y
    messages into H and M at the final state relative to the messages from X (root of the summed squares over the
    real words), which a second sweep adds to what X gives."""
    model = parser.model
    k = model.iterations
    model.iterations = 1
    try:
        first = evaluate_parser(parser, gold, batch_tokens=batch_tokens)
    finally:
        model.iterations = k
    model.eval()
    totals: dict[str, float] = {}
    for idx in inference_batches([len(s) for s in gold], batch_tokens):
        batch = parser.featurizer.batch([gold[i] for i in idx], idx, gold=False).to_device(parser.device)
        for key, value in model.y_message_sizes(model(batch, marginals=True), batch).items():
            totals[key] = totals.get(key, 0.0) + float(value)
    ratio = {var: (totals[f"y_to_{var}"] / max(totals[f"x_to_{var}"], 1e-30)) ** 0.5 for var in ("h", "m")}
    return {"uas_sweep1": first.uas, "las_sweep1": first.las, "y_to_h": ratio["h"], "y_to_m": ratio["m"]}


def data_fingerprint(sentences: Sequence[Sentence]) -> str:
    """A short hash of the sentences' words and trees (what a resumed run must train on again)."""
    digest = hashlib.sha256()
    for sentence in sentences:
        digest.update("\t".join(sentence.words).encode("utf-8", errors="surrogatepass"))
        digest.update(repr((sentence.heads, sentence.deprels)).encode("utf-8", errors="surrogatepass"))
        digest.update(b"\n")
    return f"{len(sentences)} sentences, sha256 {digest.hexdigest()[:16]}"


def run_signature(
    parser: Parser, train: Sequence[Sentence], dev: Sequence[Sentence], opts: TrainOptions, world_size: int
) -> dict[str, Any]:
    """The settings that a run continued with ``--resume`` must share with the interrupted one: the network's
    config, the data, and the options that fix the order of the batches and the optimizer's state (the number of
    epochs, the time budget, the learning rate and the patience may change)."""
    config = parser.config
    return {
        "kind": "parser",
        "encoder": dict(config["encoder"]),
        "model": dict(config["model"]),
        "train data": data_fingerprint(train),
        "dev data": data_fingerprint(dev),
        "batch_tokens": opts.batch_tokens,
        "accumulate": opts.accumulate,
        "seed": opts.seed,
        "ema": opts.ema,
        "processes": world_size,
    }


def _without_long_sentences(train: Sequence[Sentence], max_words: int, console: Console | None) -> Sequence[Sentence]:
    """``train`` without its sentences of more than ``max_words`` words (a warning on ``console`` says how many, and
    where the first is): a batch's memory grows with the square of its longest sentence, and a whole-sentence tree
    loss cannot be cut into pieces as parsing can."""
    long = [s for s in train if len(s) > max_words]
    if not long:
        return train
    if console is not None:
        first = long[0]
        console.print(
            f"warning: {len(long):,} training sentence(s) of more than {max_words:,} words left out (the first: "
            f"{first.source}:{first.line}, {len(first):,} words)",
            soft_wrap=True,
        )
    return [s for s in train if len(s) <= max_words]


class ParserTask(TrainingTask):
    """The parser's part of training: token-budget batches of the treebank (sharded over processes), the tree loss,
    dev evaluation by LAS then UAS, and the model directory written at every new best."""

    kind = "parser"
    unit = "words"
    reduction = "mean"
    evaluation_name = "dev"

    def __init__(
        self,
        parser: Parser,
        train: Sequence[Sentence],
        dev: Sequence[Sentence],
        opts: TrainOptions,
        output: Path,
        *,
        dist: DistContext,
        saved_options: dict[str, Any],
        on_batch: Callable[[list[int]], None] | None = None,
        targets: Sequence[TeacherTargets] | None = None,
    ) -> None:
        if targets is not None and len(targets) != len(train):
            raise ValueError(f"{len(targets)} teacher targets for {len(train)} training sentences")
        self.targets = targets
        self._targets_fingerprint = targets_fingerprint(targets) if targets is not None else None
        self.parser = parser
        self.model = parser.model
        self.train, self.dev, self.opts, self.output = train, dev, opts, output
        self.dist = dist
        self.saved_options = saved_options
        self.on_batch = on_batch
        self.lengths = [len(s) for s in train]

    def parameter_groups(self) -> list[dict[str, Any]]:
        enc = self.parser.model.encoder
        if isinstance(enc, TransformerEncoder):
            enc_params = [p for p in enc.parameters() if p.requires_grad]
            ids = {id(p) for p in enc.parameters()}
            rest = [p for p in self.parser.model.parameters() if id(p) not in ids]
            groups = [{"params": rest, "lr": self.opts.lr}]
            if enc_params:
                groups.append({"params": enc_params, "lr": self.opts.encoder_lr})
            return groups
        return [{"params": list(self.parser.model.parameters()), "lr": self.opts.lr}]

    def signature(self) -> dict[str, Any]:
        signature = run_signature(self.parser, self.train, self.dev, self.opts, self.dist.world_size)
        if self._targets_fingerprint is not None:
            signature["teacher targets"] = self._targets_fingerprint
            signature["teacher_weight"] = self.opts.teacher_weight
            signature["teacher_temperature"] = self.opts.teacher_temperature
        return signature

    def epoch_batches(self, epoch: int) -> list[tuple[list[int], float]]:
        """This rank's batches of ``epoch`` with the loss weight of each pass: every rank makes as many (see
        :func:`shard_pass_weights`); a rank whose shard is short re-reads a batch of its own at weight 0."""
        opts, rank, world = self.opts, self.dist.rank, self.dist.world_size
        batches = token_budget_batches(self.lengths, opts.batch_tokens, shuffle=True, seed=opts.seed * 1000 + epoch)
        mine = shard_batches(batches, rank, world)
        weights = shard_pass_weights(len(batches), rank, world)
        return [(mine[i] if w else (mine or [[0]])[0], w) for i, w in enumerate(weights)]

    def prepare(self, batch: list[int], weight: float) -> tuple[Any, int, Any]:
        if self.on_batch is not None and weight:
            self.on_batch(list(batch))
        features = self.parser.featurizer.batch([self.train[j] for j in batch], batch, gold=True)
        words = int(features.lengths.sum()) if weight else 0
        teacher = None
        if self.targets is not None:
            arcs, labels = pad_targets([self.targets[j] for j in batch], features.max_words + 1)
            device = self.parser.device
            teacher = (arcs.to(device, non_blocking=True), labels.to(device, non_blocking=True))
        return features.to_device(self.parser.device), words, teacher

    def step(self, prepared: tuple[Any, int, Any], weight: float) -> Step:
        batch, words, teacher = prepared
        out = self.model(batch)
        loss, arc, rel = self.model.loss(out, batch, teacher=teacher, teacher_weight=self.opts.teacher_weight)
        stats = torch.stack([loss.detach().double(), arc.double(), rel.double()]) * words  # no host sync
        return Step(loss, torch.cat([stats, stats.new_full((1,), float(words))]))

    def evaluate(self) -> Evaluation | None:
        if not self.dev:
            return None
        scores = evaluate_parser(self.parser, self.dev, batch_tokens=self.opts.eval_batch_tokens)
        metrics = scores.as_dict()
        if self.model.iterations > 1:
            metrics.update(sweep_diagnostics(self.parser, self.dev, batch_tokens=self.opts.eval_batch_tokens))
        score = (scores.uas, scores.las) if self.opts.select_by == "uas" else (scores.las, scores.uas)
        return Evaluation(metrics, score)

    def epoch_fields(self, totals: Sequence[float], seconds: float) -> dict[str, Any]:
        if not totals:
            return {"loss": 0.0, "arc_loss": 0.0, "rel_loss": 0.0, "words_per_second": 0.0}
        loss, arc, rel, words = totals
        return {
            "loss": loss / max(words, 1),
            "arc_loss": arc / max(words, 1),
            "rel_loss": rel / max(words, 1),
            "words_per_second": round(words / max(seconds, 1e-9), 1),
        }

    def progress_counts(self, totals: Sequence[float]) -> tuple[float, float]:
        return (totals[0] / max(totals[3], 1), totals[3]) if totals else (0.0, 0.0)

    def describe_epoch(self, record: Mapping[str, Any], best: bool) -> str | None:
        line = f"epoch {record['epoch']}: loss {record['loss']:.3f}, {record['words_per_second']:,.0f} words/s"
        dev = record.get("dev")
        if dev:
            line += f", dev UAS {dev['uas']:.2f} LAS {dev['las']:.2f}"
            if "uas_sweep1" in dev:
                line += f" (after sweep 1: UAS {dev['uas_sweep1']:.2f}; |Y→H|/|X→H| {dev['y_to_h']:.2f})"
        return line + (" (best)" if best else "")

    def keep(self, record: Mapping[str, Any]) -> None:
        dev = dict(record.get("dev", {}))
        self.parser.save(self.output, extra={"training": self.saved_options, "best_epoch": record["epoch"], "dev": dev})


def train_parser(
    parser: Parser,
    train: Sequence[Sentence],
    dev: Sequence[Sentence],
    opts: TrainOptions,
    output: str | Path,
    *,
    resume: bool = False,
    console: Console | None = None,
    progress: bool = True,
    dist: DistContext | None = None,
    log: Callable[[str], None] | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
    clock: Callable[[], float] | None = None,
    teacher: Predictor | None = None,
    unlabeled: Sequence[Sentence] = (),
) -> TrainResult:
    """Train ``parser`` in place with the :class:`~unnparse.training.trainer.Trainer`; the best model on ``dev``
    (by LAS, then UAS; with ``opts.select_by`` "uas" the other way round) is saved to ``output`` with the per-epoch
    metrics (``metrics.json``) and the checkpoint that ``resume`` continues from.

    AdamW (betas 0.9, ``opts.beta2``) with linear warmup over ``opts.warmup`` of the updates (at most one epoch) and
    linear decay to zero on the last update, re-planned to ``opts.max_minutes`` when given. With ``dist`` of several
    processes (launched by torchrun) each trains on a disjoint shard of the batches; only rank 0 evaluates, logs and
    writes. Training sentences of more than ``opts.max_words`` words are left out (a warning names the first).
    ``on_epoch`` receives each epoch's record (see :class:`~unnparse.training.trainer.Trainer`), ``on_batch`` the
    sentence indices of each batch trained here, ``clock`` replaces the time source.

    With a ``teacher`` (a parser or an ensemble, :mod:`unnparse.parser.distillation`) the student also learns the
    teacher's arc marginals and label probabilities (weight ``opts.teacher_weight``), and the ``unlabeled``
    sentences (words only) are added to the training data, parsed by the teacher.
    """
    console = console or Console(stderr=True, markup=False)
    dist = dist or DistContext(device=parser.device)
    out_dir = Path(output)
    train = _without_long_sentences(train, opts.max_words, console if dist.is_main else None)
    targets = None
    labelled = len(train)
    if teacher is not None:
        train, targets = _teach(teacher, parser, train, unlabeled, opts, console if dist.is_main else None)
    elif unlabeled:
        raise ValueError("unlabelled training text needs a teacher to parse it")
    random.seed(opts.seed + dist.rank)
    torch.manual_seed(opts.seed + dist.rank)
    amp_dtype = resolve_precision(opts.precision, parser.device)
    parser.precision = opts.precision  # dev evaluation in the same arithmetic
    saved_options = {**asdict(opts), "precision": precision_name(amp_dtype)}  # what was used, not "auto"
    if teacher is not None:
        saved_options["teacher"] = {
            "kind": teacher.config.get("kind", "parser"),
            "treebank": teacher.config.get("treebank"),
            "unlabeled_sentences": len(train) - labelled,
        }
    task = ParserTask(
        parser, train, dev, opts, out_dir, dist=dist, saved_options=saved_options, on_batch=on_batch, targets=targets
    )
    passes = len(task.epoch_batches(1))
    steps_per_epoch = max(1, math.ceil(passes / opts.accumulate))
    # warmup: a fraction of all updates, at most one epoch; then linear decay to zero at the end of the last epoch,
    # or with a time budget where the budget ends (re-planned after every epoch)
    warmup_steps = max(1, min(int(opts.warmup * steps_per_epoch * opts.epochs), steps_per_epoch))
    budget = opts.max_minutes is not None
    schedule: EpochLinearDecay
    if opts.schedule == "plateau":
        schedule = PlateauDecay(
            float(opts.epochs), warmup_steps, warmup_steps / steps_per_epoch, budget=budget, patience=opts.patience
        )
    else:
        schedule = EpochLinearDecay(float(opts.epochs), warmup_steps, warmup_steps / steps_per_epoch, budget=budget)
    if dist.is_main and console is not None and not resume:
        console.print(f"training ends: {what_ends_training(opts, bool(dev))}", soft_wrap=True)
    trainer_options = TrainerOptions(
        epochs=opts.epochs,
        max_minutes=opts.max_minutes,
        accumulate=opts.accumulate,
        clip=opts.clip,
        betas=(0.9, opts.beta2),
        weight_decay=opts.weight_decay,
        decoupled_weight_decay=True,
        ema=opts.ema,
        precision=amp_dtype,
        patience=opts.patience if opts.schedule == "decay" else None,  # the plateau schedule has its own
        checkpoint=out_dir / CHECKPOINT,
        metrics_file=out_dir / METRICS_LOG,
        progress=progress,
    )
    trainer = Trainer(
        task,
        trainer_options,
        schedule=schedule,
        dist=dist,
        console=console,
        log=log,
        clock=clock or time.perf_counter,
        on_epoch=on_epoch,
    )
    result = trainer.fit(resume=resume)
    return TrainResult(best_epoch=result.best_epoch, best_dev=result.best, history=result.history)


def what_ends_training(opts: TrainOptions, has_dev: bool = True) -> str:
    """One line saying what ends a parser's training with ``opts`` (the first lines of the log say it)."""
    score = f"dev {opts.select_by.upper()}"
    budget = f" or at the end of the {opts.max_minutes:g}-minute budget" if opts.max_minutes is not None else ""
    if opts.schedule == "plateau" and has_dev:
        return (
            f"when {opts.patience} epochs in a row bring no better {score}, the learning rate decays to zero over a "
            f"fifth of the epochs trained (at least 2) and training stops; at most {opts.epochs:,} epochs{budget}"
        )
    early = f"; {opts.patience} epochs without a better {score} stop it sooner" if has_dev else ""
    return f"the learning rate decays linearly to zero at epoch {opts.epochs:,}{budget}{early}"


def _teach(
    teacher: Predictor,
    student: Parser,
    train: Sequence[Sentence],
    unlabeled: Sequence[Sentence],
    opts: TrainOptions,
    console: Console | None,
) -> tuple[list[Sentence], list[TeacherTargets]]:
    """The training sentences (``train``, then ``unlabeled`` as parsed by the teacher) and the teacher's targets
    for each, with a log line saying what was computed and how long it took."""
    started = time.perf_counter()
    taught = list(train)
    if unlabeled:
        taught += teacher_labelled(teacher, unlabeled, batch_tokens=opts.eval_batch_tokens, max_words=opts.max_words)
    targets = teacher_targets(
        teacher,
        taught,
        student.featurizer.rels,
        batch_tokens=opts.eval_batch_tokens,
        temperature=opts.teacher_temperature,
    )
    if console is not None:
        extra = f" ({len(taught) - len(train):,} of them unlabelled text parsed by the teacher)" if unlabeled else ""
        console.print(
            f"teacher: arc marginals and label probabilities of {len(taught):,} training sentences{extra} in "
            f"{time.perf_counter() - started:.1f} s (temperature {opts.teacher_temperature:g}); loss = "
            f"{1 - opts.teacher_weight:g} × gold + {opts.teacher_weight:g} × teacher",
            soft_wrap=True,
        )
    return taught, targets


def epoch_table(history: Sequence[dict[str, Any]], *, best_epoch: int | None = None) -> Table:
    """A rich table of the per-epoch metrics, ``best_epoch`` starred (default: the best by dev LAS, then UAS)."""
    table = Table(title="training")
    for col in ("epoch", "loss", "words/s", "dev UAS", "dev LAS", "dev exact", "best"):
        table.add_column(col, justify="right")
    if best_epoch is None:
        best_epoch = max(
            history, key=lambda r: (r.get("dev", {}).get("las", 0), r.get("dev", {}).get("uas", 0)), default={}
        ).get("epoch")
    for r in history:
        dev = r.get("dev", {})
        table.add_row(
            str(r["epoch"]),
            f"{r['loss']:.3f}",
            f"{r['words_per_second']:,.0f}",
            f"{dev.get('uas', float('nan')):.2f}",
            f"{dev.get('las', float('nan')):.2f}",
            f"{dev.get('exact_match', float('nan')):.2f}",
            "*" if r["epoch"] == best_epoch else "",
        )
    return table
