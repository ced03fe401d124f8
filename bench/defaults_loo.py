"""Defaults that generalize, chosen leave one out: every candidate set of training options on every treebank, and for
each treebank the candidate that the *other* treebanks' dev scores prefer, reported on its test split.

Stage 1 trains each ``--candidate NAME=OPTIONS`` on each treebank (``unnparse train --treebank TB`` with the
options, seed ``--seed``, one thread, ``--jobs`` runs side by side; a run whose model exists is reused). Stage 2,
for each held-out treebank T: the candidate with the best mean dev LAS over the other treebanks (ties: UAS) is
T's default; its test UAS / LAS / exact match on T are what a user of that default gets on a treebank nobody tuned
on. With ``--udpipe-python``, UDPipe 1 is trained here too, parser only with gold tags as features
(``bench/udpipe1.py train``) and the whole pipeline (``train --full``, parsing with its own predicted tags), and
both parse each test file. Writes the ``defaults-loo`` section of BENCHMARKS.md (not with ``--no-report``).

    .venv/bin/python bench/defaults_loo.py --jobs 2 --udpipe-python /tmp/udpipe1/bin/python \\
        --candidate 'current=--max-minutes 15' \\
        --candidate 'plateau=--schedule plateau --epochs 1000 --max-minutes 15' \\
        --candidate 'plateau+morph=--schedule plateau --epochs 1000 --max-minutes 15 --xpos-loss 1 --feats-loss 1'
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


def train_one(tb: str, name: str, options: list[str], args: argparse.Namespace) -> None:
    out = args.out / f"{tb}-{name}"
    if (out / "config.json").exists():
        return
    cmd = [EXE, "train", "--treebank", tb, "--data-dir", str(SHARED), "--output", str(out), "--overwrite"]
    cmd += ["--threads", "1", "--device", "cpu", "--no-progress", "--seed", str(args.seed), *options]
    run(cmd, args.out / f"{tb}-{name}.log")


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
    for label, suffix, full in (("UDPipe 1, gold tags", "gold", False), ("UDPipe 1, predicted tags", "full", True)):
        model = args.out / "udpipe1" / f"{tb}-{suffix}.udpipe"
        if not model.exists():
            cmd = [args.udpipe_python, script, "train", *(["--full"] if full else []), str(SHARED / tb), str(model)]
            run(cmd, args.out / f"{tb}-udpipe1-{suffix}.log")
        parsed = args.out / f"{tb}-udpipe1-{suffix}.conllu"
        if full:
            cmd = [args.udpipe_python, script, "process", str(model), str(test), str(parsed), "--input", "conllu"]
        else:
            cmd = [args.udpipe_python, script, "parse", str(model), str(test), str(parsed)]
        subprocess.run(cmd, check=True, capture_output=True)
        evaluate = [EXE, "evaluate", "--gold", str(test), "--pred", str(parsed), "--json"]
        s = json.loads(subprocess.run(evaluate, check=True, capture_output=True).stdout)
        rows.append(f"| {tb} | {label} |  | {s['uas']:.2f} | {s['las']:.2f} | {s['exact_match']:.2f} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=TREEBANKS)
    ap.add_argument("--candidate", action="append", required=True, metavar="NAME=OPTIONS")
    ap.add_argument("--seed", type=int, default=1)
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
    with ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(lambda r: train_one(r[0], r[1], cands[r[1]], args), runs))
    dev = {(tb, name): dev_scores(args.out / f"{tb}-{name}") for tb, name in runs}
    choice_rows, rows = [], []
    for held in args.treebanks:
        others = [tb for tb in args.treebanks if tb != held]

        def preference(name: str, others: list[str] = others) -> tuple[float, float]:
            return (
                statistics.mean(dev[(tb, name)][0] for tb in others),
                statistics.mean(dev[(tb, name)][1] for tb in others),
            )

        chosen = max(cands, key=preference)
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
        + "\n"
    )
    print(body)
    if not args.no_report:
        write_section("defaults-loo", "Defaults, never tuned on the treebank they are reported on", body)


if __name__ == "__main__":
    main()
