"""Training speed of the scratch parser on the CPU: the working tree against earlier revisions, in the same run.

Each revision (a git revision, checked out into a temporary worktree, or ``.`` for the working tree) runs in its own
Python process that imports the package from that tree: it builds a fresh default scratch parser (seed 0) for a
treebank and times what one training step does (forward, loss, backward, gradient clipping, fused AdamW with
denormals flushed, as ``unnparse train``) over the first ``--batches`` batches of at most 1000 tokens, after one
untimed pass. Rounds alternate the revisions, so that a machine whose speed drifts affects them alike; the table
gives each revision's median words per second and its ratio to the first revision. Writes the
``train-step-speed`` section of BENCHMARKS.md.

    .venv/bin/python bench/train_step_speed.py --revisions HEAD~1 . --treebank UD_English-ParTUT --threads 1
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
from bench._report import (  # noqa: E402
    command_line,
    describe_revision,
    measured_on,
    remove_revision_trees,
    revision_tree,
    write_section,
)

SHARED = ROOT.parent / "shared" / "ud"

# Runs inside each revision's tree; only APIs that every measured revision has.
CHILD = r"""
import json, sys, time
# this revision's tree first, ahead of an editable install's finder of the working tree
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
sys.path.insert(0, sys.argv[5])
import torch
from unnparse.parser.batching import token_budget_batches
from unnparse.conllu import read_conllu
from unnparse.parser.parser import Parser, default_config
from unnparse.runtime import adam, denormals_flushed

train_file, threads, n_batches, char_encoder = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
torch.set_num_threads(threads)
train = read_conllu(train_file)
torch.manual_seed(0)
parser = Parser.build(default_config(char_encoder=char_encoder), train)
model = parser.model.train()
optimizer = adam([{"params": list(model.parameters()), "lr": 1e-6}], decoupled=True, betas=(0.9, 0.9))
idx = token_budget_batches([len(s) for s in train], 1000, shuffle=True, seed=1)[:n_batches]
batches = [parser.featurizer.batch([train[i] for i in b], b, gold=True) for b in idx]
words = sum(int(b.lengths.sum()) for b in batches)

@denormals_flushed
def one_pass():
    for batch in batches:
        loss = model.loss(model(batch), batch)[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

one_pass()  # oneDNN builds its kernels per shape on first use
t0 = time.perf_counter()
one_pass()
import unnparse
print(json.dumps({"words": words, "seconds": time.perf_counter() - t0, "package": unnparse.__file__}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revisions", nargs="+", default=["HEAD", "."], help="git revisions; '.' is the working tree")
    ap.add_argument("--treebank", default="UD_English-ParTUT")
    ap.add_argument("--char-encoder", default="cnn", choices=["cnn", "lstm"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    train_file = next((SHARED / args.treebank).glob("*-ud-train.conllu"))
    speeds: dict[str, list[float]] = {rev: [] for rev in args.revisions}
    words = 0
    with tempfile.TemporaryDirectory(prefix="unnparse-revisions-") as tmp:
        trees = {rev: revision_tree(rev, Path(tmp), ROOT) for rev in args.revisions}
        try:
            for r in range(args.rounds):
                for rev, tree in trees.items():
                    cmd = [sys.executable, "-c", CHILD, str(train_file), str(args.threads), str(args.batches)]
                    cmd += [args.char_encoder, str(tree)]
                    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    result = json.loads(done.stdout.strip().splitlines()[-1])
                    if not Path(result["package"]).resolve().is_relative_to(tree.resolve()):
                        raise SystemExit(f"{rev}: imported {result['package']}, not the code of {tree}")
                    words = result["words"]
                    speeds[rev].append(words / result["seconds"])
                    print(f"round {r + 1} {rev}: {speeds[rev][-1]:,.0f} words/s", flush=True)
        finally:
            remove_revision_trees(trees.values(), ROOT)
    base = statistics.median(speeds[args.revisions[0]])
    rows = [
        f"| `{describe_revision(rev, ROOT)}` | {statistics.median(s):,.0f} | {min(s):,.0f}–{max(s):,.0f} | "
        f"{statistics.median(s) / base:.2f}x |"
        for rev, s in speeds.items()
    ]
    body = (
        f"{measured_on(f'{args.threads} thread(s)')}, nothing else running: training steps (forward, loss, backward, "
        f"clipping, fused AdamW) of a fresh default scratch parser (character {args.char_encoder.upper()}) on the "
        f"first {args.batches} batches of {args.treebank} ({words:,} words), after one untimed pass; {args.rounds} "
        "rounds alternating the revisions.\n\n"
        f"Command: `{command_line()}`\n\n"
        "| code | words/s (median) | range | speed |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write_section("train-step-speed", "Training step speed on the CPU, by revision", body)
    print(body)


if __name__ == "__main__":
    main()
