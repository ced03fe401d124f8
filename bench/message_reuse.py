"""Training-step speed with and without reusing factor messages (``UNN.infer(reuse_messages=...)``), in one run.

A factor's message is reused until one of the other variables it links changes: in the sequence-completion UNN the
X → Q, K, V messages and the Q-K score message of the second half of a forward-backward sweep; in the MNIST UNN the
convolution of the (observed) image in every sweep after the first; in the parser the X → H and X → M messages of
every sweep after the first. For each model this times training steps (forward, loss, backward, Adam; as the
trainers do) on the same batches with reuse on and off, rounds alternating, after one untimed pass each; the table
gives the median seconds per step and the speed-up. Writes the ``message-reuse`` section of BENCHMARKS.md.

    OMP_NUM_THREADS=1 .venv/bin/python bench/message_reuse.py --threads 1
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402
from unnparse.engine import UNN  # noqa: E402
from unnparse.runtime import adam, denormals_flushed  # noqa: E402

SHARED = ROOT.parent / "shared"


@contextlib.contextmanager
def reuse(enabled: bool) -> Iterator[None]:
    """Make ``reuse_messages`` default to ``enabled`` in every ``UNN.infer`` call of the models (benchmark only)."""
    defaults = UNN.infer.__kwdefaults__
    saved = defaults["reuse_messages"]
    defaults["reuse_messages"] = enabled
    try:
        yield
    finally:
        defaults["reuse_messages"] = saved


def seqcomplete_steps(sweeps: int, n_batches: int) -> Callable[[], None]:
    from unnparse.seqcomplete.data import DataSpec, generate, make_batch
    from unnparse.seqcomplete.model import SeqCompletionUNN, SeqConfig
    from unnparse.seqcomplete.train import masked_loss

    data = generate(DataSpec(vocab=64, min_length=8, max_length=25))
    torch.manual_seed(0)
    model = SeqCompletionUNN(SeqConfig(vocab=64, dim=256, unn_iter=sweeps)).train()
    optimizer = adam(model.parameters(), lr=1e-6)
    index = data.split("train")[torch.randperm(len(data.split("train")), generator=torch.Generator().manual_seed(1))]
    batches = [make_batch(data, index[i * 64 : (i + 1) * 64]) for i in range(n_batches)]

    def run() -> None:
        for batch in batches:
            loss = masked_loss(model, batch, reduction="sum", sweeps=sweeps)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()

    return run


def mnist_steps(sweeps: int, n_batches: int) -> Callable[[], None]:
    from unnparse.mnist.data import binarize, load_mnist, to_float
    from unnparse.mnist.model import MnistConfig, MnistUNN
    from unnparse.mnist.train import batch_loss

    data = load_mnist(SHARED / "mnist", download=False)
    torch.manual_seed(0)
    model = MnistUNN(MnistConfig(unn_iter=sweeps, order="fb")).train()
    optimizer = adam(model.parameters(), lr=1e-6)
    raw = data.train_images[: 64 * n_batches].view(n_batches, 64, 28, 28)
    labels = data.train_labels[: 64 * n_batches].view(n_batches, 64)

    def run() -> None:
        for images, y in zip(raw, labels, strict=True):
            loss = batch_loss(model, to_float(images), binarize(images), y, 0.1)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    return run


def parser_steps(sweeps: int, n_batches: int) -> Callable[[], None]:
    from unnparse.conllu import read_conllu
    from unnparse.parser.batching import token_budget_batches
    from unnparse.parser.parser import Parser, default_config

    train = read_conllu(SHARED / "ud" / "UD_English-ParTUT" / "en_partut-ud-train.conllu")
    torch.manual_seed(0)
    parser = Parser.build(default_config(unn_iter=sweeps), train)
    model = parser.model.train()
    optimizer = adam(model.parameters(), lr=1e-6, decoupled=True, betas=(0.9, 0.9))
    idx = token_budget_batches([len(s) for s in train], 1000, shuffle=True, seed=1)[:n_batches]
    batches = [parser.featurizer.batch([train[i] for i in b], b, gold=True) for b in idx]

    def run() -> None:
        for batch in batches:
            loss = model.loss(model(batch), batch)[0]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()

    return run


@denormals_flushed
def measure(run: Callable[[], None], rounds: int, n_steps: int) -> dict[bool, float]:
    """Median seconds per step with reuse on and off, rounds alternating (after one untimed pass each)."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for enabled in (True, False):
        with reuse(enabled):
            run()
    for r in range(rounds):
        for enabled in (True, False) if r % 2 == 0 else (False, True):
            with reuse(enabled):
                t0 = time.perf_counter()
                run()
                times[enabled].append((time.perf_counter() - t0) / n_steps)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batches", type=int, default=10, help="training steps per timed pass")
    ap.add_argument("--no-write", action="store_true", help="print the table only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = [
        ("sequence completion, d = 256, batch 64, k = 1 fb", lambda: seqcomplete_steps(1, args.batches)),
        ("sequence completion, d = 256, batch 64, k = 3 fb", lambda: seqcomplete_steps(3, args.batches)),
    ]
    if (SHARED / "mnist").is_dir():
        cases.append(("MNIST, batch 64, k = 3 fb", lambda: mnist_steps(3, args.batches)))
    if (SHARED / "ud" / "UD_English-ParTUT").is_dir():
        for k in (1, 3):
            cases.append((f"parser (scratch encoder), EN-ParTUT, 1000 tokens, K = {k}", lambda k=k: parser_steps(k, 4)))
    rows = []
    for name, build in cases:
        run = build()
        steps = 4 if name.startswith("parser") else args.batches
        t = measure(run, args.rounds, steps)
        rows.append(f"| {name} | {1000 * t[False]:.1f} | {1000 * t[True]:.1f} | {t[False] / t[True]:.2f}x |")
        print(rows[-1], flush=True)
    table = "| model, training step | ms, every message computed | ms, messages reused | speed-up |\n"
    table += "|---|---|---|---|\n" + "\n".join(rows)
    body = (
        f"{measured_on(f'{args.threads} CPU thread(s)')} Command:\n\n```\n{command_line()}\n```\n\n"
        "Median time per training step (forward, loss, backward, Adam) over the same batches, with every factor "
        "message computed at every update (`UNN.infer(reuse_messages=False)`) and with a message reused until one "
        f"of its inputs changes (the default); {args.rounds} rounds alternating, after one untimed pass each. Same "
        "results either way (`tests/test_engine.py`).\n\n" + table + "\n\nThe parser at K = 1 has nothing to reuse "
        "(every message is computed once anyway): its row shows how much two equal settings differ in this run.\n"
    )
    if args.no_write:
        print(body)
    else:
        write_section("message-reuse", "Reusing factor messages", body)


if __name__ == "__main__":
    main()
