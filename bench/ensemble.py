"""Parser ensembles under one CPU budget: two members trained side by side, then combined.

For each treebank, two scratch K=1 parsers train at the same time for ``--minutes`` of wall clock with one thread
each (the 2-core CPU's whole budget): one with the character CNN (``--seed 1``), one with the character BiLSTM
(``--seed 1``), both with the extra options that ``--member-options`` gives for the treebank (e.g. a 2-layer BiLSTM
for a small treebank). ``unnparse ensemble`` combines them. Reports each member and the ensemble on the test split (gold
tokenization, no POS tags) and the parse speed of a member and of the ensemble (read, parse and write the test file
with the model loaded, best of 3, ``--threads`` threads, alone on the machine). Writes the ``parser-ensemble``
section of BENCHMARKS.md.

    .venv/bin/python bench/ensemble.py --minutes 15 --member-options "UD_Telugu-MTG=--lstm-layers 2"
    .venv/bin/python bench/ensemble.py --minutes 15 --skip-training   # re-measure the models in --out
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402
from bench.parse_speed import time_unnparse  # noqa: E402
from unnparse.parser import load  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
EXE = str(ROOT / ".venv" / "bin" / "unnparse")
TREEBANKS = ["UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG"]
MEMBERS = {"cnn": ["--char-encoder", "cnn", "--seed", "1"], "lstm": ["--char-encoder", "lstm", "--seed", "1"]}


def run(cmd: list[str]) -> str:
    print("+", " ".join(cmd), flush=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, check=True, text=True, capture_output=True, env=env).stdout


def train_member(treebank: str, name: str, minutes: float, out: Path, options: list[str]) -> None:
    run(
        [EXE, "train", "--treebank", treebank, "--data-dir", str(SHARED), "--output", str(out / f"{treebank}-{name}")]
        + ["--epochs", "100000", "--max-minutes", str(minutes), "--patience", "100000", "--device", "cpu"]
        + ["--threads", "1", "--no-progress", "--tokenizer-steps", "0", *MEASURED_WITH, *MEMBERS[name], *options]
    )


def member_options(specs: list[str]) -> dict[str, list[str]]:
    """``TREEBANK=OPTIONS`` strings -> extra training options of both members for that treebank."""
    out = {}
    for spec in specs:
        treebank, sep, options = spec.partition("=")
        if not sep:
            sys.exit(f"--member-options {spec!r}: expected TREEBANK=OPTIONS")
        out[treebank] = options.split()
    return out


def scores(model: Path, test: Path) -> dict:
    cmd = [EXE, "evaluate", "--model", str(model), "--input", str(test), "--json", "--device", "cpu"]
    return json.loads(subprocess.run(cmd, check=True, text=True, capture_output=True).stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--minutes", type=float, default=15.0, help="training budget of each member (side by side)")
    ap.add_argument("--threads", type=int, default=2, help="threads when measuring parse speed")
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "bench-ensemble")
    ap.add_argument("--skip-training", action="store_true", help="only combine and measure the models in --out")
    ap.add_argument(
        "--member-options",
        nargs="*",
        default=[],
        metavar="TREEBANK=OPTIONS",
        help="extra `unnparse train` options of both members of a treebank, e.g. 'UD_Telugu-MTG=--lstm-layers 2'",
    )
    args = ap.parse_args()
    extra = member_options(args.member_options)
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the benchmark needs the UD treebanks in ../shared/ud")
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for tb in args.treebanks:
        if not args.skip_training:
            with ThreadPoolExecutor(max_workers=2) as pool:
                opts = extra.get(tb, [])
                list(pool.map(lambda name, tb=tb, o=opts: train_member(tb, name, args.minutes, args.out, o), MEMBERS))
        ensemble = args.out / f"{tb}-ensemble"
        if not ensemble.exists():
            run([EXE, "ensemble", *(str(args.out / f"{tb}-{m}") for m in MEMBERS), "--output", str(ensemble)])
        test = next((SHARED / tb).glob("*-ud-test.conllu"))
        torch.set_num_threads(args.threads)
        for label, model in [*((f"member: char {m}", args.out / f"{tb}-{m}") for m in MEMBERS), ("ensemble", ensemble)]:
            s = scores(model, test)
            parser = load(model, precision="float32")
            time_unnparse(parser, test, args.out / "parsed.conllu", repeats=1)  # warm-up
            seconds = time_unnparse(parser, test, args.out / "parsed.conllu")
            epochs, layers = "", ""
            if label != "ensemble":
                history = json.loads((model / "metrics.json").read_text())
                config = json.loads((model / "config.json").read_text())
                epochs, layers = f"{len(history)} ({config['best_epoch']})", str(config["encoder"]["layers"])
            rows.append(
                f"| {tb} | {label} | {layers} | {epochs} | {s['uas']:.2f} | {s['las']:.2f} | "
                f"{s['modifier_list_accuracy']:.2f} | {s['exact_match']:.2f} | {s['sentences'] / seconds:,.0f} |"
            )
            print(rows[-1], flush=True)
    body = (
        f"{measured_on()}, gold tokenization, test split, no POS tags. Per treebank, two scratch K=1 members "
        f"trained side by side for {args.minutes:g} minutes of wall clock with one thread each (together the CPU's "
        f"whole training budget): character CNN and character BiLSTM, both `--seed 1`, with the training options "
        f"that `--member-options` gives for the treebank (in the command below; the word BiLSTM's layers are in the "
        f"table); then `unnparse ensemble` (the best tree of the mean arc scores, the label of highest mean "
        f"probability). Parse speed: read, parse and write the test file in "
        f"float32 with the model loaded, {args.threads} threads, best of 3.\n\nCommand: `{command_line()}`\n\n"
        "| treebank | model | BiLSTM layers | epochs (best) | UAS | LAS | mod-list | exact | parse sent/s |\n"
        "|---|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )
    write_section("parser-ensemble", "Parser ensembles: two members trained side by side", body)
    print(body)


if __name__ == "__main__":
    main()
