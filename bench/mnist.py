"""MNIST bench: the convolutional UNN of §3 trained with `unn mnist train`, then `evaluate` and `prototypes`.

Runs each command in a fresh process (one CPU thread unless told otherwise) and writes its section of
BENCHMARKS.md: seconds per epoch and the share of it spent outside the model (batch indexing and conversion),
dev and test accuracy, and whether the model classifies its own prototypes as the right digits. The variants
(untied baseline of Table 3, y initialisations of Table 5, the k = 1, γ = 0 baseline) run on a subset.

    OMP_NUM_THREADS=1 .venv/bin/python bench/mnist.py --epochs 2                 # what fits a shared CPU
    .venv/bin/python bench/mnist.py --epochs 20 --threads 0 --variant-limit 0    # the long version
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import write_section  # noqa: E402

UNN = str(ROOT / ".venv" / "bin" / "unn")


def default_data_dir() -> Path:
    """``$UNNPARSE_DATA/mnist``, else the project's shared copy beside the checkout."""
    env = os.environ.get("UNNPARSE_DATA")
    return Path(env) / "mnist" if env else Path("..") / "shared" / "mnist"


def run(args: list[str], threads: int) -> tuple[str, float]:
    """Run ``unn ARGS``; return (stdout, CPU seconds of the process)."""
    cmd = [UNN, *args]
    print("+", shlex.join(["unn", *args]), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads or os.cpu_count())}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(cmd, env=env, text=True, capture_output=True, cwd=ROOT)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"command failed ({done.returncode}): {shlex.join(cmd)}\n{done.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, cpu


def bench_one(name: str, train_args: list[str], data_dir: Path, out: Path, threads: int) -> dict:
    """Train, evaluate and draw prototypes for one configuration."""
    model = out / name
    out = ROOT / out  # the commands run in the repository root; paths in them stay as given
    common = ["--data-dir", str(data_dir), "--threads", str(threads)]
    train_cmd = ["mnist", "train", *train_args, *common, "--output", str(model), "--device", "cpu", "--no-progress"]
    start = time.perf_counter()
    _, cpu = run(train_cmd, threads)
    wall = time.perf_counter() - start
    stdout, _ = run(["mnist", "evaluate", "--model", str(model), *common, "--json"], threads)
    report = json.loads(stdout)
    training = json.loads((out / name / "config.json").read_text())["training"]
    history = training["history"]
    row = {
        "name": name,
        "command": shlex.join(["unn", *train_cmd]),
        "epochs": len(history),
        "images": history[0]["images"],
        "epoch_seconds": sum(h["seconds"] for h in history) / len(history),
        "data_share": sum(h["data_seconds"] for h in history) / sum(h["seconds"] for h in history),
        "process_cpu_seconds": cpu,
        "process_wall_seconds": wall,
        "dev": training["best_dev_accuracy"],
        "test": report["accuracy"],
        "prototypes": report["prototypes_recognised"],
        "parameters": report["parameters"],
    }
    if not report["untied"]:
        png = model.parent / f"{name}-prototypes.png"
        run(["mnist", "prototypes", "--model", str(model), "--output", str(png)], threads)
        row["png"] = str(png)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=default_data_dir())
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the main run (full training data)")
    parser.add_argument("--unn-iter", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: all cores)")
    parser.add_argument("--variant-epochs", type=int, default=2)
    parser.add_argument("--variant-limit", type=int, default=10_000, help="training images of each variant (0: all)")
    parser.add_argument("--no-variants", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("models") / "bench-mnist", help="relative to the repo")
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    args = parser.parse_args()
    k = str(args.unn_iter)
    main_args = ["--unn-iter", k, "--gamma", "0.1", "--order", "fb", "--epochs", str(args.epochs)]
    rows = [bench_one(f"unn-k{k}-fb", main_args, args.data_dir, args.out, args.threads)]
    if not args.no_variants:
        limit = ["--train-limit", str(args.variant_limit)] if args.variant_limit else []
        common = ["--epochs", str(args.variant_epochs), *limit]
        variants = {
            "baseline-k1-gamma0": ["--unn-iter", "1", "--gamma", "0", "--order", "fw"],
            f"untied-k{k}": ["--untied", "--unn-iter", k, "--order", "fw"],
            f"unn-k{k}-fb-subset": ["--unn-iter", k, "--gamma", "0.1", "--order", "fb"],
            f"unn-k{k}-fb-yrandom": ["--unn-iter", k, "--gamma", "0.1", "--order", "fb", "--y-init", "random"],
            f"unn-k{k}-fb-yuniform": ["--unn-iter", k, "--gamma", "0.1", "--order", "fb", "--y-init", "uniform"],
        }
        rows += [bench_one(n, [*a, *common], args.data_dir, args.out, args.threads) for n, a in variants.items()]
    if not args.no_write:
        write_section("mnist", "MNIST (convolutional UNN, §3)", report(rows, args))


def report(rows: list[dict], args: argparse.Namespace) -> str:
    """The Markdown of this bench's section."""
    threads = args.threads or os.cpu_count()
    lines = [
        f"Run on {date.today().isoformat()} with torch {torch.__version__}, {threads} CPU thread(s), "
        f"{os.cpu_count()} cores on the machine (load average {os.getloadavg()[0]:.2f} at the end). Command:",
        "",
        "```",
        f"OMP_NUM_THREADS={threads} .venv/bin/python bench/mnist.py " + shlex.join(sys.argv[1:]),
        "```",
        "",
        "Each row ran the `unn mnist train` command below, then `unn mnist evaluate --json` and `unn mnist "
        "prototypes`. *s/epoch*: wall time of the training loop per epoch (one thread: ≈ CPU time); *data*: its "
        "share spent outside the model (batch indexing, uint8→float, binarizing); *CPU*: CPU seconds of the whole "
        "training process (start-up and dev evaluation included); *protos*: digits whose generated prototype the "
        "model classifies as that digit (target ≥ 9/10). Test accuracy is on the 10,000 MNIST test images.",
        "",
        "| run | train images × epochs | params | s/epoch | data | CPU (s) | dev acc | test acc | protos |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        protos = "–" if r["prototypes"] is None else f"{r['prototypes']}/10"
        lines.append(
            f"| {r['name']} | {r['images']} × {r['epochs']} | {r['parameters']} | {r['epoch_seconds']:.1f} | "
            f"{100 * r['data_share']:.1f}% | {r['process_cpu_seconds']:.0f} | {r['dev']:.2f} | {r['test']:.2f} | "
            f"{protos} |"
        )
    lines += ["", "Commands:", "", "```"] + [r["command"] for r in rows] + ["```"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
