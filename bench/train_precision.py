"""Training speed on the CPU in float32 and in bfloat16 autocast, measured in the same run.

Builds a fresh scratch parser for a treebank and times forward + loss + backward + optimizer step over the first
``--batches`` training batches (token budget 1000, shuffled as in training), for ``--passes`` passes per
precision, alternating float32 and bfloat16. The first pass of each precision includes the one-time cost of new
batch shapes (oneDNN builds kernels per shape); the others show the steady state. Writes the ``train-precision``
section of BENCHMARKS.md.

    .venv/bin/python bench/train_precision.py --treebank UD_English-ParTUT --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402
from unnparse.conllu import read_conllu  # noqa: E402
from unnparse.parser.batching import token_budget_batches  # noqa: E402
from unnparse.parser.parser import Parser, default_config  # noqa: E402
from unnparse.runtime import autocast, cpu_has_native_bf16  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebank", default="UD_English-ParTUT")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    train = read_conllu(next((SHARED / args.treebank).glob("*-ud-train.conllu")))
    torch.manual_seed(0)
    parser = Parser.build(default_config(), train)
    model = parser.model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)  # tiny steps: the network barely changes
    idx = token_budget_batches([len(s) for s in train], 1000, shuffle=True, seed=1)[: args.batches]
    batches = [parser.featurizer.batch([train[i] for i in b], b, gold=True) for b in idx]
    words = sum(int(b.lengths.sum()) for b in batches)
    times: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    for _ in range(args.passes):
        for name, dtype in (("float32", None), ("bfloat16", torch.bfloat16)):
            t0 = time.perf_counter()
            for batch in batches:
                with autocast(torch.device("cpu"), dtype):
                    loss = model.loss(model(batch), batch)[0]
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            times[name].append(time.perf_counter() - t0)
            print(f"{name}: {times[name][-1]:.2f} s", flush=True)
    rows = []
    for name, t in times.items():
        steady = statistics.median(t[1:]) if len(t) > 1 else t[0]
        rows.append(
            f"| {name} | {words / t[0]:,.0f} | {words / steady:,.0f} | {times['float32'][0] / t[0]:.2f} | "
            f"{statistics.median(times['float32'][1:] or times['float32']) / steady:.2f} |"
        )
    body = (
        f"{measured_on(f'native bfloat16: {_yes(cpu_has_native_bf16())}')}, nothing else running: training steps of "
        f"a fresh default scratch parser on the first {len(batches)} batches of {args.treebank} ({words:,} words), "
        f"{args.threads} threads, {args.passes} passes per precision, alternating.\n\nCommand: `{command_line()}`\n\n"
        "| precision | words/s, first pass | words/s, later passes (median) | speed-up, first | speed-up, later |\n"
        "|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write_section("train-precision", "Training speed on the CPU: float32 and bfloat16", body)
    print(body)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


if __name__ == "__main__":
    main()
