"""The training loops of every model, by revision: seconds and the trained weights, in the same run.

Each revision (a git revision checked out into a temporary worktree, or ``.`` for the working tree) trains each
task in its own Python process that imports the package from that tree, with the same seeds and data:

- ``parser``: a default scratch parser (without the lemmatizer, which earlier revisions lack) on the first
  ``--parser-sentences`` sentences of a UD treebank's training file, one epoch, dev scores on its first 200 dev
  sentences;
- ``mnist``: the default MNIST UNN (k = 3) on ``--mnist-images`` training images, one epoch, 1,000 held out;
- ``seqcomplete``: the default sequence-completion UNN, ``--seq-updates`` updates with a linear decay;
- ``tokenizer``: the trained tokenizer, ``--tokenizer-steps`` updates, evaluated on the dev text.

Rounds alternate the revisions. The table gives each task's median seconds per revision, its ratio to the first
revision and a digest of the trained weights (``same`` when every revision's weights are identical, bit for bit).
Writes the ``training-loop`` section of BENCHMARKS.md.

    .venv/bin/python bench/training_loop.py --revisions d4ad25c . --threads 1 --rounds 3
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

SHARED = ROOT.parent / "shared"
TASKS = ("parser", "mnist", "seqcomplete", "tokenizer")

# Runs inside each revision's tree; only APIs that every measured revision has.
CHILD = r"""
import hashlib, json, sys, tempfile, time
sys.meta_path[:] = [f for f in sys.meta_path if not type(f).__module__.startswith("__editable__")]
sys.path.insert(0, sys.argv[2])
import torch
args = json.loads(sys.argv[3])
torch.set_num_threads(args["threads"])
task = sys.argv[1]

