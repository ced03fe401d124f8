"""Defaults that generalize, chosen leave one out: every candidate set of training options on every treebank, and for
each treebank the candidate that the *other* treebanks' dev scores prefer, reported on its test split.

Stage 1 trains each ``--candidate NAME=OPTIONS`` on each treebank (``unnparse train --treebank TB`` with the
options, seed ``--seed``, one thread, ``--jobs`` runs side by side; a run whose model exists is reused). Stage 2,
for each held-out treebank T: the candidate with the best mean dev LAS over the other treebanks (ties: UAS) is
T's default; its test UAS / LAS / exact match on T are what a user of that default gets on a treebank nobody tuned
on. With ``--udpipe-python``, UDPipe 1 is trained here too, parser only with gold tags as features
(``bench/udpipe1.py train``) and the whole pipeline (``train --full``, parsing with its own predicted tags), and
both parse each test file (their training runs in the same pool of jobs). Stage 3 trains each held-out treebank's
default with ``--seeds`` seeds in all (``--seed``, ``--seed`` + 1, ...) and reports their mean and standard
deviation. Writes the ``defaults-loo`` section of BENCHMARKS.md (not with ``--no-report``).

    B="--epochs 1000 --max-minutes 10"
    .venv/bin/python bench/defaults_loo.py --jobs 2 --seeds 3 --udpipe-python /tmp/udpipe1/bin/python \\
        --candidate "decay=$B" --candidate "plateau=--schedule plateau $B" \\
        --candidate "plateau+morph=--schedule plateau $B --xpos-loss 1 --feats-loss 1" \\
        --candidate "plateau+morph+soft=--schedule plateau $B --xpos-loss 1 --feats-loss 1 --tag-features soft" \\
        --candidate "plateau+small=--schedule plateau $B --batch-tokens 500 --lstm-layers 2"

Every run starts from the options the study was measured with (``bench/_options.py``: the linear decay, 3 BiLSTM
layers, 1000-token batches, the defaults of the time) and the candidate's own options override them, so that the
commands train the same networks under today's defaults: ``plateau+small`` is what ``unnparse train`` now does by
default on a treebank under 100,000 training words (with ``--max-minutes 10``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402

SHARED = ROOT.parent / "shared" / "ud"
EXE = str(ROOT / ".venv" / "bin" / "unnparse")
TREEBANKS = ["UD_English-ParTUT", "UD_Afrikaans-AfriBooms", "UD_Telugu-MTG"]


def run(cmd: list[str], log: Path) -> None:
    print("+", " ".join(cmd), flush=True)
    with open(log, "w") as out:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(cmd, check=True, stdout=out, stderr=subprocess.STDOUT, env=env)


def candidates(specs: list[str]) -> dict[str, list[str]]:
    out = {}
    for spec in specs:
        name, sep, options = spec.partition("=")
        if not sep or not name:
            sys.exit(f"--candidate {spec!r}: expected NAME=OPTIONS")
        out[name] = options.split()
    return out


def model_dir(tb: str, name: str, seed: int, args: argparse.Namespace) -> Path:
    """The model of candidate ``name`` on ``tb`` with ``seed`` (the first seed's keeps the short name)."""
    return args.out / (f"{tb}-{name}" if seed == args.seed else f"{tb}-{name}-seed{seed}")


def train_one(tb: str, name: str, options: list[str], seed: int, args: argparse.Namespace) -> None:
    out = model_dir(tb, name, seed, args)
    if (out / "config.json").exists():
        return
    cmd = [EXE, "train", "--treebank", tb, "--data-dir", str(SHARED), "--output", str(out), "--overwrite"]
    cmd += ["--threads", "1", "--device", "cpu", "--no-progress", "--seed", str(seed), *MEASURED_WITH, *options]
    run(cmd, out.with_name(out.name + ".log"))


def udpipe_model(tb: str, full: bool, args: argparse.Namespace) -> Path:
    return args.out / "udpipe1" / f"{tb}-{'full' if full else 'gold'}.udpipe"


def train_udpipe(tb: str, full: bool, args: argparse.Namespace) -> None:
    model = udpipe_model(tb, full, args)
    if model.exists():
        return
    model.parent.mkdir(parents=True, exist_ok=True)
    script = str(ROOT / "bench" / "udpipe1.py")
    cmd = [args.udpipe_python, script, "train", *(["--full"] if full else []), str(SHARED / tb), str(model)]
    run(cmd, args.out / f"{tb}-udpipe1-{'full' if full else 'gold'}.log")


def scores(model: Path, tb: str) -> dict:
    cmd = [EXE, "evaluate", "--model", str(model), "--treebank", tb, "--data-dir", str(SHARED), "--split", "test"]
    return json.loads(subprocess.run([*cmd, "--json", "--threads", "1"], check=True, capture_output=True).stdout)


def dev_scores(model: Path) -> tuple[float, float]:
    config = json.loads((model / "config.json").read_text())
    dev = config.get("dev", {})
    return float(dev.get("las", 0.0)), float(dev.get("uas", 0.0))


def udpipe_rows(tb: str, args: argparse.Namespace) -> list[str]:
    """UDPipe 1 with gold tags (parser only) and with its own predicted tags (the whole pipeline) on ``tb``'s test."""
    script = str(ROOT / "bench" / "udpipe1.py")
    test = next((SHARED / tb).glob("*-ud-test.conllu"))
    rows = []
    for label, full in (("UDPipe 1, gold tags", False), ("UDPipe 1, predicted tags", True)):
        model = udpipe_model(tb, full, args)
        parsed = args.out / f"{tb}-udpipe1-{'full' if full else 'gold'}.conllu"
        if full:
            cmd = [args.udpipe_python, script, "process", str(model), str(test), str(parsed), "--input", "conllu"]
        else:
            cmd = [args.udpipe_python, script, "parse", str(model), str(test), str(parsed)]
        subprocess.run(cmd, check=True, capture_output=True)
        evaluate = [EXE, "evaluate", "--gold", str(test), "--pred", str(parsed), "--json"]
        s = json.loads(subprocess.run(evaluate, check=True, capture_output=True).stdout)
        rows.append(f"| {tb} | {label} |  | {s['uas']:.2f} | {s['las']:.2f} | {s['exact_match']:.2f} |")
    return rows


def seed_row(tb: str, name: str, args: argparse.Namespace) -> str:
    """Mean ± standard deviation of the test scores of ``name`` on ``tb`` over the seeds."""
    runs = [scores(model_dir(tb, name, seed, args), tb) for seed in range(args.seed, args.seed + args.seeds)]
    cells = []
    for key in ("uas", "las", "exact_match"):
        values = [r[key] for r in runs]
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        cells.append(f"{statistics.mean(values):.2f} ± {spread:.2f}")
    return f"| {tb} | {name} | {len(runs)} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--candidate", action="append", required=True, metavar="NAME=OPTIONS")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seeds", type=int, default=3, help="seeds of each held-out treebank's default (stage 3)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "defaults-loo")
    ap.add_argument("--udpipe-python", help="a Python with ufal.udpipe (omit to leave UDPipe 1 out)")
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()
    if not SHARED.is_dir():
        sys.exit(f"{SHARED} not found: the benchmark needs the UD treebanks in ../shared/ud")
    args.out.mkdir(parents=True, exist_ok=True)
    cands = candidates(args.candidate)
    runs = [(tb, name) for tb in args.treebanks for name in cands]
    jobs = [lambda r=r: train_one(r[0], r[1], cands[r[1]], args.seed, args) for r in runs]
    if args.udpipe_python:
        pairs = [(tb, full) for tb in args.treebanks for full in (False, True)]
        jobs += [lambda tb=tb, full=full: train_udpipe(tb, full, args) for tb, full in pairs]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda job: job(), jobs))
    dev = {(tb, name): dev_scores(args.out / f"{tb}-{name}") for tb, name in runs}
    choice_rows, rows, chosen_of = [], [], {}
    for held in args.treebanks:
        others = [tb for tb in args.treebanks if tb != held]

        def preference(name: str, others: list[str] = others) -> tuple[float, float]:
            return (
                statistics.mean(dev[(tb, name)][0] for tb in others),
                statistics.mean(dev[(tb, name)][1] for tb in others),
            )

        chosen = max(cands, key=preference)
        chosen_of[held] = chosen
        choice_rows.append(
            f"| {held} | {', '.join(others)} | {chosen} | "
            + " / ".join(f"{n} {preference(n)[0]:.2f}" for n in cands)
            + " |"
        )
        for name in cands:
            s = scores(args.out / f"{held}-{name}", held)
            mark = " (the default left one out)" if name == chosen else ""
            rows.append(
                f"| {held} | {name}{mark} | {' '.join(cands[name])} | {s['uas']:.2f} | {s['las']:.2f} | "
                f"{s['exact_match']:.2f} |"
            )
        if args.udpipe_python:
            rows += udpipe_rows(held, args)
    more = [(tb, seed) for tb in args.treebanks for seed in range(args.seed + 1, args.seed + args.seeds)]
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda r: train_one(r[0], chosen_of[r[0]], cands[chosen_of[r[0]]], r[1], args), more))
    seed_rows = [seed_row(tb, chosen_of[tb], args) for tb in args.treebanks]
    body = (
        f"{measured_on('1 thread per run')}, seed {args.seed}, {args.jobs} runs side by side. Every candidate "
        "trained on every treebank; for each treebank, the candidate with the best mean dev LAS on the *other* "
        "treebanks is its default (chosen without it), and its test scores are what that default gives on a "
        "treebank nobody tuned on. Test split, gold tokenization; unnparse reads words only.\n\n"
        f"Command: `{command_line()}`\n\n"
        "| held-out treebank | chosen on | chosen | mean dev LAS on those, each candidate |\n|---|---|---|---|\n"
        + "\n".join(choice_rows)
        + "\n\n| treebank | system | options | UAS | LAS | exact |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nEach held-out treebank's default over {args.seeds} seeds (from {args.seed}), test mean ± standard "
        "deviation:\n\n| treebank | default | seeds | UAS | LAS | exact |\n|---|---|---|---|---|---|\n"
        + "\n".join(seed_rows)
        + "\n"
    )
    print(body)
    if not args.no_report:
        write_section("defaults-loo", "Defaults, never tuned on the treebank they are reported on", body)


if __name__ == "__main__":
    main()
