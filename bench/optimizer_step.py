"""A scratch parser's training step on the CPU: the optimizer kernel and denormal numbers.

Arms, measured in the same run and alternating: torch's default AdamW; the fused AdamW that ``unnparse train``
uses where there is one (``unnparse.runtime.adam``); and the fused AdamW with denormal floats flushed to zero, as
``unnparse train`` runs (``unnparse.runtime.denormals_flushed``). For each arm: the time of one optimizer step alone
(gradients set at random) and training words per second over the same batches (forward, loss, backward, clipping,
step), from a freshly initialised parser and, with ``--model DIR``, from a trained one (its ``checkpoint.pt``:
weights and optimizer moments late in a run, where denormal numbers appear). Writes the ``optimizer`` section of
BENCHMARKS.md.

    .venv/bin/python bench/optimizer_step.py --treebank UD_Telugu-MTG --batch-tokens 1000 \\
        --model models/bench-ensemble/UD_Telugu-MTG-cnn --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._report import command_line, measured_on, write_section  # noqa: E402
from unnparse.conllu import Sentence, read_conllu  # noqa: E402
from unnparse.parser.batching import token_budget_batches  # noqa: E402
from unnparse.parser.parser import Parser, default_config  # noqa: E402
from unnparse.parser.treebank import find_treebank  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "ud"
ARMS = {  # name -> (fused kernel, denormals flushed)
    "default AdamW": (False, False),
    "fused AdamW": (True, False),
    "fused AdamW, denormals flushed": (True, True),
}
WARMUP_BATCHES = 3


def _optimizer(parser: Parser, fused: bool) -> torch.optim.Optimizer:
    options = {"fused": True} if fused else {}
    return torch.optim.AdamW(parser.model.parameters(), lr=1e-5, betas=(0.9, 0.9), **options)


def _parser(train: list[Sentence], model: Path | None, fused: bool) -> tuple[Parser, torch.optim.Optimizer]:
    """A fresh default parser, or the trained one in ``model`` with its optimizer state."""
    if model is None:
        torch.manual_seed(0)
        parser = Parser.build(default_config(), train)
        return parser, _optimizer(parser, fused)
    parser = Parser.load(model)
    optimizer = _optimizer(parser, fused)
    state = torch.load(model / "checkpoint.pt", map_location="cpu", weights_only=True)
    parser.model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    for group in optimizer.param_groups:
        group["lr"] = 1e-5  # a late learning rate; the moments are the run's own
    return parser, optimizer


def step_ms(parser: Parser, fused: bool, steps: int) -> float:
    """Milliseconds of one optimizer step alone, after three warm-up steps."""
    for p in parser.model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = _optimizer(parser, fused)
    for _ in range(3):
        optimizer.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - t0) / steps * 1000


def words_per_second(
    parser: Parser, optimizer: torch.optim.Optimizer, train: list[Sentence], batches: list[list[int]]
) -> float:
    """Training words per second over ``batches`` but the first few: forward, loss, backward, clipping, step."""
    model = parser.model.train()
    words = 0
    t0 = time.perf_counter()
    for i, idx in enumerate(batches):
        if i == WARMUP_BATCHES:  # allocations and kernel choices of the first batches are not timed
            words, t0 = 0, time.perf_counter()
        batch = parser.featurizer.batch([train[j] for j in idx], idx, gold=True)
        out = model(batch)
        loss, _, _ = model.loss(out, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        words += int(batch.lengths.sum())
    return words / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebank", default="UD_Telugu-MTG")
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--model", type=Path, help="a trained parser directory with checkpoint.pt (its late state)")
    ap.add_argument("--batch-tokens", type=int, default=1000)
    ap.add_argument("--batches", type=int, default=40, help="training batches timed per arm and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = find_treebank(args.treebank, args.data_dir)
    train = [s for f in files.train for s in read_conllu(f)]
    lengths = [len(s) for s in train]
    batches = token_budget_batches(lengths, args.batch_tokens, shuffle=True, seed=1)[: args.batches + WARMUP_BATCHES]
    states = {"fresh": None, **({"trained": args.model} if args.model else {})}
    steps: dict[str, list[float]] = {arm: [] for arm in ARMS}
    speed: dict[tuple[str, str], list[float]] = {(s, arm): [] for s in states for arm in ARMS}
    n_params = 0
    for r in range(args.rounds):
        for arm, (fused, flushed) in ARMS.items():
            torch.set_flush_denormal(flushed)
            try:
                parser, _ = _parser(train, None, fused)
                n_params = sum(p.numel() for p in parser.model.parameters())
                steps[arm].append(step_ms(parser, fused, 30))
                for state, model in states.items():
                    parser, optimizer = _parser(train, model, fused)
                    speed[state, arm].append(words_per_second(parser, optimizer, train, batches))
            finally:
                torch.set_flush_denormal(False)
            done = ", ".join(f"{s} {speed[s, arm][-1]:,.0f} words/s" for s in states)
            print(f"round {r + 1} {arm}: step {steps[arm][-1]:.1f} ms, {done}", flush=True)
    base = "default AdamW"

    def cell(state: str, arm: str) -> str:
        mid = statistics.median(speed[state, arm])
        return f"{mid:,.0f} ({mid / statistics.median(speed[state, base]):.2f}x)"

    head = "| training step | optimizer step alone (ms) | " + " | ".join(f"words/s, {s} model" for s in states) + " |"
    rows = [
        f"| {arm} | {statistics.median(steps[arm]):.1f} | " + " | ".join(cell(s, arm) for s in states) + " |"
        for arm in ARMS
    ]
    trained = (
        f" and the trained model `{args.model}` (its own configuration; weights and optimizer moments of its last "
        "epoch)"
    )
    body = (
        f"{measured_on(f'{args.threads} thread(s)')}. The default scratch parser (K=1, {n_params / 1e6:.1f} M "
        f"parameters) on {args.treebank}'s training set, freshly initialised{trained if args.model else ''}; the "
        f"same {args.batches} timed batches of at most {args.batch_tokens} tokens per arm; medians of "
        f"{args.rounds} alternating rounds.\n\n"
        f"Command: `{command_line()}`\n\n"
        + head
        + "\n|"
        + "---|" * (2 + len(states))
        + "\n"
        + "\n".join(rows)
        + "\n\n`unnparse train`, `unn mnist train` and `unn seqcomplete train` use the fused kernel where the device "
        "and torch build have one (`unnparse.runtime.adam`) and flush denormals to zero on the CPU while they "
        "train (`unnparse.runtime.denormals_flushed`).\n"
    )
    print(body)
    if not args.no_write:
        write_section("optimizer", "Training step on the CPU: optimizer kernel and denormal numbers", body)


if __name__ == "__main__":
    main()
