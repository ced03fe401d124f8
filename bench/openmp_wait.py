"""Small inputs and the OpenMP wait policy: how long parsing requests of 1-3 sentences takes, one request at a time
and 32 requests together, with idle OpenMP threads sleeping at once (``OMP_WAIT_POLICY=PASSIVE``), spinning
briefly first (unnparse's default: ``GOMP_SPINCOUNT=2000``) and spinning long (``OMP_WAIT_POLICY=ACTIVE``).

Each setting runs in a fresh process (the runtime reads the variables when torch loads): the requests' sentences
are read first (rule-based tokenization), then parsed with the model loaded; the best of ``--rounds`` is kept.
Writes the ``openmp-wait`` section of BENCHMARKS.md (not with ``--no-report``). The CPU cost beside another job is
``bench/concurrent_parse.py``'s.

    .venv/bin/python bench/openmp_wait.py --model models/UD_English-ParTUT --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402

SETTINGS = {
    "sleep at once (OMP_WAIT_POLICY=PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spin briefly, then sleep (default: GOMP_SPINCOUNT=2000)": {},
    "spin (OMP_WAIT_POLICY=ACTIVE)": {"OMP_WAIT_POLICY": "ACTIVE"},
}

PROBE = """
import io, json, sys, time
import unnparse  # sets the OpenMP variables the environment leaves unset, before torch loads
import torch
from bench.serve_load import build_requests
from unnparse.parser.loading import load
from unnparse.parser.parse_jobs import ParseOptions, read_sentences
model, source, count, threads, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
parser = load(model)
options = ParseOptions(tokenizer="rules")
requests = [list(read_sentences(parser, io.BytesIO(t.encode()), options)) for t in build_requests(source, count, 1)]
alone, together = [], []
for _ in range(rounds):
    t0 = time.perf_counter()
    for sentences in requests:
        list(parser.predict(sentences))
    alone.append((time.perf_counter() - t0) / count)
    t0 = time.perf_counter()
    for i in range(0, count, 32):
        list(parser.predict([s for r in requests[i : i + 32] for s in r]))
    together.append((time.perf_counter() - t0) / count)
print(json.dumps({"alone_ms": 1000 * min(alone), "together_ms": 1000 * min(together)}))
"""


def main() -> None:
    from bench.serve_load import DEFAULT_SOURCE

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, required=True)
    ap.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")}
    rows = {}
    for name, env in SETTINGS.items():
        argv = [str(args.model), str(args.source), str(args.requests), str(args.threads), str(args.rounds)]
        done = subprocess.run(
            [sys.executable, "-c", PROBE, *argv],
            env={**base, **env, "PYTHONPATH": str(ROOT)},
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        rows[name] = json.loads(done.stdout.strip().splitlines()[-1])
        print(name, rows[name], flush=True)
    table = "| idle OpenMP threads | ms per request, one at a time | ms per request, 32 together |\n|---|---|---|\n"
    table += "\n".join(f"| {name} | {r['alone_ms']:.1f} | {r['together_ms']:.1f} |" for name, r in rows.items())
    body = (
        f"{measured_on(f'{args.threads} torch threads')}: `{args.model.name}` parses {args.requests} requests of 1-3 "
        f"sentences of `{args.source.name}` (read first, rule-based tokenization), one request at a time and 32 "
        f"together, best of {args.rounds}; one fresh process per setting.\n\nCommand: `{command_line()}`\n\n{table}\n"
    )
    print(body)
    if not args.no_report:
        write_section("openmp-wait", "Small inputs and the OpenMP wait policy", body)


if __name__ == "__main__":
    main()