def digest(state):
    h = hashlib.sha256()
    for k in sorted(state):
        h.update(k.encode()); h.update(state[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]

out = {}
if task in ("parser", "tokenizer"):
    from unnparse.conllu import read_conllu
    train = read_conllu(args["train"])[: args["parser_sentences"]]
    dev = read_conllu(args["dev"])[:200]
if task == "parser":
    from unnparse.parser.parser import Parser, default_config
    from unnparse.parser.training import TrainOptions, train_parser
    import dataclasses
    from unnparse.parser.config import ParserModelConfig
    # the lemmatizer came later: measure the loop on the same network in every revision
    extra = {"lemma_loss": 0.0} if "lemma_loss" in {f.name for f in dataclasses.fields(ParserModelConfig)} else {}
    torch.manual_seed(0)
    parser = Parser.build(default_config(**extra), train)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        result = train_parser(parser, train, dev, TrainOptions(epochs=1, seed=1), d, progress=False)
        out["seconds"] = time.perf_counter() - t0
    out["digest"] = digest(parser.model.state_dict())
    out["score"] = f"dev LAS {result.history[-1]['dev']['las']:.2f}"
elif task == "mnist":
    from unnparse.mnist.data import load_mnist
    from unnparse.mnist.model import MnistConfig
    from unnparse.mnist.train import TrainOptions, train
    data = load_mnist(args["mnist"], download=False)
    options = TrainOptions(epochs=1, train_limit=args["mnist_images"], dev_size=1000, device="cpu", progress=False)
    t0 = time.perf_counter()
    result = train(MnistConfig(), data, options)
    out["seconds"] = time.perf_counter() - t0
    out["digest"] = digest(result.model.state_dict())
    out["score"] = f"dev acc {result.best_dev_accuracy:.2f}"
elif task == "seqcomplete":
    from unnparse.seqcomplete.data import DataSpec, generate
    from unnparse.seqcomplete.model import SeqConfig
    from unnparse.seqcomplete.train import TrainOptions, evaluate, train
    data = generate(DataSpec())
    options = TrainOptions(
        epochs=1, lr=1e-3, lr_schedule="linear", warmup=20, max_updates=args["seq_updates"], device="cpu",
        progress=False,
    )
    t0 = time.perf_counter()
    result = train(SeqConfig(), data, options)
    out["seconds"] = time.perf_counter() - t0
    out["digest"] = digest(result.model.state_dict())
    out["score"] = f"test acc {evaluate(result.model, data, data.split('test')).accuracy:.2f}"
elif task == "tokenizer":
    from unnparse.text.trained_tokenizer import train_tokenizer
    t0 = time.perf_counter()
    tokenizer, scores = train_tokenizer(train, dev, steps=args["tokenizer_steps"], eval_every=100, seed=0)
    out["seconds"] = time.perf_counter() - t0
    out["digest"] = digest(tokenizer.net.state_dict())
    out["score"] = f"dev token F1 {scores.get('tokens', 0.0):.2f}"
import unnparse
out["package"] = unnparse.__file__
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--revisions", nargs="+", default=["HEAD", "."], help="git revisions; '.' is the working tree")
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    ap.add_argument("--treebank", default="UD_English-ParTUT")
    ap.add_argument("--parser-sentences", type=int, default=600)
    ap.add_argument("--mnist-images", type=int, default=4000)
    ap.add_argument("--seq-updates", type=int, default=150)
    ap.add_argument("--tokenizer-steps", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    folder = SHARED / "ud" / args.treebank
    child_args = {
        "threads": args.threads,
        "train": str(next(folder.glob("*-ud-train.conllu"))),
        "dev": str(next(folder.glob("*-ud-dev.conllu"))),
        "parser_sentences": args.parser_sentences,
        "mnist": str(SHARED / "mnist"),
        "mnist_images": args.mnist_images,
        "seq_updates": args.seq_updates,
        "tokenizer_steps": args.tokenizer_steps,
    }
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="unnparse-revisions-") as tmp:
        trees = {rev: revision_tree(rev, Path(tmp), ROOT) for rev in args.revisions}
        try:
            for r in range(args.rounds):
                for task in args.tasks:
                    for rev, tree in trees.items():
                        cmd = [sys.executable, "-c", CHILD, task, str(tree), json.dumps(child_args)]
                        done = subprocess.run(cmd, check=True, capture_output=True, text=True)
                        result = json.loads(done.stdout.strip().splitlines()[-1])
                        if not Path(result["package"]).resolve().is_relative_to(tree.resolve()):
                            raise SystemExit(f"{rev}: imported {result['package']}, not the code of {tree}")
                        results.setdefault((task, rev), []).append(result)
                        print(f"round {r + 1} {task} {rev}: {result['seconds']:.2f} s {result['digest']}", flush=True)
        finally:
            remove_revision_trees(trees.values(), ROOT)
    rows = []
    for task in args.tasks:
        base = statistics.median(x["seconds"] for x in results[(task, args.revisions[0])])
        digests = {x["digest"] for rev in args.revisions for x in results[(task, rev)]}
        for rev in args.revisions:
            runs = results[(task, rev)]
            seconds = statistics.median(x["seconds"] for x in runs)
            same = "same" if len(digests) == 1 else "differ"
            rows.append(
                f"| {task} | `{describe_revision(rev, ROOT)[:60]}` | {seconds:.2f} | {seconds / base:.2f}x | "
                f"`{runs[-1]['digest']}` ({same}) | {runs[-1]['score']} |"
            )
    body = (
        f"{measured_on(f'{args.threads} thread(s)')}, nothing else running. Each task trains with the same seeds and "
        f"data in every revision: parser (default scratch, 1 epoch on {args.parser_sentences} sentences of "
        f"{args.treebank}, dev scores on 200), MNIST (default k = 3, 1 epoch on {args.mnist_images:,} images), "
        f"sequence completion (default, {args.seq_updates} updates), tokenizer ({args.tokenizer_steps} updates); "
        f"{args.rounds} rounds alternating the revisions; seconds are the median of the whole call. The scores, after "
        "such short runs, only show that the revisions agree; `same`: every revision's trained weights are "
        "identical, bit for bit.\n\n"
        f"Command: `{command_line()}`\n\n"
        "| task | code | seconds (median) | time | trained weights | score |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + "\n"
    )
    write_section("training-loop", "Training loops by revision: time and trained weights", body)
    print(body)


if __name__ == "__main__":
    main()
