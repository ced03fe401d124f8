"""Bulk parsing with flat memory: peak RSS of `unnparse parse` on inputs of growing size.

Builds tokenized inputs (one sentence per line) by repeating the sentences of a UD test file, parses each with a
fresh `unnparse parse` process and reports its peak resident memory and throughput. Flat memory means the peak
does not grow with the input.

    .venv/bin/python bench/streaming.py --model models/bench/UD_English-ParTUT-scratch-k1 --sizes 2000 20000
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import write_section  # noqa: E402
from unnparse.conllu import read_conllu  # noqa: E402

RSS_PROBE = (
    "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)
DEFAULT_SOURCE = ROOT.parent / "shared" / "ud" / "UD_English-ParTUT" / "en_partut-ud-test.conllu"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="sentences to repeat")
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000], help="sentences per input")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    lines = [" ".join(s.words) + "\n" for s in read_conllu(args.source)]
    exe = str(ROOT / ".venv" / "bin" / "unnparse")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            src = Path(tmp) / f"in{size}.txt"
            with open(src, "w", encoding="utf-8") as fh:
                for i in range(size):
                    fh.write(lines[i % len(lines)])
            cmd = [
                exe,
                "parse",
                "--model",
                str(args.model),
                "--input-format",
                "tokenized",
                "--input",
                str(src),
                "--output",
                str(Path(tmp) / "out.conllu"),
                "--device",
                "cpu",
            ]
            t0 = time.perf_counter()
            probe = subprocess.run(
                [sys.executable, "-c", RSS_PROBE, *cmd], env=env, check=True, text=True, capture_output=True
            )
            seconds = time.perf_counter() - t0
            rss = float(probe.stdout.split()[-1]) / 1024
            rows.append((size, src.stat().st_size / 2**20, seconds, size / seconds, rss))
            print(rows[-1], flush=True)
    table = "| sentences | input MB | seconds (whole process) | sentences/s | peak RSS MB |\n|---|---|---|---|---|\n"
    table += "\n".join(f"| {n:,} | {mb:.1f} | {s:.1f} | {r:,.0f} | {m:.0f} |" for n, mb, s, r, m in rows) + "\n"
    cmd = ".venv/bin/python bench/streaming.py " + " ".join(sys.argv[1:])
    body = (
        f"Measured {date.today().isoformat()} ({os.cpu_count()} cores, torch {torch.__version__}, "
        f"{args.threads} threads): `unnparse parse --input-format tokenized` on the sentences of "
        f"`{args.source.name}` repeated, one fresh process per size, model `{args.model.name}`.\n\n"
        f"Command: `{cmd}`\n\n" + table
    )
    write_section("streaming", "Bulk parsing memory", body)
    print(body)


if __name__ == "__main__":
    main()
