"""The optimizer's share of a scratch parser's training step on the CPU: torch's default AdamW against the fused one.

Builds the default scratch parser (K=1) for a treebank's training set and measures, in the same run and alternating
the arms: the time of one AdamW step alone (gradients set at random), and training words per second over the same
batches (forward, loss, backward, clipping, step) with ``--threads`` threads. ``unnparse train`` uses the fused
kernel where there is one (``unnparse.runtime.adam``). Writes the ``optimizer`` section of BENCHMARKS.md.

    .venv/bin/python bench/optimizer_step.py --treebank UD_Afrikaans-AfriBooms --rounds 3
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
from unnparse.parser.batching import token_budget_batches  # noqa: E402
from unnparse.parser.conllu_data import read_conllu  # noqa: E402
from unnparse.parser.parser import Parser, default_config  # noqa: E402
from unnparse.parser.treebank import find_treebank  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "ud"
ARMS = {"default AdamW": {}, "fused AdamW": {"fused": True}}
WARMUP_BATCHES = 3


def _optimizer(parser: Parser, options: dict[str, bool]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(parser.model.parameters(), lr=1e-3, betas=(0.9, 0.9), **options)


def step_ms(parser: Parser, options: dict[str, bool], steps: int) -> float:
    """Milliseconds of one optimizer step alone, after three warm-up steps."""
    for p in parser.model.parameters():
        p.grad = torch.randn_like(p) * 1e-3
    optimizer = _optimizer(parser, options)
    for _ in range(3):
        optimizer.step()
    t0 = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - t0) / steps * 1000


def words_per_second(parser: Parser, train: list, batches: list[list[int]], options: dict[str, bool]) -> float:
    """Training words per second over ``batches`` but the first few: forward, loss, backward, clipping, step."""
    model = parser.model.train()
    optimizer = _optimizer(parser, options)
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
    ap.add_argument("--treebank", default="UD_Afrikaans-AfriBooms")
    ap.add_argument("--data-dir", type=Path, default=SHARED)
    ap.add_argument("--batch-tokens", type=int, default=500)
    ap.add_argument("--batches", type=int, default=60, help="training batches timed per arm and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="print only; leave BENCHMARKS.md alone")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    files = find_treebank(args.treebank, args.data_dir)
    train = [s for f in files.train for s in read_conllu(f)]
    lengths = [len(s) for s in train]
    batches = token_budget_batches(lengths, args.batch_tokens, shuffle=True, seed=1)[: args.batches + WARMUP_BATCHES]
    steps: dict[str, list[float]] = {arm: [] for arm in ARMS}
    speed: dict[str, list[float]] = {arm: [] for arm in ARMS}
    n_params = 0
    for r in range(args.rounds):
        for arm, options in ARMS.items():
            torch.manual_seed(0)
            parser = Parser.build(default_config(), train)
            n_params = sum(p.numel() for p in parser.model.parameters())
            steps[arm].append(step_ms(parser, options, 30))
            torch.manual_seed(0)
            parser = Parser.build(default_config(), train)
            speed[arm].append(words_per_second(parser, train, batches, options))
            print(f"round {r + 1} {arm}: step {steps[arm][-1]:.1f} ms, {speed[arm][-1]:,.0f} words/s", flush=True)
    base = "default AdamW"
    rows = [
        f"| {arm} | {statistics.median(steps[arm]):.1f} | {statistics.median(speed[arm]):,.0f} | "
        f"{statistics.median(speed[arm]) / statistics.median(speed[base]):.2f}x |"
        for arm in ARMS
    ]
    body = (
        f"{measured_on(f'{args.threads} thread(s)')}. The default scratch parser (K=1, {n_params / 1e6:.1f} M "
        f"parameters) of {args.treebank}'s training set; the same {args.batches} timed batches of at most "
        f"{args.batch_tokens} tokens per arm; medians of {args.rounds} alternating rounds.\n\n"
        f"Command: `{command_line()}`\n\n"
        "| optimizer | step alone (ms) | training words/s | against default |\n|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n\n`unnparse train`, `unn mnist train` and `unn seqcomplete train` use the fused kernel where the device "
        "and torch build have one (`unnparse.runtime.adam`).\n"
    )
    print(body)
    if not args.no_write:
        write_section("optimizer", "Optimizer step on the CPU", body)


if __name__ == "__main__":
    main()
