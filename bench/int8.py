"""Parsing in int8 on the CPU: speed and accuracy of ``--precision int8`` against float32, model by model.

For each ``--model DIR:TEST.conllu`` pair: the model parses the test file's words (gold tokenization, tags and lemmas
cleared) in float32, then in int8 (its LSTMs and linear layers quantized once, the time it takes reported); each is
timed ``--rounds`` times with the model loaded (parsing only, the best round kept) and scored (UAS, LAS, exact
match). Writes the ``int8`` section of BENCHMARKS.md (not with ``--no-report``).

    .venv/bin/python bench/int8.py --threads 2 \\
        --model models/UD_English-ParTUT:../shared/ud/UD_English-ParTUT/en_partut-ud-test.conllu
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._report import command_line, measured_on, write_section  # noqa: E402


def measure(model_dir: Path, test: Path, rounds: int) -> dict[str, dict[str, float]]:
    """float32 and int8: sentences/s (best of ``rounds``), UAS, LAS, exact match; and the quantization's seconds."""
    from unnparse.conllu import read_conllu
    from unnparse.conllu.sentence import TAG_COLUMNS
    from unnparse.evaluation.attachment import score_sentences
    from unnparse.parser.loading import load

    gold = read_conllu(test)
    words = [s.without_tags(TAG_COLUMNS) for s in gold]
    parser = load(model_dir)
    rows = {}
    for precision in ("float32", "int8"):
        parser.precision = precision
        t0 = time.perf_counter()
        for one in getattr(parser, "members", [parser]):
            one.network()  # the quantized copy is made here, not in the first timed round
        prepare = time.perf_counter() - t0
        best, parsed = float("inf"), []
        for _ in range(rounds):
            t0 = time.perf_counter()
            parsed = [p.sentence for p in parser.predict(words)]
            best = min(best, time.perf_counter() - t0)
        scores = score_sentences(gold, parsed)
        rows[precision] = {
            "sentences_per_s": len(gold) / best,
            "uas": scores.uas,
            "las": scores.las,
            "exact": scores.exact_match,
            "prepare_s": prepare,
        }
        print(model_dir.name, precision, rows[precision], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", action="append", required=True, help="DIR:TEST.conllu (repeat)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    table = (
        "| model | test file | float32 sent/s | int8 sent/s | speed-up | UAS f32 / int8 | LAS f32 / int8 | "
        "exact f32 / int8 | quantizing s |\n|---|---|---|---|---|---|---|---|---|\n"
    )
    for spec in args.model:
        model, _, test = spec.partition(":")
        rows = measure(Path(model), Path(test), args.rounds)
        f, q = rows["float32"], rows["int8"]
        table += (
            f"| {Path(model).name} | {Path(test).name} | {f['sentences_per_s']:.0f} | {q['sentences_per_s']:.0f} | "
            f"{q['sentences_per_s'] / f['sentences_per_s']:.2f}× | {f['uas']:.2f} / {q['uas']:.2f} | "
            f"{f['las']:.2f} / {q['las']:.2f} | {f['exact']:.1f} / {q['exact']:.1f} | {q['prepare_s']:.2f} |\n"
        )
    body = (
        f"{measured_on(f'{args.threads} torch threads')}: each model parses its test file's words (gold tokenization, "
        f"tags and lemmas cleared) with the model loaded, best of {args.rounds} rounds, in float32 and in int8 "
        f"(`--precision int8`: LSTMs and linear layers with int8 weights, a scale per row of a linear layer, the rest "
        f"float32).\n\n"
        f"Command: `{command_line()}`\n\n{table}"
    )
    print(body)
    if not args.no_report:
        write_section("int8", "Parsing in int8 on the CPU", body)


if __name__ == "__main__":
    main()
