"""Data-parallel `unn mnist train` and `unn seqcomplete train` on the CPU: one process against `--nproc N`.

Arms, alternating within each round: one process with N threads, and N processes (``--nproc N``, gloo) with one
thread each, the same batch size and seed. Reports the median seconds per epoch (rank 0's clock, from the model's
``config.json``), the ratio to the one-process arm measured in the same run, and the last epoch's loss and
accuracy, which should agree between the arms (N processes make the updates of one). Writes the
``data-parallel`` section of BENCHMARKS.md.

    .venv/bin/python bench/data_parallel.py --nproc 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402

UNN = str(ROOT / ".venv" / "bin" / "unn")
MNIST_DIR = ROOT.parent / "shared" / "mnist"


def _train(args: list[str], out: Path, threads: int, nproc: int) -> dict:
    cmd = [UNN, *args, "--output", str(out), "--threads", str(threads), "--device", "cpu", "--no-progress"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{done.stderr}")
    return json.loads((out / "config.json").read_text())["training"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--mnist-images", type=int, default=6000, help="training images (--train-limit)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print the section instead of writing it")
    opts = ap.parse_args()
    n = opts.nproc
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        seq_data = tmp / "seq.npz"
        subprocess.run(
            [UNN, "seqcomplete", "generate", "--output", str(seq_data), "--max-length", "16"],
            check=True,
            capture_output=True,
        )
        jobs = {
            f"unn mnist train (k=3 fb, batch 64, {opts.mnist_images} images)": [
                "mnist", "train", "--data-dir", str(MNIST_DIR), "--epochs", str(opts.epochs),
                "--train-limit", str(opts.mnist_images), "--unn-iter", "3", "--batch-size", "64",
            ],
            "unn seqcomplete train (k=1 fb, d=256, batch 64, runs of length 8-16)": [
                "seqcomplete", "train", "--data", str(seq_data), "--epochs", str(opts.epochs), "--batch-size", "64",
                "--report-test",
            ],
        }  # fmt: skip
        for name, args in jobs.items():
            arms: dict[str, list[dict]] = {f"1 process x {n} threads": [], f"{n} processes x 1 thread": []}
            for r in range(opts.rounds):
                for (label, runs), (threads, nproc) in zip(arms.items(), ((n, 1), (1, n)), strict=True):
                    runs.append(_train(args, tmp / f"m{r}-{threads}-{nproc}", threads, nproc))
                    print(name, label, runs[-1]["history"][-1], file=sys.stderr)
            base = None
            for label, runs in arms.items():
                seconds = statistics.median(h["seconds"] for run in runs for h in run["history"])
                base = base or seconds
                last = runs[-1]["history"][-1]
                acc = last.get("dev_accuracy", last.get("test_accuracy"))
                kind = "dev" if "dev_accuracy" in last else "test"
                rows.append(
                    f"| {name} | {label} | {seconds:.2f} | {seconds / base:.2f} | {last['loss']:.4f} | "
                    f"{acc:.2f} ({kind}) |"
                )
    body = "\n".join(
        [
            f"{measured_on()}: `{command_line()}`. Each arm trains {opts.epochs} epochs, {opts.rounds} rounds "
            "alternating; seconds per epoch are the median over the epochs of all rounds (rank 0's clock), "
            "the ratio is against the one-process arm of the same run. Loss and accuracy are those of the last "
            "epoch of the last round: the same in both arms up to float rounding, since N processes sharing each "
            "batch make the updates of one process.",
            "",
            "| job | arm | s / epoch | ratio | last loss | last accuracy % |",
            "|---|---|---:|---:|---:|---:|",
            *rows,
            "",
            "On a CPU, N processes with one thread each do about what one process does with N threads: the gain "
            "of `--nproc` is on several GPUs or machines, where each process has a device of its own.",
        ]
    )
    if opts.no_write:
        print(body)
    else:
        write_section("data-parallel", "Data-parallel training of the secondary models on the CPU", body)


if __name__ == "__main__":
    main()
